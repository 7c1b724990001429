package broker_test

import (
	"fmt"
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// [MQTT-3.3.4-1] [MQTT-2.3.1-6]: the broker answers a PUBLISH as its QoS
// requires: nothing at 0, PUBACK at 1, PUBREC at 2 and PUBCOMP for the
// PUBREL, each with the PUBLISH's packet identifier.
func TestQoSInboundFlows(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub := client(t, b, "sub")
	sub.sub("in/#", 2)
	pub := client(t, b, "pub")

	pub.send(&packet.Publish{Topic: "in/0", Payload: []byte("zero")})
	pub.sync() // nothing but the PINGRESP comes back for QoS 0

	pub.send(&packet.Publish{Topic: "in/1", Payload: []byte("one"), QoS: 1, PacketID: 0x1234})
	if ack := expectPacket[*packet.Puback](pub); ack.PacketID != 0x1234 {
		t.Fatalf("PUBACK id %#x, want 0x1234", ack.PacketID)
	}

	pub.send(&packet.Publish{Topic: "in/2", Payload: []byte("two"), QoS: 2, PacketID: 0xfffe})
	if rec := expectPacket[*packet.Pubrec](pub); rec.PacketID != 0xfffe {
		t.Fatalf("PUBREC id %#x, want 0xfffe", rec.PacketID)
	}
	pub.send(&packet.Pubrel{PacketID: 0xfffe})
	if comp := expectPacket[*packet.Pubcomp](pub); comp.PacketID != 0xfffe {
		t.Fatalf("PUBCOMP id %#x, want 0xfffe", comp.PacketID)
	}
	pub.sync()

	for i, want := range []string{"zero", "one", "two"} {
		p := sub.expectPublish(fmt.Sprintf("in/%d", i), want)
		if p.QoS != byte(i) {
			t.Errorf("%s delivered at QoS %d, want %d", want, p.QoS, i)
		}
		sub.ack(p)
	}
	sub.sync()
}

// The broker's side of outbound flows: QoS 1 awaits PUBACK; QoS 2 awaits
// PUBREC, then sends PUBREL with the same identifier [MQTT-4.3.3-1] and
// awaits PUBCOMP; packet identifiers of QoS 1 and 2 are never zero
// [MQTT-2.3.1-1] and a QoS 0 PUBLISH has none [MQTT-2.3.1-5].
func TestQoSOutboundFlows(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub := client(t, b, "sub")
	sub.sub("out", 2)
	pub := client(t, b, "pub")

	pub.publish("out", "q0", 0, false)
	if p := sub.expectPublish("out", "q0"); p.QoS != 0 || p.PacketID != 0 || p.Dup {
		t.Fatalf("QoS 0 copy: %s", describe(p))
	}

	pub.publish("out", "q1", 1, false)
	p := sub.expectPublish("out", "q1")
	if p.QoS != 1 || p.PacketID == 0 || p.Dup {
		t.Fatalf("QoS 1 copy: %s", describe(p))
	}
	sub.send(&packet.Puback{PacketID: p.PacketID})
	sub.sync()

	pub.publish("out", "q2", 2, false)
	p = sub.expectPublish("out", "q2")
	if p.QoS != 2 || p.PacketID == 0 || p.Dup {
		t.Fatalf("QoS 2 copy: %s", describe(p))
	}
	sub.sync() // no PUBREL before PUBREC
	sub.send(&packet.Pubrec{PacketID: p.PacketID})
	if rel := expectPacket[*packet.Pubrel](sub); rel.PacketID != p.PacketID {
		t.Fatalf("PUBREL id %d, want %d", rel.PacketID, p.PacketID)
	}
	sub.sync() // the PUBLISH is not sent again after PUBREC [MQTT-4.3.3-1]
	sub.send(&packet.Pubcomp{PacketID: p.PacketID})
	sub.sync()
}

// [MQTT-3.8.4-6]: a message goes out at the lower of its QoS and the
// subscription's granted QoS.
func TestQoSDeliveredIsMinimum(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := client(t, b, "pub")
	var subs [3]*rawClient
	for q := range subs {
		subs[q] = client(t, b, fmt.Sprintf("sub%d", q))
		subs[q].sub("min", byte(q))
	}
	for pq := byte(0); pq <= 2; pq++ {
		pub.publish("min", fmt.Sprint(pq), pq, false)
		for sq, sub := range subs {
			p := sub.expectPublish("min", fmt.Sprint(pq))
			if want := min(pq, byte(sq)); p.QoS != want {
				t.Errorf("published at %d, subscribed at %d: delivered at %d, want %d", pq, sq, p.QoS, want)
			}
			sub.ack(p)
		}
	}
	for _, sub := range subs {
		sub.sync()
	}
}

// [MQTT-2.3.1-1] [MQTT-2.3.1-4]: outbound packet identifiers are non-zero
// and unique among the messages awaiting acknowledgement; one freed by its
// acknowledgement may be used again.
func TestPacketIDsUniqueAmongInflight(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxInflight = 10
	b := runBroker(t, opts)
	sub := client(t, b, "sub")
	sub.sub("ids", 2)
	pub := client(t, b, "pub")

	inflight := map[uint16]bool{}
	receive := func(n int) []*packet.Publish {
		var got []*packet.Publish
		for range n {
			p := expectPacket[*packet.Publish](sub)
			if p.PacketID == 0 {
				t.Fatalf("packet identifier 0: %s", describe(p))
			}
			if inflight[p.PacketID] {
				t.Fatalf("packet identifier %d reused while unacknowledged", p.PacketID)
			}
			inflight[p.PacketID] = true
			got = append(got, p)
		}
		return got
	}
	for i := range 10 {
		pub.publish("ids", fmt.Sprint(i), byte(1+i%2), false)
	}
	first := receive(10)
	for i, p := range first {
		if i%2 == 0 {
			sub.ack(p)
			delete(inflight, p.PacketID)
		}
	}
	for i := range 5 {
		pub.publish("ids", fmt.Sprint(10+i), 1, false)
	}
	for _, p := range receive(5) {
		sub.ack(p)
	}
	for i, p := range first {
		if i%2 == 1 {
			sub.ack(p)
		}
	}
	sub.sync()
}

// The inflight window: with MaxInflight 2 a subscriber that does not
// acknowledge gets two QoS 1 messages; the third arrives once it
// acknowledges one, and order is kept [MQTT-4.6.0-6].
func TestInflightWindow(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxInflight = 2
	b := runBroker(t, opts)
	sub := client(t, b, "sub")
	sub.sub("win", 1)
	pub := client(t, b, "pub")
	for i := range 4 {
		pub.publish("win", fmt.Sprint(i), 1, false)
	}
	p0 := sub.expectPublish("win", "0")
	p1 := sub.expectPublish("win", "1")
	sub.sync() // the window is full: nothing else comes
	sub.ack(p1)
	p2 := sub.expectPublish("win", "2")
	sub.sync()
	sub.ack(p0)
	p3 := sub.expectPublish("win", "3")
	sub.sync()
	sub.ack(p2)
	sub.ack(p3)
	sub.sync()

	// A QoS 2 message holds its place until PUBCOMP, not PUBREC.
	sub.sub("win", 2)
	for i := range 3 {
		pub.publish("win", fmt.Sprint("r-", i), 2, false)
	}
	r0 := sub.expectPublish("win", "r-0")
	r1 := sub.expectPublish("win", "r-1")
	sub.sync()
	sub.send(&packet.Pubrec{PacketID: r0.PacketID})
	expectPacket[*packet.Pubrel](sub)
	sub.sync() // PUBREC does not free the place: PUBCOMP does
	sub.send(&packet.Pubcomp{PacketID: r0.PacketID})
	r2 := sub.expectPublish("win", "r-2")
	sub.ack(r1)
	sub.ack(r2)
	sub.sync()
}

// [MQTT-4.4.0-1] [MQTT-3.3.1-1] [MQTT-2.3.1-3]: when a clean-session-0
// client reconnects, the broker re-sends its unacknowledged PUBLISH packets
// with DUP 1 and the original identifiers, and its unacknowledged PUBRELs,
// in the original order [MQTT-4.6.0-1].
func TestRedeliveryOnReconnect(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	persistent := connectPacket("persistent")
	persistent.CleanStart = false
	sub, _ := connectOK(t, b.Addr, persistent)
	sub.sub("rd/#", 2)
	pub := client(t, b, "pub")
	pub.publish("rd/1", "A", 1, false)
	pub.publish("rd/2", "B", 2, false)
	pub.publish("rd/3", "C", 2, false)
	a := sub.expectPublish("rd/1", "A")
	bb := sub.expectPublish("rd/2", "B")
	c := sub.expectPublish("rd/3", "C")
	sub.send(&packet.Pubrec{PacketID: c.PacketID})
	if rel := expectPacket[*packet.Pubrel](sub); rel.PacketID != c.PacketID {
		t.Fatalf("PUBREL id %d, want %d", rel.PacketID, c.PacketID)
	}
	sub.nc.Close() // network failure: no DISCONNECT
	b.waitOffline(t, "persistent")

	sub, ack := connectOK(t, b.Addr, persistent)
	if !ack.SessionPresent {
		t.Fatalf("session present 0, want 1 [MQTT-3.2.2-2]")
	}
	for _, want := range []*packet.Publish{a, bb} {
		p := sub.expectPublish(want.Topic, string(want.Payload))
		if !p.Dup || p.PacketID != want.PacketID || p.QoS != want.QoS {
			t.Fatalf("re-sent %s, want DUP 1, id %d, QoS %d", describe(p), want.PacketID, want.QoS)
		}
	}
	if rel := expectPacket[*packet.Pubrel](sub); rel.PacketID != c.PacketID {
		t.Fatalf("re-sent PUBREL id %d, want %d", rel.PacketID, c.PacketID)
	}
	sub.sync()
	sub.send(&packet.Puback{PacketID: a.PacketID})
	sub.send(&packet.Pubrec{PacketID: bb.PacketID})
	expectPacket[*packet.Pubrel](sub)
	sub.send(&packet.Pubcomp{PacketID: bb.PacketID}, &packet.Pubcomp{PacketID: c.PacketID})
	sub.sync()
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "persistent")

	// Everything is acknowledged: a further reconnect re-sends nothing.
	sub, _ = connectOK(t, b.Addr, persistent)
	sub.sync()
}

