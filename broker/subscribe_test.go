package broker_test

import (
	"slices"
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// collect reads PUBLISH packets until the ping barrier and returns their
// topics in arrival order.
func (c *rawClient) collect() []string {
	c.t.Helper()
	c.send(&packet.Pingreq{})
	var topics []string
	for {
		switch p := c.expect().(type) {
		case *packet.Pingresp:
			return topics
		case *packet.Publish:
			topics = append(topics, p.Topic)
			c.ack(p)
		default:
			c.t.Fatalf("unexpected %s", p.Type())
		}
	}
}

// "+" matches exactly one level, "#" the parent level and everything
// below it [MQTT-4.7.1-2] [MQTT-4.7.1-3]; matching is byte-exact
// [MQTT-4.7.3-4] [MQTT-3.3.2-3].
func TestWildcards(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub := client(t, b, "sub")
	if rc := sub.subscribe(
		packet.Subscription{Filter: "sport/+/score"},
		packet.Subscription{Filter: "news/#"},
		packet.Subscription{Filter: "+/+"},
	); !slices.Equal(rc, []packet.ReasonCode{0, 0, 0}) {
		t.Fatalf("SUBACK %v", rc)
	}
	pub := client(t, b, "pub")
	for _, topic := range []string{
		"sport/tennis/score",        // sport/+/score
		"sport/tennis/player/score", // none: + is one level
		"sport//score",              // sport/+/score: + matches an empty level
		"news",                      // news/#: # matches the parent
		"news/a/b",                  // news/#
		"newsy/a/b",                 // none
		"Sport/tennis/score",        // none: case matters
		"a/b",                       // +/+
		"/b",                        // +/+
		"a/b/",                      // none: three levels
	} {
		pub.publish(topic, "x", 0, false)
	}
	pub.sync()
	want := []string{"sport/tennis/score", "sport//score", "news", "news/a/b", "a/b", "/b"}
	if got := sub.collect(); !slices.Equal(got, want) {
		t.Fatalf("received %q, want %q", got, want)
	}
}

// [MQTT-4.7.2-1]: filters starting with a wildcard do not match topic names
// starting with '$' (neither live messages nor the retained ones, such as
// the broker's own $SYS topics); a filter starting with the '$' level does.
func TestWildcardsSkipDollarTopics(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := client(t, b, "pub")
	pub.publish("$test/retained", "r", 0, true)

	wild := client(t, b, "wild")
	wild.sub("#", 0)
	wild.sub("+/info", 0)
	wild.sub("+/+", 0)
	wild.sync() // no retained $ message came with the SUBACKs
	dollar := client(t, b, "dollar")
	dollar.sub("$test/+", 0)
	dollar.expectPublish("$test/retained", "r")
	dollar.sub("$srv/#", 0)

	pub.publish("$test/info", "a", 0, false)
	pub.sync() // routed before the broker's own publish
	b.Publish("$srv/uptime", []byte("b"), 0, false)
	pub.publish("plain/info", "c", 0, false)
	pub.sync()

	if got := wild.collect(); !slices.Equal(got, []string{"plain/info"}) {
		t.Errorf("'#', '+/info' and '+/+' received %q, want only plain/info", got)
	}
	if got := dollar.collect(); !slices.Equal(got, []string{"$test/info", "$srv/uptime"}) {
		t.Errorf("'$test/+' and '$srv/#' received %q", got)
	}
}

// [MQTT-3.8.4-5] [MQTT-3.9.3-1] [MQTT-3.9.3-2]: one SUBACK return code per
// filter, in order: the granted QoS, or 0x80 for a refused filter.
func TestSubackCodesInOrder(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxTopicLevels = 3
	opts.MaxTopicLength = 32
	b := runBroker(t, opts)
	c := client(t, b, "c")
	rc := c.subscribe(
		packet.Subscription{Filter: "a", QoS: 2},
		packet.Subscription{Filter: "a/b/c/d", QoS: 1}, // four levels: refused
		packet.Subscription{Filter: "c/+", QoS: 0},
		packet.Subscription{Filter: "d/#", QoS: 1},
		packet.Subscription{Filter: "x123456789012345678901234567890123", QoS: 1}, // 34 bytes: refused
		packet.Subscription{Filter: "a/b/c", QoS: 1},
	)
	want := []packet.ReasonCode{2, 0x80, 0, 1, 0x80, 1}
	if !slices.Equal(rc, want) {
		t.Fatalf("SUBACK codes %v, want %v", rc, want)
	}
	// The refused filters were not subscribed; the others were, each as
	// if subscribed alone [MQTT-3.8.4-4].
	if n := b.Stats().Subscriptions; n != 4 {
		t.Fatalf("broker holds %d subscriptions, want 4", n)
	}
	pub := client(t, b, "pub")
	pub.publish("d/x", "granted", 1, false)
	pub.publish("a/b/c", "granted", 1, false)
	if got := c.collect(); !slices.Equal(got, []string{"d/x", "a/b/c"}) {
		t.Fatalf("received %q, want d/x and a/b/c", got)
	}
}

// [MQTT-3.10.4-1] [MQTT-3.10.4-2] [MQTT-3.10.4-4] [MQTT-3.10.4-5]
// [MQTT-3.10.4-6]: UNSUBSCRIBE deletes the exactly matching subscription
// and stops delivery; UNSUBACK answers every UNSUBSCRIBE with its
// identifier, even when nothing matched.
func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := client(t, b, "c")
	c.sub("u/a", 1)
	c.sub("u/+", 0)
	c.sub("u/keep", 0)
	pub := client(t, b, "pub")
	pub.publish("u/a", "1", 0, false)
	pub.sync()
	if got := c.collect(); !slices.Equal(got, []string{"u/a"}) {
		t.Fatalf("before UNSUBSCRIBE received %q", got)
	}

	// "u/#" matches nothing stored (wildcards compare literally); "u/a" and
	// "u/+" do.
	c.send(&packet.Unsubscribe{PacketID: 77, Filters: []string{"u/#", "u/a", "u/+"}})
	if ack := expectPacket[*packet.Unsuback](c); ack.PacketID != 77 {
		t.Fatalf("UNSUBACK id %d, want 77", ack.PacketID)
	}
	pub.publish("u/a", "2", 1, false)
	pub.publish("u/keep", "3", 1, false)
	if got := c.collect(); !slices.Equal(got, []string{"u/keep"}) {
		t.Fatalf("after UNSUBSCRIBE received %q, want only u/keep", got)
	}

	// Nothing to unsubscribe: UNSUBACK all the same [MQTT-3.10.4-5].
	c.send(&packet.Unsubscribe{PacketID: 78, Filters: []string{"never/subscribed"}})
	if ack := expectPacket[*packet.Unsuback](c); ack.PacketID != 78 {
		t.Fatalf("UNSUBACK id %d, want 78", ack.PacketID)
	}
}

