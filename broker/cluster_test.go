package broker_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// fakeCluster is an in-memory broker.Cluster: it records what the broker
// routes and counts its subscriptions per filter.
type fakeCluster struct {
	mu      sync.Mutex
	in      broker.Inbound
	routed  []*packet.Publish
	filters map[string]int
	refuse  error
	closed  bool
}

func (f *fakeCluster) Start(in broker.Inbound) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.in = in
	return nil
}

func (f *fakeCluster) Route(p *packet.Publish) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return f.refuse
	}
	f.routed = append(f.routed, p.Clone())
	return nil
}

func (f *fakeCluster) Subscribe(filter string)   { f.count(filter, 1) }
func (f *fakeCluster) Unsubscribe(filter string) { f.count(filter, -1) }

func (f *fakeCluster) count(filter string, d int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.filters == nil {
		f.filters = make(map[string]int)
	}
	f.filters[filter] += d
	if f.filters[filter] == 0 {
		delete(f.filters, filter)
	}
}

func (f *fakeCluster) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeCluster) interest(filter string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.filters[filter]
}

func (f *fakeCluster) routedTopics() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ts []string
	for _, p := range f.routed {
		ts = append(ts, p.Topic)
	}
	return ts
}

func runClustered(t *testing.T) (*testBroker, *fakeCluster) {
	t.Helper()
	fc := &fakeCluster{}
	o := testOptions()
	o.Cluster = fc
	return runBroker(t, o), fc
}

// The cluster counts this node's subscriptions per filter: one per session,
// none again for a repeated SUBSCRIBE, back to zero when they go.
func TestClusterSeamCountsSubscriptions(t *testing.T) {
	b, fc := runClustered(t)
	a := client(t, b, "a")
	a.sub("x/+", 1)
	a.sub("x/+", 0) // replaces [MQTT-3.8.4-3]: not one more
	c := client(t, b, "c")
	c.sub("x/+", 1)
	c.sub("$share/g/x/#", 1)
	if n := fc.interest("x/+"); n != 2 {
		t.Fatalf("interest in x/+ = %d, want 2", n)
	}
	if n := fc.interest("$share/g/x/#"); n != 1 {
		t.Fatalf("interest in $share/g/x/# = %d, want 1", n)
	}
	a.send(&packet.Unsubscribe{PacketID: a.id(), Filters: []string{"x/+"}})
	expectPacket[*packet.Unsuback](a)
	if n := fc.interest("x/+"); n != 1 {
		t.Fatalf("after UNSUBSCRIBE: interest in x/+ = %d, want 1", n)
	}
	c.send(&packet.Disconnect{})
	eventually(t, "the ended session's filters to go", func() bool {
		return fc.interest("x/+") == 0 && fc.interest("$share/g/x/#") == 0
	})
}

// Every message published here goes to the cluster, $SYS excepted; what the
// cluster delivers reaches local subscribers; shared members get only what
// the cluster hands their group.
func TestClusterSeamRoutesAndDelivers(t *testing.T) {
	b, fc := runClustered(t)
	sub := client(t, b, "sub")
	sub.sub("t/#", 1)
	sh := client(t, b, "sh")
	sh.sub("$share/g/t/#", 1)
	pub := client(t, b, "pub")
	pub.publish("t/1", "local", 1, false)
	sub.expectPublish("t/1", "local")
	if err := b.Publish("$SYS/x", []byte("n"), 0, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "t/1 routed", func() bool { return len(fc.routedTopics()) == 1 })
	if got := fc.routedTopics(); got[0] != "t/1" {
		t.Fatalf("routed %q, want [t/1]", got)
	}
	fc.in.Deliver(&packet.Publish{Topic: "t/2", Payload: []byte("remote"), QoS: 1}, "", "")
	sub.expectPublish("t/2", "remote")
	fc.in.Deliver(&packet.Publish{Topic: "t/3", Payload: []byte("shared"), QoS: 1}, "g", "$share/g/t/#")
	sh.expectPublish("t/3", "shared") // and not t/1 nor t/2 before it
	fc.in.Retain(&packet.Publish{Topic: "t/r", Payload: []byte("kept"), QoS: 0, Retain: true})
	late := client(t, b, "late")
	late.sub("t/r", 0)
	late.expectPublish("t/r", "kept")
	b.Close()
	if !fc.closed {
		t.Fatal("Close did not close the cluster")
	}
}

// A message the cluster refuses is not acknowledged: 5.0 gets 0x80 in its
// PUBACK, 3.1.1 is disconnected.
func TestClusterSeamRefusal(t *testing.T) {
	b, fc := runClustered(t)
	fc.refuse = errors.New("no quorum")
	v5 := v5Client(t, b, "v5")
	v5.send(&packet.Publish{Topic: "q", Payload: []byte("x"), QoS: 1, PacketID: 7})
	if ack := expectPacket[*packet.Puback](v5); ack.ReasonCode != packet.UnspecifiedError {
		t.Fatalf("PUBACK %#x, want 0x80", byte(ack.ReasonCode))
	}
	// A retained QoS 0 message the cluster cannot store is dropped: the
	// connection stays.
	old := client(t, b, "old")
	old.send(&packet.Publish{Topic: "q", Payload: []byte("x"), Retain: true})
	old.sync()
	old.send(&packet.Publish{Topic: "q", Payload: []byte("x"), QoS: 1, PacketID: 7})
	old.expectClosed(waitFor)
}
