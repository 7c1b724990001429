package broker_test

import (
	"fmt"
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store/pebble"
)

// E: a persistent session with more than 1,000 queued messages keeps the
// rest only on disk (spilled). Resuming it (Clean Start 0, Session Present
// 1) with Session Expiry 0 deletes the stored session, queue included: the
// spilled messages, all acknowledged to their publisher, are gone.
func TestRegressResumeNonPersistentLosesSpilled(t *testing.T) {
	st, err := pebble.Open(t.TempDir(), pebble.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := testOptions()
	o.Store = st
	b := runBroker(t, o)
	sub, _ := v5ConnectOK(t, b.Addr, v5Persistent("rv-e", true, 300))
	sub.v5Sub(0, packet.Subscription{Filter: "rv/e", QoS: 1})
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "rv-e")
	pub := v5Client(t, b, "rv-e-pub")
	const n = 1500
	for i := range n {
		pub.v5Pub("rv/e", fmt.Sprint(i), 1, false)
	}
	sub2, ack := v5ConnectOK(t, b.Addr, v5Persistent("rv-e", false, 0))
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	got := 0
	for {
		p, err := sub2.read(quiet * 2)
		if err != nil {
			break
		}
		if pp, ok := p.(*packet.Publish); ok {
			got++
			sub2.send(&packet.Puback{PacketID: pp.PacketID})
		}
	}
	if got != n {
		t.Errorf("Session Present 1, %d messages acknowledged to the publisher, %d delivered", n, got)
	}
}
