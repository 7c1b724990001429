package broker_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// v5RichProps are the application properties a request/response PUBLISH
// carries: User Properties with a repeated name, out of alphabetical order.
func v5RichProps() packet.Properties {
	var p packet.Properties
	p.SetUint(packet.PropPayloadFormat, 1)
	p.SetString(packet.PropContentType, "application/json")
	p.SetString(packet.PropResponseTopic, "reply/to/me")
	p.SetBinary(packet.PropCorrelationData, []byte{0xde, 0xad, 0, 0xbe, 0xef})
	p.User = v5UserProps("trace", "1", "alpha", "x", "trace", "2", "empty", "")
	return p
}

// v5CheckRich fails unless got carries exactly the properties of
// v5RichProps (the broker adds or drops nothing else but may add
// Subscription Identifiers and a Message Expiry it was given).
func v5CheckRich(t *testing.T, who string, got *packet.Properties) {
	t.Helper()
	want := v5RichProps()
	switch {
	case !got.Has(packet.PropPayloadFormat) || got.PayloadFormat != 1:
		t.Errorf("%s: Payload Format Indicator %d (present %v), want 1 [MQTT-3.3.2-4]", who, got.PayloadFormat, got.Has(packet.PropPayloadFormat))
	case got.ContentType != want.ContentType:
		t.Errorf("%s: Content Type %q, want %q [MQTT-3.3.2-20]", who, got.ContentType, want.ContentType)
	case got.ResponseTopic != want.ResponseTopic:
		t.Errorf("%s: Response Topic %q, want %q [MQTT-3.3.2-15]", who, got.ResponseTopic, want.ResponseTopic)
	case !bytes.Equal(got.CorrelationData, want.CorrelationData):
		t.Errorf("%s: Correlation Data %x, want %x [MQTT-3.3.2-16]", who, got.CorrelationData, want.CorrelationData)
	case !slices.Equal(got.User, want.User):
		t.Errorf("%s: User Properties %v, want %v in order [MQTT-3.3.2-17] [MQTT-3.3.2-18]", who, got.User, want.User)
	}
}

