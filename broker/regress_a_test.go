package broker_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// A: on resume with a smaller Receive Maximum, an unacknowledged QoS 2
// PUBLISH is re-sent later under a NEW packet identifier, without DUP
// [MQTT-4.4.0-1]: the client cannot recognise it as a duplicate.
func TestRegressResumeSmallerReceiveMaxNewID(t *testing.T) {
	b := runBroker(t, testOptions())
	sub, _ := v5ConnectOK(t, b.Addr, v5Persistent("rv-a", true, 300))
	sub.v5Sub(0, packet.Subscription{Filter: "rv/a", QoS: 2})
	pub := v5Client(t, b, "rv-a-pub")
	pub.v5Pub("rv/a", "m1", 2, false)
	pub.v5Pub("rv/a", "m2", 2, false)
	p1 := expectPacket[*packet.Publish](sub)
	p2 := expectPacket[*packet.Publish](sub)
	t.Logf("first connection: m1 id %d, m2 id %d", p1.PacketID, p2.PacketID)
	// The client got m2 and answered PUBREC, but the connection dropped
	// before the broker read it.
	sub.nc.Close()
	b.waitOffline(t, "rv-a")

	p := v5Persistent("rv-a", false, 300)
	p.Properties.SetUint(packet.PropReceiveMaximum, 1)
	sub2, ack := v5ConnectOK(t, b.Addr, p)
	if !ack.SessionPresent {
		t.Fatal("no session")
	}
	r1 := expectPacket[*packet.Publish](sub2)
	t.Logf("resumed: %s", describe(r1))
	sub2.send(&packet.Pubrec{PacketID: r1.PacketID})
	expectPacket[*packet.Pubrel](sub2)
	sub2.send(&packet.Pubcomp{PacketID: r1.PacketID})
	r2 := expectPacket[*packet.Publish](sub2)
	t.Logf("then: %s", describe(r2))
	if string(r2.Payload) == "m2" && (r2.PacketID != p2.PacketID || !r2.Dup) {
		t.Errorf("m2 re-sent with id %d dup %v; it was sent before with id %d and must be re-sent with its original identifier [MQTT-4.4.0-1]", r2.PacketID, r2.Dup, p2.PacketID)
	}
}
