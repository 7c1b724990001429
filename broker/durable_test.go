package broker_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

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

func (s *orderStore) index(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Index(s.ops, op)
}

// The identifier of an inbound QoS 2 message is stored after the
// deliveries it guards: a crash that keeps the identifier but not the
// deliveries would make the broker answer the publisher's resent PUBLISH
// with PUBREC as a duplicate and deliver it to no one [MQTT-4.3.3-10]:
// an acknowledged message lost.
func TestInboundQoS2StoredAfterItsDeliveries(t *testing.T) {
	st := &orderStore{Store: memory.New()}
	opts := testOptions()
	opts.Store = st
	b := runBroker(t, opts)

	sub, _ := connectOK(t, b.Addr, persistentConnect("offline-sub"))
	sub.sub("q2/#", 2)
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "offline-sub")

	pub, _ := connectOK(t, b.Addr, persistentConnect("q2-pub"))
	pub.publish("q2/a", "exactly once", 2, false)

	app, in := st.index("append offline-sub"), st.index("inbound q2-pub 1")
	if app < 0 || in < 0 {
		t.Fatalf("store writes %v: want the delivery and the inbound identifier", st.ops)
	}
	if in < app {
		t.Errorf("inbound QoS 2 identifier stored before the delivery it guards: %v", st.ops)
	}
}
