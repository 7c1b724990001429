package broker_test

import (
	"fmt"
	"testing"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/packet"
)

// v5VersionName names a protocol level for messages and topics.
func v5VersionName(v byte) string {
	return map[byte]string{packet.V31: "3.1", packet.V311: "3.1.1", packet.V5: "5.0"}[v]
}

// v5AnyVersion connects a raw client at protocol level v with Clean Start 1.
func v5AnyVersion(t *testing.T, b *testBroker, id string, v byte) *rawClient {
	t.Helper()
	if v == packet.V5 {
		return v5Client(t, b, id)
	}
	p := connectPacket(id)
	p.Version = v
	c, _ := connectOK(t, b.Addr, p)
	return c
}

// [MQTT-4.5.0-1] [MQTT-3.8.4-8]: messages flow between 3.1, 3.1.1 and 5.0
// clients in every direction at QoS 0, 1 and 2, each arriving at its
// published QoS (all subscriptions grant 2), with the same topic and
// payload, RETAIN 0 and DUP 0.
func TestV5MixedVersionsAllDirections(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	versions := []byte{packet.V31, packet.V311, packet.V5}
	subs := map[byte]*rawClient{}
	for _, v := range versions {
		subs[v] = v5AnyVersion(t, b, fmt.Sprintf("sub%d", v), v)
		subs[v].subscribe(packet.Subscription{Filter: "mix/#", QoS: 2})
	}
	type sent struct {
		topic, payload string
		qos            byte
	}
	var all []sent
	for _, v := range versions {
		pub := v5AnyVersion(t, b, fmt.Sprintf("pub%d", v), v)
		for qos := range byte(3) {
			s := sent{fmt.Sprintf("mix/%s/%d", v5VersionName(v), qos), fmt.Sprintf("from %s at QoS %d", v5VersionName(v), qos), qos}
			pub.publish(s.topic, s.payload, qos, false)
			pub.sync() // routed before the next publisher's message
			all = append(all, s)
		}
	}
	for _, v := range versions {
		c := subs[v]
		var got []*packet.Publish
		for _, s := range all {
			m := c.expectPublish(s.topic, s.payload)
			if m.QoS != s.qos || m.Retain || m.Dup {
				t.Errorf("%s subscriber: %s, want QoS %d, RETAIN 0, DUP 0", v5VersionName(v), describe(m), s.qos)
			}
			if v == packet.V5 && !m.Properties.Empty() {
				t.Errorf("5.0 subscriber: message from a property-less publish has properties %+v", m.Properties)
			}
			got = append(got, m)
		}
		for _, m := range got {
			c.ack(m)
		}
		c.sync()
	}
}

// A 3.1.1 (or 3.1) subscriber gets a 5.0 publish without its properties,
// topic alias resolved: topic, payload, QoS and the RETAIN rules are as for
// any other message (the 3.1.1 decoder would misread a payload with
// properties in front).
func TestV5ToV311WithoutProperties(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	v311 := client(t, b, "v311")
	v311.sub("strip/#", 2)
	v31 := v5AnyVersion(t, b, "v31", packet.V31)
	v31.sub("strip/#", 1)
	pm := pahoMessages(t, pahoClient(t, b.Addr, "paho311", 4, nil), "strip/#", 2, 10)

	pub := v5Client(t, b, "pub5")
	p := &packet.Publish{Topic: "strip/a", Payload: []byte("payload"), QoS: 2, Retain: true, Properties: v5RichProps()}
	p.Properties.SetUint(packet.PropMessageExpiry, 100)
	p.Properties.SetUint(packet.PropTopicAlias, 3)
	pub.v5Publish(p)
	q := &packet.Publish{Topic: "", Payload: []byte("by alias"), QoS: 1}
	q.Properties.SetUint(packet.PropTopicAlias, 3)
	pub.v5Publish(q)

	var held []*packet.Publish
	for _, want := range []struct {
		payload string
		qos     byte
	}{{"payload", 2}, {"by alias", 1}} {
		m := v311.expectPublish("strip/a", want.payload)
		if m.QoS != want.qos || m.Retain {
			t.Errorf("3.1.1: %s, want QoS %d RETAIN 0", describe(m), want.qos)
		}
		held = append(held, m)
		m = v31.expectPublish("strip/a", want.payload)
		if m.QoS != min(want.qos, 1) || m.Retain {
			t.Errorf("3.1: %s, want QoS %d RETAIN 0", describe(m), min(want.qos, 1))
		}
		v31.ack(m)
		if msg := nextMessage(t, pm); msg.Topic() != "strip/a" || string(msg.Payload()) != want.payload || msg.Qos() != want.qos {
			t.Errorf("paho 3.1.1: %q %q QoS %d", msg.Topic(), msg.Payload(), msg.Qos())
		}
	}
	for _, m := range held {
		v311.ack(m)
	}
	late := client(t, b, "late311")
	late.sub("strip/#", 2)
	if m := late.expectPublish("strip/a", "payload"); !m.Retain || m.QoS != 2 {
		t.Errorf("retained 5.0 message to a new 3.1.1 subscriber: %s, want RETAIN 1 QoS 2", describe(m))
	}
}

// paho.mqtt.golang (3.1 and 3.1.1) and paho.golang (5.0) talk through the
// broker both ways.
func TestV5MixedVersionsPaho(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	p5, _ := v5Paho(t, b.Addr, v5PahoConnect("paho5"), nil)
	p5.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "pp/to5/#", QoS: 2}}})
	for _, version := range []uint{3, 4} {
		c := pahoClient(t, b.Addr, fmt.Sprintf("paho-v%d", version), version, nil)
		in := pahoMessages(t, c, "pp/from5/#", 2, 10)
		for qos := range byte(3) {
			wait(t, "publish", c.Publish(fmt.Sprintf("pp/to5/%d/%d", version, qos), qos, false, "old"))
			m := p5.next(t)
			if m.Topic != fmt.Sprintf("pp/to5/%d/%d", version, qos) || string(m.Payload) != "old" || m.QoS != qos {
				t.Errorf("paho.golang got %q %q QoS %d from a %d client", m.Topic, m.Payload, m.QoS, version)
			}
			if m.Properties != nil && (len(m.Properties.User) > 0 || m.Properties.ContentType != "") {
				t.Errorf("properties appeared on a message from an old client: %+v", m.Properties)
			}
			p5.pub(t, &paho.Publish{Topic: fmt.Sprintf("pp/from5/%d", qos), QoS: qos, Payload: []byte("new"),
				Properties: &paho.PublishProperties{ContentType: "text/plain", User: paho.UserProperties{{Key: "k", Value: "v"}}}})
			var got mqtt.Message = nextMessage(t, in)
			if got.Topic() != fmt.Sprintf("pp/from5/%d", qos) || string(got.Payload()) != "new" || got.Qos() != qos {
				t.Errorf("paho v%d got %q %q QoS %d", version, got.Topic(), got.Payload(), got.Qos())
			}
		}
	}
}
