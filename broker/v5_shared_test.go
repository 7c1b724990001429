package broker_test

import (
	"slices"
	"strconv"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// 5.0 4.8.2 [MQTT-4.8.2-3]: each message published to a shared
// subscription goes to exactly one member of the group, taken in turn
// (Options.ShareStrategy is round-robin by default): 30 messages, 3
// members, 10 each. Members may be 5.0 or 3.1.1 clients, each gets its own
// granted QoS, and a non-shared subscriber still gets every message.
func TestV5SharedSubscriptionRoundRobin_MQTT_4_8_2_3(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	const filter = "$share/grp/sh/+"

	raw5 := v5Client(t, b, "raw5")
	raw5.v5Sub(0, packet.Subscription{Filter: filter, QoS: 0})
	pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho5"), nil)
	pc.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	raw311 := client(t, b, "raw311")
	raw311.sub(filter, 2)
	everyone := v5Client(t, b, "everyone")
	everyone.v5Sub(0, packet.Subscription{Filter: "sh/+", QoS: 0})

	pub := v5Client(t, b, "pub")
	const n = 30
	for i := range n {
		pub.v5Pub("sh/t", strconv.Itoa(i), 2, false)
	}
	var got []int
	take := func(who string, payload []byte, qos, want byte) {
		t.Helper()
		if qos != want {
			t.Errorf("%s got QoS %d, want its granted %d [MQTT-4.8.2-3]", who, qos, want)
		}
		i, err := strconv.Atoi(string(payload))
		if err != nil {
			t.Fatalf("%s: payload %q", who, payload)
		}
		got = append(got, i)
	}
	for range n / 3 {
		m := expectPacket[*packet.Publish](raw5)
		take("5.0 raw member", m.Payload, m.QoS, 0)
		pm := pc.next(t)
		take("paho member", pm.Payload, pm.QoS, 1)
	}
	var held []*packet.Publish
	for range n / 3 {
		m := expectPacket[*packet.Publish](raw311)
		take("3.1.1 member", m.Payload, m.QoS, 2)
		held = append(held, m)
	}
	for _, m := range held {
		raw311.ack(m)
	}
	raw5.v5ExpectNothing()
	raw311.sync()
	pc.none(t, quiet)
	slices.Sort(got)
	for i := range n {
		if i >= len(got) || got[i] != i {
			t.Fatalf("messages received by the group: %v, want each of 0..%d once", got, n-1)
		}
	}
	for i := range n {
		everyone.expectPublish("sh/t", strconv.Itoa(i))
	}
}

// 5.0 4.8.2: QoS 1 messages held for a member whose session ends (Session
// Expiry 0, connection lost), sent but unacknowledged or still queued, go
// to another member of the group; none is lost or duplicated. A QoS 2
// message already sent to the member is not given to another
// [MQTT-4.8.2-5].
func TestV5SharedSubscriptionRedelivery_MQTT_4_8_2_5(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	const filter = "$share/r/rd"
	p := v5Connect("leaving")
	p.Properties.SetUint(packet.PropReceiveMaximum, 1)
	leaving, _ := v5ConnectOK(t, b.Addr, p)
	leaving.v5Sub(0, packet.Subscription{Filter: filter, QoS: 2})
	staying := v5Client(t, b, "staying")
	staying.v5Sub(0, packet.Subscription{Filter: filter, QoS: 2})

	pub := v5Client(t, b, "pub")
	pub.v5Pub("rd", "qos2", 2, false) // to "leaving", in turn
	pub.v5Pub("rd", "qos2 other", 2, false)
	first := leaving.expectPublish("rd", "qos2")
	m := staying.expectPublish("rd", "qos2 other")
	staying.ack(m)
	_ = first // received, never acknowledged

	const n = 10
	for i := range n {
		pub.v5Pub("rd", strconv.Itoa(i), 1, false)
	}
	// "leaving" has its window full with the QoS 2 message: its share of
	// the QoS 1 messages waits in its queue. It goes away without a word.
	leaving.sync()
	leaving.nc.Close()

	var got []int
	for len(got) < n {
		m := expectPacket[*packet.Publish](staying)
		if string(m.Payload) == "qos2" {
			t.Fatalf("QoS 2 message sent to the ended member was redelivered [MQTT-4.8.2-5]")
		}
		i, err := strconv.Atoi(string(m.Payload))
		if err != nil || m.QoS != 1 {
			t.Fatalf("unexpected %s", describe(m))
		}
		got = append(got, i)
		staying.ack(m)
	}
	staying.v5ExpectNothing()
	slices.Sort(got)
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Errorf("the remaining member received %v, want %v once each", got, want)
	}
}

// 5.0 4.8.2: retained messages are not sent when a shared subscription is
// made; the same filter unshared gets them.
func TestV5SharedSubscriptionNoRetained(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := v5Client(t, b, "pub")
	pub.v5Pub("shr/x", "retained", 1, true)
	for _, c := range []*rawClient{v5Client(t, b, "v5"), client(t, b, "v311")} {
		c.subscribe(packet.Subscription{Filter: "$share/g/shr/#", QoS: 1})
		c.sync()
		c.subscribe(packet.Subscription{Filter: "shr/#", QoS: 1})
		if m := c.expectPublish("shr/x", "retained"); !m.Retain {
			t.Errorf("retained message with RETAIN 0")
		}
	}
	pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho"), nil)
	pc.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "$share/p/shr/#", QoS: 1}}})
	pc.none(t, quiet)
	pub.v5Pub("shr/x", "live", 1, false)
	if m := pc.next(t); string(m.Payload) != "live" {
		t.Errorf("paho shared member got %q", m.Payload)
	}
}
