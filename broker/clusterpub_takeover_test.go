package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// A QoS 2 PUBLISH whose store the cluster has not confirmed is resent
// (DUP) on the connection that took the session over. The new connection
// must not answer PUBREC 0x00 before the cluster stored the first copy:
// if the cluster then refuses it, the publisher has been told the message
// was received and it is lost [MQTT-4.3.3-2]. The takeover waits for the
// old connection's stores (up to storeDrainLimit), not only takeoverWait.
func TestTakeoverDupWaitsForClusterStore(t *testing.T) {
	b, fc := runSlowCluster(t)
	sub := client(t, b, "rsub")
	sub.sub("rv/#", 2)
	old, _ := v5ConnectOK(t, b.Addr, v5Persistent("rpub", true, 300))
	old.send(&packet.Publish{Topic: "rv/x", Payload: []byte("1"), QoS: 2, PacketID: 7})
	eventually(t, "the cluster to be storing rv/x", func() bool { return fc.storing("rv/x") })

	done := make(chan *rawClient, 1)
	go func() { // the CONNECT waits for the old connection's store
		nw, _ := v5ConnectOK(t, b.Addr, v5Persistent("rpub", false, 300))
		done <- nw
	}()
	var nw *rawClient
	refused := false
	select {
	case nw = <-done: // taken over before the cluster answered
	case <-time.After(2500 * time.Millisecond): // well past takeoverWait: the takeover waits
		fc.finish(t, "rv/x", errors.New("refused"))
		refused = true
		nw = <-done
	}
	nw.send(&packet.Publish{Topic: "rv/x", Payload: []byte("1"), QoS: 2, PacketID: 7, Dup: true})
	if !refused {
		time.Sleep(100 * time.Millisecond) // the resend handled
		fc.finish(t, "rv/x", errors.New("refused"))
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the cluster takes the resent copy, if it is given it
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if fc.storing("rv/x") {
				fc.finish(t, "rv/x", nil)
				return
			}
		}
	}()
	p, err := nw.read(3 * time.Second)
	if err != nil {
		t.Fatalf("no answer to the resent QoS 2 PUBLISH: %v", err)
	}
	rec, ok := p.(*packet.Pubrec)
	if !ok {
		t.Fatalf("got %s, want PUBREC", describe(p))
	}
	if rec.ReasonCode == packet.Success {
		// Told received: the message must reach the subscriber.
		nw.send(&packet.Pubrel{PacketID: 7})
		if _, err := sub.read(2 * time.Second); err != nil {
			t.Fatalf("PUBREC 0x00 for the resent copy of a message the cluster refused, and it never reached the subscriber (%v)", err)
		}
	}
}
