package cluster_test

import (
	"net"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// electedWithin bounds how long after the dead leader's last writes the
// survivors of TestFailoverOfLeadersNode have new leaders of the owners
// bucket and the messages stream. Without the change it cannot be met:
// nats-server's own election timeout is at least 4 s (raft.go
// minElectionTimeoutDefault) after the leader's last append entry, which
// comes after the moment the test measures from. With
// cluster.DefaultElectionTimeout new leaders come 1.5 to 2.25 s after it,
// about 3 s at worst after a refused vote (the refusing follower then
// campaigns within 0.8 s). Measured: 1.5 to 2.3 s (-race, loaded 2-core
// machine).
const electedWithin = 3900 * time.Millisecond

// A kill -9 of the node that leads the owners bucket, the sessions bucket
// and the messages stream (what a CONNECT and a QoS 1 publish write) stops
// CONNECTs and QoS 1 publishes only until the survivors elect new
// leaders, which they do within electedWithin of the dead node's last
// writes to those groups (nats-server's own election timeout: 4 to 9 s
// after them; cluster.Options.ElectionTimeout, election.go); a persistent
// client of the dead node then reconnects to a survivor and receives
// there a QoS 1 message published on the third node (issue 12: failover
// under 5 s; how long that takes is logged, as the claim's own waits on a
// loaded machine are not this test's to bound).
//
// The node is cut off from the others by the proxies of its routes, which
// close its connections as a kill would (the survivors see the routes
// close, and with them the dead leader's interest in the streams'
// subjects). It does not lead the JetStream meta group (the CONNECT's
// session read does without one; TestConnectWithoutMetaLeader).
func TestFailoverOfLeadersNode(t *testing.T) {
	t.Parallel()
	pc := startProxied(t)
	m := metaLeaderIndex(t, pc.nodes)
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
	if !victim.cl.Leads("owners") || !victim.cl.Leads("messages") {
		t.Fatalf("%s no longer led the owners bucket and the messages stream when it was cut off", victim.name)
	}
	// When a survivor leads each group, as its NATS server knows it.
	groups := []string{"owners", "messages"}
	elected := make(chan []time.Duration, 1)
	quit, ended := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(quit); <-ended }) // before the nodes close
	go func() {
		defer close(ended)
		at := make([]time.Duration, len(groups))
		for n := 0; n < len(groups) && time.Since(cut) < 2*waitFor; {
			select {
			case <-quit:
				return
			default:
			}
			for i, g := range groups {
				if at[i] == 0 && (to.cl.Leads(g) || from.cl.Leads(g)) {
					at[i] = time.Since(last)
					n++
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		elected <- at
	}()

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

	// QoS 1 messages published on the third node reach it (more than one:
	// the first may be on its way before the third node knows the
	// subscription resumed on the survivor).
	served := time.Duration(0)
	for served == 0 {
		if time.Since(cut) > 4*waitFor {
			t.Fatalf("%s received no QoS 1 message on %s %v after %s was cut off", id, to.name, time.Since(cut), victim.name)
		}
		if rc := pub.Pub("failover/leader/x", "after", 1, false); rc != packet.Success {
			time.Sleep(20 * time.Millisecond) // refused: not stored yet
			continue
		}
		for {
			p, err := c.Read(100 * time.Millisecond)
			if err != nil {
				break // none yet: publish again
			}
			if msg, ok := p.(*packet.Publish); ok && msg.Topic == "failover/leader/x" {
				served = time.Since(last)
				break
			}
		}
	}
	at := <-elected
	t.Logf("%s led the owners and sessions buckets and the messages stream; after its last writes (cut %v after them): new owners leader %v, new messages leader %v; its client connected on %s %v, was served %v",
		victim.name, cut.Sub(last), at[0], at[1], to.name, connected, served)
	for i, g := range groups {
		if at[i] == 0 || at[i] >= electedWithin {
			t.Errorf("the survivors had no new leader of the %s group within %v of %s's last writes (%v): they elected it too late",
				g, electedWithin, victim.name, at[i])
		}
	}
}
