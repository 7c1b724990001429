package cluster_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/cluster"
	"github.com/gannet-mqtt/gannet/packet"
)

// persistent connects a paho (3.1.1) client with clean session 0 to addr;
// every message it gets, whatever the subscription, arrives on the
// returned channel. It reports whether the broker had a session.
func persistent(t testing.TB, addr, id string) (mqtt.Client, <-chan mqtt.Message, bool) {
	t.Helper()
	ch := make(chan mqtt.Message, 10000)
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetProtocolVersion(4).SetCleanSession(false).SetAutoReconnect(false).
		SetConnectRetry(false).SetConnectTimeout(waitFor).SetWriteTimeout(waitFor).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { ch <- m })
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("paho %q: connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, ch, tok.(*mqtt.ConnectToken).SessionPresent()
}

// collect reads messages from ch until want distinct payloads of each
// topic have come, or waitFor passes without a new one. It returns how
// many times each "topic payload" came.
func collect(t testing.TB, ch <-chan mqtt.Message, want int) map[string]int {
	t.Helper()
	got := make(map[string]int)
	for len(got) < want {
		select {
		case m := <-ch:
			got[m.Topic()+" "+string(m.Payload())]++
		case <-time.After(2 * waitFor):
			return got
		}
	}
	return got
}

// A persistent session resumes on another node: its subscriptions, and
// the QoS 1 and QoS 2 messages queued for it while it was offline, in
// order [MQTT-3.1.2-4] [MQTT-4.6.0-6].
func TestSessionResumesOnAnotherNode(t *testing.T) {
	t.Parallel() // waits on timers (heartbeats, checkpoints): overlap them
	nodes := three(t)
	sub, ch, _ := persistent(t, nodes[0].addr, "resume-311")
	wait(t, "subscribe", sub.Subscribe("resume/q1/#", 1, nil))
	wait(t, "subscribe", sub.Subscribe("resume/q2/#", 2, nil))
	pub := pahoClient(t, nodes[1].addr, "resume-pub", true)
	converge(t, pub, "resume/q1/probe", ch)
	sub.Disconnect(50)

	for i := range 5 {
		wait(t, "publish", pub.Publish("resume/q1/x", 1, false, fmt.Sprint("a", i)))
		wait(t, "publish", pub.Publish("resume/q2/x", 2, false, fmt.Sprint("b", i)))
	}

	sub2, ch2, present := persistent(t, nodes[2].addr, "resume-311")
	if !present {
		t.Fatal("CONNACK on another node: session present 0, want 1 [MQTT-3.2.2-2]")
	}
	next := map[string]int{"resume/q1/x": 0, "resume/q2/x": 0}
	for n := 0; n < 10; n++ {
		select {
		case m := <-ch2:
			prefix := map[string]string{"resume/q1/x": "a", "resume/q2/x": "b"}[m.Topic()]
			if want := fmt.Sprint(prefix, next[m.Topic()]); string(m.Payload()) != want {
				t.Fatalf("got %q on %q, want %q: queued messages lost or out of order", m.Payload(), m.Topic(), want)
			}
			next[m.Topic()]++
		case <-time.After(2 * waitFor):
			t.Fatalf("queued messages not delivered on the new node: got %v of 5 each", next)
		}
	}
	// The subscriptions came along: no SUBSCRIBE on the new node.
	converge(t, pub, "resume/q1/probe", ch2)
	wait(t, "publish", pub.Publish("resume/q2/after", 2, false, "after"))
	if m := <-waitMsg(t, ch2); string(m.Payload()) != "after" {
		t.Fatalf("got %q, want the message published after the resume", m.Payload())
	}
	// Exactly once, even once the new node has replayed what the old
	// one may have missed.
	time.Sleep(cluster.ApplyGrace + time.Second)
	for len(ch2) > 0 {
		m := <-ch2
		if m.Topic() != "resume/q1/probe" {
			t.Fatalf("duplicate %q on %q", m.Payload(), m.Topic())
		}
	}
	sub2.Disconnect(50)
}

func waitMsg(t testing.TB, ch <-chan mqtt.Message) <-chan mqtt.Message {
	t.Helper()
	out := make(chan mqtt.Message, 1)
	for {
		select {
		case m := <-ch:
			if m.Topic() == "resume/q1/probe" {
				continue
			}
			out <- m
			return out
		case <-time.After(2 * waitFor):
			t.Fatal("no message")
			return nil
		}
	}
}

// raw is a raw MQTT connection that keeps what it read beyond a packet.
type raw struct {
	t   testing.TB
	nc  net.Conn
	dec *packet.Decoder
	buf []byte
}

func rawDial(t testing.TB, addr string, cp *packet.Connect) (*raw, *packet.Connack) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &raw{t: t, nc: nc, dec: &packet.Decoder{Version: cp.Version}}
	r.send(cp)
	p := r.read(2 * waitFor)
	ack, ok := p.(*packet.Connack)
	if !ok || ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK: %#v", p)
	}
	return r, &packet.Connack{SessionPresent: ack.SessionPresent, ReasonCode: ack.ReasonCode}
}