// [MQTT-4.3.3-2]: an inbound QoS 2 message is delivered once, even when
// the client re-sends the PUBLISH (DUP 1) before PUBREL; after PUBCOMP the
// identifier stands for a new message again.
func TestInboundQoS2ExactlyOnce(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub := client(t, b, "sub")
	sub.sub("once", 2)
	pub := client(t, b, "pub")

	first := &packet.Publish{Topic: "once", Payload: []byte("1"), QoS: 2, PacketID: 7}
	pub.send(first)
	expectPacket[*packet.Pubrec](pub)
	again := *first
	again.Dup = true
	pub.send(&again)
	if rec := expectPacket[*packet.Pubrec](pub); rec.PacketID != 7 {
		t.Fatalf("PUBREC id %d, want 7", rec.PacketID)
	}
	pub.sync()
	sub.ack(sub.expectPublish("once", "1"))
	sub.sync() // one copy only

	pub.send(&packet.Pubrel{PacketID: 7})
	expectPacket[*packet.Pubcomp](pub)
	pub.send(&packet.Publish{Topic: "once", Payload: []byte("2"), QoS: 2, PacketID: 7})
	expectPacket[*packet.Pubrec](pub)
	pub.send(&packet.Pubrel{PacketID: 7})
	expectPacket[*packet.Pubcomp](pub)
	sub.ack(sub.expectPublish("once", "2"))
	sub.sync()
}

