package broker_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store/memory"
)

// A 5.0 packet with more User Properties than MaxUserProperties closes the
// connection with DISCONNECT 0x97 (issue 16, point 3): empty ones inflated
// a 1 MiB packet to about 7 MiB in memory.
func TestMaxUserPropertiesDisconnects(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	max := broker.DefaultOptions().MaxUserProperties
	if max <= 0 {
		t.Fatal("no default cap on user properties")
	}
	ok := v5Client(t, b, "props-ok")
	p := &packet.Publish{Topic: "t", Payload: []byte("x"), QoS: 1, PacketID: 1}
	p.Properties.User = make([]packet.UserProperty, max)
	if rc := ok.v5Publish(p); rc.IsError() {
		t.Fatalf("%d user properties refused: %v", max, rc)
	}
	bad := v5Client(t, b, "props-bad")
	p.Properties.User = make([]packet.UserProperty, 200_000)
	bad.send(p)
	bad.v5ExpectDisconnect(packet.QuotaExceeded)
}

// Retained messages are capped per identity and for the broker (issue 16,
// point 3): over a cap a retained PUBLISH is not stored; a 5.0 QoS 1
// publisher gets PUBACK 0x97 and the message goes nowhere, a 3.1.1 one is
// delivered live only. Replacing and deleting always work, and deleting
// makes room again; other identities keep their own quota.
func TestRetainedQuota(t *testing.T) {
	b := ownerBroker(t, broker.SessionOwnerOnly, func(o *broker.Options) {
		o.MaxRetainedPerUser = 3
		o.MaxRetainedBytes = 64 << 10
	})
	watch := v5Client(t, b, "watcher")
	watch.v5Sub(0, packet.Subscription{Filter: "home/#", QoS: 1})

	alice, _ := v5ConnectOK(t, b.Addr, login("alice-r", "alice", "wonder", packet.V5))
	for i := range 3 {
		if rc := alice.v5Pub(fmt.Sprintf("home/alice/%d", i), "v", 1, true); rc.IsError() {
			t.Fatalf("retained %d: %v", i, rc)
		}
		watch.ack(watch.expectPublish(fmt.Sprintf("home/alice/%d", i), "v"))
	}
	if rc := alice.v5Pub("home/alice/3", "v", 1, true); rc != packet.QuotaExceeded {
		t.Fatalf("4th retained message of alice: %v, want 0x97", rc)
	}
	watch.sync() // not delivered either
	if rc := alice.v5Pub("home/alice/0", "replaced", 1, true); rc.IsError() {
		t.Fatalf("replacing a retained message: %v", rc)
	}
	watch.ack(watch.expectPublish("home/alice/0", "replaced"))
	if rc := alice.v5Pub("home/alice/1", "", 1, true); rc.IsError() { // delete
		t.Fatalf("deleting a retained message: %v", rc)
	}
	watch.ack(watch.expectPublish("home/alice/1", ""))
	if rc := alice.v5Pub("home/alice/3", "v", 1, true); rc.IsError() {
		t.Fatalf("retained message after a delete: %v", rc)
	}
	watch.ack(watch.expectPublish("home/alice/3", "v"))

	// 3.1.1: over the cap, delivered live but not retained.
	a3, _ := connectOK(t, b.Addr, login("alice-311", "alice", "wonder", packet.V311))
	a3.publish("home/alice/4", "live only", 1, true)
	watch.ack(watch.expectPublish("home/alice/4", "live only"))
	if n := b.Stats().Retained; n != 3 {
		t.Fatalf("%d retained messages, want 3", n)
	}

	// Bob has his own quota; the broker's 64 KiB cap still holds.
	bob, _ := v5ConnectOK(t, b.Addr, login("bob-r", "bob", "builder", packet.V5))
	if rc := bob.v5Pub("home/bob/a", "v", 1, true); rc.IsError() {
		t.Fatalf("bob's retained message: %v", rc)
	}
	watch.ack(watch.expectPublish("home/bob/a", "v"))
	if rc := bob.v5Pub("home/bob/big", strings.Repeat("x", 64<<10), 1, true); rc != packet.QuotaExceeded {
		t.Fatalf("retained message over the broker's byte cap: %v, want 0x97", rc)
	}
	if st := b.Stats(); st.Retained != 4 || st.DroppedRetained != 3 {
		t.Fatalf("Retained %d DroppedRetained %d, want 4 and 3", st.Retained, st.DroppedRetained)
	}
	fresh := v5Client(t, b, "fresh")
	fresh.v5Sub(0, packet.Subscription{Filter: "home/#", QoS: 0})
	got := map[string]bool{}
	for range 4 {
		p := expectPacket[*packet.Publish](fresh)
		got[p.Topic] = true
	}
	fresh.sync()
	for _, want := range []string{"home/alice/0", "home/alice/2", "home/alice/3", "home/bob/a"} {
		if !got[want] {
			t.Errorf("retained %s missing: got %v", want, got)
		}
	}
}

