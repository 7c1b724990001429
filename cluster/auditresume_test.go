package cluster_test

import (
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// The audit resumes when its consumer stops delivering: a message lost
// on its live way to the subscriber's node is still read from the stream
// and delivered, once. The server pauses every audit consumer, which
// keeps it and its pull requests and delivers nothing, as one whose pull
// request was lost on a route going down does (the client library's
// heartbeat check does not fire while Next waits less than a heartbeat).
func TestAuditResumesWhenConsumerSilent(t *testing.T) {
	auditResumes(t, "auditpause", func(t *testing.T, n *node) (int, error) {
		return n.cl.PauseAuditConsumers(time.Minute)
	})
}

// The audit resumes after its consumer is deleted on the server (a
// leader change or a server restart can).
func TestAuditResumesAfterConsumerDeleted(t *testing.T) {
	auditResumes(t, "auditdel", func(t *testing.T, n *node) (int, error) {
		return n.cl.DeleteAuditConsumers()
	})
}

func auditResumes(t *testing.T, name string, breakAudit func(*testing.T, *node) (int, error)) {
	nodes := three(t)
	b := nodes[1]
	sub := pahoClient(t, b.addr, name+"-sub", true)
	ch := subscribe(t, sub, name+"/#", 1)
	pub := pahoClient(t, nodes[0].addr, name+"-pub", true)
	converge(t, pub, name+"/probe", ch)
	t.Cleanup(func() { b.cl.DropLive("", 0) })

	n, err := breakAudit(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if n < len(nodes) {
		t.Fatalf("%d audit consumers broken, want one per node at least (%d)", n, len(nodes))
	}
	filled := b.cl.Filled()
	b.cl.DropLive(name+"/x", 2)
	for i := range 3 {
		wait(t, "publish", pub.Publish(name+"/x", 1, false, fmt.Sprint(i)))
	}
	got := make(map[string]int)
	for range 3 {
		var m mqtt.Message
		select {
		case m = <-ch:
		case <-time.After(4 * waitFor):
			t.Fatalf("got %v of 3 messages after %v: the audit did not resume; the subscriber's node's audit filled %d (stream high %d)",
				got, 4*waitFor, b.cl.Filled()-filled, b.cl.StreamHigh())
		}
		got[string(m.Payload())]++
	}
	none(t, ch)
	for i := range 3 {
		if p := fmt.Sprint(i); got[p] != 1 {
			t.Fatalf("message %q arrived %d times, want once (got %v)", p, got[p], got)
		}
	}
	if d := b.cl.Filled() - filled; d != 2 {
		t.Fatalf("%d messages read from the stream, want the 2 dropped", d)
	}
}

// The audit resumes when its consumer is deleted and the client library
// cannot make it again: nats.go's ordered consumer makes its new consumer
// inside Next, retrying without end by default, so Next never returned,
// the audit's silence check never ran, and every message lost on its live
// way to the node stayed lost (TestQueueLimitAcrossNodes lost 14 of 250
// with no gap found, once). The audit bounds those tries, checks its
// silence while Next does not return, and makes a new consumer itself.
func TestAuditResumesWhenConsumerCannotBeMadeAgain(t *testing.T) {
	auditResumes(t, "auditreset", func(t *testing.T, n *node) (int, error) {
		return n.cl.BlockAuditResets()
	})
}