// [MQTT-3.3.5-1]: overlapping subscriptions of one client give one copy, at
// the highest granted QoS among them.
func TestOverlappingSubscriptionsOneCopy(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := client(t, b, "c")
	c.sub("o/+", 0)
	c.sub("o/#", 2)
	c.sub("o/b", 1)
	c.sub("#", 0)
	pub := client(t, b, "pub")
	pub.publish("o/b", "x", 2, false)
	pub.sync()
	p := c.expectPublish("o/b", "x")
	if p.QoS != 2 {
		t.Errorf("delivered at QoS %d, want 2", p.QoS)
	}
	c.ack(p)
	if got := c.collect(); len(got) != 0 {
		t.Fatalf("received %d more copies: %q", len(got), got)
	}
}

// [MQTT-3.8.4-3]: subscribing again to an identical filter replaces the
// subscription: one copy, at the new QoS.
func TestResubscribeReplaces(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := client(t, b, "c")
	c.sub("r/x", 2)
	c.sub("r/x", 0)
	pub := client(t, b, "pub")
	pub.publish("r/x", "1", 2, false)
	pub.sync()
	if p := c.expectPublish("r/x", "1"); p.QoS != 0 {
		t.Fatalf("delivered at QoS %d, want 0 (the replacing subscription)", p.QoS)
	}
	if got := c.collect(); len(got) != 0 {
		t.Fatalf("received %d more copies: %q", len(got), got)
	}
	// And up again.
	c.sub("r/x", 1)
	pub.publish("r/x", "2", 2, false)
	pub.sync()
	p := c.expectPublish("r/x", "2")
	if p.QoS != 1 {
		t.Fatalf("delivered at QoS %d, want 1", p.QoS)
	}
	c.ack(p)
	if got := c.collect(); len(got) != 0 {
		t.Fatalf("received %d more copies: %q", len(got), got)
	}
}

// A 3.1.1 session receives its own messages: No Local is 5.0 only.
func TestSelfDelivery(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := client(t, b, "self")
	c.sub("me", 0)
	c.publish("me", "echo", 0, false)
	c.expectPublish("me", "echo")
}

// [MQTT-3.10.4-2] [MQTT-3.10.4-3]: after UNSUBSCRIBE no new message is
// queued for the filter, but deliveries already under way (inflight or
// waiting in the session) are completed.
func TestUnsubscribeCompletesDeliveriesUnderWay(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxInflight = 1
	b := runBroker(t, opts)
	sub := client(t, b, "sub")
	sub.sub("uw", 1)
	pub := client(t, b, "pub")
	pub.publish("uw", "inflight", 1, false)
	pub.publish("uw", "queued", 1, false)
	first := sub.expectPublish("uw", "inflight")
	sub.send(&packet.Unsubscribe{PacketID: 50, Filters: []string{"uw"}})
	expectPacket[*packet.Unsuback](sub)
	pub.publish("uw", "after", 1, false)
	sub.ack(first)
	sub.ack(sub.expectPublish("uw", "queued"))
	sub.sync()
}
