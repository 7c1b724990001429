package config

import (
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/auth"
)

// auth.jwt as the issue names it, in YAML: JWT first, the password file
// chained behind it, the ACL claim before the ACL file.
func TestJWTConfig(t *testing.T) {
	dir := t.TempDir()
	testPasswordFile(t, dir)
	writeFile(t, dir, "acl", "pattern readwrite devices/%c/#\n")
	f := mustLoad(t, "jwt.yaml", `
auth:
  password_file: `+dir+`/passwd
  acl_file: `+dir+`/acl
  jwt: {from: password, algorithms: [HS256], secret: "s3cret", public_key_file: "", jwks_url: "",
        acl_claim: acl, required_claims: {iss: "https://idp", sub: "%u"}, disconnect_on_expiry: true}
`)
	if want := map[string]string{"iss": "https://idp", "sub": "%u"}; !reflect.DeepEqual(f.Auth.JWT.RequiredClaims, want) {
		t.Errorf("required_claims %v, want %v", f.Auth.JWT.RequiredClaims, want)
	}
	rt, err := f.build(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rt.BrokerOptions.Authenticator.(*auth.JWT); !ok {
		t.Errorf("Authenticator %T, want *auth.JWT", rt.BrokerOptions.Authenticator)
	}
	ja, ok := rt.BrokerOptions.Authorizer.(*auth.JWTAuthorizer)
	if !ok {
		t.Fatalf("Authorizer %T, want *auth.JWTAuthorizer", rt.BrokerOptions.Authorizer)
	}
	if _, ok := ja.Next.(*auth.ACL); !ok {
		t.Errorf("JWTAuthorizer.Next %T, want *auth.ACL", ja.Next)
	}
}

// Environment overrides reach auth.jwt, the required claims as
// name=value pairs.
func TestJWTEnv(t *testing.T) {
	f := Default()
	if err := f.ApplyEnv([]string{
		"GANNET_AUTH_JWT_SECRET=from-env",
		"GANNET_AUTH_JWT_ALGORITHMS=HS256,HS512",
		"GANNET_AUTH_JWT_REQUIRED_CLAIMS=iss=https://idp, aud=mqtt",
		"GANNET_AUTH_JWT_DISCONNECT_ON_EXPIRY=false",
		"GANNET_AUTH_JWT_FROM=username",
	}); err != nil {
		t.Fatal(err)
	}
	j := f.Auth.JWT
	if j.Secret != "from-env" || !reflect.DeepEqual(j.Algorithms, []string{"HS256", "HS512"}) || j.DisconnectOnExpiry || j.From != "username" {
		t.Errorf("jwt %+v", j)
	}
	if want := map[string]string{"iss": "https://idp", "aud": "mqtt"}; !reflect.DeepEqual(j.RequiredClaims, want) {
		t.Errorf("required_claims %v, want %v", j.RequiredClaims, want)
	}
	if err := f.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if err := f.ApplyEnv([]string{"GANNET_AUTH_JWT_REQUIRED_CLAIMS=novalue"}); err == nil {
		t.Error("a required claim without = accepted")
	}
}

// Bad auth.jwt settings are reported at load, every one.
func TestJWTConfigErrors(t *testing.T) {
	_, err := Parse("bad.yaml", []byte(`
auth:
  jwt: {from: header, algorithms: [none, RS256], secret: "x"}
`))
	if err == nil {
		t.Fatal("bad jwt section accepted")
	}
	for _, want := range []string{`from "header"`, `algorithm "none"`, "neither public_key_file nor jwks_url", "no HS algorithm"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}
