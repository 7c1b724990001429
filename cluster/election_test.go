package cluster_test

import (
	"net"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// servedWithin bounds TestFailoverOfLeadersNode's failover. Without the
// change it cannot be met: nats-server's own election timeout is at least
// 4 s (raft.go minElectionTimeoutDefault) after the dead leader's last
// append entry, which comes after the moment the test measures from. With
// cluster.DefaultElectionTimeout new leaders come 1.5 to 2.25 s after it,
// about 3 s at worst after a refused vote (the refusing follower then
// campaigns within 0.8 s); then a claim and a publish, in milliseconds.
// Measured: 1.8 to 2.4 s (-race, loaded 2-core machine).
const servedWithin = 3900 * time.Millisecond

// A kill -9 of the node that leads the owners bucket, the sessions bucket
// and the messages stream (what a CONNECT and a QoS 1 publish write) stops
// CONNECTs and QoS 1 publishes only until the survivors elect new
// leaders: a persistent client of the dead node reconnects to a survivor
// and receives there a QoS 1 message published on the third node within
// servedWithin of the dead node's last write to those groups (issue 12:
// failover under 5 s). With nats-server's election timeout (4 to 9 s after
// the leader's last append entry, not configurable but by
// cluster.Options.ElectionTimeout, election.go) no claim can be written
// for at least 4 s.
//
// The node is cut off from the others by the proxies of its routes, which
// close its connections as a kill would (the survivors see the routes
// close, and with them the dead leader's interest in the streams'
// subjects). It does not lead the JetStream meta group (the CONNECT's
// session read does without one; TestConnectWithoutMetaLeader).
func TestFailoverOfLeadersNode(t *testing.T) {
	t.Parallel()
	pc := startProxied(t)
	m := -1
	eventually(t, "a meta leader", func() bool {
		for i, nd := range pc.nodes {
			if nd.cl.IsMetaLeader() {
				m = i
				return true
			}
		}
		return false
	})
	vi := (m + 1) % 3
	victim, to, from := pc.nodes[vi], pc.nodes[(vi+1)%3], pc.nodes[(vi+2)%3]
	id := gannettest.ID("failover-leader")
	sub := pahoClient(t, victim.addr, id, false)
	subscribe(t, sub, "failover/leader/#", 1)
	sub.Disconnect(0)
	eventually(t, "the session stored", func() bool { ok, _ := to.cl.StoredSession(id); return ok })
	eventually(t, victim.name+" leads every stream and bucket, the others' replicas current", func() bool {
		victim.cl.LeadAll()
		time.Sleep(200 * time.Millisecond)
		return victim.cl.LeadsAll() && !victim.cl.IsMetaLeader() && to.cl.StreamsCurrent() && from.cl.StreamsCurrent()
	})
	pub := gannettest.Dial(t, from.addr, packet.V5)
	pub.ConnectOK(gannettest.Connect5(id + "-pub"))

	// The dead node's last writes: the client's claim (owners bucket),
	// its session (sessions bucket) and a QoS 1 message (messages
	// stream), each an append entry from the leader that re-arms its
	// followers' election timers. Everything is measured from before
	// them.
	last := time.Now()
	on := gannettest.Dial(t, victim.addr, packet.V311)
	on.ConnectOK(&packet.Connect{Version: packet.V311, ClientID: id, KeepAlive: 60})
	if rc := pub.Pub("failover/warm", "warm", 1, false); rc != packet.Success {
		t.Fatalf("QoS 1 publish before the cut: %s", rc)
	}
	pc.isolate(vi, true)
	cut := time.Now()

	// The client reconnects to a survivor until a CONNACK accepts it.
	var c *gannettest.Conn
	for attempt := 1; ; attempt++ {
		if time.Since(cut) > 2*waitFor {
			t.Fatalf("%s is not accepted on %s %v after %s was cut off (%d attempts)", id, to.name, time.Since(cut), victim.name, attempt)
		}
		nc, err := net.Dial("tcp", to.addr)
		if err != nil {
			t.Fatal(err)
		}
		c = gannettest.NewConn(t, nc, packet.V311)
		c.Send(&packet.Connect{Version: packet.V311, ClientID: id, KeepAlive: 60})
		p, err := c.Read(2 * waitFor)
		if ack, ok := p.(*packet.Connack); err == nil && ok && ack.ReasonCode == packet.Success {
			if !ack.SessionPresent {
				t.Fatalf("%s reconnected to %s without its session", id, to.name)
			}
			break
		}
		nc.Close()
		time.Sleep(20 * time.Millisecond)
	}
	connected := time.Since(last)

	// A QoS 1 message published on the third node reaches it.
	for {
		rc := pub.Pub("failover/leader/x", "after", 1, false)
		if rc == packet.Success {
			break
		}
		if time.Since(cut) > 2*waitFor {
			t.Fatalf("QoS 1 publishes on %s still refused (%s) %v after %s was cut off", from.name, rc, time.Since(cut), victim.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		p, err := c.Read(2 * waitFor)
		if err != nil {
			t.Fatalf("%s received no QoS 1 message on %s after %s was cut off: %v", id, to.name, victim.name, err)
		}
		if msg, ok := p.(*packet.Publish); ok && msg.Topic == "failover/leader/x" {
			break
		}
	}
	served := time.Since(last)
	t.Logf("%s led the owners and sessions buckets and the messages stream: its client connected on %s %v and was served %v after its last writes (cut %v after them)",
		victim.name, to.name, connected, served, cut.Sub(last))
	if served >= servedWithin {
		t.Errorf("%s's client was served on %s %v after its node's last writes, want under %v: the survivors elected new leaders too late",
			id, to.name, served, servedWithin)
	}
}
