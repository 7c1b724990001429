package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// A persistent session whose node dies (kill -9: its NATS cut off at once)
// is not lost: a survivor adopts it, its subscriptions go on receiving, and
// its client, reconnecting to a survivor, gets every QoS 1 and QoS 2
// message acknowledged to a publisher on another node, before, during and
// after the death: QoS 1 at least once, QoS 2 exactly once
// [MQTT-4.3.2-1] [MQTT-4.3.3-1]. The messages a member of a shared group
// held unacknowledged on that node go to another member [MQTT-4.8.2-5].
// It was run only with GANNET_LONG=1 while it failed in some runs: one
// acknowledged QoS 2 message lost ("dead/q2/x 21", not reproduced in 20
// runs since), or the shared messages never given to member B (1 run in
// 10: the survivors decided apart whether the node was gone, now once,
// adoptIfGone). 10 runs of 10 pass with -race since.
func TestSessionOfDeadNode(t *testing.T) {
	t.Parallel() // waits on timers (heartbeats, checkpoints): overlap them
	t0 := time.Now()
	nodes, err := startNodes(t, 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("formed in %v", time.Since(t0))
	t.Cleanup(func() { discardNodes(nodes) })
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	sub, ch, _ := persistent(t, n3.addr, "dead-sub")
	wait(t, "subscribe", sub.Subscribe("dead/q1/#", 1, nil))
	wait(t, "subscribe", sub.Subscribe("dead/q2/#", 2, nil))
	converge(t, pahoClient(t, n1.addr, "dead-probe", true), "dead/q1/probe", ch)

	pub, _ := paho5(t, n1.addr, &paho.Connect{ClientID: "dead-pub", CleanStart: true, KeepAlive: 30})

	// Two members of a shared group with clean sessions: one on the node
	// that dies, which never acknowledges, one on a survivor.
	memberA, _ := rawDial(t, n3.addr, &packet.Connect{Version: packet.V311, ClientID: "dead-share-a", CleanStart: true, KeepAlive: 60})
	memberA.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "$share/dg/dshare/#", QoS: 1}}})
	if _, ok := memberA.read(waitFor).(*packet.Suback); !ok {
		t.Fatal("no SUBACK")
	}
	memberB := pahoClient(t, n1.addr, "dead-share-b", true)
	shared := subscribe(t, memberB, "$share/dg/dshare/#", 1)
	probe := pahoClient(t, n2.addr, "dead-share-probe", true)
	for seenA, seenB, start := false, false, time.Now(); !seenA || !seenB; {
		if time.Since(start) > waitFor {
			t.Fatal("the shared subscriptions never reached the publisher's node")
		}
		wait(t, "probe", probe.Publish("dshare/probe", 0, false, "p"))
		if _, ok := memberA.read(20 * time.Millisecond).(*packet.Publish); ok {
			seenA = true
		}
		select {
		case <-shared:
			seenB = true
		default:
		}
	}
	time.Sleep(quiet)
	for memberA.read(quiet) != nil {
	}
	for len(shared) > 0 {
		<-shared
	}
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		if _, err := pub.Publish(ctx, &paho.Publish{Topic: "dshare/x", QoS: 1, Payload: []byte(fmt.Sprint("s", i))}); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	heldA := 0 // never acknowledged by member A
	for memberA.read(quiet) != nil {
		heldA++
	}
	t.Logf("member A, on the node that dies, holds %d of 20 shared messages", heldA)
	var (
		mu    sync.Mutex
		acked = make(map[string]byte) // "topic payload" → QoS
		i     int
	)
	publish := func(n int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for got := 0; got < n && time.Now().Before(deadline); i++ {
			qos := byte(1 + i%2)
			tp := fmt.Sprintf("dead/q%d/x", qos)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			r, err := pub.Publish(ctx, &paho.Publish{Topic: tp, QoS: qos, Payload: []byte(fmt.Sprint(i))})
			cancel()
			if err == nil && (r == nil || r.ReasonCode < 0x80) {
				mu.Lock()
				acked[tp+" "+fmt.Sprint(i)] = qos
				mu.Unlock()
				got++
			}
		}
	}
	publish(20, waitFor) // delivered live on the node that dies
	live := collect(t, ch, 20)
	time.Sleep(quiet) // the QoS 2 flows complete
	sub.Disconnect(0)
	publish(10, waitFor) // queued there
	tDeath := time.Now()
	n3.cl.Crash()
	publish(20, 3*waitFor) // acknowledged while it is dead
	var adopter *node
	for adopter == nil {
		for _, nd := range []*node{n1, n2} {
			if n, _ := nd.cl.Adopted(); n > 0 {
				adopter = nd
			}
		}
		if time.Since(tDeath) > 3*waitFor {
			t.Fatal("no survivor adopted the dead node's session")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, took := adopter.cl.Adopted()
	t.Logf("%s adopted the session %v after the death (the adoption took %v, then the replay)", adopter.name, time.Since(tDeath), took)
	publish(10, waitFor) // to the adopted session

	// The shared messages member A held went to member B.
	gotShared := make(map[string]bool)
	for len(gotShared) < 20 {
		select {
		case m := <-shared:
			gotShared[string(m.Payload())] = true
		case <-time.After(2 * waitFor):
			t.Fatalf("shared group: %d of 20 messages reached a live member after member A's node died", len(gotShared))
		}
	}

	other := n1
	if adopter == n1 {
		other = n2
	}
	_, ch2, present := persistent(t, other.addr, "dead-sub")
	if !present {
		t.Fatal("session present 0 on a survivor: the dead node's session is lost")
	}
	got := make(map[string]int)
	missing := func() int {
		n := 0
		for k := range acked {
			if live[k]+got[k] == 0 {
				n++
			}
		}
		return n
	}
	for missing() > 0 {
		select {
		case m := <-ch2:
			k := m.Topic() + " " + string(m.Payload())
			if m.Duplicate() && live[k] > 0 {
				// An unfinished flow sent again with its identifier: a
				// client that kept its state (this paho does not, across
				// instances) would not deliver it again [MQTT-4.3.3-9].
				continue
			}
			got[k]++
		case <-time.After(2 * waitFor):
			t.Errorf("%d acknowledged messages not delivered", missing())
			goto check
		}
	}
	time.Sleep(quiet) // nothing more once every replay is over
	for len(ch2) > 0 {
		m := <-ch2
		got[m.Topic()+" "+string(m.Payload())]++
	}
check:
	for k, qos := range acked {
		switch n := live[k] + got[k]; {
		case n == 0:
			t.Errorf("acknowledged QoS %d message %q never delivered", qos, k)
		case n > 1 && qos == 2:
			t.Errorf("QoS 2 message %q delivered %d times", k, n)
		}
	}
	t.Logf("%d acknowledged messages, all delivered after the death of the subscriber's node", len(acked))
}
