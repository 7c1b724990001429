package auth

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gannet-mqtt/gannet/topic"
)

// Found inputs live in testdata/fuzz/<FuzzName>.

func FuzzParseACL(f *testing.F) {
	seed, _ := os.ReadFile("testdata/acl.conf")
	f.Add(seed)
	f.Add([]byte("topic read a/#\nuser x\ntopic deny a/b\npattern %u/%c/#\n"))
	f.Add([]byte("user\ntopic\npattern write a/#/b\nbogus\n"))
	f.Add([]byte("pattern dev-%c%u-%/x\n"))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseACL("fuzz", bytes.NewReader(data))
		// Input split into one-byte reads parses the same.
		a2, err2 := ParseACL("fuzz", iotest.OneByteReader(bytes.NewReader(data)))
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("whole: %v\none byte at a time: %v", err, err2)
		}
		if err != nil {
			return
		}
		// Ask a few questions; nothing may panic, and the two parses agree.
		users := []string{"", "x", "alice", "a/b", "+"}
		for u := range a.users {
			users = append(users, u)
		}
		topics := []string{"a", "a/b", "a/#", "+/+", "$SYS/x", "x/c/d"}
		for _, u := range users {
			for _, tp := range topics {
				for _, acc := range []Access{Read, Write, ReadWrite} {
					c := &Client{Username: u, ClientID: "c"}
					ok, _ := a.Authorize(ctx, c, acc, tp)
					ok2, _ := a2.Authorize(ctx, c, acc, tp)
					if ok != ok2 {
						t.Fatalf("parses disagree on %q %v %q", u, acc, tp)
					}
				}
			}
		}
	})
}

func FuzzParsePasswordFile(f *testing.F) {
	seed, _ := os.ReadFile("testdata/mosquitto.passwd")
	f.Add(seed)
	f.Add([]byte("# c\n\nalice:$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"))
	f.Add([]byte("a\n:x\nb:plain\nc:$7$1$AAAA$AAAA\nd:$6$$\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Skipping bad lines (as Mosquitto) never fails on a readable
		// file, and a rewrite reads back to the same users.
		if ps, _, err := parsePasswordFile("fuzz", bytes.NewReader(data), true); err == nil {
			var b bytes.Buffer
			if _, err := ps.WriteTo(&b); err != nil {
				t.Fatal(err)
			}
			ps2, _, err := parsePasswordFile("rewritten", &b, true)
			if err != nil || strings.Join(ps.Users(), "\n") != strings.Join(ps2.Users(), "\n") {
				t.Fatalf("skipping parse: rewrite changed the users (%v): %q vs %q", err, ps.Users(), ps2.Users())
			}
		}
		pf, err := ParsePasswordFile("fuzz", bytes.NewReader(data))
		_, err2 := ParsePasswordFile("fuzz", iotest.OneByteReader(bytes.NewReader(data)))
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("whole: %v\none byte at a time: %v", err, err2)
		}
		if err != nil {
			return
		}
		// What was read writes back to a file that reads the same.
		var b bytes.Buffer
		if _, err := pf.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		pf2, err := ParsePasswordFile("rewritten", &b)
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v\n%q", err, b.String())
		}
		if strings.Join(pf.Users(), "\n") != strings.Join(pf2.Users(), "\n") {
			t.Fatalf("users changed on rewrite: %q vs %q", pf.Users(), pf2.Users())
		}
	})
}

// FuzzCovers checks covers against topic.Trie for names, and against the
// brute-force oracle for filters.
func FuzzCovers(f *testing.F) {
	for _, s := range [][2]string{
		{"a/#", "a/+/b"}, {"a/+", "a/#"}, {"#", "$SYS/x"}, {"+/#", "#"}, {"a//b", "a/+/b"}, {"$SYS/+", "$SYS/#"}, {"+", "/"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, rule, s string) {
		if !topic.ValidFilter(rule) || !topic.ValidFilter(s) || len(rule) > 64 || len(s) > 64 || strings.Contains(s, fresh) {
			return
		}
		if strings.Count(s, "+")+strings.Count(s, "#") > 4 {
			return // keep the oracle's expansion small
		}
		got := coversStr(rule, s)
		if topic.ValidName(s) {
			if want := trieMatches(rule, s); got != want {
				t.Fatalf("covers(%q, %q) = %v; topic.Trie says %v", rule, s, got, want)
			}
		}
		if want := coversOracle(rule, s); got != want {
			t.Fatalf("covers(%q, %q) = %v; oracle says %v", rule, s, got, want)
		}
	})
}
