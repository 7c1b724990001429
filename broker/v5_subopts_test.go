package broker_test

import (
	"slices"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// [MQTT-3.8.3-3]: with No Local, a client's own messages are not sent back
// to it on that subscription; other clients' messages are. An overlapping
// subscription without No Local still delivers (one copy). No Local on a
// shared subscription is a Protocol Error [MQTT-3.8.3-4].
func TestV5NoLocal_MQTT_3_8_3_3(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	self := v5Client(t, b, "self")
	self.v5Sub(0, packet.Subscription{Filter: "nl/#", QoS: 1, NoLocal: true})
	other := v5Client(t, b, "other")
	other.v5Sub(0, packet.Subscription{Filter: "nl/#", QoS: 1})

	self.v5Pub("nl/a", "mine", 1, false)
	other.ack(other.expectPublish("nl/a", "mine"))
	self.v5ExpectNothing()
	other.v5Pub("nl/b", "theirs", 0, false)
	self.expectPublish("nl/b", "theirs")
	other.expectPublish("nl/b", "theirs")

	// An overlapping subscription without No Local delivers it, once.
	self.v5Sub(0, packet.Subscription{Filter: "nl/+", QoS: 0})
	self.v5Pub("nl/c", "mine again", 0, false)
	self.expectPublish("nl/c", "mine again")
	other.expectPublish("nl/c", "mine again")
	self.v5ExpectNothing()

	// paho with No Local.
	pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho-nl"), nil)
	pc.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "pnl", QoS: 1, NoLocal: true}}})
	pc.pub(t, &paho.Publish{Topic: "pnl", QoS: 1, Payload: []byte("own")})
	other.v5Pub("pnl", "foreign", 1, false)
	if m := pc.next(t); string(m.Payload) != "foreign" {
		t.Errorf("paho with No Local received %q, want only \"foreign\"", m.Payload)
	}

	bad := v5Client(t, b, "bad")
	bad.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "$share/g/nl", QoS: 1, NoLocal: true}}})
	bad.v5ExpectDisconnect(packet.ProtocolError)
}

// [MQTT-3.3.1-12] [MQTT-3.3.1-13]: with Retain As Published 0 forwarded
// copies carry RETAIN 0; with 1 they carry the flag as published. Retained
// messages sent because of a new subscription carry RETAIN 1 either way.
func TestV5RetainAsPublished_MQTT_3_3_1_12_MQTT_3_3_1_13(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	rap := v5Client(t, b, "rap")
	rap.v5Sub(0, packet.Subscription{Filter: "rap/#", QoS: 1, RetainAsPublished: true})
	plain := v5Client(t, b, "plain")
	plain.v5Sub(0, packet.Subscription{Filter: "rap/#", QoS: 1})
	pub := v5Client(t, b, "pub")
	for _, retain := range []bool{true, false} {
		pub.v5Pub("rap/x", "m", 1, retain)
		if m := rap.expectPublish("rap/x", "m"); m.Retain != retain {
			t.Errorf("Retain As Published 1, published RETAIN %v: forwarded RETAIN %v [MQTT-3.3.1-13]", retain, m.Retain)
		} else {
			rap.ack(m)
		}
		if m := plain.expectPublish("rap/x", "m"); m.Retain {
			t.Errorf("Retain As Published 0, published RETAIN %v: forwarded RETAIN 1 [MQTT-3.3.1-12]", retain)
		} else {
			plain.ack(m)
		}
	}
	// Retained on subscribe: RETAIN 1 for both [MQTT-3.3.1-9].
	for _, rap := range []bool{true, false} {
		c := v5Client(t, b, v5ID("late"))
		c.v5Sub(0, packet.Subscription{Filter: "rap/#", QoS: 1, RetainAsPublished: rap})
		if m := c.expectPublish("rap/x", "m"); !m.Retain {
			t.Errorf("retained message on a new subscription (RAP %v) with RETAIN 0", rap)
		}
	}

	pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho-rap"), nil)
	pc.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "prap", QoS: 1, RetainAsPublished: true, RetainHandling: 2}}})
	pub.v5Pub("prap", "r", 1, true)
	if m := pc.next(t); !m.Retain {
		t.Errorf("paho with Retain As Published got RETAIN 0 [MQTT-3.3.1-13]")
	}
}

