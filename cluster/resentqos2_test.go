package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// A QoS 2 message stored by the publisher's node, which died before the
// record of its packet identifier was stored (so before PUBREC), is
// resent by its publisher (DUP) to another node: that node answers PUBREC
// and does not route it again. Subscribers get it exactly once
// [MQTT-4.3.3-1] [MQTT-4.3.3-10], where the resend was routed a second
// time (issue 12, the crash test's known kind of QoS 2 duplicate).
func TestResentQoS2OfDeadNodeOnce(t *testing.T) {
	t.Parallel() // waits on elections after the crash
	nodes, err := startNodes(t, 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { discardNodes(nodes) })
	n1, n2 := nodes[0], nodes[1]

	sub, msgs := paho5(t, n2.addr, &paho.Connect{ClientID: "rq2-sub", CleanStart: true, KeepAlive: 30})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "rq2/#", QoS: 2}}}); err != nil {
		t.Fatal(err)
	}
	persistentV5 := func(addr string, clean bool) (*raw, *packet.Connack) {
		cp := &packet.Connect{Version: packet.V5, ClientID: "rq2-pub", CleanStart: clean, KeepAlive: 60}
		cp.Properties.SetUint(packet.PropSessionExpiry, 600)
		return rawDialAny(t, addr, cp)
	}
	pub, ack := persistentV5(n1.addr, true)
	if ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK 0x%02x", byte(ack.ReasonCode))
	}
	// The subscription reaches n1 live.
	probeUntil(t, func() { pub.send(&packet.Publish{Topic: "rq2/probe", Payload: []byte("probe")}) }, msgs)
	time.Sleep(quiet)
	for len(msgs) > 0 {
		<-msgs
	}

	// n1 stores the message and routes it, but cannot store the record of
	// its identifier before it dies: no PUBREC.
	resume := n1.cl.PauseSessionWrites()
	t.Cleanup(resume)
	pub.send(&packet.Publish{Topic: "rq2/x", QoS: 2, PacketID: 7, Payload: []byte("once")})
	select {
	case m := <-msgs:
		if string(m.Payload) != "once" {
			t.Fatalf("got %q", m.Payload)
		}
	case <-time.After(2 * waitFor):
		t.Fatal("the QoS 2 message never reached the subscriber")
	}
	if p := pub.read(quiet); p != nil {
		t.Fatalf("%T before the identifier was stored", p)
	}
	n1.cl.Crash()

	// The publisher resends it on a survivor, as its session says.
	var pub2 *raw
	for deadline := time.Now().Add(3 * waitFor); ; {
		r, ack := persistentV5(n2.addr, false)
		if ack.ReasonCode == packet.Success {
			if !ack.SessionPresent {
				t.Fatal("session present 0: the publisher's session is lost")
			}
			pub2 = r
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the publisher cannot resume its session on a survivor: CONNACK 0x%02x", byte(ack.ReasonCode))
		}
		time.Sleep(200 * time.Millisecond)
	}
	pub2.send(&packet.Publish{Topic: "rq2/x", QoS: 2, PacketID: 7, Dup: true, Payload: []byte("once")})
	rec, ok := pub2.read(2 * waitFor).(*packet.Pubrec)
	if !ok || rec.PacketID != 7 || rec.ReasonCode >= 0x80 {
		t.Fatalf("resent QoS 2 PUBLISH: want PUBREC 7, got %#v", rec)
	}
	pub2.send(&packet.Pubrel{PacketID: 7})
	if comp, ok := pub2.read(2 * waitFor).(*packet.Pubcomp); !ok || comp.PacketID != 7 {
		t.Fatalf("want PUBCOMP 7, got %#v", comp)
	}
	// The audit's fill of a lost live copy comes within FillGrace.
	for end := time.After(2 * time.Second); ; {
		select {
		case m := <-msgs:
			t.Fatalf("QoS 2 message %q delivered twice (DUP %v)", m.Payload, m.Duplicate())
		case <-end:
			return
		}
	}
}
