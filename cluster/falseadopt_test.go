package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/cluster"
)

// A node whose heartbeats stop arriving (the nodes bucket electing a
// leader after a kill, or the node too slow to write it within a second)
// but which is still on NATS keeps its sessions: no survivor adopts them.
// Adopting them took a live connection's session from under it, and a
// QoS 2 message acknowledged on the old node between the two owners was
// lost (issue 12, the crash test). One owner per client identifier
// [MQTT-3.1.4-3]; exactly once [MQTT-4.3.3-1].
func TestLiveNodeWithoutHeartbeatKeepsItsSessions(t *testing.T) {
	t.Parallel() // waits on the heartbeats' timers
	nodes, err := startNodes(t, 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { discardNodes(nodes) })
	n1, n2 := nodes[0], nodes[1]

	sub, msgs, disc := paho5d(t, n1.addr, &paho.Connect{ClientID: "fa-sub", CleanStart: true, KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(600)}})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "fa/#", QoS: 2}}}); err != nil {
		t.Fatal(err)
	}
	pub, _ := paho5(t, n2.addr, &paho.Connect{ClientID: "fa-pub", CleanStart: true, KeepAlive: 30})
	publish := func(payload string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		r, err := pub.Publish(ctx, &paho.Publish{Topic: "fa/x", QoS: 2, Payload: []byte(payload)})
		if err != nil || r != nil && r.ReasonCode >= 0x80 {
			t.Fatalf("QoS 2 publish %s not acknowledged: %v %v", payload, r, err)
		}
	}
	// The subscription reaches n2 live.
	probeUntil(t, func() { publish("probe") }, msgs)
	for len(msgs) > 0 {
		<-msgs
	}

	// n1's heartbeats are lost for more than twice DeadAfter (its entry
	// expires from the bucket after DeadAfter); n1 itself goes on.
	resume := n1.cl.LoseHeartbeats()
	received := make(map[string]int)
	sent := 0
	for end := time.Now().Add(2*cluster.DeadAfter + 2*time.Second); time.Now().Before(end); sent++ {
		publish(fmt.Sprint(sent))
		time.Sleep(50 * time.Millisecond)
	drain:
		for {
			select {
			case m := <-msgs:
				received[string(m.Payload)]++
			default:
				break drain
			}
		}
	}
	resume()
	select {
	case d := <-disc:
		t.Fatalf("the live node's client was disconnected (reason 0x%02x): its session was taken by another node", byte(d.ReasonCode))
	default:
	}
	if o, err := n1.cl.Owner("fa-sub"); err != nil || o != n1.cl.Origin() {
		t.Fatalf("fa-sub owned by %q (%v), not by the live node %q", o, err, n1.cl.Origin())
	}
	for _, nd := range nodes[1:] {
		if n, _ := nd.cl.Adopted(); n > 0 {
			t.Fatalf("%s adopted %d sessions of a live node", nd.name, n)
		}
	}
	collect := func(msgs chan *paho.Publish) {
		for deadline := time.Now().Add(2 * waitFor); len(received) < sent && time.Now().Before(deadline); {
			select {
			case m := <-msgs:
				if m.Duplicate() && received[string(m.Payload)] > 0 {
					// An unfinished flow sent again with its identifier:
					// a client that kept its state (a new paho instance
					// does not) would not deliver it again [MQTT-4.3.3-9].
					continue
				}
				received[string(m.Payload)]++
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	collect(msgs)
	if len(received) < sent {
		// Its connection may have been closed meanwhile (session writes
		// not stored in time on a loaded machine): the session, still
		// on n1, gives the rest on resuming there.
		_, msgs2 := paho5(t, n1.addr, &paho.Connect{ClientID: "fa-sub", CleanStart: false, KeepAlive: 30,
			Properties: &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(600)}})
		collect(msgs2)
	}
	for i := range sent {
		if n := received[fmt.Sprint(i)]; n != 1 {
			t.Errorf("acknowledged QoS 2 message %d delivered %d times", i, n)
		}
	}
}
