package cluster_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/cluster"
	"github.com/gannet-mqtt/gannet/internal/gannettest/clustertest"
	"github.com/gannet-mqtt/gannet/packet"
)

// Session writes go behind (cluster/writer.go): while JetStream does not
// store a node's session writes (paused here, as a leader election would
// hold them),
//   - the node's checkpoint for that session stays below the messages
//     whose writes wait, so that a node taking the session over replays
//     them (for the node's other sessions it moves on); once stored, it
//     moves on, and the session resumes on another node with all of them;
//   - live delivery on that node goes on: a clean session there gets them,
//     and a persistent subscriber gets its QoS 1 messages at once;
//   - a QoS 2 PUBLISH to a persistent subscriber waits for its delivery's
//     write (its packet identifier): sent before, a node taking the
//     session over would send it again under another identifier, a
//     duplicate [MQTT-4.3.3-2];
//   - a QoS 2 PUBLISH from a persistent publisher gets PUBREC 0x80 when
//     its identifier cannot be stored in time (5.0 3.5.2.1), never a PUBREC
//     that no other node could honour [MQTT-4.3.3-10].
func TestSessionWritesBehind(t *testing.T) {
	t.Parallel() // waits on timers (checkpoints): overlap them
	// A cluster name of its own: NATS never routes it to the other test
	// clusters of this process (all "test"), whose nodes, if a route
	// port were reused, would hear its heartbeats stop and adopt its
	// sessions.
	ns, err := clustertest.Start(3, t.TempDir(), func(_ int, co *cluster.Options, _ *broker.Options) { co.Name = "durable" })
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*node, len(ns))
	for i, nd := range ns {
		nodes[i] = &node{name: nd.Name, cl: nd.Cluster, srv: nd.Server, addr: nd.Addr, done: nd.Done}
	}
	t.Cleanup(func() { closeNodes(nodes) })
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	// Offline persistent session on n2, an online persistent QoS 2
	// subscriber and a clean subscriber there too, a publisher on n1.
	off, offCh, _ := persistent(t, n2.addr, "wb-off")
	wait(t, "subscribe", off.Subscribe("wb/q1/#", 1, nil))
	on, onCh, _ := persistent(t, n2.addr, "wb-on")
	wait(t, "subscribe", on.Subscribe("wb/#", 2, nil))
	clean := pahoClient(t, n2.addr, "wb-clean", true)
	cleanCh := subscribe(t, clean, "wb/q1/#", 1)
	pub := pahoClient(t, n1.addr, "wb-pub", true)
	converge(t, pub, "wb/q1/probe", offCh)
	converge(t, pub, "wb/q1/probe", cleanCh)
	converge(t, pub, "wb/q1/probe", onCh)
	off.Disconnect(50)
	pub5, _ := paho5(t, n1.addr, &paho.Connect{ClientID: "wb-pub5", CleanStart: true, KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: ptr(uint32(300))}})
	time.Sleep(quiet)

	before, err := n1.cl.LastStored()
	if err != nil {
		t.Fatal(err)
	}
	resume2 := n2.cl.PauseSessionWrites()
	resumed2 := false
	defer func() {
		if !resumed2 {
			resume2()
		}
	}()
	for i := range 5 {
		wait(t, "publish", pub.Publish("wb/q1/x", 1, false, fmt.Sprint(i)))
	}
	// Live delivery goes on: the clean session, and the persistent
	// subscriber's QoS 1 messages (they wait for no write).
	if got := collect(t, cleanCh, 5); len(got) != 5 {
		t.Fatalf("clean subscriber on the node whose session writes wait: got %v, want 5 messages", got)
	}
	if got := collect(t, onCh, 5); len(got) != 5 {
		t.Fatalf("persistent subscriber, QoS 1: got %v, want 5 messages at once", got)
	}
	// A QoS 2 delivery to the persistent subscriber waits for its write.
	wait(t, "publish", pub.Publish("wb/q2/x", 2, false, "two"))
	select {
	case m := <-onCh:
		t.Fatalf("QoS 2 PUBLISH %q sent before its delivery's write was stored", m.Payload())
	case <-time.After(time.Second):
	}

	// A persistent publisher's QoS 2 identifier that cannot be stored in
	// time: PUBREC 0x80.
	resume1 := n1.cl.PauseSessionWrites()
	ctx, cancel := context.WithTimeout(context.Background(), 2*cluster.StoreTimeout)
	r, err := pub5.Publish(ctx, &paho.Publish{Topic: "wb/in/x", QoS: 2, Payload: []byte("in")})
	cancel()
	resume1()
	if err != nil || r == nil || r.ReasonCode != byte(packet.UnspecifiedError) {
		t.Fatalf("QoS 2 PUBLISH whose identifier could not be stored: got %#v, %v; want PUBREC 0x80 [MQTT-4.3.3-10]", r, err)
	}

	// The checkpoint of n2 stays below the messages whose writes wait,
	// though n2 applied them long ago.
	time.Sleep(cluster.ApplyGrace + 2*cluster.HeartbeatEvery)
	cp, ok := n2.cl.Checkpoint("wb-off")
	if !ok {
		t.Fatal("no checkpoint of n2")
	}
	if cp > before {
		t.Fatalf("checkpoint of n2 for the session is %d, past the messages from %d whose session writes were not stored", cp, before+1)
	}
	// Only that session's: the others' replays start where n2 applied.
	if other, _ := n2.cl.Checkpoint("wb-nobody"); other <= before {
		t.Errorf("checkpoint of n2 for other sessions is %d: held back by one session's writes", other)
	}
	// Under -race on a loaded machine n2's heartbeats can lag past
	// DeadAfter: another node then takes n2 for dead and adopts the
	// session, and n2 drops its writes (seen, rarely; the death
	// detection is cluster/wills.go's). The session must resume with
	// every message all the same, below.
	taken := n2.cl.PendingSessionWritesOf("wb-off") == 0
	if taken {
		t.Log("the offline session was taken from n2 meanwhile (a lagging heartbeat?)")
	}

	resumed2 = true
	resume2()
	// Its flusher gave up waiting after StoreTimeout and closed the
	// connection: the client resumes and gets the message.
	on.Disconnect(0)
	_, onCh2, _ := persistent(t, n2.addr, "wb-on")
	for m := range onCh2 {
		if m.Topic() == "wb/q2/x" {
			if string(m.Payload()) != "two" {
				t.Fatalf("got %q, want the QoS 2 message once its write was stored", m.Payload())
			}
			break
		}
	}
	last, err := n1.cl.LastStored()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * waitFor); !taken; {
		cp, _ = n2.cl.Checkpoint("wb-off")
		if cp >= last && n2.cl.PendingSessionWrites() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint of n2 stays at %d (want %d), %d writes pending, after JetStream stored them", cp, last, n2.cl.PendingSessionWrites())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The session resumes elsewhere with every message.
	_, ch3, present := persistent(t, n3.addr, "wb-off")
	if !present {
		t.Fatal("session present 0 on n3")
	}
	got := collect(t, ch3, 5)
	for i := range 5 {
		if got[fmt.Sprint("wb/q1/x ", i)] == 0 {
			t.Errorf("message %d not delivered after the session moved: got %v", i, got)
		}
	}
}