// [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] [MQTT-3.8.4-4]: Retain
// Handling 0 sends the retained messages on every SUBSCRIBE, a repeated one
// included; 1 only when the subscription did not exist; 2 never.
func TestV5RetainHandling_MQTT_3_3_1_9_MQTT_3_3_1_10_MQTT_3_3_1_11(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := v5Client(t, b, "pub")
	pub.v5Pub("rh/a", "kept", 1, true)
	for _, tc := range []struct {
		handling byte
		want     []bool // retained received on: first SUBSCRIBE, repeated, after UNSUBSCRIBE
	}{
		{0, []bool{true, true, true}},
		{1, []bool{true, false, true}},
		{2, []bool{false, false, false}},
	} {
		c := v5Client(t, b, v5ID("rh"))
		sub := packet.Subscription{Filter: "rh/#", QoS: 1, RetainHandling: tc.handling}
		for i, want := range tc.want {
			if i == 2 {
				c.send(&packet.Unsubscribe{PacketID: c.id(), Filters: []string{"rh/#"}})
				expectPacket[*packet.Unsuback](c)
			}
			c.v5Sub(0, sub)
			if want {
				m := c.expectPublish("rh/a", "kept")
				if !m.Retain {
					t.Errorf("Retain Handling %d: RETAIN 0 on a retained message", tc.handling)
				}
				c.ack(m)
			}
			c.v5ExpectNothing()
		}
		// Live messages flow whatever the handling.
		pub.v5Pub("rh/a", "live", 0, false)
		c.expectPublish("rh/a", "live")
	}
}

// v5IDs returns the Subscription Identifiers of p, sorted.
func v5IDs(p *packet.Publish) []uint32 {
	ids := slices.Clone(p.Properties.SubscriptionIDs)
	slices.Sort(ids)
	return ids
}

// [MQTT-3.3.4-3] [MQTT-3.3.4-4]: a message sent because of subscriptions
// with Subscription Identifiers carries them; when several of a client's
// subscriptions match, the single copy carries all their identifiers.
// Retained messages sent on subscribe and queued messages carry them too;
// re-subscribing without one removes it.
func TestV5SubscriptionIdentifiers_MQTT_3_3_4_3_MQTT_3_3_4_4(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := v5Client(t, b, "pub")
	pub.v5Pub("si-ret/r", "retained", 1, true)
	const id = "v5-subid"
	c, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 60))
	c.v5Sub(5, packet.Subscription{Filter: "si/+", QoS: 1})
	c.v5Sub(7, packet.Subscription{Filter: "si/#", QoS: 2})
	c.v5Sub(0, packet.Subscription{Filter: "si/x", QoS: 0})
	c.v5Sub(268435455, packet.Subscription{Filter: "si-ret/#", QoS: 1})
	m := c.expectPublish("si-ret/r", "retained")
	if got := v5IDs(m); !slices.Equal(got, []uint32{268435455}) {
		t.Errorf("retained message on subscribe: identifiers %v, want [268435455]", got)
	}
	c.ack(m)

	check := func(topic string, want ...uint32) {
		t.Helper()
		pub.v5Pub(topic, "m", 2, false)
		m := c.expectPublish(topic, "m") // one copy [MQTT-3.3.4-2]
		if got := v5IDs(m); !slices.Equal(got, want) {
			t.Errorf("%s: identifiers %v, want %v", topic, got, want)
		}
		c.ack(m)
		c.v5ExpectNothing()
	}
	check("si/x", 5, 7) // three subscriptions, two with identifiers
	check("si/y", 5, 7)
	check("si/y/z", 7)
	check("si", 7)

	// Queued while offline: the identifiers are kept.
	c.v5Leave(b, id, nil)
	pub.v5Pub("si/q", "queued", 1, false)
	c, _ = v5Reconnect(t, b, id, 60)
	m = c.expectPublish("si/q", "queued")
	if got := v5IDs(m); !slices.Equal(got, []uint32{5, 7}) {
		t.Errorf("queued message: identifiers %v, want [5 7]", got)
	}
	c.ack(m)

	// Replacing a subscription replaces its identifier [MQTT-3.8.4-3].
	c.v5Sub(0, packet.Subscription{Filter: "si/#", QoS: 2})
	check("si/y/z")
	check("si/x", 5)

	// paho reads an identifier.
	pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho-si"), nil)
	sid := 42
	pc.sub(t, &paho.Subscribe{Properties: &paho.SubscribeProperties{SubscriptionIdentifier: &sid},
		Subscriptions: []paho.SubscribeOptions{{Topic: "psi", QoS: 1}}})
	pub.v5Pub("psi", "p", 1, false)
	if m := pc.next(t); m.Properties == nil || m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != 42 {
		t.Errorf("paho: subscription identifier %v, want 42", m.Properties)
	}
}
