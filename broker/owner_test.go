package broker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// ownerBroker runs a broker with users alice/wonder and bob/builder, each
// allowed only home/<user>/#, and the given session ownership.
func ownerBroker(t *testing.T, mode broker.SessionOwnership, configure ...func(*broker.Options)) *testBroker {
	t.Helper()
	pw := auth.NewPasswordFile()
	pw.Params = auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	for user, pass := range map[string]string{"alice": "wonder", "bob": "builder"} {
		if err := pw.Set(user, []byte(pass)); err != nil {
			t.Fatal(err)
		}
	}
	acl, err := auth.ParseACL("owner.acl", strings.NewReader("topic read home/#\npattern readwrite home/%u/#\n"))
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.Authenticator, opts.Authorizer = pw, acl
	opts.SessionOwnership = mode
	for _, f := range configure {
		f(&opts)
	}
	l := listen(t)
	srv, err := broker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeListener(l, broker.ListenerOptions{Name: "owner-test", Anonymous: broker.AnonymousAllow})
	t.Cleanup(func() { srv.Close() })
	return &testBroker{Server: srv, Addr: l.Addr().String()}
}

// persistentLogin is login with Clean Session 0 (3.1.1) or Clean Start 0
// and a session that outlives the connection (5.0).
func persistentLogin(id, user, pass string, version byte) *packet.Connect {
	p := login(id, user, pass, version)
	p.CleanStart = false
	if version == packet.V5 {
		p.Properties.SetUint(packet.PropSessionExpiry, 3600)
	}
	return p
}

// ownedSession leaves alice's persistent session "shared-id" offline with
// one QoS 1 message in flight (sent, never acknowledged) and two queued.
func ownedSession(t *testing.T, b *testBroker) {
	t.Helper()
	alice, _ := connectOK(t, b.Addr, persistentLogin("shared-id", "alice", "wonder", packet.V311))
	alice.sub("home/alice/#", 1)
	pub, _ := connectOK(t, b.Addr, login("alice-pub", "alice", "wonder", packet.V311))
	pub.publish("home/alice/secret", "in flight", 1, false)
	if p := alice.expectPublish("home/alice/secret", "in flight"); p.QoS != 1 {
		t.Fatalf("QoS %d, want 1", p.QoS)
	}
	alice.nc.Close() // without PUBACK: the message stays in flight
	b.waitOffline(t, "shared-id")
	pub.publish("home/alice/secret", "queued 1", 1, false)
	pub.publish("home/alice/secret", "queued 2", 1, false)
}

// A persistent session is resumed only by the identity that created it: bob,
// with his own password and alice's client identifier, is refused (3.1.1
// return code 5, 5.0 0x87) whatever Clean Session says, gets none of
// alice's messages, and her in-flight and queued messages survive for her
// (issue 16, point 1). [MQTT-3.1.4-2] [MQTT-3.2.2-4] [MQTT-3.2.2-5]
func TestSessionOwnerOnly(t *testing.T) {
	b := ownerBroker(t, broker.SessionOwnerOnly)
	ownedSession(t, b)

	for _, tc := range []struct {
		name string
		p    *packet.Connect
		want packet.ReasonCode
	}{
		{"3.1.1 resume", persistentLogin("shared-id", "bob", "builder", packet.V311), packet.NotAuthorized},
		{"3.1.1 clean", login("shared-id", "bob", "builder", packet.V311), packet.NotAuthorized},
		{"5.0 resume", persistentLogin("shared-id", "bob", "builder", packet.V5), packet.NotAuthorized},
		{"5.0 clean start", login("shared-id", "bob", "builder", packet.V5), packet.NotAuthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connect := connectRaw
			if tc.p.Version == packet.V5 {
				connect = v5ConnectRaw
			}
			c, ack := connect(t, b.Addr, tc.p)
			if ack.ReasonCode != tc.want || ack.SessionPresent {
				t.Fatalf("CONNACK %v session present %v, want %v without a session", ack.ReasonCode, ack.SessionPresent, tc.want)
			}
			if got := c.expectClosed(waitFor); len(got) > 0 {
				t.Fatalf("bob got %d packets after the refusal: %s", len(got), describe(got[0]))
			}
		})
	}

	// Alice gets everything: the in-flight message again with DUP
	// [MQTT-4.4.0-1], then the queued ones.
	alice, ack := connectOK(t, b.Addr, persistentLogin("shared-id", "alice", "wonder", packet.V311))
	if !ack.SessionPresent {
		t.Fatalf("alice's session was lost")
	}
	if p := alice.expectPublish("home/alice/secret", "in flight"); !p.Dup {
		t.Errorf("resent message without DUP")
	} else {
		alice.ack(p)
	}
	for _, want := range []string{"queued 1", "queued 2"} {
		alice.ack(alice.expectPublish("home/alice/secret", want))
	}

	// While alice is online, bob cannot take her connection over either.
	c, ack2 := connectRaw(t, b.Addr, login("shared-id", "bob", "builder", packet.V311))
	if ack2.ReasonCode != packet.NotAuthorized {
		t.Fatalf("bob taking over a live session: CONNACK %v", ack2.ReasonCode)
	}
	c.expectClosed(waitFor)
	alice.sync()
}

