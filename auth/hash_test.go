package auth

import (
	"errors"
	"strings"
	"testing"
)

// testParams keeps argon2id cheap in tests.
var testParams = Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestArgon2RoundTrip(t *testing.T) {
	for _, pw := range []string{"", "secret", "pässwörd", "with:colon and spaces", "\x00\xff binary"} {
		h, err := testParams.Hash([]byte(pw))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Errorf("hash %q: unexpected prefix", h)
		}
		ok, err := VerifyPassword(h, []byte(pw))
		if err != nil || !ok {
			t.Errorf("VerifyPassword(%q, %q) = %v, %v; want true", h, pw, ok, err)
		}
		ok, err = VerifyPassword(h, []byte(pw+"x"))
		if err != nil || ok {
			t.Errorf("VerifyPassword(%q, wrong) = %v, %v; want false", h, ok, err)
		}
		h2, _ := testParams.Hash([]byte(pw))
		if h2 == h {
			t.Errorf("two hashes of %q are equal: salt not random", pw)
		}
	}
}

func TestHashPasswordDefaults(t *testing.T) {
	if want := (Argon2Params{Memory: 65536, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32}); DefaultArgon2Params() != want {
		t.Fatalf("DefaultArgon2Params() = %+v; want %+v", DefaultArgon2Params(), want)
	}
	if testing.Short() || raceEnabled {
		t.Skip("64 MiB argon2id takes seconds under -race")
	}
	h, err := HashPassword([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("HashPassword = %q", h)
	}
	if ok, err := VerifyPassword(h, []byte("pw")); !ok || err != nil {
		t.Fatalf("VerifyPassword = %v, %v", ok, err)
	}
}

// Vectors from other implementations: libargon2's command-line tool
// (Debian package argon2, 0~20171227), mosquitto_passwd 2.0.11 ($7$, and $6$
// with -H sha512). The $7$ and $6$ lines were also checked with Python's
// hashlib.
var hashVectors = []struct {
	name, hash, pw string
}{
	{"libargon2 m=1024,t=2,p=1", "$argon2id$v=19$m=1024,t=2,p=1$c29tZXNhbHQxMjM0NTY3OA$RWeyCDz5CbpepHbMQFO8oJH0diVz5jaXMzr/r2GmPYA", "hunter2"},
	{"libargon2 p=2, 64-byte hash", "$argon2id$v=19$m=4096,t=1,p=2$c2FsdHNhbHRzYWx0c2FsdA$vYytIgqxCOPa0eyk8bmHfNVDNoleakUvZv6Ppp2U0jvcdCiWArJXTmf45uU0fTrP9Qa0IWTbXqGHF2b/ahqUhw", "pässwörd"},
	{"mosquitto $7$", "$7$101$rlYqFcZVXARp8itR$WPX9bcDyzl0MRZhAjDmLfiPH5yYjIil+SuiPQNEEoNBFuqQuln4b/admecikgW9cgA1ZYCiY/IUW1DxbnRl4eQ==", "secret"},
	{"mosquitto $7$ unicode", "$7$101$Ma4qdg44/1CiMuzi$6MB5aKGAQQukxC6lZHvvyJu9bksriib6qBnS7lQpg5dXNbkWnzahxHckuZDpIh1oaYyRuZS+oE5jZNm4WQIR4g==", "ünïcødé-€"},
	{"mosquitto $6$", "$6$64TA2Arew//WZ4EC$Tu5E1XmwW8NOvbDwQfMJOzTyeoDwifHFpHCvOJ5Wpw4SuT7c+4rl/q6KD2Z/4gD1MY95EafCFyi+zs/1xziTLg==", "old-style"},
	{"mosquitto $6$ empty password", "$6$SPmKPJdenxmhCrnY$5QAjAGqBNq5n93GtOXWrFF9EmYhabQKJaWubLVyXEX/AEbJ7klgKnw1+7AOoYu1rXjqAzwsSI1twghKrk784Yw==", ""},
}

func TestHashVectors(t *testing.T) {
	for _, v := range hashVectors {
		t.Run(v.name, func(t *testing.T) {
			ok, err := VerifyPassword(v.hash, []byte(v.pw))
			if err != nil || !ok {
				t.Fatalf("VerifyPassword(right) = %v, %v", ok, err)
			}
			for _, wrong := range []string{v.pw + " ", "x" + v.pw, strings.ToUpper(v.pw) + "!"} {
				if ok, err := VerifyPassword(v.hash, []byte(wrong)); ok || err != nil {
					t.Errorf("VerifyPassword(%q) = %v, %v; want false, nil", wrong, ok, err)
				}
			}
		})
	}
}

func TestBadHashes(t *testing.T) {
	const salt12 = "rlYqFcZVXARp8itR"
	const hash64 = "WPX9bcDyzl0MRZhAjDmLfiPH5yYjIil+SuiPQNEEoNBFuqQuln4b/admecikgW9cgA1ZYCiY/IUW1DxbnRl4eQ=="
	for _, h := range []string{
		"",
		"plaintext",
		"$1$abc$def",
		"$2y$10$abcdefghijklmnopqrstuu",
		"$7$",
		"$7$101$" + salt12,
		"$7$0$" + salt12 + "$" + hash64,
		"$7$-1$" + salt12 + "$" + hash64,
		"$7$abc$" + salt12 + "$" + hash64,
		"$7$99999999999$" + salt12 + "$" + hash64,
		"$7$101$$" + hash64,
		"$7$101$!!!!$" + hash64,
		"$7$101$" + salt12 + "$AAAA",
		"$7$101$" + salt12 + "$" + hash64 + "$extra",
		"$6$" + salt12,
		"$6$" + salt12 + "$" + hash64[:40],
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 43),
		"$argon2id$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 43),
		"$argon2id$v=19$t=1,m=64,p=1$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 43),
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 43),
		"$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 43),
		"$argon2id$v=19$m=4,t=1,p=1$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 43),
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 43),
		"$argon2id$v=19$m=64,t=1,p=1$c2Fs$" + strings.Repeat("A", 43),
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$AAAA",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$***",
		"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 43),
	} {
		if err := CheckHash(h); !errors.Is(err, ErrBadHash) {
			t.Errorf("CheckHash(%q) = %v; want ErrBadHash", h, err)
		}
		if ok, err := VerifyPassword(h, []byte("secret")); ok || err == nil {
			t.Errorf("VerifyPassword(%q) = %v, %v; want false and an error", h, ok, err)
		}
	}
}

func TestArgon2ParamsValidate(t *testing.T) {
	if err := DefaultArgon2Params().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := testParams.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Argon2Params{Memory: 1, Time: 0, Threads: 0, SaltLen: 1, KeyLen: 1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted zero parameters")
	}
	for _, want := range []string{"threads", "memory", "time", "salt", "key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not mention %s", err, want)
		}
	}
	if _, err := bad.Hash([]byte("x")); err == nil {
		t.Error("Hash with bad parameters succeeded")
	}
}