func (r *raw) send(p interface {
	Append([]byte, byte) ([]byte, error)
}) {
	r.t.Helper()
	b, err := p.Append(nil, r.dec.Version)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// read returns the next packet (a copy of what matters), or nil after d.
func (r *raw) read(d time.Duration) packet.Packet {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(d))
	tmp := make([]byte, 4096)
	for {
		if len(r.buf) > 0 {
			p, n, err := r.dec.Decode(r.buf)
			if err != nil {
				r.t.Fatalf("decode: %v", err)
			}
			if p != nil {
				r.buf = r.buf[n:]
				switch q := p.(type) {
				case *packet.Publish:
					c := *q
					c.Topic = string([]byte(q.Topic))
					c.Payload = append([]byte(nil), q.Payload...)
					return &c
				case *packet.Pubrel:
					c := *q
					return &c
				case *packet.Suback:
					return &packet.Suback{PacketID: q.PacketID}
				}
				return p
			}
		}
		n, err := r.nc.Read(tmp)
		if n == 0 && err != nil {
			return nil
		}
		r.buf = append(r.buf, tmp[:n]...)
	}
}

// The inflight state resumes on another node: a QoS 1 PUBLISH not
// acknowledged is sent again with DUP and its packet identifier
// [MQTT-4.4.0-1] [MQTT-3.3.1-1], a QoS 2 one whose PUBREC came gets its
// PUBREL again and never its PUBLISH [MQTT-4.3.3-6]; the identifiers of an
// inbound QoS 2 message awaiting PUBREL are kept, so that a PUBLISH sent
// again is not delivered twice [MQTT-4.3.3-9].
func TestInflightResumesOnAnotherNode(t *testing.T) {
	t.Parallel() // waits on timers (heartbeats, checkpoints): overlap them
	nodes := three(t)
	cp := &packet.Connect{Version: packet.V311, ClientID: "inflight-311", KeepAlive: 30}
	c, _ := rawDial(t, nodes[0].addr, cp)
	c.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "inflight/#", QoS: 2}}})
	if _, ok := c.read(waitFor).(*packet.Suback); !ok {
		t.Fatal("no SUBACK")
	}
	pub := pahoClient(t, nodes[1].addr, "inflight-pub", true)
	inSub := pahoClient(t, nodes[2].addr, "inflight-insub", true)
	inMsgs := subscribe(t, inSub, "inflight-in/#", 2)
	converge(t, pahoClient(t, nodes[0].addr, "inflight-probe", true), "inflight-in/probe", inMsgs)
	// An inbound QoS 2 message, PUBREC sent, no PUBREL yet.
	c.send(&packet.Publish{Topic: "inflight-in/x", Payload: []byte("in"), QoS: 2, PacketID: 77})
	if p, ok := c.read(waitFor).(*packet.Pubrec); !ok || p.PacketID != 77 {
		t.Fatalf("want PUBREC 77, got %#v", p)
	}
	// The subscription reaches the publisher's node.
	deadline := time.Now().Add(waitFor)
	for got := false; !got; {
		if time.Now().After(deadline) {
			t.Fatal("the subscription never reached the publisher's node")
		}
		wait(t, "probe", pub.Publish("inflight/probe", 0, false, "p"))
		if p, ok := c.read(100 * time.Millisecond).(*packet.Publish); ok && p.Topic == "inflight/probe" {
			got = true
		}
	}
	for c.read(quiet) != nil {
	}
	// m3 completes on the first node: the second, replaying what the
	// first may have missed, must not send it again [MQTT-4.3.3-9].
	wait(t, "publish", pub.Publish("inflight/3", 2, false, "m3"))
	p3, ok := c.read(waitFor).(*packet.Publish)
	if !ok || string(p3.Payload) != "m3" {
		t.Fatalf("got %#v, want m3", p3)
	}
	c.send(&packet.Pubrec{PacketID: p3.PacketID})
	if p, ok := c.read(waitFor).(*packet.Pubrel); !ok || p.PacketID != p3.PacketID {
		t.Fatalf("want PUBREL %d, got %#v", p3.PacketID, p)
	}
	c.send(&packet.Pubcomp{PacketID: p3.PacketID})
	wait(t, "publish", pub.Publish("inflight/1", 1, false, "m1"))
	wait(t, "publish", pub.Publish("inflight/2", 2, false, "m2"))
	var id1, id2 uint16
	for id1 == 0 || id2 == 0 {
		p, ok := c.read(waitFor).(*packet.Publish)
		if !ok {
			t.Fatalf("got %#v, want the PUBLISHes", p)
		}
		switch string(p.Payload) {
		case "m1":
			id1 = p.PacketID
		case "m2":
			id2 = p.PacketID
			c.send(&packet.Pubrec{PacketID: id2})
		}
	}
	if p, ok := c.read(waitFor).(*packet.Pubrel); !ok || p.PacketID != id2 {
		t.Fatalf("want PUBREL %d, got %#v", id2, p)
	}
	c.nc.Close() // no PUBACK, no PUBCOMP: both inflight

	cp.CleanStart = false
	c2, ack := rawDial(t, nodes[2].addr, cp)
	if !ack.SessionPresent {
		t.Fatal("session present 0 on the other node")
	}
	gotDup, gotRel := false, false
	for !gotDup || !gotRel {
		switch p := c2.read(waitFor).(type) {
		case *packet.Publish:
			if string(p.Payload) != "m1" || !p.Dup || p.PacketID != id1 || p.QoS != 1 {
				t.Fatalf("resent PUBLISH %q dup=%v id=%d qos=%d, want m1 dup=true id=%d qos=1", p.Payload, p.Dup, p.PacketID, p.QoS, id1)
			}
			gotDup = true
			c2.send(&packet.Puback{PacketID: id1})
		case *packet.Pubrel:
			if p.PacketID != id2 {
				t.Fatalf("PUBREL %d, want %d", p.PacketID, id2)
			}
			gotRel = true
			c2.send(&packet.Pubcomp{PacketID: id2})
		default:
			t.Fatalf("got %#v, want the resent PUBLISH and PUBREL", p)
		}
	}
	// The client sends its inbound QoS 2 message again: not delivered twice.
	c2.send(&packet.Publish{Topic: "inflight-in/x", Payload: []byte("in"), QoS: 2, PacketID: 77, Dup: true})
	if p, ok := c2.read(waitFor).(*packet.Pubrec); !ok || p.PacketID != 77 {
		t.Fatalf("want PUBREC 77, got %#v", p)
	}
	c2.send(&packet.Pubrel{PacketID: 77})
	if p, ok := c2.read(waitFor).(*packet.Pubcomp); !ok || p.PacketID != 77 {
		t.Fatalf("want PUBCOMP 77, got %#v", p)
	}
	if m := next(t, inMsgs); string(m.Payload()) != "in" {
		t.Fatalf("got %q", m.Payload())
	}
	none(t, inMsgs)
	// Nothing again once the new node has replayed what the old one may
	// have missed: m2 is complete, m1 acknowledged.
	if p := c2.read(cluster.ApplyGrace + 2*time.Second); p != nil {
		t.Fatalf("after the replay: got %#v, want nothing", p)
	}
}

