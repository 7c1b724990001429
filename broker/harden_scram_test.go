package broker_test

import (
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
)

// scramServerFirst opens a SCRAM exchange as user and returns the server's
// salt and iteration count (server-first-message attributes s and i).
func scramServerFirst(t *testing.T, addr, user string) (salt, iter string) {
	t.Helper()
	cl := &auth.SCRAMClient{User: user, Password: "guess"}
	c := v5Dial(t, addr)
	defer c.nc.Close()
	c.send(scramConnect("probe-"+user, cl.First()))
	a := expectPacket[*packet.Auth](c)
	if a.ReasonCode != packet.ContinueAuthentication {
		t.Fatalf("AUTH %v for %q, want 0x18", a.ReasonCode, user)
	}
	for _, part := range strings.Split(string(a.Properties.AuthData), ",") {
		switch {
		case len(part) > 2 && part[:2] == "s=":
			salt = part[2:]
		case len(part) > 2 && part[:2] == "i=":
			iter = part[2:]
		}
	}
	if salt == "" || iter == "" {
		t.Fatalf("server-first-message %q lacks s= or i=", a.Properties.AuthData)
	}
	return salt, iter
}

// Issue 16 point 7: SCRAM answers an unknown user exactly as a known one:
// the same salt at every attempt and the same iteration count, so probing
// twice does not tell which user names exist.
func TestSCRAMUnknownUserSaltIsStable(t *testing.T) {
	b := scramBroker(t)
	known1, knownIter := scramServerFirst(t, b.Addr, "carol")
	known2, _ := scramServerFirst(t, b.Addr, "carol")
	if known1 != known2 {
		t.Fatalf("known user's salt changed: %s then %s", known1, known2)
	}
	fake1, fakeIter := scramServerFirst(t, b.Addr, "mallory")
	fake2, _ := scramServerFirst(t, b.Addr, "mallory")
	if fake1 != fake2 {
		t.Errorf("unknown user's salt changes between attempts (%s, %s): user names can be probed", fake1, fake2)
	}
	if fakeIter != knownIter {
		t.Errorf("unknown user gets %s iterations, known %s", fakeIter, knownIter)
	}
	if other, _ := scramServerFirst(t, b.Addr, "trent"); other == fake1 {
		t.Errorf("two unknown users share salt %s", other)
	}
}
