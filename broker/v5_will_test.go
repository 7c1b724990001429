package broker_test

import (
	"slices"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// v5WithWill returns a 5.0 CONNECT for id with Session Expiry Interval
// expiry and a QoS 1 will on topic with Will Delay Interval delay (none
// when 0).
func v5WithWill(id string, expiry uint32, topic, payload string, delay uint32) *packet.Connect {
	p := v5Persistent(id, true, expiry)
	p.WillFlag = true
	p.Will = packet.Will{Topic: topic, Payload: []byte(payload), QoS: 1}
	if delay > 0 {
		p.Will.Properties.SetUint(packet.PropWillDelay, delay)
	}
	return p
}

// v5Watch subscribes a fresh 5.0 client to filter.
func v5Watch(t *testing.T, b *testBroker, filter string) *rawClient {
	t.Helper()
	w := v5Client(t, b, v5ID("watch"))
	w.v5Sub(0, packet.Subscription{Filter: filter, QoS: 1})
	return w
}

// [MQTT-3.1.2-8] 5.0 3.1.3.2.2: with a Will Delay Interval the will is
// published that long after the connection is lost, not at once.
func TestV5WillDelay_MQTT_3_1_2_8(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	watch := v5Watch(t, b, "wd/#")
	const id = "v5-delayed"
	c, _ := v5ConnectOK(t, b.Addr, v5WithWill(id, 10, "wd/a", "late", 1))
	c.nc.Close()
	b.waitOffline(t, id)
	lost := time.Now()
	m := watch.expectPublish("wd/a", "late")
	if d := time.Since(lost); d < 900*time.Millisecond {
		t.Errorf("will with delay 1 s published after %v", d)
	}
	watch.ack(m)
	watch.v5ExpectNothing() // once
}

// [MQTT-3.1.3-9]: a reconnection to the session within the Will Delay
// Interval cancels the will.
func TestV5WillDelayCancelledByReconnect_MQTT_3_1_3_9(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	watch := v5Watch(t, b, "wc/#")
	const id = "v5-back"
	c, _ := v5ConnectOK(t, b.Addr, v5WithWill(id, 60, "wc/a", "should not", 1))
	c.nc.Close()
	b.waitOffline(t, id)
	c, present := v5Reconnect(t, b, id, 60)
	if !present {
		t.Fatalf("Session Present 0 on the reconnection")
	}
	watch.v5Quiet(1500 * time.Millisecond) // past the delay
	c.v5Leave(b, id, nil)
	watch.v5ExpectNothing()
}

// [MQTT-3.1.3-9] [MQTT-3.1.4-3]: a takeover is a new connection for the
// ClientID: within the Will Delay Interval of the old connection it cancels
// that will, whether it resumes the session (Clean Start 0) or not. With no
// delay the old connection's will is published at once.
func TestV5WillDelayCancelledByTakeover_MQTT_3_1_3_9(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	for _, tc := range []struct {
		name    string
		delay   uint32
		clean   bool
		publish bool
	}{
		{"delay 1 s, Clean Start 0", 1, false, false},
		{"delay 1 s, Clean Start 1", 1, true, false},
		{"no delay", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := v5ID("taken")
			watch := v5Watch(t, b, "wt/"+id)
			old, _ := v5ConnectOK(t, b.Addr, v5WithWill(id, 60, "wt/"+id, "old will", tc.delay))
			fresh, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, tc.clean, 60))
			old.v5ExpectDisconnect(packet.SessionTakenOver)
			if tc.publish {
				watch.ack(watch.expectPublish("wt/"+id, "old will"))
			} else {
				watch.v5Quiet(1500 * time.Millisecond) // past the delay
			}
			fresh.v5Leave(b, id, nil)
			watch.v5ExpectNothing()
		})
	}
}

// [MQTT-3.1.2-8] 5.0 3.1.3.2.2: the will goes out when the session ends,
// if that comes before the Will Delay Interval: after a Session Expiry
// Interval shorter than the delay, or at once for expiry 0 (from CONNECT,
// or from DISCONNECT 0x04).
func TestV5WillAtSessionEnd_MQTT_3_1_2_8(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	t.Run("expiry 1 s, delay 30 s", func(t *testing.T) {
		t.Parallel()
		watch := v5Watch(t, b, "we/1")
		id := v5ID("exp1")
		c, _ := v5ConnectOK(t, b.Addr, v5WithWill(id, 1, "we/1", "session over", 30))
		c.nc.Close()
		b.waitOffline(t, id)
		lost := time.Now()
		watch.expectPublish("we/1", "session over")
		if d := time.Since(lost); d < 900*time.Millisecond {
			t.Errorf("will published after %v, want at the session's end after 1 s", d)
		}
		b.v5WaitSessionGone(t, id)
	})
	t.Run("expiry 0, delay 30 s", func(t *testing.T) {
		t.Parallel()
		watch := v5Watch(t, b, "we/0")
		c, _ := v5ConnectOK(t, b.Addr, v5WithWill(v5ID("exp0"), 0, "we/0", "at once", 30))
		c.nc.Close()
		watch.expectPublish("we/0", "at once") // within waitFor, far below 30 s
	})
	t.Run("DISCONNECT 0x04 with expiry 0, delay 30 s", func(t *testing.T) {
		t.Parallel()
		watch := v5Watch(t, b, "we/d")
		c, _ := v5ConnectOK(t, b.Addr, v5WithWill(v5ID("disc0"), 60, "we/d", "at once", 30))
		d := &packet.Disconnect{ReasonCode: packet.DisconnectWithWill}
		d.Properties.SetUint(packet.PropSessionExpiry, 0)
		c.send(d)
		watch.expectPublish("we/d", "at once")
	})
}

