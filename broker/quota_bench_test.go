package broker_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store/pebble"
)

// BenchmarkRetainedFlood measures what one anonymous client storing 1 MB
// retained messages costs (issue 16, point 3): GANNET_RETAINED_N messages
// (default 400), each on its own topic. GANNET_RETAINED_NOCAP=1 lifts the
// retained caps (the old default). b.N is ignored.
//
//	go test -run '^$' -bench RetainedFlood -benchtime 1x ./broker
func BenchmarkRetainedFlood(b *testing.B) {
	n := 400
	if s := os.Getenv("GANNET_RETAINED_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	opts := testOptions()
	if os.Getenv("GANNET_RETAINED_NOCAP") != "" {
		opts.MaxRetained, opts.MaxRetainedBytes, opts.MaxRetainedPerUser, opts.MaxRetainedBytesPerUser = 0, 0, 0, 0
	}
	br := runBroker(b, opts)
	c := client(b, br, "flood")
	payload := make([]byte, 1_000_000)
	h0 := heapNow()
	t0 := time.Now()
	for i := range n {
		p := &packet.Publish{Topic: fmt.Sprintf("flood/%d", i), Payload: payload, QoS: 1, Retain: true, PacketID: uint16(i + 1)}
		c.send(p)
		expectPacket[*packet.Puback](c)
	}
	st := br.Stats()
	b.Logf("%d x 1 MB retained from one anonymous client: %d stored, %d refused, heap %+.0f MiB, %v",
		n, st.Retained, st.DroppedRetained, (float64(heapNow())-float64(h0))/(1<<20), time.Since(t0))
}

// BenchmarkOfflineQueueMemory measures what offline queues of large
// messages cost in memory with the pebble store (issue 16, point 3): three
// offline sessions get GANNET_QUEUE_N messages of 1 MB (default 200).
// b.N is ignored.
//
//	go test -run '^$' -bench OfflineQueueMemory -benchtime 1x ./broker
func BenchmarkOfflineQueueMemory(b *testing.B) {
	n := 200
	if s := os.Getenv("GANNET_QUEUE_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	st, err := pebble.Open(b.TempDir(), pebble.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	opts := testOptions()
	opts.Store = st
	br := runBroker(b, opts)
	for i := range 3 {
		id := fmt.Sprintf("offline-%d", i)
		c, _ := connectOK(b, br.Addr, persistentConnect(id))
		c.sub("big/#", 1)
		c.send(&packet.Disconnect{})
		br.waitOffline(b, id)
	}
	pub := client(b, br, "big-pub")
	payload := make([]byte, 1_000_000)
	h0 := heapNow()
	for i := range n {
		p := &packet.Publish{Topic: "big/t", Payload: payload, QoS: 1, PacketID: uint16(i + 1)}
		pub.send(p)
		expectPacket[*packet.Puback](pub)
	}
	ci, _, _ := br.Client("offline-0")
	b.Logf("%d x 1 MB to 3 offline sessions: heap %+.0f MiB; per session %d queued (%d on disk only), %d dropped, %.1f MiB in memory",
		n, (float64(heapNow())-float64(h0))/(1<<20), ci.Queued, ci.QueuedOnDisk, ci.Dropped, float64(ci.QueuedMemory)/(1<<20))
}
