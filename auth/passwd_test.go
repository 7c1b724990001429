package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// mosquittoUsers are the passwords of testdata/mosquitto.passwd, made with
// mosquitto_passwd 2.0.11: alice, bob and carol.d with the default $7$, dave
// and erin with -H sha512 ($6$).
var mosquittoUsers = map[string]string{
	"alice":   "secret",
	"bob":     "p@ss:w0rd with spaces",
	"carol.d": "ünïcødé-€",
	"dave":    "old-style",
	"erin":    "",
}

func client(user, pw string) *Client {
	return &Client{ClientID: "c-" + user, Username: user, Password: []byte(pw), HasPassword: true}
}

func mustAuth(t *testing.T, a Authenticator, c *Client, want Result) {
	t.Helper()
	got, err := a.Authenticate(context.Background(), c)
	if err != nil {
		t.Fatalf("Authenticate(%q, %q): %v", c.Username, c.Password, err)
	}
	if got != want {
		t.Errorf("Authenticate(%q, %q) = %v; want %v", c.Username, c.Password, got, want)
	}
}

func TestMosquittoPasswordFile(t *testing.T) {
	pf, err := LoadPasswordFile("testdata/mosquitto.passwd")
	if err != nil {
		t.Fatal(err)
	}
	checkMosquittoUsers(t, pf, mosquittoUsers)
}

func checkMosquittoUsers(t *testing.T, pf *PasswordFile, users map[string]string) {
	t.Helper()
	for user, pw := range users {
		if pw == "" {
			// A zero-length password is no password, even against a hash of
			// the empty string: Mosquitto 2.0 refuses it too.
			mustAuth(t, pf, client(user, pw), Deny)
			continue
		}
		mustAuth(t, pf, client(user, pw), Allow)
		mustAuth(t, pf, client(user, pw+"x"), Deny)
		c := client(user, pw)
		c.HasPassword, c.Password = false, nil
		mustAuth(t, pf, c, Deny)
	}
	mustAuth(t, pf, client("mallory", "secret"), Deny)
	mustAuth(t, pf, &Client{ClientID: "anon"}, DenyNotAuthorized)
}

// TestMosquittoPasswdLive makes fresh files with the installed
// mosquitto_passwd, in both of its hash formats, and reads them.
func TestMosquittoPasswdLive(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed")
	}
	for _, alg := range []string{"sha512-pbkdf2", "sha512"} {
		t.Run(alg, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "passwd")
			users := map[string]string{}
			for i, pw := range []string{"a", "correct horse battery staple", "colon:in:pw", "ünïcødé", fmt.Sprintf("rand-%d", time.Now().UnixNano())} {
				user := fmt.Sprintf("user%d", i)
				args := []string{"-H", alg, "-b", path, user, pw}
				if i == 0 {
					args = append([]string{"-c"}, args...)
				}
				if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
					t.Fatalf("mosquitto_passwd %v: %v\n%s", args, err, out)
				}
				users[user] = pw
			}
			data, _ := os.ReadFile(path)
			prefix := map[string]string{"sha512-pbkdf2": ":$7$", "sha512": ":$6$"}[alg]
			if strings.Count(string(data), prefix) != len(users) {
				t.Fatalf("mosquitto_passwd -H %s wrote:\n%s", alg, data)
			}
			pf, err := LoadPasswordFile(path)
			if err != nil {
				t.Fatal(err)
			}
			checkMosquittoUsers(t, pf, users)
		})
	}
}