// [MQTT-3.1.3-10] [MQTT-3.3.2-17] [MQTT-3.3.2-18]: the will is published
// with its properties: Payload Format Indicator, Message Expiry Interval,
// Content Type, Response Topic, Correlation Data, and User Properties in
// their order. The Will Delay Interval is not a PUBLISH property.
func TestV5WillProperties_MQTT_3_1_3_10(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	watch := v5Watch(t, b, "wp/#")
	pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho-watch"), nil)
	pc.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "wp/#", QoS: 1}}})
	old := client(t, b, "v311-watch")
	old.sub("wp/#", 1)

	p := v5WithWill("v5-props", 0, "wp/a", "gone ✓", 0)
	wp := &p.Will.Properties
	wp.SetUint(packet.PropPayloadFormat, 1)
	wp.SetUint(packet.PropMessageExpiry, 120)
	wp.SetString(packet.PropContentType, "text/plain; charset=utf-8")
	wp.SetString(packet.PropResponseTopic, "wp/reply")
	wp.SetBinary(packet.PropCorrelationData, []byte{0, 1, 2, 0xff})
	wp.SetUint(packet.PropWillDelay, 0)
	users := v5UserProps("z", "1", "a", "2", "z", "3", "", "")
	wp.User = users
	c, _ := v5ConnectOK(t, b.Addr, p)
	c.nc.Close()

	m := watch.expectPublish("wp/a", "gone ✓")
	got := &m.Properties
	if !got.Has(packet.PropPayloadFormat) || got.PayloadFormat != 1 {
		t.Errorf("Payload Format Indicator %d (present %v), want 1", got.PayloadFormat, got.Has(packet.PropPayloadFormat))
	}
	v5CheckExpiry(t, m, 118, 120)
	if got.ContentType != "text/plain; charset=utf-8" || got.ResponseTopic != "wp/reply" || string(got.CorrelationData) != "\x00\x01\x02\xff" {
		t.Errorf("Content Type %q, Response Topic %q, Correlation Data %x", got.ContentType, got.ResponseTopic, got.CorrelationData)
	}
	if !slices.Equal(got.User, users) {
		t.Errorf("User Properties %v, want %v in order [MQTT-3.1.3-10]", got.User, users)
	}
	if m.QoS != 1 || m.Retain {
		t.Errorf("will delivered as %s, want QoS 1, RETAIN 0", describe(m))
	}

	pm := pc.next(t)
	if pm.Properties == nil || pm.Properties.ContentType != "text/plain; charset=utf-8" || len(pm.Properties.User) != 4 ||
		pm.Properties.User[0].Key != "z" || pm.Properties.User[1].Key != "a" || pm.Properties.User[2].Value != "3" {
		t.Errorf("paho: will properties %+v", pm.Properties)
	}
	old.expectPublish("wp/a", "gone ✓") // 3.1.1: the message without properties
}

// [MQTT-3.14.4-3] [MQTT-3.1.2-10]: DISCONNECT 0x00 discards the will;
// DISCONNECT 0x04 (Disconnect with Will Message) has it published, after
// its Will Delay Interval if it has one.
func TestV5DisconnectWithWill_MQTT_3_14_4_3(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	watch := v5Watch(t, b, "dw/#")

	c, _ := v5ConnectOK(t, b.Addr, v5WithWill("normal", 0, "dw/normal", "dropped", 0))
	c.send(&packet.Disconnect{ReasonCode: packet.Success})
	c.expectClosedSilently(waitFor)
	b.waitOffline(t, "normal")

	c, _ = v5ConnectOK(t, b.Addr, v5WithWill("with-will", 0, "dw/with", "kept", 0))
	c.send(&packet.Disconnect{ReasonCode: packet.DisconnectWithWill})
	c.expectClosedSilently(waitFor)
	watch.ack(watch.expectPublish("dw/with", "kept")) // and not "dropped" first

	c, _ = v5ConnectOK(t, b.Addr, v5WithWill("delayed", 10, "dw/delayed", "after 1 s", 1))
	c.send(&packet.Disconnect{ReasonCode: packet.DisconnectWithWill})
	b.waitOffline(t, "delayed")
	sent := time.Now()
	watch.ack(watch.expectPublish("dw/delayed", "after 1 s"))
	if d := time.Since(sent); d < 900*time.Millisecond {
		t.Errorf("will with delay 1 s after DISCONNECT 0x04: published after %v", d)
	}

	// paho sends DISCONNECT 0x04 too.
	cp := v5PahoConnect("paho-will")
	cp.WillMessage = &paho.WillMessage{Topic: "dw/paho", Payload: []byte("paho will"), QoS: 1}
	pc, _ := v5Paho(t, b.Addr, cp, nil)
	if err := pc.Disconnect(&paho.Disconnect{ReasonCode: byte(packet.DisconnectWithWill)}); err != nil {
		t.Fatalf("paho disconnect: %v", err)
	}
	watch.ack(watch.expectPublish("dw/paho", "paho will"))
	watch.v5ExpectNothing()
}
