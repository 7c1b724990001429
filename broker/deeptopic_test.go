package broker_test

import (
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// levels returns a topic of n levels under prefix: "prefix/x/x/...".
func levels(prefix string, n int) string {
	return prefix + strings.Repeat("/x", n-1)
}

// Deep topics are refused by default (issue 16, point 2): a filter of more
// than MaxTopicLevels levels gets SUBACK 0x80 (3.1.1) [MQTT-3.9.3-2] or
// 0x8F (5.0) and adds nothing to the subscription trie; a topic name that
// deep closes a 3.1.1 connection and gets DISCONNECT 0x90 in 5.0; a will
// topic that deep is refused in CONNACK.
func TestDeepTopicsRefusedByDefault(t *testing.T) {
	t.Parallel()
	max := broker.DefaultOptions().MaxTopicLevels
	if max <= 0 || max > 1000 {
		t.Fatalf("default MaxTopicLevels %d, want a finite default", max)
	}
	b := runBroker(t, testOptions())
	deep, ok := levels("deep", max+1), levels("ok", max)

	c := client(t, b, "deep-311")
	codes := c.subscribe(packet.Subscription{Filter: deep, QoS: 1}, packet.Subscription{Filter: ok, QoS: 1},
		packet.Subscription{Filter: levels("h", 32000), QoS: 0})
	if codes[0] != packet.UnspecifiedError || codes[1] != 1 || codes[2] != packet.UnspecifiedError {
		t.Fatalf("3.1.1 SUBACK %v, want [0x80 1 0x80]", codes)
	}
	if n := b.Stats().Subscriptions; n != 1 {
		t.Fatalf("%d subscriptions in the trie, want 1", n)
	}
	c.send(&packet.Publish{Topic: deep, Payload: []byte("x")})
	c.expectClosed(waitFor)

	v := v5Client(t, b, "deep-5")
	codes = v.v5Subscribe(0, packet.Subscription{Filter: deep, QoS: 1}, packet.Subscription{Filter: "$share/g/" + levels("s", max-1), QoS: 1})
	if codes[0] != packet.TopicFilterInvalid || codes[1] != packet.TopicFilterInvalid {
		t.Fatalf("5.0 SUBACK %v, want [0x8F 0x8F]", codes)
	}
	v.send(&packet.Publish{Topic: deep, Payload: []byte("x")})
	v.v5ExpectDisconnect(packet.TopicNameInvalid)

	w := v5Persistent("deep-will", true, 0)
	w.WillFlag, w.Will.Topic, w.Will.Payload = true, deep, []byte("bye")
	v5ExpectConnackRefused(t, b.Addr, w, packet.TopicNameInvalid)

	w3 := connectPacket("deep-will-311")
	w3.WillFlag, w3.Will.Topic, w3.Will.Payload = true, deep, []byte("bye")
	c3, ack := connectRaw(t, b.Addr, w3)
	if ack.ReasonCode == packet.Success {
		t.Fatal("3.1.1 will topic of too many levels accepted")
	}
	c3.expectClosed(waitFor)

	c = client(t, b, "deep-retained")
	c.publish(ok, "kept", 1, true)
	if n := b.Stats().Retained; n != 1 {
		t.Fatalf("%d retained messages, want 1", n)
	}
}
