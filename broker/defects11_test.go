package broker_test

// Protocol defects of issue 11, each with a test that failed before its fix.

import (
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// wrongAckSetup connects a persistent 5.0 subscriber id on filter at qos,
// publishes one message to it and returns the subscriber and the PUBLISH
// it received.
func wrongAckSetup(t *testing.T, b *testBroker, id string, qos byte) (*rawClient, *packet.Publish) {
	t.Helper()
	sub, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 300))
	sub.v5Sub(0, packet.Subscription{Filter: "wrongack/" + id, QoS: qos})
	pub := v5Client(t, b, id+"-pub")
	pub.v5Pub("wrongack/"+id, "m", qos, false)
	got := sub.expectPublish("wrongack/"+id, "m")
	if got.QoS != qos {
		t.Fatalf("delivered at QoS %d, want %d", got.QoS, qos)
	}
	return sub, got
}

// Issue 11.1: a PUBACK does not complete an outgoing QoS 2 delivery: it is
// a protocol error (5.0 DISCONNECT 0x82), and the message stays
// unacknowledged until PUBREC, so the resumed session sends the PUBLISH
// again [MQTT-4.3.3-3] [MQTT-4.4.0-1].
func TestDefect11_1_PubackDoesNotCompleteQoS2(t *testing.T) {
	b := runBroker(t, testOptions())
	sub, got := wrongAckSetup(t, b, "wa-q2", 2)
	sub.send(&packet.Puback{PacketID: got.PacketID})
	sub.v5ExpectDisconnect(packet.ProtocolError)
	b.waitOffline(t, "wa-q2")

	again, ack := v5ConnectOK(t, b.Addr, v5Persistent("wa-q2", false, 300))
	if !ack.SessionPresent {
		t.Fatal("session not present after reconnect")
	}
	p := again.expectPublish("wrongack/wa-q2", "m") // the PUBLISH again [MQTT-4.3.3-3]
	if !p.Dup || p.PacketID != got.PacketID || p.QoS != 2 {
		t.Fatalf("resent %s, want DUP QoS 2 id %d", describe(p), got.PacketID)
	}
	again.ack(p)
	again.v5ExpectNothing()
}

// Issue 11.1: a PUBREC does not settle an outgoing QoS 1 delivery: no
// PUBREL answers it, and after a reconnect the PUBLISH (not a PUBREL) is
// sent again, until PUBACK [MQTT-4.3.2-3].
func TestDefect11_1_PubrecDoesNotSettleQoS1(t *testing.T) {
	b := runBroker(t, testOptions())
	sub, got := wrongAckSetup(t, b, "wa-q1", 1)
	sub.send(&packet.Pubrec{PacketID: got.PacketID})
	sub.v5ExpectDisconnect(packet.ProtocolError) // not PUBREL
	b.waitOffline(t, "wa-q1")

	again, _ := v5ConnectOK(t, b.Addr, v5Persistent("wa-q1", false, 300))
	p := again.expectPublish("wrongack/wa-q1", "m") // not PUBREL [MQTT-4.3.2-3]
	if !p.Dup || p.PacketID != got.PacketID || p.QoS != 1 {
		t.Fatalf("resent %s, want DUP QoS 1 id %d", describe(p), got.PacketID)
	}
	again.ack(p)
	again.v5ExpectNothing()
}

// Issue 11.1 for 3.1.1: the same wrong acknowledgements close the
// connection, and the resumed session sends the PUBLISH again.
func TestDefect11_1_WrongAckType311(t *testing.T) {
	b := runBroker(t, testOptions())
	for _, tc := range []struct {
		id    string
		qos   byte
		wrong func(id uint16) packet.Packet
	}{
		{"wa311-q2", 2, func(id uint16) packet.Packet { return &packet.Puback{PacketID: id} }},
		{"wa311-q1", 1, func(id uint16) packet.Packet { return &packet.Pubrec{PacketID: id} }},
	} {
		p := connectPacket(tc.id)
		p.CleanStart = false
		sub, _ := connectOK(t, b.Addr, p)
		sub.sub("wrongack/"+tc.id, tc.qos)
		pub := client(t, b, tc.id+"-pub")
		pub.publish("wrongack/"+tc.id, "m", tc.qos, false)
		got := sub.expectPublish("wrongack/"+tc.id, "m")
		sub.send(tc.wrong(got.PacketID))
		if extra := sub.expectClosed(waitFor); len(extra) > 0 {
			t.Fatalf("%s: got %s after a wrong acknowledgement, want the connection closed", tc.id, extra[0].Type())
		}
		b.waitOffline(t, tc.id)
		again, _ := connectOK(t, b.Addr, p)
		re := again.expectPublish("wrongack/"+tc.id, "m")
		if !re.Dup || re.PacketID != got.PacketID {
			t.Fatalf("%s: resent %s, want DUP id %d", tc.id, describe(re), got.PacketID)
		}
		again.ack(re)
		again.sync()
	}
}

// Issue 11.3: a new connection for the ClientID opened within the Will
// Delay Interval cancels the pending will, whatever its Clean Start
// [MQTT-3.1.2-8]: the will is neither published when the Clean Start
// connection ends the old session nor later, when the delay has passed.
// (This replaces TestV5WillPublishedWhenCleanStartEndsSession, which asked
// for the opposite.)
func TestDefect11_3_CleanStartCancelsDelayedWill_MQTT_3_1_2_8(t *testing.T) {
	b := runBroker(t, testOptions())
	watcher := v5Client(t, b, "wd-watch")
	watcher.v5Sub(0, packet.Subscription{Filter: "wills/#", QoS: 1})

	for _, live := range []bool{false, true} {
		p := v5Persistent("wd-leaver", true, 300)
		p.WillFlag = true
		p.Will = packet.Will{Topic: "wills/leaver", Payload: []byte("gone"), QoS: 1}
		p.Will.Properties.SetUint(packet.PropWillDelay, 1)
		c, _ := v5ConnectOK(t, b.Addr, p)
		if !live {
			c.nc.Close() // abnormal end: the will waits for its delay
			b.waitOffline(t, "wd-leaver")
		} // else: taken over while connected

		n, _ := v5ConnectOK(t, b.Addr, v5Persistent("wd-leaver", true, 0)) // Clean Start 1
		watcher.v5Quiet(1500 * time.Millisecond)                           // past the 1 s delay
		n.send(&packet.Disconnect{})
		b.waitOffline(t, "wd-leaver")
	}
	watcher.v5ExpectNothing()
}
