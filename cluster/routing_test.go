package cluster_test

import (
	"fmt"
	"testing"
)

// A PUBLISH on one node reaches the subscribers of another, in order per
// publisher and topic [MQTT-4.6.0-5], at the subscription's QoS.
func TestCrossNodeRouting(t *testing.T) {
	nodes := three(t)
	sub := pahoClient(t, nodes[1].addr, "route-sub", true)
	ch := subscribe(t, sub, "route/+/c", 1)
	pub := pahoClient(t, nodes[0].addr, "route-pub", true)
	converge(t, pub, "route/p/c", ch)
	for i := range 50 {
		qos := byte(i % 3)
		wait(t, "publish", pub.Publish("route/x/c", qos, false, fmt.Sprint(i)))
	}
	for i := range 50 {
		m := next(t, ch)
		if string(m.Payload()) != fmt.Sprint(i) || m.Topic() != "route/x/c" {
			t.Fatalf("message %d: %q on %q", i, m.Payload(), m.Topic())
		}
		if want := min(byte(i%3), 1); m.Qos() != want {
			t.Fatalf("message %d at QoS %d, want %d", i, m.Qos(), want)
		}
	}
	none(t, ch)
}
