package broker_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
)

// denyAll refuses every user at once, as an authenticator that knows no
// such user does.
type denyAll struct{}

func (denyAll) Authenticate(context.Context, *auth.Client) (auth.Result, error) {
	return auth.Deny, nil
}

// TestLoginFailuresLongUserNamesBounded: the failure budget kept per user
// name must not keep the name. An attacker whose every CONNECT carries a
// new user name of 60 KB and a wrong password would otherwise make the
// broker hold 60 KB per attempt, up to the 65,536 budgets kept: 4 GiB,
// without ever logging in (issue 16.5, bounded memory on hostile input).
func TestLoginFailuresLongUserNamesBounded(t *testing.T) {
	opts := testOptions()
	opts.Authenticator = denyAll{}
	opts.LoginLimits.SourceFailureRate = 0 // one test address: let every attempt reach the user budget
	b := runBroker(t, opts)

	const attempts, nameLen = 400, 60_000
	before := heapNow()
	for i := range attempts {
		name := fmt.Sprintf("%06d", i) + strings.Repeat("u", nameLen-6)
		p := &packet.Connect{Version: packet.V311, CleanStart: true, ClientID: fmt.Sprintf("long-%d", i), KeepAlive: 30,
			UsernameFlag: true, Username: name, PasswordFlag: true, Password: []byte("guess")}
		buf, _ := p.Append(nil, packet.V311)
		c, err := net.DialTimeout("tcp", b.Addr, waitFor)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(waitFor))
		var ack [4]byte
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("attempt %d: write CONNECT: %v", i, err)
		}
		if _, err := c.Read(ack[:]); err != nil {
			t.Fatalf("attempt %d: read CONNACK: %v", i, err)
		}
		c.Close()
		if ack[3] != 4 { // bad user name or password: the check ran
			t.Fatalf("attempt %d: CONNACK return code %d, want 4 (checked and refused)", i, ack[3])
		}
	}
	grown := int64(heapNow()) - int64(before)
	t.Logf("heap grew %.1f MiB after %d failed logins with %d-byte user names", float64(grown)/(1<<20), attempts, nameLen)
	if limit := int64(attempts * nameLen / 4); grown > limit {
		t.Errorf("heap grew %d bytes after %d failed logins with distinct %d-byte user names: the failure budgets keep the names (want under %d)",
			grown, attempts, nameLen, limit)
	}
	_ = b.Server
}
