package broker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// writePrefixes is an authoriser that lets clients write only to topics
// starting with one of its prefixes, and read everything.
type writePrefixes []string

func (w writePrefixes) Authorize(_ context.Context, _ *auth.Client, a auth.Access, topic string) (bool, error) {
	if a != auth.Write {
		return true, nil
	}
	for _, p := range w {
		if strings.HasPrefix(topic, p) {
			return true, nil
		}
	}
	return false, nil
}

func delayedOptions() broker.Options {
	o := testOptions()
	o.DelayedPublish = true
	o.MaxDelay = time.Hour
	return o
}

// A PUBLISH to $delayed/{seconds}/{topic} reaches the subscribers of
// {topic} after the delay, not before; the publisher's PUBACK says success
// (not 0x10: the message is held, not routed).
func TestDelayedPublishHoldsThenPublishes(t *testing.T) {
	t.Parallel()
	b := runBroker(t, delayedOptions())
	sub, _ := v5Paho(t, b.Addr, v5PahoConnect(v5ID("dsub")), nil)
	sub.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "d/#", QoS: 1}, {Topic: "$delayed/#", QoS: 1}}})
	pub, _ := v5Paho(t, b.Addr, v5PahoConnect(v5ID("dpub")), nil)
	start := time.Now()
	if rc := pub.pub(t, &paho.Publish{Topic: "$delayed/1/d/x", QoS: 1, Payload: []byte("later"),
		Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: "k", Value: "v"}}}}); rc != 0 {
		t.Fatalf("PUBACK %#x, want 0x00", rc)
	}
	if st := b.Stats(); st.DelayedHeld != 1 {
		t.Fatalf("held %d, want 1", st.DelayedHeld)
	}
	m := sub.next(t)
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("delayed message arrived after %v, before its 1s delay", waited)
	}
	if m.Topic != "d/x" || string(m.Payload) != "later" || m.QoS != 1 {
		t.Errorf("got %q %q QoS %d, want d/x \"later\" QoS 1", m.Topic, m.Payload, m.QoS)
	}
	if m.Properties == nil || m.Properties.User.Get("k") != "v" {
		t.Errorf("user property lost: %+v", m.Properties)
	}
	sub.none(t, 200*time.Millisecond) // once only, and not to $delayed/# subscribers
	if st := b.Stats(); st.DelayedHeld != 0 || st.DelayedReleased != 1 {
		t.Errorf("held %d released %d, want 0 and 1", st.DelayedHeld, st.DelayedReleased)
	}

	// A 3.1.1 publisher (paho.mqtt.golang) at QoS 2 too.
	c := pahoClient(t, b.Addr, "d311", 4, nil)
	wait(t, "publish", c.Publish("$delayed/0/d/y", 2, false, "now"))
	if m := sub.next(t); m.Topic != "d/y" || string(m.Payload) != "now" {
		t.Errorf("got %q %q, want d/y now", m.Topic, m.Payload)
	}
}