// A 5.0 session's expiry holds cluster-wide: it resumes on another node
// within the interval, and is deleted (once, by the node holding it) when
// the interval passes [MQTT-4.1.0-2]; a clean start on another node ends
// it [MQTT-3.1.2-4].
func TestSessionExpiryAcrossNodes(t *testing.T) {
	t.Parallel() // waits on timers (heartbeats, checkpoints): overlap them
	nodes := three(t)
	expiry := uint32(2)
	cp := &paho.Connect{ClientID: "expiry-5", KeepAlive: 30, Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}
	c, _ := paho5(t, nodes[0].addr, cp)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "expiry/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	c.Disconnect(&paho.Disconnect{})

	ack := connect5(t, nodes[1].addr, cp)
	if !ack.SessionPresent {
		t.Fatal("session present 0 on another node within the expiry interval")
	}
	time.Sleep(time.Duration(expiry)*time.Second + 2*time.Second)
	for _, nd := range nodes {
		if ok, err := nd.cl.StoredSession("expiry-5"); ok || err != nil {
			t.Fatalf("the expired session is still stored (%v)", err)
		}
	}
	if ack := connect5(t, nodes[2].addr, cp); ack.SessionPresent {
		t.Fatal("session present 1 after the expiry interval")
	}

	// Clean start on another node ends the session.
	if ack := connect5(t, nodes[2].addr, cp); !ack.SessionPresent {
		t.Fatal("session present 0 on the node that made it")
	}
	clean := &paho.Connect{ClientID: "expiry-5", KeepAlive: 30, CleanStart: true}
	if ack := connect5(t, nodes[0].addr, clean); ack.SessionPresent {
		t.Fatal("session present 1 with clean start")
	}
	// A node may read the bucket from a replica that has not applied the
	// delete yet (KV direct gets): the delete must show everywhere soon.
	for _, nd := range nodes {
		eventually(t, "the session ended by a clean start to be deleted everywhere", func() bool {
			ok, err := nd.cl.StoredSession("expiry-5")
			return !ok && err == nil
		})
	}
	if ack := connect5(t, nodes[1].addr, cp); ack.SessionPresent {
		t.Fatal("session present 1 after a clean start on another node")
	}
}

// connect5 connects a 5.0 client, disconnects it at once and returns its
// CONNACK.
func connect5(t testing.TB, addr string, cp *paho.Connect) *paho.Connack {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: nc, OnClientError: func(error) {}})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		nc.Close()
		t.Fatalf("connect %q: %v", cp.ClientID, err)
	}
	c.Disconnect(&paho.Disconnect{})
	return ack
}
