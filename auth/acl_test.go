package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadTestACL(t testing.TB) *ACL {
	t.Helper()
	a, err := LoadACLFile("testdata/acl.conf")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestACLMatrix checks testdata/acl.conf for users x topics x accesses.
// A topic with a wildcard stands for a SUBSCRIBE filter.
func TestACLMatrix(t *testing.T) {
	a := loadTestACL(t)
	type q struct {
		acc   Access
		topic string
		want  bool
	}
	tests := []struct {
		user, id string
		qs       []q
	}{
		{"", "anon1", []q{ // anonymous
			{Read, "public/news", true},
			{Read, "public/secret", false}, // deny
			{Read, "public/secret/x", true},
			{Write, "public/news", false},
			{ReadWrite, "public/news", false},
			{Read, "public/#", true}, // covered; deny on a part is applied at delivery
			{Read, "public/+", true},
			{Read, "#", false},         // not covered
			{Read, "users/x/y", false}, // %u patterns skip anonymous clients
			{Read, "users//y", false},
			{Read, "devices/anon1/config", true},
			{Write, "devices/anon1/config", false},
			{Write, "devices/anon1/state", true},
			{Read, "devices/anon2/config", false},
			{Read, "devices/+/config", false},
			{Read, "dev-anon1-in/x", true},
			{Read, "$SYS/broker/uptime", false},
			{Read, "alice/x", false},
		}},
		{"alice", "a1", []q{
			{Read, "alice/x", true},
			{Write, "alice/x", true},
			{ReadWrite, "alice/x", true},
			{Read, "alice", true}, // "alice/#" matches its parent
			{Read, "alice/private/x", false},
			{Read, "alice/private", false},
			{Write, "alice/private/x/y", false},
			{Read, "alice/#", true},          // partial deny: checked per message
			{Read, "alice/private/#", false}, // entirely denied
			{Read, "alice/private/+", false},
			{Read, "shared/x/status", true},
			{Read, "shared/+/status", true},
			{Read, "shared/#", false},
			{Read, "shared/x/status/more", false},
			{Write, "shared/x/status", false},
			{ReadWrite, "shared/x/status", false},
			{Write, "cmd/alice", true},
			{Read, "cmd/alice", false},
			{Read, "public/news", false}, // anonymous rules are not hers
			{Read, "users/alice/inbox", true},
			{Write, "users/alice/inbox/x", true},
			{Read, "users/alice/#", true},
			{Read, "users/alice/locked", false}, // deny pattern beats her own grant
			{Read, "users/bob/inbox", false},
			{Read, "users/+/inbox", false},
			{Read, "devices/a1/config", true},
			{Read, "$SYS/x", false},
		}},
		{"bob", "b1", []q{
			{Read, "bob", true},
			{ReadWrite, "bob/x/y", true},
			{Read, "sensors/a/b", true},
			{Read, "sensors/+/temp", true},
			{Read, "sensors/#", true},
			{Write, "sensors/a", false},
			{Write, "sensors/bob/cmd", true}, // from the second "user bob" section
			{Read, "#", false},
		}},
		{"admin", "adm", []q{
			{ReadWrite, "anything/at/all", true},
			{Read, "#", true},
			{Read, "+/x", true},
			{Read, "$SYS/broker/uptime", true},
			{Read, "$SYS/#", true},
			{Write, "$SYS/x", true},
			{Read, "users/admin/locked", false},
			{Read, "users/alice/locked", true}, // the pattern denies only %u
		}},
		{"ops", "ops", []q{
			{Read, "a/b", true},
			{Read, "#", true},
			{Write, "a/b", false},
			{Read, "$SYS/broker/uptime", false}, // "#" does not reach '$' topics
			{Read, "$SYS/#", false},
			{Read, "+", true},
		}},
		{"with space", "s", []q{
			{Read, "spaced/topic with space", true},
			{Read, "spaced/topic", false},
		}},
		{"nobody", "n1", []q{ // no section: patterns only
			{Read, "users/nobody/x", true},
			{Read, "devices/n1/config", true},
			{Read, "public/news", false},
			{Read, "nobody/x", false},
		}},
		// Unsafe substitutions never widen access.
		{"eve/x", "e1", []q{
			{Read, "users/eve/x/y", false},
			{Read, "users/eve/x", false},
			{Read, "devices/e1/config", false}, // a deny pattern with %u refuses her everything
		}},
		{"+", "p1", []q{
			{Read, "users/+/x", false},
			{Read, "users/anyone/x", false},
			{Read, "devices/p1/config", false},
		}},
		{"#", "h1", []q{
			{Read, "users/#", false},
			{Read, "users/x", false},
		}},
		{"$SYS", "d1", []q{
			{Read, "users/$SYS/x", false},
		}},
		{"mallory", "+", []q{
			{Read, "devices/+/config", false},
			{Read, "devices/x/config", false},
			{Read, "users/mallory/x", true}, // no deny pattern uses %c
		}},
		{"mallory", "a/b", []q{
			{Read, "devices/a/b/config", false},
			{Read, "devices/a/config", false},
		}},
		{"mallory", "#", []q{
			{Read, "devices/#", false},
			{Read, "dev-#-in/x", false},
		}},
		{"mallory", "", []q{
			{Read, "devices//config", false},
			{Read, "dev--in/x", false},
		}},
		{"mallory", "m1", []q{
			{Read, "dev-m1-in/x", true},
			{Read, "dev-m1-in/y", false},
			{Read, "dev-m1x-in/x", false},
		}},
	}
	for _, tt := range tests {
		c := &Client{Username: tt.user, ClientID: tt.id}
		for _, q := range tt.qs {
			got, err := a.Authorize(context.Background(), c, q.acc, q.topic)
			if err != nil {
				t.Fatal(err)
			}
			if got != q.want {
				t.Errorf("user %q client %q: %v %q = %v; want %v", tt.user, tt.id, q.acc, q.topic, got, q.want)
			}
		}
	}
}

func TestACLBadRequests(t *testing.T) {
	a := loadTestACL(t)
	c := &Client{Username: "admin", ClientID: "adm"}
	for _, q := range []struct {
		acc   Access
		topic string
	}{
		{0, "a"}, {Access(4), "a"}, {Read | Access(8), "a"},
		{Read, ""}, {Read, "a/#/b"}, {Read, "a+"}, {Write, "a\x00b"}, {Read, strings.Repeat("a", 70000)},
	} {
		if ok, err := a.Authorize(context.Background(), c, q.acc, q.topic); ok || err != nil {
			t.Errorf("%v %q = %v, %v; want false, nil", q.acc, q.topic, ok, err)
		}
	}
}

func TestACLEmptyDeniesAll(t *testing.T) {
	a, err := ParseACL("empty", strings.NewReader("# nothing\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"", "alice"} {
		for _, acc := range []Access{Read, Write, ReadWrite} {
			if ok, _ := a.Authorize(context.Background(), &Client{Username: u, ClientID: "c"}, acc, "a/b"); ok {
				t.Errorf("empty ACL allowed %q %v", u, acc)
			}
		}
	}
}

func TestParseACL(t *testing.T) {
	tests := []struct {
		name string
		in   string
		errs []string
	}{
		{name: "all forms", in: "topic a\ntopic read a/+\ntopic write a/#\ntopic readwrite #\ntopic deny $SYS/#\n" +
			"user x\ntopic read x\npattern p/%u\npattern deny p/%c/#\n  # indented comment\n\ttopic\tread\ttabs\n"},
		{name: "access word alone is the filter", in: "topic read\ntopic deny\n"},
		{name: "CRLF and trailing blanks", in: "topic read a/b  \r\nuser  x  \r\n"},
		{name: "unknown directive", in: "\n\nbogus a/b\n", errs: []string{`f:3: syntax error: unknown directive "bogus"`}},
		{name: "missing filter", in: "topic\npattern   \n", errs: []string{"f:1: syntax error: topic: missing topic filter", "f:2: syntax error: pattern: missing topic filter"}},
		{name: "bad access", in: "topic reed a/b\n", errs: []string{`f:1: syntax error: topic: access "reed" is not read, write, readwrite or deny`}},
		{name: "bad filter", in: "topic read a/#/b\ntopic a+\npattern write %u/#x\n", errs: []string{`f:1: syntax error: topic: invalid topic filter "a/#/b"`, `f:2: syntax error: topic: invalid topic filter "a+"`, `f:3: syntax error: pattern: invalid topic filter "%u/#x"`}},
		{name: "missing user", in: "user\nuser   \n", errs: []string{"f:1: syntax error: user: missing user name", "f:2: syntax error: user: missing user name"}},
		{name: "long line", in: "topic " + strings.Repeat("a", maxLineLen) + "\n", errs: []string{"f:1: syntax error: line longer than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseACL("f", strings.NewReader(tt.in))
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrSyntax) {
				t.Errorf("error %v is not a *ParseError wrapping ErrSyntax", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.errs) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tt.errs), err)
			}
			for i, want := range tt.errs {
				if !strings.HasPrefix(lines[i], "auth: "+want) {
					t.Errorf("error %d = %q; want prefix %q", i, lines[i], "auth: "+want)
				}
			}
		})
	}
}

