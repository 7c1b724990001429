package cluster_test

import (
	"testing"
)

// Retained messages are cluster-wide: once the publisher has its PUBACK, a
// SUBSCRIBE on any other node gets the message [MQTT-3.3.1-6]; deleting it
// (empty payload [MQTT-3.3.1-10]) is cluster-wide too.
func TestRetainedClusterWide(t *testing.T) {
	nodes := three(t)
	pub := pahoClient(t, nodes[0].addr, "ret-pub", true)
	wait(t, "publish retained", pub.Publish("ret/a", 1, true, "kept"))
	for i, nd := range nodes[1:] {
		c := pahoClient(t, nd.addr, "ret-sub"+string(rune('1'+i)), true)
		m := next(t, subscribe(t, c, "ret/+", 1))
		if string(m.Payload()) != "kept" || !m.Retained() {
			t.Fatalf("node %s: got %q retained=%v", nd.name, m.Payload(), m.Retained())
		}
	}
	wait(t, "delete retained", pub.Publish("ret/a", 1, true, ""))
	c := pahoClient(t, nodes[2].addr, "ret-late", true)
	none(t, subscribe(t, c, "ret/#", 1))
}