// [MQTT-4.4.0-1] [MQTT-4.3.3-2], inbound side: the identifiers of QoS 2
// messages awaiting PUBREL are session state, so a persistent client that
// re-sends the PUBLISH after reconnecting does not cause a second delivery.
func TestInboundQoS2ExactlyOnceAcrossReconnect(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub := client(t, b, "sub")
	sub.sub("once", 2)
	cp := connectPacket("pub")
	cp.CleanStart = false
	pub, _ := connectOK(t, b.Addr, cp)
	pub.send(&packet.Publish{Topic: "once", Payload: []byte("x"), QoS: 2, PacketID: 9})
	expectPacket[*packet.Pubrec](pub)
	pub.nc.Close()
	b.waitOffline(t, "pub")

	pub, _ = connectOK(t, b.Addr, cp)
	pub.send(&packet.Publish{Topic: "once", Payload: []byte("x"), QoS: 2, PacketID: 9, Dup: true})
	expectPacket[*packet.Pubrec](pub)
	pub.send(&packet.Pubrel{PacketID: 9})
	expectPacket[*packet.Pubcomp](pub)
	pub.sync()
	sub.ack(sub.expectPublish("once", "x"))
	sub.sync()
}

// [MQTT-3.3.1-3]: DUP is never copied from the inbound PUBLISH; an outbound
// copy has DUP 1 only when it is a retransmission.
func TestDupNotCopied(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub := client(t, b, "sub")
	sub.sub("dup", 2)
	pub := client(t, b, "pub")
	pub.send(&packet.Publish{Topic: "dup", Payload: []byte("1"), QoS: 1, PacketID: 1, Dup: true})
	expectPacket[*packet.Puback](pub)
	pub.send(&packet.Publish{Topic: "dup", Payload: []byte("2"), QoS: 2, PacketID: 2, Dup: true})
	expectPacket[*packet.Pubrec](pub)
	pub.send(&packet.Pubrel{PacketID: 2})
	expectPacket[*packet.Pubcomp](pub)
	for _, want := range []string{"1", "2"} {
		p := sub.expectPublish("dup", want)
		if p.Dup {
			t.Errorf("message %s delivered with DUP 1", want)
		}
		sub.ack(p)
	}
	sub.sync()
}
