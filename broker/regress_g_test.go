package broker_test

import (
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
)

// G: Server.Close sends a 5.0 DISCONNECT to every connection it holds,
// including one still in the handshake (here: mid AUTH exchange), before
// any CONNACK [MQTT-3.14.0-1]; c.version is also read without
// synchronisation from Close while connect writes it.
func TestRegressCloseDisconnectBeforeConnack(t *testing.T) {
	b := scramBroker(t)
	cl := &auth.SCRAMClient{User: "carol", Password: "s3cret"}
	c := v5Dial(t, b.Addr)
	c.send(scramConnect("carol-g", cl.First()))
	expectPacket[*packet.Auth](c)
	go b.Close()
	got := c.expectClosed(waitFor)
	for _, p := range got {
		t.Logf("received %s before the close", p.Type())
		if p.Type() == packet.DISCONNECT {
			t.Errorf("DISCONNECT sent before any CONNACK [MQTT-3.14.0-1]")
		}
	}
	time.Sleep(10 * time.Millisecond)
}
