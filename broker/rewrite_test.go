package broker_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

func rule(action broker.RewriteAction, filter, re, replace string) broker.RewriteRule {
	return broker.RewriteRule{Action: action, Filter: filter, Regex: regexp.MustCompile(re), Replace: replace}
}

// Publish rules rewrite PUBLISH topics before authorisation and routing:
// the authoriser sees, and subscribers get, the rewritten topic.
func TestRewritePublishBeforeAuthorisation(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.Rewrite = []broker.RewriteRule{
		rule(broker.RewritePublish, "x/#", `^x/(.+)$`, "y/$1"),
		rule(broker.RewritePublish, "open/#", `^open/(.+)$`, "secret/$1"),
		rule(broker.RewritePublish, "x/#", `^(.*)$`, "never/$1"), // a later rule for the same filter: not reached
		rule(broker.RewritePublish, "dev/+", `^dev/(\w+)$`, "devices/${clientid}/$1"),
	}
	o.Authorizer = writePrefixes{"y/", "devices/"} // x/... and open/... are not writable as such
	b := runBroker(t, o)
	sub, _ := v5Paho(t, b.Addr, v5PahoConnect(v5ID("rsub")), nil)
	sub.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "#", QoS: 1}}})
	pubID := v5ID("rpub")
	pub := v5Client(t, b, pubID)

	if rc := pub.v5Pub("x/a/b", "1", 1, false); rc != 0 {
		t.Errorf("x/a/b (rewritten to the writable y/a/b): PUBACK %#x, want 0", rc)
	}
	if m := sub.next(t); m.Topic != "y/a/b" || string(m.Payload) != "1" {
		t.Errorf("got %q %q, want y/a/b", m.Topic, m.Payload)
	}
	if rc := pub.v5Pub("open/door", "2", 1, false); rc != packet.NotAuthorized {
		t.Errorf("open/door (rewritten to the forbidden secret/door): PUBACK %#x, want 0x87", rc)
	}
	if rc := pub.v5Pub("dev/temp", "3", 1, false); rc != 0 {
		t.Errorf("dev/temp: PUBACK %#x, want 0", rc)
	}
	if m := sub.next(t); m.Topic != "devices/"+pubID+"/temp" {
		t.Errorf("got %q, want devices/%s/temp", m.Topic, pubID)
	}
	// A topic no rule's filter matches is left alone, and so refused here.
	if rc := pub.v5Pub("z/1", "4", 1, false); rc != packet.NotAuthorized {
		t.Errorf("z/1: PUBACK %#x, want 0x87", rc)
	}
	sub.none(t, 100e6)
}

// Subscribe rules rewrite SUBSCRIBE filters (a shared subscription's inner
// filter too) before authorisation; UNSUBSCRIBE with the filter as the
// client wrote it removes the rewritten subscription. Publish-only rules
// leave filters alone.
func TestRewriteSubscribe(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.Rewrite = []broker.RewriteRule{
		rule(broker.RewriteSubscribe, "old/#", `^old/(.*)$`, "new/$1"),
		rule(broker.RewritePublish, "pubonly/#", `^pubonly/(.*)$`, "elsewhere/$1"),
	}
	b := runBroker(t, o)
	c := client(t, b, "rsubc")
	if got := c.subscribe(packet.Subscription{Filter: "old/+", QoS: 1}, packet.Subscription{Filter: "pubonly/a", QoS: 0}); got[0] != 1 || got[1] != 0 {
		t.Fatalf("SUBACK %v", got)
	}
	sh := client(t, b, "rshare")
	sh.sub("$share/g/old/s", 1)
	p := client(t, b, "rpubc")
	p.publish("new/a", "a", 0, false)
	c.expectPublish("new/a", "a")
	p.publish("old/a", "b", 0, false)     // no publish rule for old/#: it stays old/a, which nobody has
	p.publish("pubonly/a", "p", 0, false) // rewritten to elsewhere/a: the pubonly/a subscriber gets nothing
	c.sync()
	p.publish("new/s", "s", 0, false)
	sh.expectPublish("new/s", "s") // $share/g/old/s became $share/g/new/s
	c.expectPublish("new/s", "s")
	c.send(&packet.Unsubscribe{PacketID: 9, Filters: []string{"old/+"}})
	if ack := expectPacket[*packet.Unsuback](c); ack.PacketID != 9 {
		t.Fatalf("UNSUBACK %+v", ack)
	}
	p.publish("new/b", "gone", 0, false)
	c.sync()
}

// Subscribe rewrite happens before authorisation: a filter rewritten into
// one the client may not read is refused.
func TestRewriteSubscribeAuthorised(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.Rewrite = []broker.RewriteRule{rule(broker.RewriteAll, "peek/#", `^peek/(.*)$`, "private/$1")}
	o.Authorizer = denyReadPrefix("private/")
	b := runBroker(t, o)
	c := v5Client(t, b, v5ID("peek"))
	if got := c.v5Subscribe(0, packet.Subscription{Filter: "peek/#", QoS: 1}); got[0] != packet.NotAuthorized {
		t.Errorf("SUBACK %v, want 0x87", got)
	}
}

// The will topic is rewritten like a PUBLISH topic.
func TestRewriteWillTopic(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.Rewrite = []broker.RewriteRule{rule(broker.RewriteAll, "lwt/+", `^lwt/(.+)$`, "status/$1")}
	b := runBroker(t, o)
	w := pahoClient(t, b.Addr, "watcher", 4, nil)
	ch := pahoMessages(t, w, "status/#", 1, 4)
	cp := connectPacket("dies")
	cp.WillFlag = true
	cp.Will.Topic, cp.Will.Payload, cp.Will.QoS = "lwt/dies", []byte("gone"), 1
	d, _ := connectOK(t, b.Addr, cp)
	d.nc.Close() // no DISCONNECT: the will is published
	if m := nextMessage(t, ch); m.Topic() != "status/dies" || string(m.Payload()) != "gone" {
		t.Errorf("will on %q %q, want status/dies", m.Topic(), m.Payload())
	}
}

// Rules are checked when the broker starts.
func TestRewriteRulesValidated(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.Rewrite = []broker.RewriteRule{{Action: broker.RewriteAll, Filter: "a/#/b"}}
	if _, err := broker.New(o); err == nil {
		t.Fatal("an invalid rule was accepted")
	}
}

// With an ACL file: a rule that puts each client's publishes under its own
// subtree (devices/${clientid}/...) meets an ACL pattern that lets a client
// write only there; a client cannot escape it by naming another's subtree,
// which no rule rewrites.
func TestRewriteWithACLFile(t *testing.T) {
	t.Parallel()
	acl, err := auth.ParseACL("test.acl", strings.NewReader("topic read #\npattern write devices/%c/#\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.Authorizer = acl
	o.Rewrite = []broker.RewriteRule{rule(broker.RewritePublish, "telemetry/#", `^telemetry/(.+)$`, "devices/${clientid}/$1")}
	b := runBroker(t, o)
	sub := v5Client(t, b, v5ID("reader"))
	sub.v5Sub(0, packet.Subscription{Filter: "devices/#", QoS: 1})
	dev := v5Client(t, b, "dev1")
	if rc := dev.v5Pub("telemetry/temp", "21", 1, false); rc != packet.Success {
		t.Errorf("telemetry/temp: %s, want success", rc)
	}
	sub.expectPublish("devices/dev1/temp", "21")
	if rc := dev.v5Pub("devices/dev2/temp", "99", 1, false); rc != packet.NotAuthorized {
		t.Errorf("another device's subtree: %s, want 0x87", rc)
	}
	sub.v5ExpectNothing()
}
