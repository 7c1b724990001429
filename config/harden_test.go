package config

import (
	"strings"
	"testing"
)

// Issue 16 point 6: a tokenless admin listener on an address that is not
// loopback is a configuration error unless admin.insecure_no_token says so,
// and the environment sets the new keys.
func TestAdminWithoutTokenOnPublicAddress(t *testing.T) {
	got := errorLines(t, "g.yaml", "admin:\n  address: 0.0.0.0:9090\n")
	if len(got) != 1 || !strings.Contains(got[0], "g.yaml:2: admin.address") || !strings.Contains(got[0], "admin.token is empty") {
		t.Errorf("errors %q, want one about admin.address without a token", got)
	}
	for _, ok := range []string{
		"admin:\n  address: 127.0.0.1:9090\n",
		"admin:\n  address: localhost:9090\n",
		"admin:\n  address: 0.0.0.0:9090\n  token: t\n",
		"admin:\n  address: 0.0.0.0:9090\n  insecure_no_token: true\n",
	} {
		mustLoad(t, "ok.yaml", ok)
	}
	if got := errorLines(t, "g.yaml", "admin:\n  allowed_hosts: [\"a:80\"]\n"); len(got) != 1 || !strings.Contains(got[0], "allowed_hosts[0]") {
		t.Errorf("errors %q, want one about allowed_hosts[0]", got)
	}
	f := Default()
	if err := f.ApplyEnv([]string{"GANNET_ADMIN_ALLOWED_HOSTS=a.lan,b.lan", "GANNET_ADMIN_INSECURE_NO_TOKEN=true"}); err != nil {
		t.Fatal(err)
	}
	if len(f.Admin.AllowedHosts) != 2 || f.Admin.AllowedHosts[1] != "b.lan" || !f.Admin.InsecureNoToken {
		t.Errorf("admin from the environment: %+v", f.Admin)
	}
}
