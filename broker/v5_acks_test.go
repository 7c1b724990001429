package broker_test

import (
	"slices"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// 5.0 3.4.2.1, 3.5.2.1: a QoS 1 or 2 PUBLISH that no subscription matches
// is acknowledged with 0x10 (No matching subscribers); one that reaches a
// subscriber with 0x00 [MQTT-3.4.2-1] [MQTT-3.5.2-1].
func TestV5PubackNoMatchingSubscribers_MQTT_3_4_2_1(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := v5Client(t, b, "pub")
	for _, qos := range []byte{1, 2} {
		if rc := pub.v5Pub("nobody/here", "x", qos, false); rc != packet.NoMatchingSubscribers {
			t.Errorf("QoS %d to no subscriber: ack %s (%#x), want 0x10", qos, rc, byte(rc))
		}
	}
	sub := v5Client(t, b, "sub")
	sub.v5Sub(0, packet.Subscription{Filter: "somebody/+", QoS: 0})
	for _, qos := range []byte{1, 2} {
		if rc := pub.v5Pub("somebody/here", "x", qos, false); rc != packet.Success {
			t.Errorf("QoS %d to a subscriber: ack %s (%#x), want 0x00", qos, rc, byte(rc))
		}
		sub.expectPublish("somebody/here", "x")
	}
	// A retained message is stored, but still reaches no subscriber: 0x10.
	if rc := pub.v5Pub("nobody/retained", "x", 1, true); rc != packet.NoMatchingSubscribers {
		t.Errorf("retained QoS 1 to no subscriber: PUBACK %#x, want 0x10", byte(rc))
	}

	// paho sees the same codes.
	pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho-pub"), nil)
	if rc := pc.pub(t, &paho.Publish{Topic: "nobody/paho", QoS: 1, Payload: []byte("x")}); rc != byte(packet.NoMatchingSubscribers) {
		t.Errorf("paho: PUBACK %#x, want 0x10", rc)
	}
	if rc := pc.pub(t, &paho.Publish{Topic: "somebody/paho", QoS: 2, Payload: []byte("x")}); rc != 0 {
		t.Errorf("paho: PUBREC %#x, want 0x00", rc)
	}
	sub.expectPublish("somebody/paho", "x")
}

// [MQTT-3.8.4-7] [MQTT-3.9.3-1] [MQTT-3.9.3-2] [MQTT-3.2.2-10]: SUBACK holds,
// in order, the granted QoS (capped by Options.MaximumQoS) or the failure
// code of each filter: 0xA2 for a wildcard when
// Options.WildcardSubscriptions is off, 0x9E for $share when
// Options.SharedSubscriptions is off. A refused filter subscribes nothing.
func TestV5SubackReasonCodes_MQTT_3_9_3_1(t *testing.T) {
	t.Parallel()
	t.Run("granted", func(t *testing.T) {
		t.Parallel()
		b := runBroker(t, testOptions())
		c := v5Client(t, b, "c")
		got := c.v5Subscribe(0,
			packet.Subscription{Filter: "g/0", QoS: 0},
			packet.Subscription{Filter: "g/1", QoS: 1},
			packet.Subscription{Filter: "g/2", QoS: 2},
			packet.Subscription{Filter: "$share/grp/g/+", QoS: 2},
			packet.Subscription{Filter: "g/#", QoS: 1})
		want := []packet.ReasonCode{0, 1, 2, 2, 1}
		if !slices.Equal(got, want) {
			t.Errorf("SUBACK %v, want %v", got, want)
		}
		pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho"), nil)
		pc.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "p/2", QoS: 2}, {Topic: "p/0", QoS: 0}}})
	})
	t.Run("maximum QoS 1", func(t *testing.T) {
		t.Parallel()
		opts := testOptions()
		opts.MaximumQoS = 1
		b := runBroker(t, opts)
		c := v5Client(t, b, "c")
		got := c.v5Subscribe(0,
			packet.Subscription{Filter: "m/2", QoS: 2},
			packet.Subscription{Filter: "m/0", QoS: 0},
			packet.Subscription{Filter: "m/1", QoS: 1})
		if want := []packet.ReasonCode{1, 0, 1}; !slices.Equal(got, want) {
			t.Errorf("SUBACK %v, want %v [MQTT-3.2.2-10]", got, want)
		}
	})
	t.Run("wildcards off", func(t *testing.T) {
		t.Parallel()
		opts := testOptions()
		opts.WildcardSubscriptions = false
		b := runBroker(t, opts)
		c := v5Client(t, b, "c")
		got := c.v5Subscribe(0,
			packet.Subscription{Filter: "w/+", QoS: 1},
			packet.Subscription{Filter: "w/plain", QoS: 1},
			packet.Subscription{Filter: "#", QoS: 0},
			packet.Subscription{Filter: "$share/g/w/#", QoS: 1})
		want := []packet.ReasonCode{packet.WildcardSubscriptionsNotSupported, 1,
			packet.WildcardSubscriptionsNotSupported, packet.WildcardSubscriptionsNotSupported}
		if !slices.Equal(got, want) {
			t.Errorf("SUBACK %v, want %v", got, want)
		}
		pub := v5Client(t, b, "pub")
		if rc := pub.v5Pub("w/other", "x", 1, false); rc != packet.NoMatchingSubscribers {
			t.Errorf("PUBACK %#x: a refused wildcard filter was subscribed", byte(rc))
		}
		pub.v5Pub("w/plain", "x", 1, false)
		c.expectPublish("w/plain", "x")
	})
	t.Run("shared off", func(t *testing.T) {
		t.Parallel()
		opts := testOptions()
		opts.SharedSubscriptions = false
		b := runBroker(t, opts)
		c := v5Client(t, b, "c")
		got := c.v5Subscribe(0,
			packet.Subscription{Filter: "$share/g/s", QoS: 1},
			packet.Subscription{Filter: "s/+", QoS: 2})
		if want := []packet.ReasonCode{packet.SharedSubscriptionsNotSupported, 2}; !slices.Equal(got, want) {
			t.Errorf("SUBACK %v, want %v", got, want)
		}
		pub := v5Client(t, b, "pub")
		if rc := pub.v5Pub("s", "x", 1, false); rc != packet.NoMatchingSubscribers {
			t.Errorf("PUBACK %#x: a refused shared filter was subscribed", byte(rc))
		}
	})
	t.Run("subscription identifiers off", func(t *testing.T) {
		t.Parallel()
		opts := testOptions()
		opts.SubscriptionIdentifiers = false
		b := runBroker(t, opts)
		c := v5Client(t, b, "c")
		c.send(&packet.Subscribe{PacketID: 1, Properties: packet.Properties{SubscriptionIDs: []uint32{3}},
			Subscriptions: []packet.Subscription{{Filter: "i", QoS: 1}}})
		c.v5ExpectDisconnect(packet.SubscriptionIdentifiersNotSupported) // 5.0 3.2.2.3.12
	})
}

