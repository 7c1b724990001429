package broker_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// v5Prop is one expected CONNACK property: absent, or present with a value.
type v5Prop struct {
	id      packet.PropID
	present bool
	value   uint32
}

// 5.0 3.2.2.3 [MQTT-3.2.2-9]: CONNACK announces the broker's limits and
// missing features: Topic Alias Maximum, Maximum Packet Size, Receive
// Maximum when below 65535, Maximum QoS when below 2, and Retain / Wildcard
// / Subscription Identifier / Shared Subscription Available 0 when off. A
// feature that is on is not mentioned (its absence means available), and
// Session Expiry Interval is only returned when the broker lowers it.
func TestV5ConnackCapabilities_MQTT_3_2_2_9(t *testing.T) {
	t.Parallel()
	restricted := testOptions()
	restricted.TopicAliasMaximum = 7
	restricted.MaxPacketSize = 1000
	restricted.ReceiveMaximum = 10
	restricted.MaximumQoS = 1
	restricted.RetainAvailable = false
	restricted.WildcardSubscriptions = false
	restricted.SubscriptionIdentifiers = false
	restricted.SharedSubscriptions = false
	restricted.MaxSessionExpiry = 10
	qos0 := testOptions()
	qos0.MaximumQoS = 0
	qos0.TopicAliasMaximum = 0
	for _, tc := range []struct {
		name string
		opts broker.Options
		want []v5Prop
	}{
		{"defaults", testOptions(), []v5Prop{
			{packet.PropTopicAliasMaximum, true, 10},
			{packet.PropMaximumPacketSize, true, 1 << 20},
			{packet.PropReceiveMaximum, false, 0},
			{packet.PropMaximumQoS, false, 0},
			{packet.PropRetainAvailable, false, 0},
			{packet.PropWildcardSubAvailable, false, 0},
			{packet.PropSubIDAvailable, false, 0},
			{packet.PropSharedSubAvailable, false, 0},
			{packet.PropSessionExpiry, false, 0},
			{packet.PropServerKeepAlive, false, 0},
			{packet.PropAssignedClientID, false, 0},
			{packet.PropResponseInfo, false, 0},
			{packet.PropAuthMethod, false, 0}, // [MQTT-4.12.0-6]
		}},
		{"restricted", restricted, []v5Prop{
			{packet.PropTopicAliasMaximum, true, 7},
			{packet.PropMaximumPacketSize, true, 1000},
			{packet.PropReceiveMaximum, true, 10},
			{packet.PropMaximumQoS, true, 1},
			{packet.PropRetainAvailable, true, 0},
			{packet.PropWildcardSubAvailable, true, 0},
			{packet.PropSubIDAvailable, true, 0},
			{packet.PropSharedSubAvailable, true, 0},
			{packet.PropSessionExpiry, true, 10}, // asked 60, capped
		}},
		{"QoS 0, no aliases", qos0, []v5Prop{
			{packet.PropMaximumQoS, true, 0},
			{packet.PropTopicAliasMaximum, false, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := runBroker(t, tc.opts)
			_, ack := v5ConnectOK(t, b.Addr, v5Persistent("caps", true, 60))
			got := &ack.Properties
			for _, w := range tc.want {
				has := got.Has(w.id)
				var v uint32
				switch w.id {
				case packet.PropTopicAliasMaximum:
					v = uint32(got.TopicAliasMaximum)
				case packet.PropMaximumPacketSize:
					v = got.MaximumPacketSize
				case packet.PropReceiveMaximum:
					v = uint32(got.ReceiveMaximum)
				case packet.PropMaximumQoS:
					v = uint32(got.MaximumQoS)
				case packet.PropRetainAvailable:
					v = uint32(got.RetainAvailable)
				case packet.PropWildcardSubAvailable:
					v = uint32(got.WildcardSubAvailable)
				case packet.PropSubIDAvailable:
					v = uint32(got.SubIDAvailable)
				case packet.PropSharedSubAvailable:
					v = uint32(got.SharedSubAvailable)
				case packet.PropSessionExpiry:
					v = got.SessionExpiry
				}
				if has != w.present || (has && v != w.value) {
					t.Errorf("property %#x: present %v value %d, want present %v value %d", byte(w.id), has, v, w.present, w.value)
				}
			}
		})
	}

	// paho reads the restricted set.
	b := runBroker(t, restricted)
	_, ack := v5Paho(t, b.Addr, v5PahoConnect("paho-caps"), nil)
	p := ack.Properties
	if p == nil || p.MaximumQoS == nil || *p.MaximumQoS != 1 || p.RetainAvailable || p.WildcardSubAvailable ||
		p.SubIDAvailable || p.SharedSubAvailable || p.ReceiveMaximum == nil || *p.ReceiveMaximum != 10 ||
		p.TopicAliasMaximum == nil || *p.TopicAliasMaximum != 7 || p.MaximumPacketSize == nil || *p.MaximumPacketSize != 1000 {
		t.Errorf("paho CONNACK properties:\n%v", p)
	}
}

// 5.0 3.2.2.3.4 and 3.3.1.2: a PUBLISH above the Maximum QoS the broker
// announced gets DISCONNECT 0x9B (QoS not supported) and is not delivered.
func TestV5PublishAboveMaximumQoS_MQTT_3_2_2_11(t *testing.T) {
	t.Parallel()
	for _, max := range []byte{0, 1} {
		opts := testOptions()
		opts.MaximumQoS = max
		b := runBroker(t, opts)
		sub := v5Client(t, b, "sub")
		if rc := sub.v5Subscribe(0, packet.Subscription{Filter: "mq", QoS: 2}); rc[0] != packet.ReasonCode(max) {
			t.Errorf("maximum QoS %d: SUBACK %#x [MQTT-3.2.2-10]", max, byte(rc[0]))
		}
		c := v5Client(t, b, "c")
		c.v5Pub("mq", "allowed", max, false)
		sub.expectPublish("mq", "allowed")
		c.send(&packet.Publish{Topic: "mq", Payload: []byte("too high"), QoS: max + 1, PacketID: 1})
		c.v5ExpectDisconnect(packet.QoSNotSupported)
		sub.v5ExpectNothing()
	}
}

// 5.0 3.2.2.3.5 [MQTT-3.2.2-14]: with Retain Available 0, a retained
// PUBLISH gets DISCONNECT 0x9A (Retain not supported); nothing is stored.
func TestV5PublishRetainNotAvailable_MQTT_3_2_2_14(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.RetainAvailable = false
	b := runBroker(t, opts)
	c := v5Client(t, b, "c")
	c.v5Pub("ra", "plain", 1, false)
	c.send(&packet.Publish{Topic: "ra", Payload: []byte("kept?"), QoS: 1, PacketID: 9, Retain: true})
	c.v5ExpectDisconnect(packet.RetainNotSupported)
	late := v5Client(t, b, "late")
	late.v5Sub(0, packet.Subscription{Filter: "ra", QoS: 1})
	late.v5ExpectNothing()
}

// [MQTT-3.2.2-12]: a CONNECT whose Will QoS is above the broker's maximum
// is refused with CONNACK 0x9B; [MQTT-3.2.2-13]: one with Will Retain 1
// while retain is not available, with CONNACK 0x9A. A will within the
// limits is accepted.
func TestV5WillAboveCapabilities_MQTT_3_2_2_12_MQTT_3_2_2_13(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaximumQoS = 1
	opts.RetainAvailable = false
	b := runBroker(t, opts)
	will := func(qos byte, retain bool) *packet.Connect {
		p := v5Connect(v5ID("will"))
		p.WillFlag = true
		p.Will = packet.Will{Topic: "w", Payload: []byte("x"), QoS: qos, Retain: retain}
		return p
	}
	v5ExpectConnackRefused(t, b.Addr, will(2, false), packet.QoSNotSupported)
	v5ExpectConnackRefused(t, b.Addr, will(1, true), packet.RetainNotSupported)
	v5ConnectOK(t, b.Addr, will(1, false))
}
