package broker_test

import (
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// aclBroker runs a broker whose authoriser is the ACL text (no
// authenticator: any user name gets in, as itself).
func aclBroker(t *testing.T, acl string, wrap func(auth.Authorizer) auth.Authorizer) *testBroker {
	t.Helper()
	return aclBrokerWith(t, acl, wrap, testOptions())
}

func aclBrokerWith(t *testing.T, acl string, wrap func(auth.Authorizer) auth.Authorizer, opts broker.Options) *testBroker {
	t.Helper()
	a, err := auth.ParseACL("test.acl", strings.NewReader(acl))
	if err != nil {
		t.Fatal(err)
	}
	opts.Authorizer = a
	if wrap != nil {
		opts.Authorizer = wrap(a)
	}
	return runBroker(t, opts)
}

func userConnect(id, user string, clean bool) *packet.Connect {
	p := login(id, user, "", packet.V311)
	p.CleanStart = clean
	return p
}

// Issue 16.1: a message sent to one identity and not acknowledged is not
// re-sent to another identity that takes the session over and may not read
// it; nor is a message queued for the session while it was offline. With
// session ownership on (the default) bob cannot take alice's session at
// all; with ownership off, read access is what protects her messages.
func TestACLResendChecksReadAccess(t *testing.T) {
	opts := testOptions()
	opts.SessionOwnership = broker.SessionOwnerAny
	b := aclBrokerWith(t, "user alice\ntopic readwrite a/#\nuser bob\ntopic readwrite b/#\nuser pub\ntopic write #\n", nil, opts)
	alice, _ := connectOK(t, b.Addr, userConnect("victim", "alice", false))
	alice.sub("a/#", 1)
	pub, _ := connectOK(t, b.Addr, userConnect("pub", "pub", true))
	pub.publish("a/secret", "in flight", 1, false)
	if p := alice.expectPublish("a/secret", "in flight"); p.QoS != 1 {
		t.Fatalf("QoS %d, want 1", p.QoS)
	}
	alice.nc.Close() // unacknowledged: the session keeps it for a resend [MQTT-4.4.0-1]
	b.waitOffline(t, "victim")
	pub.publish("a/secret", "queued", 1, false)

	bob, _ := connectOK(t, b.Addr, userConnect("victim", "bob", false))
	bob.sync()
	pub.publish("a/secret", "live", 1, false)
	bob.sync() // nothing but PINGRESP: no resend, no queued or live message
}

// A Mosquitto ACL never refuses a subscription: a subscriber on "#"
// granted read on sensors/a/# receives that part only, live and retained.
func TestACLReadAtDeliveryFiltersEachMessage(t *testing.T) {
	b := aclBroker(t, "user alice\ntopic read sensors/a/#\nuser pub\ntopic write #\n", auth.ReadAtDelivery)
	pub, _ := connectOK(t, b.Addr, userConnect("pub", "pub", true))
	pub.publish("sensors/b/r", "retained hidden", 1, true)
	pub.publish("sensors/a/r", "retained shown", 1, true)

	alice, _ := connectOK(t, b.Addr, userConnect("alice", "alice", true))
	if rc := alice.subscribe(packet.Subscription{Filter: "#", QoS: 1}); rc[0] != packet.GrantedQoS1 {
		t.Fatalf("SUBSCRIBE # answered %s, want granted QoS 1: an acl_file refuses no subscription", rc[0])
	}
	alice.ack(alice.expectPublish("sensors/a/r", "retained shown"))
	alice.sync()
	pub.publish("sensors/b/x", "hidden", 1, false)
	pub.publish("sensors/a/x", "shown", 1, false)
	pub.publish("other", "hidden", 0, false)
	alice.ack(alice.expectPublish("sensors/a/x", "shown"))
	alice.sync()
}

// An ACL file with only comments grants nothing and refuses no
// subscription.
func TestACLOnlyCommentsRefusesNoSubscription(t *testing.T) {
	b := aclBroker(t, "# nothing yet\n\n# still nothing\n", auth.ReadAtDelivery)
	sub, _ := connectOK(t, b.Addr, userConnect("s", "alice", true))
	if rc := sub.subscribe(packet.Subscription{Filter: "t/#", QoS: 1}, packet.Subscription{Filter: "x", QoS: 0}); rc[0] != packet.GrantedQoS1 || rc[1] != packet.GrantedQoS0 {
		t.Fatalf("SUBACK %v, want both granted", rc)
	}
	// Writes are refused too: the publish is acknowledged and dropped.
	pub, _ := connectOK(t, b.Addr, userConnect("p", "alice", true))
	pub.publish("t/1", "x", 1, false)
	pub.publish("x", "x", 0, false)
	sub.sync()
}

// Issue 16.1, the same identity: after the ACL is reloaded without its
// read access, a resumed session gets neither its unacknowledged messages
// re-sent nor its queued ones.
func TestACLResendAfterReloadChecksReadAccess(t *testing.T) {
	parse := func(text string) auth.Authorizer {
		a, err := auth.ParseACL("test.acl", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	opts := testOptions()
	opts.Authorizer = parse("user alice\ntopic readwrite a/#\nuser pub\ntopic write #\n")
	b := runBroker(t, opts)
	alice, _ := connectOK(t, b.Addr, userConnect("alice", "alice", false))
	alice.sub("a/#", 1)
	pub, _ := connectOK(t, b.Addr, userConnect("pub", "pub", true))
	pub.publish("a/x", "in flight", 1, false)
	alice.expectPublish("a/x", "in flight") // not acknowledged
	alice.nc.Close()
	b.waitOffline(t, "alice")
	pub.publish("a/y", "queued", 1, false)

	opts.Authorizer = parse("user alice\ntopic readwrite b/#\nuser pub\ntopic write #\n")
	if err := b.Reload(opts); err != nil {
		t.Fatal(err)
	}
	again, ack := connectOK(t, b.Addr, userConnect("alice", "alice", false))
	if !ack.SessionPresent {
		t.Fatal("session not resumed")
	}
	again.sync() // nothing: no resend of a/x, no delivery of a/y
}
