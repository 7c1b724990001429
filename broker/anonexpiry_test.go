package broker_test

import (
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// Anonymous clients cannot create sessions that never expire (issue 16,
// point 10): by default a 5.0 Session Expiry Interval is cut to
// MaxAnonymousSessionExpiry and the client told in CONNACK; users keep
// theirs.
func TestAnonymousSessionExpiryDefault(t *testing.T) {
	b := ownerBroker(t, broker.SessionOwnerOnly)
	want := broker.DefaultOptions().MaxAnonymousSessionExpiry
	if want == 0 {
		t.Fatal("no default cap on anonymous session expiry")
	}
	p := v5Persistent("anon-forever", false, 0xFFFFFFFF)
	_, ack := v5ConnectOK(t, b.Addr, p)
	if !ack.Properties.Has(packet.PropSessionExpiry) || ack.Properties.SessionExpiry != want {
		t.Fatalf("anonymous CONNACK Session Expiry %d (present %v), want %d",
			ack.Properties.SessionExpiry, ack.Properties.Has(packet.PropSessionExpiry), want)
	}

	user := persistentLogin("alice-forever", "alice", "wonder", packet.V5)
	user.Properties.SetUint(packet.PropSessionExpiry, 0xFFFFFFFF)
	_, ack = v5ConnectOK(t, b.Addr, user)
	if ack.Properties.Has(packet.PropSessionExpiry) {
		t.Fatalf("alice's Session Expiry cut to %d", ack.Properties.SessionExpiry)
	}
}

// An anonymous 3.1.1 persistent session is discarded once it has been
// offline for MaxAnonymousSessionExpiry; a user's is kept.
func TestAnonymousSessionExpiry311(t *testing.T) {
	b := ownerBroker(t, broker.SessionOwnerOnly, func(o *broker.Options) { o.MaxAnonymousSessionExpiry = 1 })
	anon, _ := connectOK(t, b.Addr, persistentLogin("anon-311", "", "", packet.V311))
	alice, _ := connectOK(t, b.Addr, persistentLogin("alice-311", "alice", "wonder", packet.V311))
	anon.nc.Close()
	alice.nc.Close()
	waitExpired(t, b, "anon-311")
	if exists, _ := b.SessionState("alice-311"); !exists {
		t.Fatal("alice's 3.1.1 session was discarded")
	}
	_, ack := connectOK(t, b.Addr, persistentLogin("anon-311", "", "", packet.V311))
	if ack.SessionPresent {
		t.Fatal("expired anonymous session resumed")
	}
}

// Nor can an anonymous 5.0 client lengthen its session with the Session
// Expiry Interval of DISCONNECT.
func TestAnonymousSessionExpiryDisconnect(t *testing.T) {
	b := ownerBroker(t, broker.SessionOwnerOnly, func(o *broker.Options) { o.MaxAnonymousSessionExpiry = 1 })
	c, _ := v5ConnectOK(t, b.Addr, v5Persistent("anon-disc", false, 1))
	d := &packet.Disconnect{}
	d.Properties.SetUint(packet.PropSessionExpiry, 0xFFFFFFFF)
	c.send(d)
	waitExpired(t, b, "anon-disc")
}

// waitExpired waits for a session with a 1 s expiry to be gone, allowing a
// loaded machine 10 s.
func waitExpired(t *testing.T, b *testBroker, id string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if exists, _ := b.SessionState(id); !exists {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still there 10 s after it went offline with a 1 s expiry", id)
		}
	}
}
