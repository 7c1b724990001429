package cluster_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/packet"
)

// A QoS 1 message is in JetStream when its publisher gets PUBACK.
func TestQoS1StoredBeforeAck(t *testing.T) {
	nodes := three(t)
	pub := pahoClient(t, nodes[0].addr, "stored-pub", true)
	wait(t, "publish", pub.Publish("stored/x", 1, false, "kept in JetStream"))
	m, err := nodes[2].cl.StoredMessage("stored/x")
	if err != nil {
		t.Fatalf("the acknowledged message is not in the messages stream: %v", err)
	}
	if string(m.Payload) != "kept in JetStream" || m.QoS != 1 {
		t.Fatalf("stored %q at QoS %d", m.Payload, m.QoS)
	}
}

// rawConnect opens a raw MQTT connection and reads its CONNACK.
func rawConnect(t *testing.T, addr string, version byte, id string) (net.Conn, *packet.Decoder) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	b, _ := (&packet.Connect{Version: version, ClientID: id, CleanStart: true, KeepAlive: 30}).Append(nil, version)
	nc.Write(b)
	dec := &packet.Decoder{Version: version}
	p := readPacket(t, nc, dec)
	if ack, ok := p.(*packet.Connack); !ok || ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK: %v", p)
	}
	return nc, dec
}

// readPacket reads one packet, or nil when the connection closes.
func readPacket(t *testing.T, nc net.Conn, dec *packet.Decoder) packet.Packet {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(2 * waitFor))
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		if len(buf) > 0 {
			p, _, err := dec.Decode(buf)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if p != nil {
				return p
			}
		}
		n, err := nc.Read(tmp)
		if n == 0 && err != nil {
			return nil
		}
		buf = append(buf, tmp[:n]...)
	}
}

// One cluster, losing its nodes one after the other.
//
// A node that dies (its NATS cut off at once) has its clients' wills
// published once, by a survivor [MQTT-3.1.2-8].
//
// Without a JetStream quorum, QoS 1 publishes are refused (5.0: PUBACK
// 0x80 with a reason string; 3.1.1: the connection is closed), never
// acknowledged; QoS 0 goes on.
func TestNodeLoss(t *testing.T) {
	t.Parallel() // waits on timers (heartbeats, checkpoints): overlap them
	t0 := time.Now()
	nodes, err := startNodes(t, 3, t.TempDir())
	t.Logf("formed in %v", time.Since(t0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { discardNodes([]*node{nodes[0], nodes[2]}) }) // after the clients' own cleanups
	n1 := nodes[0]
	// Clients connect while there is a quorum: without one, a CONNECT is
	// refused, as no node can then be sure it alone owns the session.

	sub, msgs := paho5(t, n1.addr, &paho.Connect{ClientID: "nq-sub", CleanStart: true, KeepAlive: 30})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "nq/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}

	v5, dec := rawConnect(t, n1.addr, packet.V5, "nq-v5")
	old, dec311 := rawConnect(t, n1.addr, packet.V311, "nq-311")

	// The will of a client of node 3, which dies.
	willSub := pahoClient(t, nodes[1].addr, "will-sub", true)
	wills := subscribe(t, willSub, "wills/#", 1)
	o := mqtt.NewClientOptions().AddBroker("tcp://"+nodes[2].addr).SetClientID("will-client").
		SetProtocolVersion(4).SetAutoReconnect(false).SetWill("wills/w1", "gone", 1, false)
	wc := mqtt.NewClient(o)
	wait(t, "connect with a will", wc.Connect())
	t.Cleanup(func() { wc.Disconnect(0) })
	time.Sleep(quiet) // the will is kept in the cluster after CONNACK
	t0 = time.Now()
	nodes[2].cl.Crash()
	if m := next(t, wills); string(m.Payload()) != "gone" || m.Topic() != "wills/w1" {
		t.Fatalf("will: %q on %q", m.Payload(), m.Topic())
	}
	t.Logf("the dead node's will came %v after its death", time.Since(t0))
	none(t, wills) // once

	closeNodes(nodes[1:2]) // two of three gone: no quorum
	t0 = time.Now()

	b, _ := (&packet.Publish{Topic: "nq/1", Payload: []byte("x"), QoS: 1, PacketID: 9}).Append(nil, packet.V5)
	v5.Write(b)
	got := readPacket(t, v5, dec)
	ack, ok := got.(*packet.Puback)
	if !ok || ack.ReasonCode != packet.UnspecifiedError {
		t.Fatalf("PUBACK without quorum: %T %+v, want 0x80", got, got)
	}

	b, _ = (&packet.Publish{Topic: "nq/0", Payload: []byte("qos0")}).Append(nil, packet.V5)
	v5.Write(b)
	select {
	case m := <-msgs:
		if m.Topic != "nq/0" {
			t.Fatalf("got %q on %q: the refused QoS 1 message was delivered", m.Payload, m.Topic)
		}
	case <-time.After(waitFor):
		t.Fatal("QoS 0 stopped without quorum")
	}

	b, _ = (&packet.Publish{Topic: "nq/1", Payload: []byte("x"), QoS: 1, PacketID: 9}).Append(nil, packet.V311)
	old.Write(b)
	t.Logf("refused 5.0 and QoS 0 at %v", time.Since(t0))
	if p := readPacket(t, old, dec311); p != nil {
		t.Fatalf("3.1.1 QoS 1 without quorum: got %T, want the connection closed", p)
	}
}