// [MQTT-3.11.3-1] [MQTT-3.11.3-2] [MQTT-3.10.4-5]: UNSUBACK holds 0x00 for
// each filter that was subscribed and is now removed, 0x11 (No
// subscription existed) for the others, in order.
func TestV5UnsubackReasonCodes_MQTT_3_11_3_1(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := v5Client(t, b, "c")
	c.v5Sub(0, packet.Subscription{Filter: "u/a", QoS: 1})
	c.v5Sub(0, packet.Subscription{Filter: "$share/g/u/b", QoS: 1})
	c.v5Sub(0, packet.Subscription{Filter: "u/#", QoS: 0})
	unsub := func(filters ...string) []packet.ReasonCode {
		t.Helper()
		id := c.id()
		c.send(&packet.Unsubscribe{PacketID: id, Filters: filters})
		ack := expectPacket[*packet.Unsuback](c)
		if ack.PacketID != id {
			t.Fatalf("UNSUBACK id %d, want %d", ack.PacketID, id)
		}
		return ack.ReasonCodes
	}
	got := unsub("u/a", "u/never", "$share/g/u/b", "u/+")
	want := []packet.ReasonCode{packet.Success, packet.NoSubscriptionExisted, packet.Success, packet.NoSubscriptionExisted}
	if !slices.Equal(got, want) {
		t.Errorf("UNSUBACK %v, want %v", got, want)
	}
	if got := unsub("u/a", "u/#"); !slices.Equal(got, []packet.ReasonCode{packet.NoSubscriptionExisted, packet.Success}) {
		t.Errorf("second UNSUBACK %v, want [0x11 0x00]", got)
	}
	pub := v5Client(t, b, "pub")
	if rc := pub.v5Pub("u/a", "x", 1, false); rc != packet.NoMatchingSubscribers {
		t.Errorf("PUBACK %#x after every filter was removed, want 0x10", byte(rc))
	}
}

