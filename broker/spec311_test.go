package broker_test

// MQTT 3.1.1 statements that no other test checked, each over a real
// socket against an in-process broker. Citations here are 3.1.1 (see
// docs/spec-coverage.md for the convention).

import (
	"fmt"
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// SUBACK and UNSUBACK carry the identifier of the packet they answer,
// whatever identifiers the client picks [MQTT-2.3.1-7]; every SUBSCRIBE
// gets its SUBACK [MQTT-3.8.4-1] (a refused one too: see
// TestSpec311NoWildcards_MQTT_3_8_3_2).
func TestSpec311AckIdentifiers_MQTT_2_3_1_7(t *testing.T) {
	b := runBroker(t, testOptions())
	c := client(t, b, "spec311-ids")
	for _, id := range []uint16{1, 0x7fff, 0xffff, 42} {
		c.send(&packet.Subscribe{PacketID: id, Subscriptions: []packet.Subscription{{Filter: "a/b", QoS: 1}, {Filter: "a/#", QoS: 2}}})
		ack := expectPacket[*packet.Suback](c)
		if ack.PacketID != id {
			t.Fatalf("SUBACK id %d, want %d [MQTT-2.3.1-7]", ack.PacketID, id)
		}
		if len(ack.ReasonCodes) != 2 || ack.ReasonCodes[0] != 1 || ack.ReasonCodes[1] != 2 {
			t.Fatalf("SUBACK codes %v, want [1 2] [MQTT-3.8.4-1]", ack.ReasonCodes)
		}
		c.send(&packet.Unsubscribe{PacketID: id ^ 0x8000, Filters: []string{"a/b"}})
		if un := expectPacket[*packet.Unsuback](c); un.PacketID != id^0x8000 {
			t.Fatalf("UNSUBACK id %d, want %d [MQTT-2.3.1-7]", un.PacketID, id^0x8000)
		}
	}
}

// The ClientId is the key of the session: a client that comes back with the
// same identifier and CleanSession 0 finds its subscription and the message
// queued meanwhile; another identifier finds nothing [MQTT-3.1.3-2].
func TestSpec311ClientIDKeysSession_MQTT_3_1_3_2(t *testing.T) {
	b := runBroker(t, testOptions())
	p := connectPacket("spec311-key")
	p.CleanStart = false
	c, _ := connectOK(t, b.Addr, p)
	c.sub("key/t", 1)
	c.nc.Close()
	b.waitOffline(t, "spec311-key")

	pub := client(t, b, "spec311-key-pub")
	pub.publish("key/t", "kept", 1, false)

	other := connectPacket("spec311-key2")
	other.CleanStart = false
	o, ack := connectOK(t, b.Addr, other)
	if ack.SessionPresent {
		t.Fatalf("another ClientId found a session [MQTT-3.1.3-2]")
	}
	o.sync()

	c, ack = connectOK(t, b.Addr, p)
	if !ack.SessionPresent {
		t.Fatalf("same ClientId: Session Present 0 [MQTT-3.1.3-2]")
	}
	m := c.expectPublish("key/t", "kept")
	c.ack(m)
}

// A valid CONNECT is answered by CONNACK 0 [MQTT-3.1.4-4], the first packet
// the server sends [MQTT-3.2.0-1], even when the client sends more packets
// in the same write before it has seen the CONNACK.
func TestSpec311ConnackFirst_MQTT_3_2_0_1(t *testing.T) {
	b := runBroker(t, testOptions())
	c := dialRaw(t, b.Addr)
	c.send(connectPacket("spec311-first"),
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "f/t", QoS: 0}}},
		&packet.Pingreq{})
	ack := expectPacket[*packet.Connack](c)
	if ack.ReasonCode != packet.Success || ack.SessionPresent {
		t.Fatalf("CONNACK %v present %v, want 0 [MQTT-3.1.4-4]", ack.ReasonCode, ack.SessionPresent)
	}
	expectPacket[*packet.Suback](c)
	expectPacket[*packet.Pingresp](c)
}

// A refused CONNECT: nothing the client sent after it is acted on
// [MQTT-3.1.4-5]. The retained PUBLISH that follows an unsupported
// protocol level in the same write must not be stored.
func TestSpec311RefusedConnectIgnoresRest_MQTT_3_1_4_5(t *testing.T) {
	b := runBroker(t, testOptions())
	c := dialRaw(t, b.Addr)
	// CONNECT at protocol level 6, then a retained PUBLISH.
	bad := hx("10 0f 00 04 4d 51 54 54 06 02 00 3c 00 03 62 61 64")
	pub := c.encode(&packet.Publish{Topic: "refused/t", Payload: []byte("x"), Retain: true})
	if err := c.write(append(bad, pub...)); err != nil {
		t.Fatal(err)
	}
	got := c.expectClosed(waitFor)
	if len(got) != 1 || got[0].Type() != packet.CONNACK || got[0].(*packet.Connack).ReasonCode != packet.UnsupportedProtocolVersion {
		t.Fatalf("got %d packets, want one CONNACK 0x01 [MQTT-3.1.2-2]", len(got))
	}
	s := client(t, b, "spec311-refused-sub")
	s.sub("refused/#", 0)
	s.sync() // a stored retained message would arrive before the PINGRESP
}