// The broker's retained usage is released by the admin delete too.
func TestRetainedQuotaAdminDelete(t *testing.T) {
	o := testOptions()
	o.MaxRetained = 1
	b := runBroker(t, o)
	c := v5Client(t, b, "r")
	c.v5Pub("a", "1", 1, true)
	if rc := c.v5Pub("b", "1", 1, true); rc != packet.QuotaExceeded {
		t.Fatalf("second retained message: %v, want 0x97", rc)
	}
	if !b.DeleteRetained("a") {
		t.Fatal("DeleteRetained found nothing")
	}
	if rc := c.v5Pub("b", "1", 1, true); rc.IsError() {
		t.Fatalf("after the admin delete: %v", rc)
	}
}

// The memory ceiling applies to open connections too (issue 16, point 3):
// while memory is above it a 5.0 PUBLISH gets 0x97, a SUBSCRIBE 0x97
// (3.1.1: 0x80), and a 3.1.1 PUBLISH is held back and then its connection
// closed; deleting a retained message still works. Once memory is back
// under the ceiling everything works again, new connections included.
func TestMemoryCeilingOpenConnections(t *testing.T) {
	o := testOptions()
	o.MemoryLimit = 1 << 40
	b := runBroker(t, o)
	var inUse atomic.Uint64
	inUse.Store(1 << 20)
	b.SetMemoryInUse(inUse.Load)

	v5 := v5Client(t, b, "mem-5")
	v5.v5Pub("keep", "v", 1, true)
	c3 := client(t, b, "mem-311")
	inUse.Store(2 << 40)
	b.SampleMemory()

	if rc := v5.v5Pub("t", "x", 1, false); rc != packet.QuotaExceeded {
		t.Fatalf("5.0 PUBLISH above the ceiling: %v, want 0x97", rc)
	}
	if rc := v5.v5Subscribe(0, packet.Subscription{Filter: "t", QoS: 1}); rc[0] != packet.QuotaExceeded {
		t.Fatalf("5.0 SUBSCRIBE above the ceiling: %v, want 0x97", rc)
	}
	if rc := c3.subscribe(packet.Subscription{Filter: "t", QoS: 1}); rc[0] != packet.UnspecifiedError {
		t.Fatalf("3.1.1 SUBSCRIBE above the ceiling: %v, want 0x80", rc)
	}
	if rc := v5.v5Pub("keep", "", 1, true); rc.IsError() { // frees memory: allowed
		t.Fatalf("deleting a retained message above the ceiling: %v", rc)
	}
	v5ExpectConnackRefused(t, b.Addr, v5Connect("mem-new"), packet.QuotaExceeded)

	// A 3.1.1 publisher is held back while memory stays above ...
	c3.send(&packet.Publish{Topic: "t", Payload: []byte("x"), QoS: 1, PacketID: 7})
	if p, err := c3.read(200 * time.Millisecond); err == nil {
		t.Fatalf("3.1.1 PUBLISH above the ceiling answered at once: %s", describe(p))
	}
	// ... and goes on when it falls (the attacker gone).
	inUse.Store(1 << 20)
	b.SampleMemory()
	if ack := expectPacket[*packet.Puback](c3); ack.PacketID != 7 {
		t.Fatalf("PUBACK %d, want 7", ack.PacketID)
	}
	if rc := v5.v5Pub("t", "x", 1, false); rc.IsError() {
		t.Fatalf("5.0 PUBLISH after recovery: %v", rc)
	}
	v5.v5Sub(0, packet.Subscription{Filter: "t", QoS: 1})
	v5ConnectOK(t, b.Addr, v5Connect("mem-new"))
	if b.Stats().RefusedMemoryOps < 3 {
		t.Errorf("RefusedMemoryOps %d, want at least 3", b.Stats().RefusedMemoryOps)
	}
}