// 5.0 3.3.2.3.2 [MQTT-3.5.2-1]: a PUBLISH with Payload Format Indicator 1
// whose payload is not UTF-8 is refused (Options.ValidatePayloadFormat):
// PUBREC or PUBACK 0x99 and not delivered; its packet identifier is free
// again [MQTT-4.3.3-9]. At QoS 0 there is no ack: DISCONNECT 0x99.
func TestV5PubrecPayloadFormatInvalid_MQTT_3_5_2_1(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub := v5Client(t, b, "sub")
	sub.v5Sub(0, packet.Subscription{Filter: "pfi", QoS: 2})
	pub := v5Client(t, b, "pub")
	bad := func(qos byte, id uint16) *packet.Publish {
		p := &packet.Publish{Topic: "pfi", Payload: []byte{'o', 'k', 0xff, 0xfe}, QoS: qos, PacketID: id}
		p.Properties.SetUint(packet.PropPayloadFormat, 1)
		return p
	}
	if rc := pub.v5Publish(bad(2, 9)); rc != packet.PayloadFormatInvalid {
		t.Errorf("QoS 2: PUBREC %s (%#x), want 0x99", rc, byte(rc))
	}
	if rc := pub.v5Publish(bad(1, 10)); rc != packet.PayloadFormatInvalid {
		t.Errorf("QoS 1: PUBACK %s (%#x), want 0x99", rc, byte(rc))
	}
	sub.v5ExpectNothing()

	// Identifier 9 is new again: a valid message with it is delivered.
	good := bad(2, 9)
	good.Payload = []byte("ok ✓")
	if rc := pub.v5Publish(good); rc != packet.Success {
		t.Errorf("valid UTF-8 with the refused identifier: PUBREC %#x, want 0x00", byte(rc))
	}
	m := sub.expectPublish("pfi", "ok ✓")
	sub.ack(m)
	// Indicator 0 (bytes): any payload goes through.
	bin := bad(1, 0)
	bin.Properties.PayloadFormat = 0
	pub.v5Publish(bin)
	m = sub.expectPublish("pfi", "ok\xff\xfe")
	sub.ack(m)

	pub.send(bad(0, 0))
	pub.v5ExpectDisconnect(packet.PayloadFormatInvalid)
	sub.v5ExpectNothing()
}

// [MQTT-4.3.3-11] [MQTT-3.7.2-1]: a PUBREL for an identifier the broker is
// not holding is answered with PUBCOMP 0x92 (Packet Identifier not found),
// and the connection carries on.
func TestV5PubcompPacketIdentifierNotFound_MQTT_3_7_2_1(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := v5Client(t, b, "c")
	c.send(&packet.Pubrel{PacketID: 77})
	comp := expectPacket[*packet.Pubcomp](c)
	if comp.PacketID != 77 || comp.ReasonCode != packet.PacketIdentifierNotFound {
		t.Errorf("PUBCOMP id %d %s (%#x), want id 77, 0x92", comp.PacketID, comp.ReasonCode, byte(comp.ReasonCode))
	}
	// After a completed exchange the identifier is unknown again.
	c.v5Pub("x", "y", 2, false)
	c.send(&packet.Pubrel{PacketID: c.LastID()})
	if comp := expectPacket[*packet.Pubcomp](c); comp.ReasonCode != packet.PacketIdentifierNotFound {
		t.Errorf("second PUBREL: PUBCOMP %#x, want 0x92", byte(comp.ReasonCode))
	}
	c.sync()
}