// A node that wins a client identifier but cannot read its session (the
// CONNECT refused: JetStream too slow while it elects a leader) keeps, for
// the node that loads the session next, where its replay must start: the
// messages published while no node held the session reach the client on a
// third node. Before, the third node replayed from the second node's
// checkpoint, which had passed those messages: lost.
func TestSessionReadFailsAfterClaim(t *testing.T) {
	t.Parallel()
	nodes := three(t)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	sub, ch, _ := persistent(t, n1.addr, "wbfail-sub")
	wait(t, "subscribe", sub.Subscribe("wbfail/#", 1, nil))
	pub := pahoClient(t, n3.addr, "wbfail-pub", true)
	converge(t, pub, "wbfail/probe", ch)
	sub.Disconnect(50)

	fail := make(chan struct{})
	n2.cl.FailLoads("wbfail-sub", func() bool {
		select {
		case <-fail:
			return false
		default:
			return true
		}
	})
	defer close(fail)
	r, ack := rawDialAny(t, n2.addr, &packet.Connect{Version: packet.V311, ClientID: "wbfail-sub", KeepAlive: 30})
	if ack.ReasonCode == packet.Success {
		t.Fatal("CONNECT accepted though the session could not be read")
	}
	r.nc.Close()
	for i := range 5 {
		wait(t, "publish", pub.Publish("wbfail/x", 1, false, fmt.Sprint(i)))
	}
	// n2's applied sequence passes them.
	time.Sleep(cluster.ApplyGrace + 2*cluster.HeartbeatEvery)
	_, ch3, present := persistent(t, n3.addr, "wbfail-sub")
	if !present {
		t.Fatal("session present 0 on n3")
	}
	got := collect(t, ch3, 5)
	for i := range 5 {
		if got[fmt.Sprint("wbfail/x ", i)] == 0 {
			t.Errorf("message %d, published while no node held the session, lost: got %v", i, got)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// rawDialAny is rawDial that returns whatever CONNACK comes.
func rawDialAny(t testing.TB, addr string, cp *packet.Connect) (*raw, *packet.Connack) {
	t.Helper()
	r := rawConn(t, addr, cp.Version)
	r.send(cp)
	ack, ok := r.read(2 * waitFor).(*packet.Connack)
	if !ok {
		t.Fatal("no CONNACK")
	}
	return r, &packet.Connack{SessionPresent: ack.SessionPresent, ReasonCode: ack.ReasonCode}
}

func rawConn(t testing.TB, addr string, version byte) *raw {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &raw{t: t, nc: nc, dec: &packet.Decoder{Version: version}}
}
