package broker_test

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// v5Expiring returns a PUBLISH with a Message Expiry Interval of secs.
func v5Expiring(topic, payload string, qos byte, retain bool, secs uint32) *packet.Publish {
	p := &packet.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}
	p.Properties.SetUint(packet.PropMessageExpiry, secs)
	return p
}

// v5CheckExpiry fails unless p carries a Message Expiry Interval within
// [lo, hi].
func v5CheckExpiry(t *testing.T, p *packet.Publish, lo, hi uint32) {
	t.Helper()
	if !p.Properties.Has(packet.PropMessageExpiry) {
		t.Errorf("%s: no Message Expiry Interval, want %d..%d", describe(p), lo, hi)
		return
	}
	if e := p.Properties.MessageExpiry; e < lo || e > hi {
		t.Errorf("%s: Message Expiry Interval %d, want %d..%d [MQTT-3.3.2-6]", describe(p), e, lo, hi)
	}
}

// [MQTT-3.3.2-5]: a message queued for an offline session whose Message
// Expiry Interval passes before delivery has begun is dropped; the others
// are delivered in order.
func TestV5MessageExpiryQueuedDropped_MQTT_3_3_2_5(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	const id = "v5-exp-sub"
	sub, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 60))
	sub.v5Sub(0, packet.Subscription{Filter: "exp/#", QoS: 2})
	sub.v5Leave(b, id, nil)

	pub := v5Client(t, b, "pub")
	pub.v5Publish(v5Expiring("exp/a", "short 1", 1, false, 1))
	pub.v5Publish(v5Expiring("exp/a", "long", 1, false, 60))
	pub.v5Publish(v5Expiring("exp/b", "short 2", 2, false, 1))
	pub.v5Pub("exp/b", "forever", 2, false)
	time.Sleep(1500 * time.Millisecond)

	sub, present := v5Reconnect(t, b, id, 60)
	if !present {
		t.Fatalf("Session Present 0")
	}
	m := sub.expectPublish("exp/a", "long")
	v5CheckExpiry(t, m, 55, 59)
	sub.ack(m)
	m = sub.expectPublish("exp/b", "forever")
	if m.Properties.Has(packet.PropMessageExpiry) {
		t.Errorf("message without expiry delivered with Message Expiry Interval %d", m.Properties.MessageExpiry)
	}
	sub.ack(m)
	sub.v5ExpectNothing()
}

// [MQTT-3.3.2-5] while online: a message waiting behind a full inflight
// window (the client's Receive Maximum 1) expires there.
func TestV5MessageExpiryWhileQueuedOnline_MQTT_3_3_2_5(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	p := v5Connect("slow")
	p.Properties.SetUint(packet.PropReceiveMaximum, 1)
	sub, _ := v5ConnectOK(t, b.Addr, p)
	sub.v5Sub(0, packet.Subscription{Filter: "q", QoS: 1})
	pub := v5Client(t, b, "pub")
	pub.v5Pub("q", "first", 1, false)
	pub.v5Publish(v5Expiring("q", "expires", 1, false, 1))
	pub.v5Pub("q", "last", 1, false)
	first := sub.expectPublish("q", "first")
	sub.v5Quiet(1500 * time.Millisecond)
	sub.ack(first)
	m := sub.expectPublish("q", "last")
	sub.ack(m)
	sub.v5ExpectNothing()
}

// [MQTT-3.3.2-6]: the forwarded Message Expiry Interval is the received one
// less the time the message waited in the broker.
func TestV5MessageExpiryReduced_MQTT_3_3_2_6(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	const id = "v5-reduce"
	sub, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 60))
	sub.v5Sub(0, packet.Subscription{Filter: "red", QoS: 1})
	sub.v5Leave(b, id, nil)
	pub := v5Client(t, b, "pub")
	pub.v5Publish(v5Expiring("red", "waited", 1, false, 10))
	time.Sleep(2100 * time.Millisecond)
	sub, _ = v5Reconnect(t, b, id, 60)
	m := sub.expectPublish("red", "waited")
	v5CheckExpiry(t, m, 4, 8) // 10 s less at least 2.1 s, rounded up
	sub.ack(m)

	// Delivered at once, almost nothing is taken off.
	pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho-red"), nil)
	pc.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "red", QoS: 1}}})
	pub.v5Publish(v5Expiring("red", "live", 1, false, 10))
	got := pc.next(t)
	if got.Properties == nil || got.Properties.MessageExpiry == nil || *got.Properties.MessageExpiry < 9 || *got.Properties.MessageExpiry > 10 {
		t.Errorf("paho: live message expiry %v, want 9..10", got.Properties)
	}
	sub.expectPublish("red", "live")
}

// 5.0 3.3.2.3.3 with [MQTT-3.3.1-9]: a retained message stops being sent to
// new subscribers once its Message Expiry Interval has passed; before that
// it goes out with the remaining interval.
func TestV5RetainedMessageExpiry(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := v5Client(t, b, "pub")
	pub.v5Publish(v5Expiring("ret/short", "short", 1, true, 1))
	pub.v5Publish(v5Expiring("ret/long", "long", 1, true, 60))
	pub.v5Pub("ret/none", "none", 1, true)

	collect := func(id string, n int) map[string]*packet.Publish {
		t.Helper()
		c := v5Client(t, b, id)
		c.v5Sub(0, packet.Subscription{Filter: "ret/#", QoS: 1})
		got := map[string]*packet.Publish{}
		for range n {
			m := expectPacket[*packet.Publish](c)
			if !m.Retain {
				t.Errorf("retained message %s sent with RETAIN 0 [MQTT-3.3.1-9]", describe(m))
			}
			c.ack(m)
			got[m.Topic] = m
		}
		c.v5ExpectNothing()
		return got
	}
	got := collect("early", 3)
	if m := got["ret/short"]; m == nil {
		t.Fatalf("retained message with 1 s expiry not sent before it expired")
	} else {
		v5CheckExpiry(t, m, 0, 1)
	}
	time.Sleep(1500 * time.Millisecond)
	got = collect("late", 2)
	if got["ret/short"] != nil {
		t.Errorf("expired retained message sent to a new subscriber")
	}
	if m := got["ret/long"]; m != nil {
		v5CheckExpiry(t, m, 55, 59)
	}
	if m := got["ret/none"]; m == nil || m.Properties.Has(packet.PropMessageExpiry) {
		t.Errorf("retained message without expiry: %v", m)
	}
}