// A CONNECT that breaks section 3.1 in a way no return code describes (here
// a reserved flag bit) is answered by closing without any CONNACK
// [MQTT-3.2.2-6] [MQTT-3.1.4-1].
func TestSpec311CloseWithoutConnack_MQTT_3_2_2_6(t *testing.T) {
	b := runBroker(t, testOptions())
	c := dialRaw(t, b.Addr)
	if err := c.write(hx("10 0f 00 04 4d 51 54 54 04 03 00 3c 00 03 62 61 64")); err != nil {
		t.Fatal(err)
	}
	c.expectClosedSilently(waitFor)
	expectServing(t, b)
}

// A retained QoS 0 PUBLISH replaces the retained message of its topic
// [MQTT-3.3.1-7].
func TestSpec311RetainedQoS0Replaces_MQTT_3_3_1_7(t *testing.T) {
	b := runBroker(t, testOptions())
	p := client(t, b, "spec311-rq0-pub")
	p.publish("rq0/t", "first", 1, true)
	p.publish("rq0/t", "second", 0, true)
	p.sync()
	s := client(t, b, "spec311-rq0-sub")
	s.sub("rq0/t", 1)
	m := s.expectPublish("rq0/t", "second")
	if !m.Retain || m.QoS != 0 {
		t.Fatalf("retained copy %s, want RETAIN 1 at QoS 0 [MQTT-3.3.1-7]", describe(m))
	}
	s.sync()
}

// A server that does not support wildcard subscriptions refuses every
// filter containing one [MQTT-3.8.3-2]; plain filters are still granted.
func TestSpec311NoWildcards_MQTT_3_8_3_2(t *testing.T) {
	o := testOptions()
	o.WildcardSubscriptions = false
	b := runBroker(t, o)
	c := client(t, b, "spec311-nowild")
	codes := c.subscribe(
		packet.Subscription{Filter: "w/+", QoS: 1},
		packet.Subscription{Filter: "w/#", QoS: 1},
		packet.Subscription{Filter: "#", QoS: 0},
		packet.Subscription{Filter: "w/plain", QoS: 1},
	)
	want := []packet.ReasonCode{0x80, 0x80, 0x80, 1}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("SUBACK %v, want %v [MQTT-3.8.3-2]", codes, want)
	}
}

// A session lasts as long as its network connection [MQTT-4.1.0-2]: a
// CleanSession 1 client keeps its subscription while connected, across
// another client's traffic and another client's clean connection.
func TestSpec311SessionLivesWithConnection_MQTT_4_1_0_2(t *testing.T) {
	b := runBroker(t, testOptions())
	c := client(t, b, "spec311-live")
	c.sub("live/t", 0)
	other := client(t, b, "spec311-live-other")
	other.send(&packet.Disconnect{})
	p := client(t, b, "spec311-live-pub")
	for i := range 3 {
		p.publish("live/t", fmt.Sprint(i), 0, false)
		c.expectPublish("live/t", fmt.Sprint(i))
	}
}

// The server sends QoS 0 as QoS 0, DUP 0, without identifier
// [MQTT-4.3.1-1], even to a subscription granted QoS 2.
func TestSpec311QoS0Sender_MQTT_4_3_1_1(t *testing.T) {
	b := runBroker(t, testOptions())
	s := client(t, b, "spec311-q0-sub")
	s.sub("q0/t", 2)
	p := client(t, b, "spec311-q0-pub")
	p.publish("q0/t", "zero", 0, false)
	m := s.expectPublish("q0/t", "zero")
	if m.QoS != 0 || m.Dup || m.PacketID != 0 {
		t.Fatalf("got %s, want QoS 0, DUP 0, no identifier [MQTT-4.3.1-1]", describe(m))
	}
}

// The server as QoS 1 sender: a fresh non-zero identifier for each message
// in flight, QoS 1 and DUP 0 on first sending, and the message held until
// its PUBACK: re-sent with DUP 1 after a reconnection, not after the PUBACK
// [MQTT-4.3.2-1] [MQTT-2.3.1-4].
func TestSpec311QoS1Sender_MQTT_4_3_2_1(t *testing.T) {
	b := runBroker(t, testOptions())
	sp := connectPacket("spec311-q1s")
	sp.CleanStart = false
	s, _ := connectOK(t, b.Addr, sp)
	s.sub("q1s/t", 1)
	p := client(t, b, "spec311-q1s-pub")
	ids := map[uint16]string{}
	for i := range 3 {
		p.publish("q1s/t", fmt.Sprint(i), 1, false)
		m := s.expectPublish("q1s/t", fmt.Sprint(i))
		if m.QoS != 1 || m.Dup || m.PacketID == 0 {
			t.Fatalf("first sending %s, want QoS 1, DUP 0, non-zero id [MQTT-4.3.2-1]", describe(m))
		}
		if prev, dup := ids[m.PacketID]; dup {
			t.Fatalf("identifier %d of message %d reused while %q is unacknowledged [MQTT-2.3.1-4]", m.PacketID, i, prev)
		}
		ids[m.PacketID] = fmt.Sprint(i)
	}
	s.nc.Close()
	b.waitOffline(t, "spec311-q1s")
	s, _ = connectOK(t, b.Addr, sp)
	for i := range 3 {
		m := s.expectPublish("q1s/t", fmt.Sprint(i))
		if !m.Dup || ids[m.PacketID] != fmt.Sprint(i) {
			t.Fatalf("re-sent %s, want DUP 1 and the original identifier [MQTT-4.3.2-1]", describe(m))
		}
		s.ack(m)
	}
	s.sync()
	s.nc.Close()
	b.waitOffline(t, "spec311-q1s")
	s, _ = connectOK(t, b.Addr, sp)
	s.sync() // acknowledged messages are not sent again
}

