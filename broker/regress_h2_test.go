package broker_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// H control: without a restart the same revocation (by Reload) holds.
func TestRegressReadACLControlNoRestart(t *testing.T) {
	o := testOptions()
	b := runBroker(t, o)
	cp := &packet.Connect{Version: packet.V311, ClientID: "rv-h2", Username: "x", UsernameFlag: true, KeepAlive: 60}
	x, _ := connectOK(t, b.Addr, cp)
	x.sub("secret/#", 1)
	x.send(&packet.Disconnect{})
	b.waitOffline(t, "rv-h2")
	o2 := testOptions()
	o2.Authorizer = denySecretRead{}
	if err := b.Reload(o2); err != nil {
		t.Fatal(err)
	}
	pub := client(t, b, "rv-h2-pub")
	pub.publish("secret/plans", "classified", 1, false)
	x2, _ := connectOK(t, b.Addr, cp)
	if p, err := x2.read(quiet); err == nil {
		t.Errorf("received %s", describe(p))
	}
}