// With SessionOwnerAny, the client identifier alone decides, as MQTT
// specifies: bob resumes alice's session.
func TestSessionOwnerAny(t *testing.T) {
	b := ownerBroker(t, broker.SessionOwnerAny)
	ownedSession(t, b)
	bob, ack := connectOK(t, b.Addr, persistentLogin("shared-id", "bob", "builder", packet.V311))
	if !ack.SessionPresent {
		t.Fatalf("session_ownership any: bob did not resume the session")
	}
	bob.nc.Close()
}

// Anonymous clients share one identity: an anonymous session cannot be
// taken by a user, nor a user's by an anonymous client.
func TestSessionOwnerAnonymous(t *testing.T) {
	b := ownerBroker(t, broker.SessionOwnerOnly)
	anon, _ := connectOK(t, b.Addr, persistentLogin("anon-id", "", "", packet.V311))
	anon.nc.Close()
	b.waitOffline(t, "anon-id")
	c, ack := connectRaw(t, b.Addr, persistentLogin("anon-id", "alice", "wonder", packet.V311))
	if ack.ReasonCode != packet.NotAuthorized {
		t.Fatalf("alice on an anonymous session: CONNACK %v", ack.ReasonCode)
	}
	c.expectClosed(waitFor)
	_, ack = connectOK(t, b.Addr, persistentLogin("anon-id", "", "", packet.V311))
	if !ack.SessionPresent {
		t.Fatalf("anonymous client lost its session")
	}

	alice, _ := connectOK(t, b.Addr, persistentLogin(fmt.Sprint("alice-", time.Now().UnixNano()), "alice", "wonder", packet.V311))
	alice.sync()
}

// A session's owner is stored with it: after a restart bob is still
// refused and alice still resumes.
func TestSessionOwnerSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	st := openPebble(t, dir)
	b := ownerBroker(t, broker.SessionOwnerOnly, func(o *broker.Options) { o.Store = st })
	alice, _ := connectOK(t, b.Addr, persistentLogin("kept-id", "alice", "wonder", packet.V311))
	alice.sub("home/alice/#", 1)
	alice.send(&packet.Disconnect{})
	b.waitOffline(t, "kept-id")
	b.Close()
	st.Close()

	st = openPebble(t, dir)
	b = ownerBroker(t, broker.SessionOwnerOnly, func(o *broker.Options) { o.Store = st })
	c, ack := connectRaw(t, b.Addr, persistentLogin("kept-id", "bob", "builder", packet.V311))
	if ack.ReasonCode != packet.NotAuthorized {
		t.Fatalf("bob after a restart: CONNACK %v", ack.ReasonCode)
	}
	c.expectClosed(waitFor)
	if _, ack = connectOK(t, b.Addr, persistentLogin("kept-id", "alice", "wonder", packet.V311)); !ack.SessionPresent {
		t.Fatal("alice's session lost across the restart")
	}
}
