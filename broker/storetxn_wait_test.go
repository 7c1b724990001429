package broker_test

import (
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store/pebble"
)

// A QoS 2 message of a persistent publisher waiting for the cluster's
// synchronous Route must not hold back the deliveries of a persistent
// subscriber that has none of its deliveries: a message from another
// publisher to another topic reaches it while the Route waits (the store
// transaction is opened after the route, and a flusher waits only for the
// transactions holding deliveries of its own session) [MQTT-4.3.3-2].
func TestStoreTxnNotHeldAcrossClusterRoute(t *testing.T) {
	st, err := pebble.Open(t.TempDir(), pebble.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fc := newSlowCluster()
	o := testOptions()
	o.Store = st
	o.Cluster = syncOnlyCluster{fc}
	b := runBroker(t, o)
	sub, _ := v5ConnectOK(t, b.Addr, v5Persistent("tsub", true, 300))
	sub.v5Sub(0, packet.Subscription{Filter: "b/#", QoS: 1})
	pa, _ := v5ConnectOK(t, b.Addr, v5Persistent("tpa", true, 300))
	pa.send(&packet.Publish{Topic: "a/slow", Payload: []byte("a"), QoS: 2, PacketID: 1})
	time.Sleep(200 * time.Millisecond) // pa's read loop is in Route
	pb := v5Client(t, b, "tpb")
	pb.send(&packet.Publish{Topic: "b/x", Payload: []byte("b"), QoS: 0})
	p, err := sub.read(3 * time.Second)
	fc.gate("a/slow") <- nil
	if err != nil {
		t.Fatalf("the persistent subscriber got nothing within 3s (%v): its flusher waits for an unrelated QoS 2 message's cluster round trip", err)
	}
	if pp, ok := p.(*packet.Publish); !ok || pp.Topic != "b/x" {
		t.Fatalf("got %s, want the PUBLISH of b/x", describe(p))
	}
	if p, err := pa.read(3 * time.Second); err != nil {
		t.Fatalf("the QoS 2 publisher got no PUBREC once the cluster took its message: %v", err)
	} else if rec, ok := p.(*packet.Pubrec); !ok || rec.ReasonCode.IsError() {
		t.Fatalf("the QoS 2 publisher got %s, want PUBREC 0x00", describe(p))
	}
}