func TestParsePasswordFile(t *testing.T) {
	argon, _ := testParams.Hash([]byte("pw"))
	_, m7, _ := strings.Cut(readLine(t, "testdata/mosquitto.passwd", 0), ":")
	tests := []struct {
		name  string
		in    string
		users []string
		errs  []string // substrings, one per expected error, in order
	}{
		{name: "empty", in: ""},
		{name: "comments and blanks", in: "# a comment\n\n   \n  # indented\n", users: nil},
		{name: "one argon2id", in: "alice:" + argon + "\n", users: []string{"alice"}},
		{name: "blanks around fields, CRLF, no final newline", in: "  alice : " + argon + " \r\nbob:" + m7, users: []string{"alice", "bob"}},
		{name: "user with spaces and dots", in: "carol d.:" + argon + "\n", users: []string{"carol d."}},
		{name: "no colon", in: "# ok\nalice\n", errs: []string{"f:2: syntax error: want username:hash"}},
		{name: "empty user", in: ":" + argon + "\n", errs: []string{"f:1: syntax error: empty user name"}},
		{name: "plain text", in: "alice:secret\n", errs: []string{`f:1: user "alice": bad password hash: not a hash`}},
		{name: "empty hash", in: "alice:\n", errs: []string{`f:1: user "alice": bad password hash: empty hash`}},
		{name: "unknown scheme", in: "alice:$2y$10$abc\n", errs: []string{`f:1: user "alice": bad password hash: unsupported scheme "$2y$"`}},
		{name: "duplicate", in: "alice:" + argon + "\n#\nalice:" + argon + "\n", errs: []string{`f:3: syntax error: user "alice" already defined on line 1`}},
		{name: "every bad line reported", in: "a\nb:" + argon + "\nc:x\n\nd:$7$0$AAAA$AAAA\n", errs: []string{"f:1:", "f:3:", "f:5:"}},
		{name: "long line", in: "a:" + strings.Repeat("x", maxLineLen+10) + "\n", errs: []string{"f:1: syntax error: line longer than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pf, err := ParsePasswordFile("f", strings.NewReader(tt.in))
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got := pf.Users(); fmt.Sprint(got) != fmt.Sprint(tt.users) && !(len(got) == 0 && len(tt.users) == 0) {
					t.Errorf("Users() = %q; want %q", got, tt.users)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "f" || pe.Line < 1 {
				t.Errorf("error %v is not a *ParseError with file and line", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.errs) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tt.errs), err)
			}
			for i, want := range tt.errs {
				if !strings.Contains(lines[i], "auth: "+want) {
					t.Errorf("error %d = %q; want it to contain %q", i, lines[i], want)
				}
			}
		})
	}
}

func readLine(t *testing.T, path string, i int) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")[i]
}

func TestLoadPasswordFileMissing(t *testing.T) {
	_, err := LoadPasswordFile(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "auth: password file:") {
		t.Fatalf("err = %v", err)
	}
}

func TestPasswordFileEdit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	orig := "# Gannet users\n\n" + readLine(t, "testdata/mosquitto.passwd", 0) + "\n# trailing comment\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	pf, err := LoadPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pf.Params = testParams
	if err := pf.Set("bob", []byte("bob-pw")); err != nil {
		t.Fatal(err)
	}
	if err := pf.Set("alice", []byte("new-alice")); err != nil { // replaces the $7$ hash in place
		t.Fatal(err)
	}
	if err := pf.Set("carol", []byte("c")); err != nil {
		t.Fatal(err)
	}
	if !pf.Delete("carol") || pf.Delete("carol") {
		t.Fatal("Delete: want true, then false")
	}
	if err := pf.SetHash("dave", readLine(t, "testdata/mosquitto.passwd", 3)[len("dave:"):]); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "a:b", "a\nb", " a", "a ", "#a", "a\x00"} {
		if err := pf.Set(bad, []byte("x")); !errors.Is(err, ErrBadUsername) {
			t.Errorf("Set(%q) = %v; want ErrBadUsername", bad, err)
		}
	}
	if err := pf.SetHash("eve", "plain"); !errors.Is(err, ErrBadHash) {
		t.Errorf("SetHash(plain) = %v; want ErrBadHash", err)
	}
	if err := pf.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v; want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files after WriteFile; want 1 (temporary file left?)", len(entries))
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 6 || lines[0] != "# Gannet users" || lines[1] != "" || !strings.HasPrefix(lines[2], "alice:$argon2id$") ||
		lines[3] != "# trailing comment" || !strings.HasPrefix(lines[4], "bob:$argon2id$") || !strings.HasPrefix(lines[5], "dave:$6$") {
		t.Fatalf("written file:\n%s", data)
	}
	pf2, err := LoadPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, pf2, client("alice", "new-alice"), Allow)
	mustAuth(t, pf2, client("alice", "secret"), Deny)
	mustAuth(t, pf2, client("bob", "bob-pw"), Allow)
	mustAuth(t, pf2, client("carol", "c"), Deny)
	mustAuth(t, pf2, client("dave", "old-style"), Allow)
	var b bytes.Buffer
	pf2.WriteTo(&b)
	if b.String() != string(data) {
		t.Errorf("load and write changed the file:\n%s\nvs\n%s", b.String(), data)
	}
}

func TestWriteFileError(t *testing.T) {
	pf := NewPasswordFile()
	err := pf.WriteFile(filepath.Join(t.TempDir(), "no-such-dir", "passwd"))
	if err == nil || !strings.Contains(err.Error(), "no-such-dir") {
		t.Fatalf("WriteFile into a missing directory: %v", err)
	}
}

