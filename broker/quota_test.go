package broker_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// A 5.0 packet with more User Properties than MaxUserProperties closes the
// connection with DISCONNECT 0x97 (issue 16, point 3): empty ones inflated
// a 1 MiB packet to about 7 MiB in memory.
func TestMaxUserPropertiesDisconnects(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	max := broker.DefaultOptions().MaxUserProperties
	if max <= 0 {
		t.Fatal("no default cap on user properties")
	}
	ok := v5Client(t, b, "props-ok")
	p := &packet.Publish{Topic: "t", Payload: []byte("x"), QoS: 1, PacketID: 1}
	p.Properties.User = make([]packet.UserProperty, max)
	if rc := ok.v5Publish(p); rc.IsError() {
		t.Fatalf("%d user properties refused: %v", max, rc)
	}
	bad := v5Client(t, b, "props-bad")
	p.Properties.User = make([]packet.UserProperty, 200_000)
	bad.send(p)
	bad.v5ExpectDisconnect(packet.QuotaExceeded)
}
