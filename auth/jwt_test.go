package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestLooksLikeJWT(t *testing.T) {
	for s, want := range map[string]bool{
		"a.b.c":             true,
		"eyJh.eyJz.":        true, // alg none: refused by the parser, not passed on
		"a..c":              false,
		".b.c":              false,
		"a.b":               false,
		"a.b.c.d":           false,
		"pass word":         false,
		"wonder":            false,
		"a.b.c+":            false,
		"abc-_=.def.ghi-_=": true,
	} {
		if got := looksLikeJWT([]byte(s)); got != want {
			t.Errorf("looksLikeJWT(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestJWTOptionsValidate(t *testing.T) {
	o := DefaultJWTOptions()
	o.Secret = []byte("x")
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults with a secret: %v", err)
	}
	o.Algorithms = []string{"none", "HS256", "ES256"}
	o.From = "query"
	o.JWKSURL = "ftp://x"
	err := o.Validate()
	for _, want := range []string{`from "query"`, `algorithm "none"`, "jwks_url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %q", err, want)
		}
	}
}

// The ACL claim: first match wins; QoS and retain conditions; eq topics
// exact on SUBSCRIBE and as filters on delivery; %u/%c and ${...}; unsafe
// substitutions never grant and always deny.
func TestJWTACLCheck(t *testing.T) {
	acl, err := parseACLClaim([]any{
		map[string]any{"permission": "allow", "action": "pub", "topic": "up/${username}", "qos": 1.0, "retain": false},
		map[string]any{"permission": "deny", "action": "sub", "topic": "news/secret", "qos": []any{2.0}},
		map[string]any{"permission": "allow", "action": "sub", "topic": "news/#"},
		map[string]any{"permission": "allow", "action": "sub", "topic": "eq box/%c/#"},
		map[string]any{"permission": "deny", "action": "all", "topic": "dev/%u/x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Username: "bob", ClientID: "c1"}
	type q struct {
		acc         Access
		topic       string
		qos, retain int
		decided, ok bool
	}
	for _, tc := range []q{
		{Write, "up/bob", 1, 0, true, true},
		{Write, "up/bob", 0, 0, false, false}, // qos 0 not listed: no match
		{Write, "up/bob", 1, 1, false, false}, // retained: no match
		{Write, "up/bob", -1, -1, true, true}, // unknown: allow condition met
		{Write, "up/alice", 1, 0, false, false},
		{Read, "news/secret", 2, 0, true, false},
		{Read, "news/secret", 1, 0, true, true},
		{Read, "news/secret", -1, -1, true, true}, // delivery: the deny needs QoS 2
		{Read, "box/c1/#", 1, 0, true, true},
		{Read, "box/c1/a", 1, 0, false, false}, // eq: exact only on SUBSCRIBE
		{Read, "box/c1/a", -1, -1, true, true}, // delivery: as a filter
		{Read, "dev/bob/x", 0, 0, true, false},
		{ReadWrite, "news/a", -1, -1, false, false},
	} {
		d, ok := acl.check(c, tc.acc, tc.topic, tc.qos, tc.retain)
		if d != tc.decided || ok != tc.ok {
			t.Errorf("%v %s qos %d retain %d: decided %v ok %v, want %v %v", tc.acc, tc.topic, tc.qos, tc.retain, d, ok, tc.decided, tc.ok)
		}
	}
	// A user name with a wildcard: %u rules never grant, deny rules deny.
	evil := &Client{Username: "#", ClientID: "c1"}
	if d, ok := acl.check(evil, Write, "up/#", 1, 0); d && ok {
		t.Error("%u with user name # granted up/#")
	}
	if d, ok := acl.check(evil, Read, "dev/x/x", 0, 0); !d || ok {
		t.Errorf("deny dev/%%u/x with user name #: decided %v ok %v, want deny", d, ok)
	}

	for _, bad := range []any{
		"acl", []any{"x"},
		[]any{map[string]any{"permission": "allow", "action": "pub"}},
		[]any{map[string]any{"permission": "allow", "action": "pub", "topic": "a/#/b"}},
		[]any{map[string]any{"permission": "allow", "action": "pub", "topic": "a", "qos": 3.0}},
		[]any{map[string]any{"permission": "allow", "action": "read", "topic": "a"}},
		map[string]any{"pub": 1.0},
	} {
		if _, err := parseACLClaim(bad); err == nil {
			t.Errorf("parseACLClaim(%v) accepted", bad)
		}
	}
}

// Authorization with an ACL claim does not allocate: it runs for every
// delivery.
func TestJWTAuthorizerAllocs(t *testing.T) {
	acl, err := parseACLClaim([]any{
		map[string]any{"permission": "allow", "action": "all", "topic": "dev/%c/#"},
		map[string]any{"permission": "deny", "action": "all", "topic": "#"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Username: "bob", ClientID: "c1", jwtACL: acl}
	a := &JWTAuthorizer{}
	ctx := context.Background()
	n := testing.AllocsPerRun(100, func() {
		a.Authorize(ctx, c, Read, "dev/c1/t")
		a.AuthorizeMessage(ctx, c, Write, "dev/c1/t", 1, false)
	})
	if n != 0 {
		t.Errorf("%v allocations per check, want 0", n)
	}
}

// DisconnectAt is the token's exp plus the leeway, only when asked for.
func TestJWTDisconnectAt(t *testing.T) {
	o := DefaultJWTOptions()
	o.Secret = []byte("k")
	o.Leeway = 2 * time.Second
	o.DisconnectOnExpiry = true
	j, err := NewJWT(o)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Minute).Truncate(time.Second)
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": exp.Unix()}).SignedString([]byte("k"))
	c := &Client{Username: "u", Password: []byte(tok), HasPassword: true}
	if r, err := j.Authenticate(context.Background(), c); r != Allow || err != nil {
		t.Fatalf("Authenticate = %v, %v", r, err)
	}
	if !c.DisconnectAt.Equal(exp.Add(2 * time.Second)) {
		t.Errorf("DisconnectAt %v, want %v", c.DisconnectAt, exp.Add(2*time.Second))
	}
}

// With no rule matching, a SUBSCRIBE goes to Next's AuthorizeSubscribe
// (an ACL read at delivery refuses no subscription), a PUBLISH to its
// Authorize.
func TestJWTAuthorizerDefersToSubscribeAuthorizer(t *testing.T) {
	acl, err := ParseACL("t.acl", strings.NewReader("user bob\ntopic read a/#\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := &JWTAuthorizer{Next: ReadAtDelivery(acl)}
	claim, _ := parseACLClaim([]any{map[string]any{"permission": "deny", "action": "sub", "topic": "x/#"}})
	c := &Client{Username: "bob", ClientID: "c", jwtACL: claim}
	ctx := context.Background()
	if ok, _ := a.AuthorizeMessage(ctx, c, Read, "b/#", 1, false); !ok {
		t.Error("SUBSCRIBE b/#: refused, want it left to the delivery checks")
	}
	if ok, _ := a.AuthorizeMessage(ctx, c, Read, "x/1", 1, false); ok {
		t.Error("SUBSCRIBE x/1: allowed despite the claim's deny")
	}
	if ok, _ := a.Authorize(ctx, c, Read, "b/1"); ok {
		t.Error("delivery on b/1: allowed, want the ACL's refusal")
	}
	if ok, _ := a.AuthorizeMessage(ctx, c, Write, "a/1", 0, false); ok {
		t.Error("PUBLISH a/1: allowed, the ACL grants read only")
	}
}
