package broker_test

import (
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
)

// BenchmarkDeliveryReadCheck is the read check every delivery makes with
// an ACL file configured.
func BenchmarkDeliveryReadCheck(b *testing.B) {
	acl, err := auth.ParseACL("bench.acl", strings.NewReader("user alice\ntopic read sensors/#\n"))
	if err != nil {
		b.Fatal(err)
	}
	opts := testOptions()
	opts.Authorizer = acl
	srv, err := broker.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ac := &auth.Client{ClientID: "c", Username: "alice"}
	b.ReportAllocs()
	for b.Loop() {
		if !srv.AllowedRead(ac, "sensors/1/temp") {
			b.Fatal("refused")
		}
	}
}

// A delivery's read check against an in-memory authoriser (ACL file, JWT
// claim) arms no timeout: it allocates nothing. It made 4 allocations (a
// context and its timer) before auth.Immediate.
func TestDeliveryReadCheckAllocatesNothing(t *testing.T) {
	acl, err := auth.ParseACL("t.acl", strings.NewReader("user alice\ntopic read sensors/#\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, az := range map[string]auth.Authorizer{
		"acl":              acl,
		"read at delivery": auth.ReadAtDelivery(acl),
		"jwt before acl":   &auth.JWTAuthorizer{Next: acl},
	} {
		opts := testOptions()
		opts.Authorizer = az
		srv, err := broker.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		ac := &auth.Client{ClientID: "c", Username: "alice"}
		if n := testing.AllocsPerRun(100, func() { srv.AllowedRead(ac, "sensors/1/temp") }); n != 0 {
			t.Errorf("%s: %v allocations per read check, want 0", name, n)
		}
		srv.Close()
	}
}