// Malformed delayed topics and delays above the maximum are refused: 5.0
// QoS 1/2 with PUBACK/PUBREC 0x90 Topic Name invalid, or 0x83 for a delay
// above max_delay; 3.1.1 acknowledges and drops them. All are counted,
// nothing is held or routed.
func TestDelayedPublishInvalidForms(t *testing.T) {
	t.Parallel()
	b := runBroker(t, delayedOptions())
	sub := v5Client(t, b, v5ID("watch"))
	sub.v5Sub(0, packet.Subscription{Filter: "#", QoS: 1})
	sub.v5Sub(0, packet.Subscription{Filter: "$delayed/#", QoS: 1})
	pub := v5Client(t, b, v5ID("bad"))
	cases := []struct {
		topic string
		want  packet.ReasonCode
	}{
		{"$delayed/abc/x", packet.TopicNameInvalid},
		{"$delayed/10", packet.TopicNameInvalid},
		{"$delayed//x", packet.TopicNameInvalid},
		{"$delayed/-1/x", packet.TopicNameInvalid},
		{"$delayed/10/$SYS/x", packet.TopicNameInvalid},
		{"$delayed/10/$delayed/1/x", packet.TopicNameInvalid},
		{"$delayed/3601/x", packet.ImplementationSpecificError},
		{"$delayed/99999999999999999999/x", packet.TopicNameInvalid},
	}
	for _, c := range cases {
		for _, qos := range []byte{1, 2} {
			if rc := pub.v5Pub(c.topic, "x", qos, false); rc != c.want {
				t.Errorf("%q QoS %d: %s (%#x), want %#x", c.topic, qos, rc, byte(rc), byte(c.want))
			}
		}
	}
	pub.v5Pub("$delayed/x/y", "x", 0, false) // QoS 0: dropped, the connection stays
	old := pahoClient(t, b.Addr, "bad311", 4, nil)
	wait(t, "publish 3.1.1", old.Publish("$delayed/zz/x", 1, false, "x"))
	wait(t, "publish 3.1.1", old.Publish("$delayed/7200/x", 2, false, "x"))
	sub.v5ExpectNothing()
	if rc := pub.v5Pub("$delayed/3600/ok", "x", 1, false); rc != packet.Success { // the edge: exactly max_delay
		t.Errorf("delay of exactly max_delay: %s, want success", rc)
	}
	// The PUBACK above also says that the broker has read the QoS 0
	// publish sent before it on the same connection.
	want := uint64(2*len(cases) + 3)
	if st := b.Stats(); st.DelayedRefused != want || st.DelayedHeld != 1 {
		t.Errorf("refused %d held %d, want %d and 1", st.DelayedRefused, st.DelayedHeld, want)
	}
}

// Authorisation applies to the target topic: a client that may write to
// ok/# may delay a message to ok/x, not to no/x (0x87), whatever it may do
// with $delayed topics.
func TestDelayedPublishAuthorisesTarget(t *testing.T) {
	t.Parallel()
	o := delayedOptions()
	o.Authorizer = writePrefixes{"ok/"}
	b := runBroker(t, o)
	pub := v5Client(t, b, v5ID("auth"))
	if rc := pub.v5Pub("$delayed/0/no/x", "x", 1, false); rc != packet.NotAuthorized {
		t.Errorf("delayed to a forbidden topic: %s, want 0x87", rc)
	}
	if rc := pub.v5Pub("$delayed/100/ok/x", "x", 1, false); rc != packet.Success {
		t.Errorf("delayed to an allowed topic: %s, want success", rc)
	}
	if st := b.Stats(); st.DelayedHeld != 1 {
		t.Errorf("held %d, want 1", st.DelayedHeld)
	}
}

// Held messages are listed, earliest first, and cancelled: a cancelled one
// is never published. At most MaxDelayed are held: the next is refused
// with 0x97.
func TestDelayedPublishListCancelAndCap(t *testing.T) {
	t.Parallel()
	o := delayedOptions()
	o.MaxDelayed = 2
	b := runBroker(t, o)
	sub := v5Client(t, b, v5ID("s"))
	sub.v5Sub(0, packet.Subscription{Filter: "c/#", QoS: 1})
	pub := v5Client(t, b, v5ID("p"))
	pub.v5Pub("$delayed/1/c/a", "a", 1, false)
	pub.v5Pub("$delayed/60/c/b", "b", 2, true)
	if rc := pub.v5Pub("$delayed/60/c/c", "c", 1, false); rc != packet.QuotaExceeded {
		t.Errorf("third held message: %s, want 0x97", rc)
	}
	list := b.DelayedMessages()
	if len(list) != 2 || list[0].Topic != "c/a" || list[1].Topic != "c/b" || !list[1].Retain || list[1].QoS != 2 || list[1].Size != 1 {
		t.Fatalf("listed %+v", list)
	}
	if !b.CancelDelayed(list[0].ID) || b.CancelDelayed(list[0].ID) {
		t.Fatalf("cancel: want true once, then false")
	}
	time.Sleep(1500 * time.Millisecond)
	sub.v5ExpectNothing()
	if got := b.DelayedMessages(); len(got) != 1 || got[0].ID != list[1].ID {
		t.Errorf("after cancel: %+v", got)
	}
}

