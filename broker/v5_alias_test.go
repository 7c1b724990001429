package broker_test

import (
	"testing"

	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/extensions/topicaliases"

	"github.com/gannet-mqtt/gannet/packet"
)

// v5Aliased returns a QoS 0 PUBLISH with a Topic Alias.
func v5Aliased(topic, payload string, alias uint16) *packet.Publish {
	p := &packet.Publish{Topic: topic, Payload: []byte(payload)}
	p.Properties.SetUint(packet.PropTopicAlias, uint32(alias))
	return p
}

// [MQTT-3.3.2-12] [MQTT-3.3.2-10]: the broker accepts every alias from 1 to
// the Topic Alias Maximum it announced: a PUBLISH with a topic and an alias
// sets the mapping (or changes it), one with an empty topic uses it.
// Mappings belong to one network connection [MQTT-3.3.2-7].
func TestV5TopicAliasInbound_MQTT_3_3_2_12(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.TopicAliasMaximum = 4
	b := runBroker(t, opts)
	sub := v5Client(t, b, "sub")
	sub.v5Sub(0, packet.Subscription{Filter: "al/#", QoS: 0})

	pub, ack := v5ConnectOK(t, b.Addr, v5Connect("pub"))
	if !ack.Properties.Has(packet.PropTopicAliasMaximum) || ack.Properties.TopicAliasMaximum != 4 {
		t.Fatalf("CONNACK Topic Alias Maximum %d (present %v), want 4", ack.Properties.TopicAliasMaximum, ack.Properties.Has(packet.PropTopicAliasMaximum))
	}
	steps := []struct {
		sent  *packet.Publish
		topic string
	}{
		{v5Aliased("al/one", "1", 1), "al/one"},
		{v5Aliased("", "2", 1), "al/one"},
		{v5Aliased("al/two", "3", 1), "al/two"}, // remapped
		{v5Aliased("", "4", 1), "al/two"},
		{v5Aliased("al/four", "5", 4), "al/four"}, // the maximum itself
		{v5Aliased("", "6", 4), "al/four"},
		{v5Aliased("", "7", 1), "al/two"},
	}
	for _, s := range steps {
		pub.send(s.sent)
		m := sub.expectPublish(s.topic, string(s.sent.Payload))
		if m.Properties.Has(packet.PropTopicAlias) {
			t.Errorf("alias forwarded to a subscriber without Topic Alias Maximum [MQTT-3.1.2-27]")
		}
	}
	// QoS 1 and 2 use the same mappings.
	p := v5Aliased("", "8", 4)
	p.QoS = 1
	if rc := pub.v5Publish(p); rc != packet.Success {
		t.Errorf("QoS 1 by alias: PUBACK %#x", byte(rc))
	}
	sub.expectPublish("al/four", "8")
	pub.send(&packet.Disconnect{})

	// A new connection starts with no mappings [MQTT-3.3.2-7].
	again := v5Client(t, b, "pub")
	again.send(v5Aliased("", "9", 1))
	again.v5ExpectDisconnect(packet.ProtocolError)

	// paho's topic alias extension: the second PUBLISH carries only the alias.
	ta := topicaliases.NewTAHandler(4)
	pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho-pub"), func(cfg *paho.ClientConfig) { cfg.PublishHook = ta.PublishHook })
	for _, payload := range []string{"p1", "p2", "p3"} {
		pc.pub(t, &paho.Publish{Topic: "al/paho", QoS: 1, Payload: []byte(payload)})
		sub.expectPublish("al/paho", payload)
	}
	if ta.GetAlias("al/paho") == 0 {
		t.Errorf("paho assigned no alias: the test did not exercise aliases")
	}
	sub.v5ExpectNothing()
}

// 5.0 3.3.2.3.4: Topic Alias 0 or above the broker's maximum is answered
// with DISCONNECT 0x94 (Topic Alias invalid) [MQTT-3.3.2-8]; an empty topic
// with an alias that has no mapping, or with no alias at all, with 0x82
// (Protocol Error). Nothing is delivered.
func TestV5TopicAliasInvalid_MQTT_3_3_2_8(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.TopicAliasMaximum = 3
	b := runBroker(t, opts)
	noAlias := opts
	noAlias.TopicAliasMaximum = 0
	bNone := runBroker(t, noAlias)
	for _, tc := range []struct {
		name string
		b    *testBroker
		p    *packet.Publish
		rc   packet.ReasonCode
	}{
		{"alias 0", b, v5Aliased("inv/a", "x", 0), packet.TopicAliasInvalid},
		{"alias above maximum", b, v5Aliased("inv/a", "x", 4), packet.TopicAliasInvalid},
		{"alias when maximum is 0", bNone, v5Aliased("inv/a", "x", 1), packet.TopicAliasInvalid},
		{"unknown alias, empty topic", b, v5Aliased("", "x", 2), packet.ProtocolError},
		{"empty topic, no alias", b, &packet.Publish{Payload: []byte("x")}, packet.ProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sub := v5Client(t, tc.b, v5ID("sub"))
			sub.v5Sub(0, packet.Subscription{Filter: "inv/#", QoS: 0})
			c := v5Client(t, tc.b, v5ID("bad"))
			c.send(tc.p)
			c.v5ExpectDisconnect(tc.rc)
			sub.v5ExpectNothing()
		})
	}
}

// v5AliasView resolves the topic aliases a client receives, as a client
// must, and checks them against the maximum it announced.
type v5AliasView struct {
	t       *testing.T
	max     uint16
	mapping map[uint16]string
}