func TestNewPasswordFileEmpty(t *testing.T) {
	pf := NewPasswordFile()
	pf.Params = testParams
	mustAuth(t, pf, client("alice", "x"), Deny)
	var zero PasswordFile // zero value: no entries, usable
	zero.Params = testParams
	mustAuth(t, &zero, client("alice", "x"), Deny)
	if err := zero.Set("alice", []byte("x")); err != nil {
		t.Fatal(err)
	}
	mustAuth(t, &zero, client("alice", "x"), Allow)
}

func TestAllowAnonymous(t *testing.T) {
	pf := NewPasswordFile()
	pf.Params = testParams
	if err := pf.Set("alice", []byte("pw")); err != nil {
		t.Fatal(err)
	}
	anon := &Client{ClientID: "x"}
	mustAuth(t, pf, anon, DenyNotAuthorized)
	a := AllowAnonymous(pf)
	mustAuth(t, a, anon, Allow)
	mustAuth(t, a, client("alice", "pw"), Allow)
	mustAuth(t, a, client("alice", "bad"), Deny)
	mustAuth(t, a, client("bob", "pw"), Deny)
	all := AllowAnonymous(nil)
	mustAuth(t, all, anon, Allow)
	mustAuth(t, all, client("bob", "anything"), Allow)
}

func TestAuthenticateContext(t *testing.T) {
	pf := NewPasswordFile()
	pf.Params = testParams
	pf.Set("alice", []byte("pw"))
	// Fill every hashing slot, then ask with a context that has ended.
	for range cap(pf.sem) {
		pf.sem <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := pf.Authenticate(ctx, client("alice", "pw"))
	if r != Deny || !errors.Is(err, context.Canceled) {
		t.Fatalf("Authenticate = %v, %v; want Deny, context.Canceled", r, err)
	}
}

// TestPasswordFileConcurrent runs Authenticate beside Set and Delete; run
// with -race.
func TestPasswordFileConcurrent(t *testing.T) {
	pf := NewPasswordFile()
	pf.Params = testParams
	for i := range 4 {
		pf.Set(fmt.Sprintf("u%d", i), []byte("pw"))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				user := fmt.Sprintf("u%d", (g+i)%4)
				if r, err := pf.Authenticate(context.Background(), client(user, "pw")); err != nil || (r != Allow && r != Deny) {
					t.Errorf("Authenticate = %v, %v", r, err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			u := fmt.Sprintf("v%d", i)
			pf.Set(u, []byte("pw"))
			pf.Delete(u)
			pf.Users()
		}
	}()
	wg.Wait()
}

func TestResultAccessString(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Allow.String(), "allow"}, {Deny.String(), "deny"}, {DenyNotAuthorized.String(), "not_authorized"}, {Result(9).String(), "Result(9)"},
		{Read.String(), "read"}, {Write.String(), "write"}, {ReadWrite.String(), "readwrite"}, {Access(0).String(), "none"}, {Access(8).String(), "Access(8)"},
	} {
		if c.got != c.want {
			t.Errorf("String() = %q; want %q", c.got, c.want)
		}
	}
	var zero Result
	if zero != Deny {
		t.Error("zero Result is not Deny")
	}
}

// As Mosquitto: a malformed line is skipped, reported with its line, and
// the other users still log in; the skipped lines survive a rewrite.
func TestPasswordFileSkipsMalformedLines(t *testing.T) {
	argon, _ := testParams.Hash([]byte("pw"))
	path := filepath.Join(t.TempDir(), "passwd")
	content := "# users\nbob\nalice:" + argon + "\ncarol:\nthis is not a line\nalice:" + argon + "\ndave:" + argon + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPasswordFile(path); err == nil {
		t.Fatal("LoadPasswordFile accepted a malformed file")
	}
	pf, skipped, err := LoadPasswordFileSkipping(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, e := range skipped.(interface{ Unwrap() []error }).Unwrap() {
		var pe *ParseError
		if !errors.As(e, &pe) || pe.File != path {
			t.Fatalf("skipped line %v is not a *ParseError naming the file", e)
		}
		lines = append(lines, pe.Line)
	}
	if fmt.Sprint(lines) != "[2 4 5 6]" {
		t.Errorf("skipped lines %v, want [2 4 5 6]", lines)
	}
	mustAuth(t, pf, client("alice", "pw"), Allow)
	mustAuth(t, pf, client("dave", "pw"), Allow)
	mustAuth(t, pf, client("bob", ""), Deny)
	mustAuth(t, pf, client("carol", ""), Deny)
	var b strings.Builder
	if _, err := pf.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if b.String() != content {
		t.Errorf("rewritten:\n%s\nwant:\n%s", b.String(), content)
	}
}
