package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// B1: packets already read by a taken-over connection are still handled
// after the takeover. A SUBSCRIBE handled after a Clean Start takeover
// discarded the old session leaves subscriptions of a dead session in the
// trie for ever.
func TestRegressTakeoverLateSubscribeLeaks(t *testing.T) {
	o := testOptions()
	o.PublishRate, o.PublishBurst = 1, 1 // only to hold the old read loop for ~1s
	b := runBroker(t, o)
	a := v5Client(t, b, "rv-b1")
	// One write: two PUBLISHes (the second waits ~1s for the rate) then a SUBSCRIBE of 50 filters.
	var subs []packet.Subscription
	for i := range 50 {
		subs = append(subs, packet.Subscription{Filter: fmt.Sprintf("leak/%d", i), QoS: 1})
	}
	a.send(&packet.Publish{Topic: "x", Payload: make([]byte, 100)}, &packet.Publish{Topic: "x", Payload: make([]byte, 100)},
		&packet.Subscribe{PacketID: 1, Subscriptions: subs})
	time.Sleep(100 * time.Millisecond) // old read loop now sleeps in throttle
	bc := v5Client(t, b, "rv-b1")      // Clean Start takeover: the old session is discarded
	time.Sleep(1500 * time.Millisecond)
	bc.send(&packet.Disconnect{})
	b.waitOffline(t, "rv-b1")
	time.Sleep(100 * time.Millisecond)
	if exists, _ := b.SessionState("rv-b1"); exists {
		t.Logf("session still exists")
	}
	if n := b.Stats().Subscriptions; n != 0 {
		t.Errorf("no session left, but the trie holds %d subscriptions (of a discarded session)", n)
	}
}

// B2: a DISCONNECT read by the old connection before a takeover, handled
// after it, changes the NEW connection's session expiry: the session the
// new client asked to keep for 300 s ends when it disconnects.
func TestRegressTakeoverLateDisconnectClobbersExpiry(t *testing.T) {
	o := testOptions()
	o.PublishRate, o.PublishBurst = 1, 1
	b := runBroker(t, o)
	a, _ := v5ConnectOK(t, b.Addr, v5Persistent("rv-b2", true, 300))
	d := &packet.Disconnect{}
	d.Properties.SetUint(packet.PropSessionExpiry, 0)
	// Three PUBLISHes: the old loop sleeps 2 s in the throttle, longer
	// than a takeover waits for it to finish (1 s), so the takeover
	// happens first and the DISCONNECT comes late.
	pub := &packet.Publish{Topic: "x", Payload: make([]byte, 100)}
	a.send(pub, pub, pub, d)
	time.Sleep(100 * time.Millisecond)
	n, ack := v5ConnectOK(t, b.Addr, v5Persistent("rv-b2", false, 300))
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	time.Sleep(2500 * time.Millisecond) // old loop wakes and handles DISCONNECT(expiry 0)
	n.nc.Close()                        // network drop of the new connection
	b.waitOffline(t, "rv-b2")
	time.Sleep(50 * time.Millisecond)
	if exists, _ := b.SessionState("rv-b2"); !exists {
		t.Errorf("the new connection asked for a 300 s session; it was discarded because the OLD connection's DISCONNECT set expiry 0")
	}
}
