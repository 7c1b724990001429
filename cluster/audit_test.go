package cluster_test

import (
	"fmt"
	"testing"
)

// A QoS 1 or 2 message that core NATS loses on its way to a node with a
// matching subscription (a route down, interest not propagated yet, a
// slow consumer) is still delivered there, once: the node's audit of the
// messages stream sees it stored and not arrived, and reads it from the
// stream. The test makes the subscriber's node drop live messages, as a
// lossy route would.
func TestLostLiveMessageFilled(t *testing.T) {
	nodes := three(t)
	b := nodes[1]
	sub := pahoClient(t, b.addr, "gapfill-sub", true)
	ch := subscribe(t, sub, "gapfill/#", 2)
	pub := pahoClient(t, nodes[0].addr, "gapfill-pub", true)
	converge(t, pub, "gapfill/probe", ch)
	t.Cleanup(func() { b.cl.DropLive("", 0) })
	filled := b.cl.Filled()

	// The first of three, at QoS 1, then at QoS 2 (exactly once).
	for _, qos := range []byte{1, 2} {
		b.cl.DropLive("gapfill/x", 1)
		for i := range 3 {
			wait(t, "publish", pub.Publish("gapfill/x", qos, false, fmt.Sprintf("%d-%d", qos, i)))
		}
		got := make(map[string]int)
		for range 3 {
			m := next(t, ch)
			got[string(m.Payload())]++
		}
		none(t, ch)
		for i := range 3 {
			if p := fmt.Sprintf("%d-%d", qos, i); got[p] != 1 {
				t.Fatalf("QoS %d: message %q arrived %d times, want once (got %v)", qos, p, got[p], got)
			}
		}
	}
	if n := b.cl.Filled() - filled; n != 2 {
		t.Fatalf("%d messages read from the stream, want the 2 dropped", n)
	}
	// The checkpoint passes the filled messages.
	applied := b.cl.Applied()
	wait(t, "publish", pub.Publish("gapfill/y", 1, false, "after"))
	next(t, ch)
	eventually(t, "the checkpoint to advance", func() bool { return b.cl.Applied() > applied })
}

// A live message that arrives while an earlier message of its topic is
// still to be read from the stream waits for it: the subscriber gets them
// in order [MQTT-4.6.0-5].
func TestFilledMessageKeepsOrder(t *testing.T) {
	nodes := three(t)
	b := nodes[1]
	sub := pahoClient(t, b.addr, "gaporder-sub", true)
	ch := subscribe(t, sub, "gaporder/#", 1)
	pub := pahoClient(t, nodes[0].addr, "gaporder-pub", true)
	converge(t, pub, "gaporder/probe", ch)
	t.Cleanup(func() { b.cl.DropLive("", 0) })

	b.cl.DropLive("gaporder/x", 1)
	gaps := b.cl.GapsFound()
	wait(t, "publish", pub.Publish("gaporder/x", 1, false, "first"))
	// The audit has seen the first message stored and not arrived: it
	// will read it from the stream after FillGrace.
	eventually(t, "the audit to see the lost message", func() bool { return b.cl.GapsFound() > gaps })
	wait(t, "publish", pub.Publish("gaporder/x", 1, false, "second"))
	for _, want := range []string{"first", "second"} {
		if m := next(t, ch); string(m.Payload()) != want {
			t.Fatalf("got %q, want %q: the message read from the stream came after a later one", m.Payload(), want)
		}
	}
	none(t, ch)
}
