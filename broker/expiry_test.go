package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/pebble"
)

// openPebble opens the pebble store in dir. It is closed when the test
// ends, after the brokers started later (cleanups run last first); a test
// may close it sooner to open it again.
func openPebble(t testing.TB, dir string) *pebble.Store {
	t.Helper()
	opts := pebble.DefaultOptions()
	opts.Logger = testLogger()
	st, err := pebble.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// runPebbleBroker runs a broker with opts on the pebble store in dir.
func runPebbleBroker(t testing.TB, dir string, opts broker.Options) (*testBroker, *pebble.Store) {
	t.Helper()
	st := openPebble(t, dir)
	opts.Store = st
	return runBroker(t, opts), st
}

func storedRetained(t *testing.T, st store.Store) []string {
	t.Helper()
	var topics []string
	if err := st.LoadRetained(func(m *store.Message) error { topics = append(topics, m.Topic); return nil }); err != nil {
		t.Fatal(err)
	}
	return topics
}

// [MQTT-3.3.2-5]: retained messages whose Message Expiry Interval has
// passed are deleted, with no subscriber coming across them: the retained
// count and the inspection API drop them, and the store does not keep
// them across a restart.
func TestExpiredRetainedDeleted_MQTT_3_3_2_5(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := testOptions()
	b, st := runPebbleBroker(t, dir, opts)

	const n = 20
	pub := v5Client(t, b, "exp-retain-pub")
	for i := range n {
		pub.v5Publish(v5Expiring(fmt.Sprintf("exp/retained/%d", i), "soon gone", byte(i%2), true, 1))
	}
	pub.v5Pub("exp/kept", "kept", 1, true)
	if got := b.Stats().Retained; got != n+1 {
		t.Fatalf("retained count %d, want %d", got, n+1)
	}
	time.Sleep(time.Second)
	eventually(t, "the expired retained messages to be deleted", func() bool { return b.Stats().Retained == 1 })
	if list, err := b.Retained("#"); err != nil || len(list) != 1 || list[0].Topic != "exp/kept" {
		t.Errorf("inspection API lists %v (%v), want exp/kept only", list, err)
	}
	b.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openPebble(t, dir)
	if got := storedRetained(t, st); len(got) != 1 || got[0] != "exp/kept" {
		t.Errorf("store holds retained %v after a restart, want exp/kept only", got)
	}
}

// [MQTT-3.3.2-5]: retained messages that expired while the broker was
// down are deleted from the store when it restores, not only skipped.
func TestExpiredRetainedDeletedOnRestore_MQTT_3_3_2_5(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := testOptions()
	b, st := runPebbleBroker(t, dir, opts)
	pub := v5Client(t, b, "exp-restore-pub")
	for i := range 10 {
		pub.v5Publish(v5Expiring(fmt.Sprintf("exp/restore/%d", i), "soon gone", 1, true, 1))
	}
	pub.v5Pub("exp/restore/kept", "kept", 1, true)
	b.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)

	b, st = runPebbleBroker(t, dir, opts)
	if got := b.Stats().Retained; got != 1 {
		t.Errorf("retained count %d after restore, want 1", got)
	}
	if got := storedRetained(t, st); len(got) != 1 || got[0] != "exp/restore/kept" {
		t.Errorf("store holds retained %v after restore, want exp/restore/kept only", got)
	}
	b.Close()
}

// [MQTT-3.3.2-5]: expired entries of an offline session's queue are
// evicted before the queue limit is applied, so that they do not crowd
// out fresh messages acknowledged to their publisher.
func TestQueueEvictsExpiredBeforeLimit_MQTT_3_3_2_5(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxQueued = 5
	b := runBroker(t, opts)
	const id = "exp-queue-sub"
	sub, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 60))
	sub.v5Sub(0, packet.Subscription{Filter: "expq/#", QoS: 1})
	sub.v5Leave(b, id, nil)

	pub := v5Client(t, b, "exp-queue-pub")
	for i := range 5 {
		pub.v5Publish(v5Expiring("expq/a", fmt.Sprint("stale ", i), 1, false, 1))
	}
	time.Sleep(1100 * time.Millisecond)
	for i := range 5 {
		pub.v5Pub("expq/a", fmt.Sprint("fresh ", i), 1, false)
	}
	if d := b.Stats().DroppedQueue; d != 0 {
		t.Errorf("%d fresh messages dropped as queue full behind expired ones", d)
	}
	sub, present := v5Reconnect(t, b, id, 60)
	if !present {
		t.Fatal("Session Present 0")
	}
	for i := range 5 {
		sub.ack(sub.expectPublish("expq/a", fmt.Sprint("fresh ", i)))
	}
	sub.v5ExpectNothing()
}