// [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17]
// [MQTT-3.3.2-18] [MQTT-3.3.2-20]: Payload Format Indicator, Content Type,
// Response Topic, Correlation Data and User Properties (in order) reach
// every 5.0 subscriber unchanged, at every QoS, live, queued for an offline
// session, and as a retained message; a 3.1.1 subscriber gets the same
// topic and payload without them.
func TestV5PropertiesPassThrough_MQTT_3_3_2_17(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	raw := v5Client(t, b, "raw")
	raw.v5Sub(0, packet.Subscription{Filter: "pt/#", QoS: 2})
	pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho"), nil)
	pc.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "pt/#", QoS: 2}}})
	old := client(t, b, "v311")
	old.sub("pt/#", 2)
	const offline = "v5-offline"
	off, _ := v5ConnectOK(t, b.Addr, v5Persistent(offline, true, 60))
	off.v5Sub(0, packet.Subscription{Filter: "pt/#", QoS: 1})
	off.v5Leave(b, offline, nil)

	pub := v5Client(t, b, "pub")
	for qos := range byte(3) {
		topic := fmt.Sprint("pt/", qos)
		pub.v5Publish(&packet.Publish{Topic: topic, Payload: []byte(`{"q":1}`), QoS: qos, Properties: v5RichProps()})

		m := raw.expectPublish(topic, `{"q":1}`)
		v5CheckRich(t, fmt.Sprint("raw QoS ", qos), &m.Properties)
		raw.ack(m)

		pm := pc.next(t)
		pp := pm.Properties
		if pm.Topic != topic || pp == nil || pp.PayloadFormat == nil || *pp.PayloadFormat != 1 || pp.ContentType != "application/json" ||
			pp.ResponseTopic != "reply/to/me" || !bytes.Equal(pp.CorrelationData, []byte{0xde, 0xad, 0, 0xbe, 0xef}) ||
			len(pp.User) != 4 || pp.User[0] != (paho.UserProperty{Key: "trace", Value: "1"}) ||
			pp.User[1].Key != "alpha" || pp.User[2] != (paho.UserProperty{Key: "trace", Value: "2"}) || pp.User[3].Key != "empty" {
			t.Errorf("paho QoS %d: %q %+v", qos, pm.Topic, pp)
		}

		om := old.expectPublish(topic, `{"q":1}`)
		if om.QoS != qos || om.Retain || om.Dup {
			t.Errorf("3.1.1 subscriber: %s, want QoS %d", describe(om), qos)
		}
		old.ack(om)
	}

	off, _ = v5Reconnect(t, b, offline, 60)
	for qos := byte(1); qos <= 2; qos++ { // QoS 0 is not queued (Options.QueueQoS0)
		m := off.expectPublish(fmt.Sprint("pt/", qos), `{"q":1}`)
		v5CheckRich(t, "queued", &m.Properties)
		off.ack(m)
	}

	// Retained, then sent on subscribe.
	retained := &packet.Publish{Topic: "ptr/r", Payload: []byte("r"), QoS: 1, Retain: true, Properties: v5RichProps()}
	pub.v5Publish(retained)
	late := v5Client(t, b, "late")
	late.v5Sub(0, packet.Subscription{Filter: "ptr/#", QoS: 1})
	m := late.expectPublish("ptr/r", "r")
	v5CheckRich(t, "retained", &m.Properties)

	// From paho to a raw subscriber.
	pb := byte(1)
	pc.pub(t, &paho.Publish{Topic: "pt/paho", QoS: 1, Payload: []byte("p"), Properties: &paho.PublishProperties{
		PayloadFormat: &pb, ContentType: "application/json", ResponseTopic: "reply/to/me",
		CorrelationData: []byte{0xde, 0xad, 0, 0xbe, 0xef},
		User:            paho.UserProperties{{Key: "trace", Value: "1"}, {Key: "alpha", Value: "x"}, {Key: "trace", Value: "2"}, {Key: "empty", Value: ""}},
	}})
	m = raw.expectPublish("pt/paho", "p")
	v5CheckRich(t, "from paho", &m.Properties)
}

// [MQTT-3.1.2-28]: Response Information goes in CONNACK only when the
// client asks for it (Request Response Information 1) and
// Options.ResponseInformation is set.
func TestV5RequestResponseInformation_MQTT_3_1_2_28(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.ResponseInformation = "gannet/responses/"
	b := runBroker(t, opts)
	plain := runBroker(t, testOptions())
	for _, tc := range []struct {
		name    string
		b       *testBroker
		request int // -1: property absent
		want    string
	}{
		{"absent", b, -1, ""},
		{"0", b, 0, ""},
		{"1", b, 1, "gannet/responses/"},
		{"1, nothing configured", plain, 1, ""},
	} {
		p := v5Connect(v5ID("rri"))
		if tc.request >= 0 {
			p.Properties.SetUint(packet.PropRequestResponseInfo, uint32(tc.request))
		}
		_, ack := v5ConnectOK(t, tc.b.Addr, p)
		has := ack.Properties.Has(packet.PropResponseInfo)
		if has != (tc.want != "") || ack.Properties.ResponseInfo != tc.want {
			t.Errorf("%s: Response Information %q (present %v), want %q", tc.name, ack.Properties.ResponseInfo, has, tc.want)
		}
	}
	cp := v5PahoConnect("paho-rri")
	cp.Properties = &paho.ConnectProperties{RequestResponseInfo: true}
	_, ack := v5Paho(t, b.Addr, cp, nil)
	if ack.Properties == nil || ack.Properties.ResponseInfo != "gannet/responses/" {
		t.Errorf("paho: CONNACK Response Information %+v", ack.Properties)
	}
}
