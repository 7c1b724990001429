package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/auth"
)

func runPasswd(t *testing.T, stdin string, args ...string) error {
	t.Helper()
	cmd := newPasswdCmd()
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetErr(new(strings.Builder))
	return cmd.Execute()
}

// gannet passwd creates, changes and deletes users; the file authenticates.
func TestPasswdCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	if err := runPasswd(t, "", "-b", file, "alice", "x"); err == nil {
		t.Fatal("adding to a missing file without -c succeeded")
	}
	if err := runPasswd(t, "", "-c", "-b", file, "alice", "wonder"); err != nil {
		t.Fatal(err)
	}
	if err := runPasswd(t, "builder\n", file, "bob"); err != nil {
		t.Fatal(err)
	}
	check := func(user, pw string) auth.Result {
		pf, err := auth.LoadPasswordFile(file)
		if err != nil {
			t.Fatal(err)
		}
		res, err := pf.Authenticate(context.Background(), &auth.Client{Username: user, Password: []byte(pw), HasPassword: true})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if check("alice", "wonder") != auth.Allow || check("bob", "builder") != auth.Allow || check("bob", "nope") == auth.Allow {
		t.Fatal("password file does not authenticate as written")
	}
	if err := runPasswd(t, "", "-D", file, "bob"); err != nil {
		t.Fatal(err)
	}
	if check("bob", "builder") == auth.Allow {
		t.Error("deleted user still authenticates")
	}
	if err := runPasswd(t, "", "-D", file, "bob"); err == nil {
		t.Error("deleting a missing user succeeded")
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v, want 0600", st.Mode().Perm())
	}
	if err := runPasswd(t, "", "-b", file, "carol"); err == nil {
		t.Error("-b without a password succeeded")
	}
}
