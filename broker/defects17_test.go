package broker_test

// Protocol defects of issue 17, each with a test that failed before its fix.

import (
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// Issue 17.5: a message forwarded at once keeps its Message Expiry
// Interval: the time waited is subtracted in whole seconds rounded up, so
// 60 stays 60, not 59 [MQTT-3.3.2-6]. Live, retained and will messages.
func TestDefect17_5_ForwardedExpiryRoundedUp_MQTT_3_3_2_6(t *testing.T) {
	b := runBroker(t, testOptions())
	sub := v5Client(t, b, "exp-sub")
	sub.v5Sub(0, packet.Subscription{Filter: "exp/#", QoS: 1})
	check := func(what string, p *packet.Publish, want uint32) {
		t.Helper()
		if !p.Properties.Has(packet.PropMessageExpiry) || p.Properties.MessageExpiry != want {
			t.Errorf("%s: Message Expiry Interval %d (present %v), want %d [MQTT-3.3.2-6]",
				what, p.Properties.MessageExpiry, p.Properties.Has(packet.PropMessageExpiry), want)
		}
	}

	pub := v5Client(t, b, "exp-pub")
	for _, secs := range []uint32{60, 3600} {
		m := &packet.Publish{Topic: "exp/live", Payload: []byte("x"), QoS: 1}
		m.Properties.SetUint(packet.PropMessageExpiry, secs)
		pub.v5Publish(m)
		got := sub.expectPublish("exp/live", "x")
		check("live", got, secs)
		sub.ack(got)
	}

	r := &packet.Publish{Topic: "exp/retained", Payload: []byte("r"), QoS: 1, Retain: true}
	r.Properties.SetUint(packet.PropMessageExpiry, 3600)
	pub.v5Publish(r)
	sub.ack(sub.expectPublish("exp/retained", "r"))
	late := v5Client(t, b, "exp-late")
	late.v5Sub(0, packet.Subscription{Filter: "exp/retained", QoS: 1})
	got := late.expectPublish("exp/retained", "r")
	check("retained", got, 3600)
	late.ack(got)

	w := v5Connect("exp-will")
	w.WillFlag = true
	w.Will = packet.Will{Topic: "exp/will", Payload: []byte("w"), QoS: 1}
	w.Will.Properties.SetUint(packet.PropMessageExpiry, 60)
	wc, _ := v5ConnectOK(t, b.Addr, w)
	wc.nc.Close() // no DISCONNECT: the will goes
	got = sub.expectPublish("exp/will", "w")
	check("will", got, 60)
	sub.ack(got)
}