// resolve returns the topic of p, applying and checking its alias
// [MQTT-3.1.2-26] [MQTT-3.3.2-11] [MQTT-3.3.2-8].
func (v *v5AliasView) resolve(p *packet.Publish) string {
	v.t.Helper()
	if !p.Properties.Has(packet.PropTopicAlias) {
		if p.Topic == "" {
			v.t.Fatalf("PUBLISH with an empty topic and no alias")
		}
		return p.Topic
	}
	a := p.Properties.TopicAlias
	if a == 0 || a > v.max {
		v.t.Fatalf("broker sent Topic Alias %d, client maximum %d [MQTT-3.3.2-11]", a, v.max)
	}
	if p.Topic != "" {
		v.mapping[a] = p.Topic
		return p.Topic
	}
	topic, ok := v.mapping[a]
	if !ok {
		v.t.Fatalf("broker used Topic Alias %d before mapping it", a)
	}
	return topic
}

// [MQTT-3.1.2-26] [MQTT-3.3.2-11]: to a client that announced a Topic Alias
// Maximum the broker sends a topic with a new alias, then that alias with
// an empty topic; it never uses more aliases than the client allows, and
// starts over on a new connection [MQTT-3.3.2-7].
func TestV5TopicAliasOutbound_MQTT_3_1_2_26(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := v5Client(t, b, "pub")
	const id = "v5-alias-out"
	connect := func() (*rawClient, *v5AliasView) {
		p := v5Persistent(id, false, 60)
		p.Properties.SetUint(packet.PropTopicAliasMaximum, 2)
		c, _ := v5ConnectOK(t, b.Addr, p)
		return c, &v5AliasView{t: t, max: 2, mapping: map[uint16]string{}}
	}
	sub, view := connect()
	sub.v5Sub(0, packet.Subscription{Filter: "ao/#", QoS: 1})

	for i, topic := range []string{"ao/a", "ao/a", "ao/b", "ao/c", "ao/b", "ao/a", "ao/c", "ao/a"} {
		payload := string(rune('0' + i))
		pub.v5Pub(topic, payload, byte(i%2), false)
		m := expectPacket[*packet.Publish](sub)
		if got := view.resolve(m); got != topic || string(m.Payload) != payload {
			t.Fatalf("message %d: resolved topic %q payload %q, want %q %q", i, got, m.Payload, topic, payload)
		}
		switch {
		case i == 0 && (m.Topic != "ao/a" || !m.Properties.Has(packet.PropTopicAlias)):
			t.Errorf("first message: topic %q, alias present %v; want the topic with a new alias", m.Topic, m.Properties.Has(packet.PropTopicAlias))
		case i == 1 && (m.Topic != "" || !m.Properties.Has(packet.PropTopicAlias)):
			t.Errorf("second message to the same topic: topic %q, alias present %v; want an empty topic and the alias", m.Topic, m.Properties.Has(packet.PropTopicAlias))
		}
		sub.ack(m)
	}
	sub.v5ExpectNothing()

	// A new connection: mappings start over, so the topic is sent again.
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, id)
	sub, view = connect()
	pub.v5Pub("ao/a", "again", 1, false)
	m := expectPacket[*packet.Publish](sub)
	if m.Topic != "ao/a" {
		t.Errorf("first message on a new connection has topic %q, want \"ao/a\" [MQTT-3.3.2-7]", m.Topic)
	}
	view.resolve(m)
	sub.ack(m)

	// paho with Topic Alias Maximum 5 sees the alias, then the empty topic.
	cp := v5PahoConnect("paho-sub")
	cp.Properties = &paho.ConnectProperties{TopicAliasMaximum: paho.Uint16(5)}
	pc, _ := v5Paho(t, b.Addr, cp, nil)
	pc.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "pa/x", QoS: 1}}})
	pub.v5Pub("pa/x", "1", 1, false)
	pub.v5Pub("pa/x", "2", 1, false)
	m1, m2 := pc.next(t), pc.next(t)
	if m1.Topic != "pa/x" || m1.Properties == nil || m1.Properties.TopicAlias == nil {
		t.Errorf("paho first message: topic %q properties %+v, want the topic and an alias", m1.Topic, m1.Properties)
	} else if m2.Topic != "" || m2.Properties == nil || m2.Properties.TopicAlias == nil || *m2.Properties.TopicAlias != *m1.Properties.TopicAlias {
		t.Errorf("paho second message: topic %q properties %+v, want only alias %d", m2.Topic, m2.Properties, *m1.Properties.TopicAlias)
	}
}

// [MQTT-3.1.2-27]: a client that announced no Topic Alias Maximum, or 0,
// never receives a Topic Alias.
func TestV5TopicAliasNoneWithoutMaximum_MQTT_3_1_2_27(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := v5Client(t, b, "pub")
	absent := v5Client(t, b, "absent")
	p := v5Connect("zero")
	p.Properties.SetUint(packet.PropTopicAliasMaximum, 0)
	zero, _ := v5ConnectOK(t, b.Addr, p)
	for _, c := range []*rawClient{absent, zero} {
		c.v5Sub(0, packet.Subscription{Filter: "na/#", QoS: 1})
	}
	for i := range 5 {
		pub.v5Pub("na/same", "x", byte(i%2), false)
		for _, c := range []*rawClient{absent, zero} {
			m := c.expectPublish("na/same", "x")
			if m.Properties.Has(packet.PropTopicAlias) {
				t.Fatalf("message %d carries Topic Alias %d [MQTT-3.1.2-27]", i, m.Properties.TopicAlias)
			}
			c.ack(m)
		}
	}
}
