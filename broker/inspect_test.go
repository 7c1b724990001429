package broker_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// The introspection API reports sessions, subscriptions and retained
// messages as the traffic made them, and Disconnect kicks a client.
func TestInspectAndDisconnect(t *testing.T) {
	b := runBroker(t, testOptions())
	c, _ := connectOK(t, b.Addr, persistentConnect("watched"))
	c.sub("a/#", 1)
	c.sub("b", 0)
	c.publish("keep/me", "v", 0, true)
	c.sync()

	ci, subs, ok := b.Client("watched")
	if !ok || !ci.Connected || !ci.Persistent || ci.Subscriptions != 2 || len(subs) != 2 || subs[0].Filter != "a/#" || subs[0].QoS != 1 {
		t.Fatalf("Client() = %+v %+v %v", ci, subs, ok)
	}
	if all := b.Clients(); len(all) != 1 || all[0].ClientID != "watched" {
		t.Errorf("Clients() = %+v", all)
	}
	if got := b.Subscriptions(); len(got) != 2 {
		t.Errorf("Subscriptions() = %+v", got)
	}
	ret, err := b.Retained("#")
	if err != nil || len(ret) != 1 || ret[0].Topic != "keep/me" || string(ret[0].Payload) != "v" {
		t.Errorf("Retained(#) = %+v, %v", ret, err)
	}
	if !b.DeleteRetained("keep/me") || b.DeleteRetained("keep/me") {
		t.Error("DeleteRetained did not report the message once")
	}

	if !b.Disconnect("watched", false) {
		t.Fatal("Disconnect(watched) = false")
	}
	c.expectClosed(waitFor)
	b.waitOffline(t, "watched")
	if _, _, ok := b.Client("watched"); !ok {
		t.Error("session gone after a disconnect without discard")
	}
	if !b.Disconnect("watched", true) {
		t.Fatal("Disconnect(watched, discard) = false")
	}
	if _, _, ok := b.Client("watched"); ok {
		t.Error("session kept after a disconnect with discard")
	}
	if b.Disconnect("nobody", false) {
		t.Error("Disconnect of an unknown client reported true")
	}

	v5, _ := v5ConnectOK(t, b.Addr, v5Connect("kicked5"))
	b.Disconnect("kicked5", false)
	v5.v5ExpectDisconnect(packet.AdministrativeAction)
}