// The broker's measure of memory in use falls when memory is freed: with
// the runtime's total (which counts freed memory while it stays mapped)
// the ceiling locked every client out after the attacker left.
func TestMemoryInUseFalls(t *testing.T) {
	runtime.GC()
	before := broker.MemInUse()
	big := make([]byte, 128<<20)
	for i := 0; i < len(big); i += 4096 {
		big[i] = 1
	}
	held := broker.MemInUse()
	runtime.KeepAlive(big)
	big = nil
	runtime.GC()
	after := broker.MemInUse()
	t.Logf("in use: %d MiB before, %d MiB holding 128 MiB, %d MiB after freeing it", before>>20, held>>20, after>>20)
	if held < before+100<<20 {
		t.Fatalf("128 MiB held: in use rose only from %d to %d MiB", before>>20, held>>20)
	}
	if after > held-100<<20 {
		t.Fatalf("128 MiB freed: in use still %d MiB (was %d MiB)", after>>20, held>>20)
	}
}

// An offline queue is bounded by bytes, not only by count (issue 16,
// point 3): beyond MaxQueuedBytes further messages are dropped and
// counted.
func TestQueuedBytesCap(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxQueuedBytes = 100_000
	b := runBroker(t, opts)
	sub, _ := connectOK(t, b.Addr, persistentConnect("qbytes"))
	sub.sub("q/#", 1)
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "qbytes")

	pub := client(t, b, "qbytes-pub")
	payload := strings.Repeat("x", 10_000)
	for range 20 {
		pub.publish("q/t", payload, 1, false)
	}
	ci, _, _ := b.Client("qbytes")
	if ci.QueuedBytes > opts.MaxQueuedBytes || ci.Dropped == 0 {
		t.Fatalf("queued %d messages, %d bytes, %d dropped; want at most %d bytes", ci.Queued, ci.QueuedBytes, ci.Dropped, opts.MaxQueuedBytes)
	}
	sub, _ = connectOK(t, b.Addr, persistentConnect("qbytes"))
	for range ci.Queued {
		sub.ack(sub.expectPublish("q/t", payload))
	}
	sub.sync()
	t.Logf("20 x 10 kB offline with a 100 kB cap: %d queued, %d dropped", ci.Queued, ci.Dropped)
}

// With a durable store, an offline queue keeps about 4 MiB in memory and
// the rest on disk, however few its messages: 1,000 messages of 1 MB
// stayed in memory before (issue 16, point 3). They come back in order.
func TestOfflineQueueSpillsByBytes(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.Store = syncingStore{memory.New()}
	b := runBroker(t, opts)
	sub, _ := connectOK(t, b.Addr, persistentConnect("spillbytes"))
	sub.sub("big/#", 1)
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "spillbytes")

	const n, size = 24, 500_000
	pub := client(t, b, "spillbytes-pub")
	for i := range n {
		pub.publish("big/t", fmt.Sprintf("%03d", i)+strings.Repeat("x", size), 1, false)
	}
	ci, _, _ := b.Client("spillbytes")
	if ci.Queued != n || ci.QueuedMemory > 4<<20+size+1000 || ci.QueuedOnDisk == 0 {
		t.Fatalf("queued %d, %d bytes in memory, %d on disk only; want %d with at most 4 MiB in memory", ci.Queued, ci.QueuedMemory, ci.QueuedOnDisk, n)
	}
	sub, _ = connectOK(t, b.Addr, persistentConnect("spillbytes"))
	for i := range n {
		sub.ack(sub.expectPublish("big/t", fmt.Sprintf("%03d", i)+strings.Repeat("x", size)))
	}
	sub.sync()
	if ci, _, _ := b.Client("spillbytes"); ci.Queued != 0 || ci.QueuedBytes != 0 {
		t.Errorf("after draining: queued %d, %d bytes", ci.Queued, ci.QueuedBytes)
	}
}