// Off (the default), $delayed/... is an ordinary topic.
func TestDelayedPublishOffByDefault(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := pahoClient(t, b.Addr, "off", 4, nil)
	ch := pahoMessages(t, c, "$delayed/#", 1, 4)
	wait(t, "publish", c.Publish("$delayed/5/x", 1, false, "x"))
	if m := nextMessage(t, ch); m.Topic() != "$delayed/5/x" {
		t.Errorf("got %q", m.Topic())
	}
	if b.Stats().DelayedHeld != 0 {
		t.Error("held a message while delayed publish is off")
	}
}

// Held messages are in the store: a broker restarted on the same pebble
// store publishes them when due (here into a persistent session that
// subscribed before the restart); one published is not published again.
func TestDelayedPublishSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := openPebble(t, dir)
	o := delayedOptions()
	o.Store = st
	b1 := runBroker(t, o)
	subID := v5ID("keep")
	sub, _ := v5ConnectOK(t, b1.Addr, v5Persistent(subID, true, 3600))
	sub.v5Sub(0, packet.Subscription{Filter: "r/#", QoS: 1})
	sub.nc.Close()
	b1.waitOffline(t, subID)
	pub := v5Client(t, b1, v5ID("p"))
	pub.v5Pub("$delayed/0/r/now", "now", 1, false)
	eventually(t, "the 0s message released", func() bool { return b1.Stats().DelayedReleased == 1 })
	pub.v5Pub("$delayed/1/r/a", "a", 1, false)
	b1.Close()
	st.Close()

	st2 := openPebble(t, dir)
	t.Cleanup(func() { st2.Close() })
	o.Store = st2
	b2 := runBroker(t, o)
	if got := b2.DelayedMessages(); len(got) > 1 || (len(got) == 1 && got[0].Topic != "r/a") {
		t.Fatalf("restored %+v, want r/a alone (or nothing once due)", got)
	}
	eventually(t, "released after restart", func() bool { return b2.Stats().DelayedHeld == 0 })
	sub2, _ := v5ConnectOK(t, b2.Addr, v5Persistent(subID, false, 3600))
	m := sub2.expectPublish("r/now", "now")
	sub2.ack(m)
	m = sub2.expectPublish("r/a", "a")
	sub2.ack(m)
	sub2.v5ExpectNothing()
}

// denyReadPrefix refuses reading topics and filters with its prefix.
type denyReadPrefix string

func (d denyReadPrefix) Authorize(_ context.Context, _ *auth.Client, a auth.Access, topic string) (bool, error) {
	return a != auth.Read || !strings.HasPrefix(topic, string(d)), nil
}

// On a listener with a mount point, the target of a delayed publish is
// mounted (EMQX mounts "$delayed/..." itself, so there it is never
// delayed), and rewrite rules see the mounted topic, as the authoriser does.
func TestDelayedPublishUnderMountPoint(t *testing.T) {
	t.Parallel()
	o := delayedOptions()
	o.Rewrite = []broker.RewriteRule{rule(broker.RewritePublish, "mp/old/#", `^mp/old/(.*)$`, "mp/new/$1")}
	b := runBroker(t, o)
	l := listen(t)
	go b.ServeListener(l, broker.ListenerOptions{MountPoint: "mp/"})
	sub := client(t, b, "outside")
	sub.sub("#", 0)
	pub, _ := connectOK(t, l.Addr().String(), connectPacket("mounted"))
	pub.publish("$delayed/0/old/x", "d", 1, false)
	sub.expectPublish("mp/new/x", "d")
	if st := b.Stats(); st.DelayedReleased != 1 {
		t.Errorf("released %d, want 1", st.DelayedReleased)
	}
}