// The server as QoS 1 receiver: PUBACK with the PUBLISH's identifier, and
// after the PUBACK a PUBLISH with the same identifier is a new message,
// DUP 1 or not [MQTT-4.3.2-2].
func TestSpec311QoS1Receiver_MQTT_4_3_2_2(t *testing.T) {
	b := runBroker(t, testOptions())
	s := client(t, b, "spec311-q1r-sub")
	s.sub("q1r/t", 0)
	p := client(t, b, "spec311-q1r-pub")
	for i, dup := range []bool{false, true, true} {
		p.send(&packet.Publish{Topic: "q1r/t", Payload: []byte(fmt.Sprint(i)), QoS: 1, PacketID: 9, Dup: dup})
		if ack := expectPacket[*packet.Puback](p); ack.PacketID != 9 {
			t.Fatalf("PUBACK id %d, want 9 [MQTT-4.3.2-2]", ack.PacketID)
		}
		s.expectPublish("q1r/t", fmt.Sprint(i))
	}
}

// A message the server takes ownership of goes into the session of every
// matching subscriber, connected or not [MQTT-4.5.0-1].
func TestSpec311EveryMatchingSession_MQTT_4_5_0_1(t *testing.T) {
	b := runBroker(t, testOptions())
	off := connectPacket("spec311-own-off")
	off.CleanStart = false
	o, _ := connectOK(t, b.Addr, off)
	o.sub("own/+", 1)
	o.nc.Close()
	b.waitOffline(t, "spec311-own-off")
	s1 := client(t, b, "spec311-own-1")
	s1.sub("own/#", 1)
	s2 := client(t, b, "spec311-own-2")
	s2.sub("own/t", 0)
	p := client(t, b, "spec311-own-pub")
	p.publish("own/t", "m", 1, false)
	s1.ack(s1.expectPublish("own/t", "m"))
	s2.expectPublish("own/t", "m")
	o, _ = connectOK(t, b.Addr, off)
	o.ack(o.expectPublish("own/t", "m"))
}

// Topics are ordered by default: one publisher's messages on a topic reach
// each subscriber in the order sent, at each QoS [MQTT-4.6.0-5]
// [MQTT-4.6.0-6]. The byte stream is TCP, ordered and lossless both ways
// [MQTT-7.1.1-1].
func TestSpec311OrderedTopics_MQTT_4_6_0_5(t *testing.T) {
	b := runBroker(t, testOptions())
	s := client(t, b, "spec311-order-sub")
	s.sub("order/t", 2)
	p := client(t, b, "spec311-order-pub")
	const n = 30
	var batch []packet.Packet
	for i := range n {
		q := byte(i % 3)
		pk := &packet.Publish{Topic: "order/t", Payload: []byte(fmt.Sprint(i)), QoS: q}
		if q > 0 {
			pk.PacketID = p.id()
		}
		batch = append(batch, pk)
	}
	p.send(batch...)
	for range n {
		switch a := p.expect().(type) {
		case *packet.Pubrec:
			p.send(&packet.Pubrel{PacketID: a.PacketID})
		}
	}
	next := map[byte]int{0: 0, 1: 1, 2: 2}
	for _, m := range specReceive(s, n) {
		if string(m.Payload) != fmt.Sprint(next[m.QoS]) {
			t.Fatalf("QoS %d message %q arrived, want %d next [MQTT-4.6.0-6]", m.QoS, m.Payload, next[m.QoS])
		}
		next[m.QoS] += 3
	}
}

// specReceive reads n PUBLISH packets, acknowledging each as its QoS asks
// while more keep arriving (PUBACK; PUBREC, then PUBCOMP for the PUBREL),
// and returns them in arrival order.
func specReceive(c *rawClient, n int) []*packet.Publish {
	c.t.Helper()
	var got []*packet.Publish
	for len(got) < n {
		switch p := c.expect().(type) {
		case *packet.Publish:
			got = append(got, p)
			switch p.QoS {
			case 1:
				c.send(&packet.Puback{PacketID: p.PacketID})
			case 2:
				c.send(&packet.Pubrec{PacketID: p.PacketID})
			}
		case *packet.Pubrel:
			c.send(&packet.Pubcomp{PacketID: p.PacketID})
		default:
			c.t.Fatalf("got %s %s, want PUBLISH", p.Type(), describe(p))
		}
	}
	return got
}
