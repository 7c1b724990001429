package broker_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store/pebble"
)

type denySecretRead struct{}

func (denySecretRead) Authorize(_ context.Context, c *auth.Client, a auth.Access, t string) (bool, error) {
	if c.Username == "x" && a == auth.Read && strings.HasPrefix(t, "secret/") {
		return false, nil
	}
	return true, nil
}

// H: after a restart, restored sessions have no auth.Client (authc nil) and
// Server.allowed answers true for a nil client: deliveries to offline
// restored sessions skip the read check, and the queued message goes out
// when the client comes back.
func TestRegressRestoredSessionBypassesReadACL(t *testing.T) {
	dir := t.TempDir()
	st, err := pebble.Open(dir, pebble.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.Store = st
	b := runBroker(t, o)
	cp := &packet.Connect{Version: packet.V311, ClientID: "rv-h", Username: "x", UsernameFlag: true, KeepAlive: 60}
	x, _ := connectOK(t, b.Addr, cp)
	x.sub("secret/#", 1)
	x.send(&packet.Disconnect{})
	b.waitOffline(t, "rv-h")
	b.Close()
	st.Close()

	st, err = pebble.Open(dir, pebble.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o = testOptions()
	o.Store = st
	o.Authorizer = denySecretRead{} // x may no longer read secret/#
	b = runBroker(t, o)
	pub := client(t, b, "rv-h-pub")
	pub.publish("secret/plans", "classified", 1, false)
	x2, _ := connectOK(t, b.Addr, cp)
	if p, err := x2.read(quiet); err == nil {
		t.Errorf("user x, denied read on secret/#, received %s", describe(p))
	}
}
