package broker_test

import (
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/pebble"
)

// TestRecoveryMillionQueued measures a broker start on a store holding
// 1,000,000 queued messages for 10 offline sessions: the time New takes and
// the memory the restored broker holds (queues past 1,000 per session stay
// on disk). GANNET_LONG=1 runs it.
func TestRecoveryMillionQueued(t *testing.T) {
	if testing.Short() || os.Getenv("GANNET_LONG") == "" {
		t.Skip("long run: set GANNET_LONG=1")
	}
	dir := t.TempDir()
	st, err := pebble.Open(dir, pebble.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	const sessions, per = 10, 100_000
	start := time.Now()
	for s := range sessions {
		id := fmt.Sprintf("offline-%d", s)
		if err := st.SaveSession(&store.Session{ClientID: id, Version: 4, Expiry: 1<<63 - 1, Disconnected: time.Now(),
			Subscriptions: []store.Subscription{{Subscription: packet.Subscription{Filter: "q/#", QoS: 1}}}}); err != nil {
			t.Fatal(err)
		}
		batch := make([]*store.Entry, 0, 1000)
		for i := range per {
			payload := make([]byte, 64)
			rand.Read(payload) // incompressible, as real payloads may be
			m := &store.Message{ID: uint64(s*per + i + 1), Topic: "q/x", Payload: payload, QoS: 1, Created: time.Now()}
			batch = append(batch, &store.Entry{Seq: uint64(i + 1), Message: m, QoS: 1})
			if len(batch) == cap(batch) {
				if err := st.Append(id, batch...); err != nil {
					t.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	st.Close()
	t.Logf("wrote %d queued messages in %v", sessions*per, time.Since(start))

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start = time.Now()
	st, err = pebble.Open(dir, pebble.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	opts := testOptions()
	opts.Store = st
	b := runBroker(t, opts)
	elapsed := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	var queued, onDisk int
	for _, ci := range b.Clients() {
		queued += ci.Queued
		onDisk += ci.QueuedOnDisk
	}
	t.Logf("restart with %d queued (%d on disk only): %v; heap after restore %d MiB", queued, onDisk, elapsed, (after.HeapInuse)>>20)
	if queued != sessions*per {
		t.Fatalf("restored %d queued messages, want %d", queued, sessions*per)
	}
	var size int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			size += info.Size()
		}
	}
	t.Logf("data directory %d MiB: %d bytes per queued message (64-byte payloads)", size>>20, size/int64(sessions*per))
}
