package broker_test

import (
	"slices"
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// [MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-8]: a retained message is
// stored per topic, replaced by the next one on the same topic, and sent
// with RETAIN 1 when a matching subscription is made, through wildcard
// filters too; its QoS is the lower of its own and the subscription's.
func TestRetainedSentOnSubscribe(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := client(t, b, "pub")
	pub.publish("ret/a", "old", 1, true)
	pub.publish("ret/a", "a", 1, true) // replaces "old"
	pub.publish("ret/b", "b", 2, true)
	pub.publish("ret/b/c", "c", 0, true)
	pub.publish("other", "o", 1, true)

	exact := client(t, b, "exact")
	exact.sub("ret/a", 2)
	p := exact.expectPublish("ret/a", "a")
	if !p.Retain || p.QoS != 1 {
		t.Fatalf("retained copy: %s, want RETAIN 1 at QoS 1", describe(p))
	}
	exact.ack(p)
	exact.sync()

	wild := client(t, b, "wild")
	wild.sub("ret/+", 1)
	got := map[string]*packet.Publish{}
	for range 2 {
		p := expectPacket[*packet.Publish](wild)
		got[string(p.Payload)] = p
		wild.ack(p)
	}
	wild.sync()
	if got["a"] == nil || got["b"] == nil || !got["a"].Retain || !got["b"].Retain {
		t.Fatalf("'ret/+' got %v, want a and b with RETAIN 1", got)
	}
	if got["b"].QoS != 1 {
		t.Errorf("QoS 2 retained message via a QoS 1 subscription: QoS %d, want 1 [MQTT-3.8.4-6]", got["b"].QoS)
	}

	all := client(t, b, "all")
	all.sub("ret/#", 0)
	var topics []string
	for range 3 {
		p := expectPacket[*packet.Publish](all)
		if !p.Retain {
			t.Errorf("%s: RETAIN 0", describe(p))
		}
		topics = append(topics, p.Topic)
	}
	all.sync()
	slices.Sort(topics)
	if !slices.Equal(topics, []string{"ret/a", "ret/b", "ret/b/c"}) {
		t.Fatalf("'ret/#' got %q", topics)
	}

	// [MQTT-3.8.4-3]: subscribing again sends the retained messages again.
	exact.sub("ret/a", 1)
	exact.ack(exact.expectPublish("ret/a", "a"))
	exact.sync()
}

// [MQTT-3.3.1-10] [MQTT-3.3.1-11]: a retained PUBLISH with an empty payload
// is forwarded as usual and deletes the retained message; it is not itself
// retained.
func TestRetainedEmptyPayloadDeletes(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := client(t, b, "pub")
	pub.publish("del", "keep me", 1, true)
	live := client(t, b, "live")
	live.sub("del", 1)
	live.ack(live.expectPublish("del", "keep me"))

	pub.publish("del", "", 1, true)
	p := live.expectPublish("del", "")
	if p.Retain {
		t.Errorf("forwarded on a live subscription with RETAIN 1 [MQTT-3.3.1-9]")
	}
	live.ack(p)

	late := client(t, b, "late")
	late.sub("del", 1)
	late.sub("#", 1)
	late.sync() // nothing retained any more
}

// [MQTT-3.3.1-9]: a message forwarded on an established subscription
// carries RETAIN 0, whatever the publisher set.
func TestRetainFlagClearedWhenLive(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub := client(t, b, "sub")
	sub.sub("live/#", 2)
	pub := client(t, b, "pub")
	for qos := byte(0); qos <= 2; qos++ {
		pub.publish("live/x", "r", qos, true)
		p := sub.expectPublish("live/x", "r")
		if p.Retain {
			t.Errorf("QoS %d: live copy has RETAIN 1", qos)
		}
		sub.ack(p)
	}
	sub.sync()
}

// [MQTT-3.3.1-12]: a PUBLISH with RETAIN 0 neither stores nor replaces the
// retained message.
func TestNonRetainedLeavesRetained(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := client(t, b, "pub")
	pub.publish("nr", "retained", 1, true)
	pub.publish("nr", "plain", 1, false)
	pub.publish("nr/plain-only", "plain", 1, false)
	sub := client(t, b, "sub")
	sub.sub("nr/#", 1)
	sub.ack(sub.expectPublish("nr", "retained"))
	sub.sync()
}

// [MQTT-3.1.2-7]: retained messages are not session state; they outlive
// the publisher's session, clean or persistent.
func TestRetainedSurvivesPublisherSession(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := client(t, b, "pub")
	pub.publish("survive/clean", "1", 1, true)
	pub.send(&packet.Disconnect{})
	b.waitOffline(t, "pub")

	// A persistent publisher whose session is then discarded by a clean
	// reconnect.
	cp := connectPacket("pub2")
	cp.CleanStart = false
	pub2, _ := connectOK(t, b.Addr, cp)
	pub2.publish("survive/persistent", "2", 1, true)
	pub2.send(&packet.Disconnect{})
	b.waitOffline(t, "pub2")
	pub2 = client(t, b, "pub2")
	pub2.send(&packet.Disconnect{})
	b.waitOffline(t, "pub2")

	sub := client(t, b, "sub")
	sub.sub("survive/#", 1)
	var got []string
	for range 2 {
		p := expectPacket[*packet.Publish](sub)
		got = append(got, string(p.Payload))
		sub.ack(p)
	}
	sub.sync()
	slices.Sort(got)
	if !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("retained messages after the publishers left: %q", got)
	}
}

// Server.Publish with retain stores the message like a client PUBLISH.
func TestServerPublishRetained(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	if err := b.Publish("srv/x", []byte("hi"), 1, true); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("srv/+", []byte("bad"), 0, false); err == nil {
		t.Errorf("Publish to a wildcard topic succeeded")
	}
	sub := client(t, b, "sub")
	sub.sub("srv/#", 1)
	if p := sub.expectPublish("srv/x", "hi"); !p.Retain || p.QoS != 1 {
		t.Fatalf("got %s", describe(p))
	} else {
		sub.ack(p)
	}
	sub.sync()
}
