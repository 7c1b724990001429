package broker_test

import (
	"strconv"
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store/memory"
)

// syncingStore makes the memory store look durable (it has Sync), which
// turns on the broker's spilling of long offline queues to the store.
type syncingStore struct{ *memory.Store }

func (syncingStore) Sync() error { return nil }

// A long offline queue stays on disk beyond 1,000 deliveries and streams
// back, in order, as the subscriber takes them [MQTT-4.6.0-6].
func TestOfflineQueueStreamsFromStore(t *testing.T) {
	opts := testOptions()
	opts.Store = syncingStore{memory.New()}
	opts.MaxQueued = 100000
	b := runBroker(t, opts)
	sub, _ := connectOK(t, b.Addr, persistentConnect("backlog"))
	sub.sub("backlog/#", 1)
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "backlog")

	const n = 2500
	pub := client(t, b, "producer")
	for i := range n {
		pub.publish("backlog/t", strconv.Itoa(i), 1, false)
	}
	ci, _, _ := b.Client("backlog")
	if ci.Queued != n || ci.QueuedOnDisk < n-1000 {
		t.Fatalf("queued %d (on disk %d), want %d with at least %d on disk only", ci.Queued, ci.QueuedOnDisk, n, n-1000)
	}

	sub, _ = connectOK(t, b.Addr, persistentConnect("backlog"))
	for i := range n {
		p := sub.expectPublish("backlog/t", strconv.Itoa(i))
		sub.ack(p)
	}
	sub.sync()
	if ci, _, _ := b.Client("backlog"); ci.Queued != 0 || ci.Inflight != 0 {
		t.Errorf("after draining: queued %d, inflight %d", ci.Queued, ci.Inflight)
	}
}