func TestParseACLForms(t *testing.T) {
	a, err := ParseACL("f", strings.NewReader("topic read\ntopic deny\nuser x\n\ttopic\twrite\tt/1\n"))
	if err != nil {
		t.Fatal(err)
	}
	anon := &Client{ClientID: "c"}
	// "topic read" is a readwrite rule on the topic "read", as in Mosquitto.
	for _, tp := range []string{"read", "deny"} {
		if ok, _ := a.Authorize(context.Background(), anon, ReadWrite, tp); !ok {
			t.Errorf("topic %q not granted readwrite", tp)
		}
	}
	if ok, _ := a.Authorize(context.Background(), &Client{Username: "x", ClientID: "c"}, Write, "t/1"); !ok {
		t.Error("tab-separated rule not read")
	}
}

func TestManyBadLinesCapped(t *testing.T) {
	_, err := ParseACL("f", strings.NewReader(strings.Repeat("bogus\n", maxFileErrors+7)))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxFileErrors+1 || !strings.Contains(lines[maxFileErrors], "7 more bad lines") {
		t.Fatalf("got %d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestLoadACLFileMissing(t *testing.T) {
	_, err := LoadACLFile(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "auth: acl file:") {
		t.Fatalf("err = %v", err)
	}
}

func TestACLAuthorizeNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	a := loadTestACL(t)
	ctx := context.Background()
	alice := &Client{Username: "alice", ClientID: "a1"}
	anon := &Client{ClientID: "anon1"}
	n := testing.AllocsPerRun(200, func() {
		a.Authorize(ctx, alice, Read, "users/alice/inbox")
		a.Authorize(ctx, alice, Read, "shared/+/status")
		a.Authorize(ctx, anon, Read, "devices/anon1/config")
		a.Authorize(ctx, anon, Write, "nothing/here")
	})
	if n != 0 {
		t.Errorf("Authorize allocates %v times per run", n)
	}
}

func BenchmarkACLAuthorize(b *testing.B) {
	a := loadTestACL(b)
	ctx := context.Background()
	alice := &Client{Username: "alice", ClientID: "a1"}
	b.ReportAllocs()
	for b.Loop() {
		a.Authorize(ctx, alice, Read, "users/alice/inbox/x")
	}
}

// TestACLMosquittoRecorded replays answers recorded from Mosquitto 2.0.11
// running with testdata/acl.conf (tabs turned into spaces, which Mosquitto
// requires): for each read, a retained message on the topic and a
// mosquitto_sub by the user with the client ID; for each write, a
// mosquitto_pub by the user read back by admin. Gannet must agree except
// where the package documentation lists a difference.
func TestACLMosquittoRecorded(t *testing.T) {
	a := loadTestACL(t)
	tests := []struct {
		user, id  string
		acc       Access
		topic     string
		mosquitto bool
		gannet    bool // differs from mosquitto only where noted
		why       string
	}{
		{"", "anon1", Read, "public/news", true, true, ""},
		{"", "anon1", Read, "public/secret", false, false, ""},
		{"", "anon1", Read, "public/secret/x", true, true, ""},
		{"", "anon1", Read, "users/x/y", false, false, ""},
		{"", "anon1", Read, "devices/anon1/config", true, true, ""},
		{"", "anon1", Read, "devices/anon2/config", false, false, ""},
		{"", "anon1", Read, "dev-anon1-in/x", true, true, ""},
		{"", "anon1", Read, "alice/x", false, false, ""},
		{"alice", "a1", Read, "alice/x", true, true, ""},
		{"alice", "a1", Read, "alice/private/x", false, false, ""},
		{"alice", "a1", Read, "alice/private", false, false, ""},
		{"alice", "a1", Read, "shared/x/status", true, true, ""},
		{"alice", "a1", Read, "cmd/alice", false, false, ""},
		{"alice", "a1", Read, "public/news", false, false, ""},
		{"alice", "a1", Read, "users/alice/inbox", true, true, ""},
		{"alice", "a1", Read, "users/alice/locked", true, false, "deny patterns come before the user's grants"},
		{"alice", "a1", Read, "users/bob/inbox", false, false, ""},
		{"alice", "a1", Read, "devices/a1/config", true, true, ""},
		{"bob", "b1", Read, "bob", true, true, ""},
		{"bob", "b1", Read, "sensors/a/b", true, true, ""},
		{"admin", "adm", Read, "users/admin/locked", true, false, "deny patterns come before the user's grants"},
		{"admin", "adm", Read, "users/alice/locked", true, true, ""},
		{"admin", "adm", Read, "anything/at/all", true, true, ""},
		{"ops", "ops", Read, "a/b", true, true, ""},
		{"ops", "ops", Read, "$SYS/broker/uptime", false, false, ""},
		{"nobody", "n1", Read, "users/nobody/x", true, true, ""},
		{"nobody", "n1", Read, "devices/n1/config", true, true, ""},
		{"nobody", "n1", Read, "public/news", false, false, ""},
		{"eve/x", "e1", Read, "users/eve/x/y", true, false, "'/' in a user name is unsafe to substitute"},
		{"eve/x", "e1", Read, "devices/e1/config", true, false, "a deny pattern substituting an unsafe user name refuses everything"},
		{"mallory", "+", Read, "users/mallory/x", false, true, "an unsafe client ID only disables patterns using %c"},
		{"mallory", "a/b", Read, "devices/a/b/config", true, false, "'/' in a client ID is unsafe to substitute"},
		{"with space", "s", Read, "spaced/topic with space", true, true, ""},
		{"alice", "a1", Write, "cmd/alice", true, true, ""},
		{"alice", "a1", Write, "shared/x/status", false, false, ""},
		{"alice", "a1", Write, "alice/private/x", false, false, ""},
		{"bob", "b1", Write, "sensors/bob/cmd", true, true, ""},
		{"bob", "b1", Write, "sensors/a/b", false, false, ""},
		{"", "anon1", Write, "devices/anon1/state", true, true, ""},
		{"", "anon1", Write, "devices/anon1/config", false, false, ""},
		{"ops", "ops", Write, "a/b", false, false, ""},
	}
	for _, tt := range tests {
		if (tt.gannet != tt.mosquitto) != (tt.why != "") {
			t.Fatalf("table row %+v: a difference needs a reason, and only a difference", tt)
		}
		got, _ := a.Authorize(context.Background(), &Client{Username: tt.user, ClientID: tt.id}, tt.acc, tt.topic)
		if got != tt.gannet {
			t.Errorf("user %q client %q %v %q = %v; want %v (mosquitto: %v)", tt.user, tt.id, tt.acc, tt.topic, got, tt.gannet, tt.mosquitto)
		}
	}
}

// UserRulesFirst decides as Mosquitto 2.0's code: the client's own section
// (denies, then grants) before the patterns, so a user's grant wins over a
// deny pattern; a deny of its own still wins over its grants.
func TestACLUserRulesFirst(t *testing.T) {
	a, err := ParseACL("t", strings.NewReader("user alice\ntopic deny a/own-deny\ntopic read a/#\npattern deny a/secret\npattern read p/#\npattern deny p/x\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := a.UserRulesFirst()
	for _, c := range []struct {
		user, topic  string
		dflt, mosqui bool
	}{
		{"alice", "a/secret", false, true},    // user grant vs deny pattern
		{"alice", "a/own-deny", false, false}, // the user's own deny
		{"alice", "a/open", true, true},
		{"bob", "a/secret", false, false}, // no section: patterns only
		{"bob", "p/y", true, true},
		{"bob", "p/x", false, false},
	} {
		if got := a.check(c.user, "c", Read, c.topic); got != c.dflt {
			t.Errorf("default order: %s read %s = %v, want %v", c.user, c.topic, got, c.dflt)
		}
		if got := m.check(c.user, "c", Read, c.topic); got != c.mosqui {
			t.Errorf("UserRulesFirst: %s read %s = %v, want %v", c.user, c.topic, got, c.mosqui)
		}
	}
}
