package broker_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/memory"
)

// orderStore records the order of the writes that reach a store: a store
// with a write-ahead log replays them in that order after a crash, so any
// prefix of them is what a crash may leave.
type orderStore struct {
	*memory.Store
	mu  sync.Mutex
	ops []string
}

func (s *orderStore) log(op string) {
	s.mu.Lock()
	s.ops = append(s.ops, op)
	s.mu.Unlock()
}

func (s *orderStore) Append(id string, es ...*store.Entry) error {
	s.log("append " + id)
	return s.Store.Append(id, es...)
}

func (s *orderStore) AddInbound(id string, pid uint16) error {
	s.log(fmt.Sprintf("inbound %s %d", id, pid))
	return s.Store.AddInbound(id, pid)
}

func (s *orderStore) Sync() error { return nil }

// WriteBatch logs one op for the whole batch: "batch" and what it holds.
func (s *orderStore) WriteBatch(b *store.Batch) error {
	op := "batch"
	for _, q := range b.Queues {
		op += " append " + q.ClientID
	}
	if b.Retained != nil {
		op += " retained " + b.Retained.Topic
	}
	for _, in := range b.Inbound {
		op += fmt.Sprintf(" inbound %s %d", in.ClientID, in.ID)
	}
	s.log(op)
	return s.Store.WriteBatch(b)
}

// plainOrderStore is an orderStore without WriteBatch: a store that cannot
// write a batch.
type plainOrderStore struct {
	*orderStore
	WriteBatch struct{} // hides orderStore.WriteBatch
}

func (s *orderStore) index(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Index(s.ops, op)
}

// The identifier of an inbound QoS 2 message is stored in one write with
// the deliveries it guards (store.Batch): a crash that kept the deliveries
// without it would make the broker route the publisher's resent PUBLISH a
// second time [MQTT-4.3.3-2]; one that kept the identifier without the
// deliveries would answer the resend as a duplicate and deliver it to no
// one [MQTT-4.3.3-10], an acknowledged message lost.
func TestInboundQoS2StoredWithItsDeliveries(t *testing.T) {
	st := &orderStore{Store: memory.New()}
	ops := inboundQoS2Writes(t, st)
	if !slices.Contains(ops, "batch append offline-sub inbound q2-pub 1") {
		t.Fatalf("store writes %v: want the delivery and the inbound identifier in one batch", ops)
	}
	for _, op := range ops {
		if op == "append offline-sub" || op == "inbound q2-pub 1" {
			t.Errorf("store writes %v: %q written on its own", ops, op)
		}
	}
}

// A retained QoS 2 message: its retained record is in the same write as
// its deliveries and identifier, not a write of its own that a crash could
// keep without the identifier (the resend would be retained and routed
// again).
func TestInboundQoS2RetainedInTheSameWrite(t *testing.T) {
	st := &orderStore{Store: memory.New()}
	b := runBroker(t, func() broker.Options { o := testOptions(); o.Store = st; return o }())
	sub, _ := connectOK(t, b.Addr, persistentConnect("offline-sub"))
	sub.sub("q2/#", 2)
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "offline-sub")
	pub, _ := connectOK(t, b.Addr, persistentConnect("q2-pub"))
	pub.publish("q2/r", "retained once", 2, true)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !slices.Contains(st.ops, "batch append offline-sub retained q2/r inbound q2-pub 1") {
		t.Fatalf("store writes %v: want the delivery, the retained record and the identifier in one batch", st.ops)
	}
}

// A store that cannot write a batch gets the identifier after the
// deliveries: a crash loses no acknowledged message.
func TestInboundQoS2StoredAfterItsDeliveries(t *testing.T) {
	st := &orderStore{Store: memory.New()}
	inboundQoS2Writes(t, &plainOrderStore{orderStore: st})
	app, in := st.index("append offline-sub"), st.index("inbound q2-pub 1")
	if app < 0 || in < 0 {
		t.Fatalf("store writes %v: want the delivery and the inbound identifier", st.ops)
	}
	if in < app {
		t.Errorf("inbound QoS 2 identifier stored before the delivery it guards: %v", st.ops)
	}
}

func inboundQoS2Writes(t *testing.T, st store.Store) []string {
	t.Helper()
	opts := testOptions()
	opts.Store = st
	b := runBroker(t, opts)

	sub, _ := connectOK(t, b.Addr, persistentConnect("offline-sub"))
	sub.sub("q2/#", 2)
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "offline-sub")

	pub, _ := connectOK(t, b.Addr, persistentConnect("q2-pub"))
	pub.publish("q2/a", "exactly once", 2, false)
	var os *orderStore
	switch s := st.(type) {
	case *orderStore:
		os = s
	case *plainOrderStore:
		os = s.orderStore
	}
	os.mu.Lock()
	defer os.mu.Unlock()
	return slices.Clone(os.ops)
}
