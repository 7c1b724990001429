package auth

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Password hash schemes read from a password file:
//
//	$argon2id$v=19$m=65536,t=3,p=2$SALT$HASH   Gannet's own, and Mosquitto 2.1's
//	$7$ITERATIONS$SALT$HASH                     Mosquitto 2.0 (PBKDF2-HMAC-SHA512)
//	$6$SALT$HASH                                Mosquitto 1.x (SHA-512)
//
// The Mosquitto formats were taken from its password_mosq.c and
// security_default.c (pw__decode_sha512, pw__decode_sha512_pbkdf2,
// pw__hash_sha512, unpwd__decode_passwords): SALT and HASH are standard
// base64 with padding; $6$ hashes SHA-512(password || salt); $7$ is
// PBKDF2-HMAC-SHA512 of the password with the salt; both hashes are 64
// bytes. mosquitto_passwd writes 12-byte salts and, for $7$, 101 iterations.
//
// argon2id strings are in the PHC format that libargon2 encodes: salt and
// hash in base64 without padding.

// Argon2Params are the argon2id parameters used to hash new passwords.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
	SaltLen uint32 // bytes of random salt
	KeyLen  uint32 // bytes of hash
}

// DefaultArgon2Params returns m=65536 (64 MiB), t=3, p=2, a 16-byte salt and
// a 32-byte hash.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Memory: 64 * 1024, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32}
}

// Limits on hashes read from a file, so that one bad line cannot make every
// CONNECT take minutes or gigabytes.
const (
	maxArgon2Memory = 1 << 20 // KiB: 1 GiB
	maxArgon2Time   = 100
	maxPBKDF2Iter   = 10_000_000
	maxSaltLen      = 1024
	minKeyLen       = 16
	maxKeyLen       = 1024
)

// Validate reports whether p can be used: Memory at least 8 KiB per lane and
// at most 1 GiB, Time 1 to 100, at least one lane, a salt of 8 to 1024 bytes
// and a hash of 16 to 1024 bytes.
func (p Argon2Params) Validate() error {
	var errs []string
	if p.Threads == 0 {
		errs = append(errs, "threads must be at least 1")
	}
	if minMem := 8 * max(uint32(p.Threads), 1); p.Memory < minMem || p.Memory > maxArgon2Memory {
		errs = append(errs, fmt.Sprintf("memory %d KiB out of range [%d, %d]", p.Memory, minMem, maxArgon2Memory))
	}
	if p.Time < 1 || p.Time > maxArgon2Time {
		errs = append(errs, fmt.Sprintf("time %d out of range [1, %d]", p.Time, maxArgon2Time))
	}
	if p.SaltLen < 8 || p.SaltLen > maxSaltLen {
		errs = append(errs, fmt.Sprintf("salt length %d out of range [8, %d]", p.SaltLen, maxSaltLen))
	}
	if p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen {
		errs = append(errs, fmt.Sprintf("key length %d out of range [%d, %d]", p.KeyLen, minKeyLen, maxKeyLen))
	}
	if len(errs) > 0 {
		return fmt.Errorf("auth: argon2id parameters: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Hash hashes pw with a fresh random salt and returns the PHC string.
func (p Argon2Params) Hash(pw []byte) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: reading random salt: %w", err)
	}
	key := argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encodeArgon2(p, salt, key), nil
}

// HashPassword hashes pw with argon2id and DefaultArgon2Params.
func HashPassword(pw []byte) (string, error) {
	return DefaultArgon2Params().Hash(pw)
}

// VerifyPassword reports whether pw matches hash, in any scheme this package
// reads. It returns an error wrapping ErrBadHash when hash cannot be parsed.
// The comparison of the computed and stored hashes is constant-time.
func VerifyPassword(hash string, pw []byte) (bool, error) {
	h, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	return h.verify(pw), nil
}

// CheckHash returns an error wrapping ErrBadHash when hash is not in a scheme
// this package reads, or has parameters out of range.
func CheckHash(hash string) error {
	_, err := parseHash(hash)
	return err
}

// passwordHash is a parsed hash, ready to verify passwords.
type passwordHash interface {
	verify(pw []byte) bool
}

func badHash(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadHash}, args...)...)
}

// parseHash parses any supported hash string.
func parseHash(s string) (passwordHash, error) {
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2(s)
	case strings.HasPrefix(s, "$7$"):
		return parsePBKDF2(s)
	case strings.HasPrefix(s, "$6$"):
		return parseSHA512(s)
	case s == "":
		return nil, badHash("empty hash")
	case s[0] != '$':
		return nil, badHash("not a hash (plain-text passwords are not accepted)")
	}
	scheme := s
	if i := strings.IndexByte(s[1:], '$'); i >= 0 {
		scheme = s[:i+2]
	}
	if len(scheme) > 16 {
		scheme = scheme[:16] + "..."
	}
	return nil, badHash("unsupported scheme %q", scheme)
}

// --- argon2id ---

type argon2Hash struct {
	p    Argon2Params
	salt []byte
	key  []byte
}

func (h *argon2Hash) verify(pw []byte) bool {
	key := argon2.IDKey(pw, h.salt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

func encodeArgon2(p Argon2Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// parseArgon2 reads $argon2id$v=19$m=M,t=T,p=P$SALT$HASH.
func parseArgon2(s string) (*argon2Hash, error) {
	f := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(f) != 6 {
		return nil, badHash("argon2id: want $argon2id$v=19$m=M,t=T,p=P$SALT$HASH")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, badHash("argon2id: unsupported version %q (want v=%d)", f[2], argon2.Version)
	}
	var m, t, p uint64
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return nil, badHash("argon2id: want parameters m=M,t=T,p=P, got %q", f[3])
	}
	for i, want := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], want)
		if !ok {
			return nil, badHash("argon2id: want parameters m=M,t=T,p=P, got %q", f[3])
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, badHash("argon2id: parameter %q: not a number", params[i])
		}
		switch i {
		case 0:
			m = n
		case 1:
			t = n
		case 2:
			p = n
		}
	}
	if p < 1 || p > 255 {
		return nil, badHash("argon2id: p=%d out of range [1, 255]", p)
	}
	salt, err := decodeB64(f[4])
	if err != nil {
		return nil, badHash("argon2id: salt: %v", err)
	}
	key, err := decodeB64(f[5])
	if err != nil {
		return nil, badHash("argon2id: hash: %v", err)
	}
	h := &argon2Hash{
		p:    Argon2Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(p), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))},
		salt: salt,
		key:  key,
	}
	if err := h.p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadHash, strings.TrimPrefix(err.Error(), "auth: "))
	}
	return h, nil
}

// --- Mosquitto $7$: PBKDF2-HMAC-SHA512 ---

const mosqHashLen = 64 // SHA-512 output; Mosquitto's HASH_LEN

type pbkdf2Hash struct {
	iter int
	salt []byte
	hash []byte
}

func (h *pbkdf2Hash) verify(pw []byte) bool {
	key, err := pbkdf2.Key(sha512.New, string(pw), h.salt, h.iter, mosqHashLen)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(key, h.hash) == 1
}

// parsePBKDF2 reads $7$ITERATIONS$SALT$HASH.
func parsePBKDF2(s string) (*pbkdf2Hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 5 {
		return nil, badHash("$7$: want $7$ITERATIONS$SALT$HASH")
	}
	iter, err := strconv.Atoi(f[2])
	if err != nil || iter < 1 || iter > maxPBKDF2Iter {
		return nil, badHash("$7$: iterations %q not in [1, %d]", f[2], maxPBKDF2Iter)
	}
	salt, hash, err := decodeMosqSaltHash(f[3], f[4])
	if err != nil {
		return nil, badHash("$7$: %v", err)
	}
	return &pbkdf2Hash{iter: iter, salt: salt, hash: hash}, nil
}

// --- Mosquitto $6$: SHA-512(password || salt) ---

type sha512Hash struct {
	salt []byte
	hash []byte
}

func (h *sha512Hash) verify(pw []byte) bool {
	d := sha512.New()
	d.Write(pw)
	d.Write(h.salt)
	return subtle.ConstantTimeCompare(d.Sum(nil), h.hash) == 1
}

// parseSHA512 reads $6$SALT$HASH.
func parseSHA512(s string) (*sha512Hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 4 {
		return nil, badHash("$6$: want $6$SALT$HASH")
	}
	salt, hash, err := decodeMosqSaltHash(f[2], f[3])
	if err != nil {
		return nil, badHash("$6$: %v", err)
	}
	return &sha512Hash{salt: salt, hash: hash}, nil
}

func decodeMosqSaltHash(salt64, hash64 string) (salt, hash []byte, err error) {
	salt, err = decodeB64(salt64)
	if err != nil {
		return nil, nil, fmt.Errorf("salt: %v", err)
	}
	if len(salt) == 0 || len(salt) > maxSaltLen {
		return nil, nil, fmt.Errorf("salt of %d bytes", len(salt))
	}
	hash, err = decodeB64(hash64)
	if err != nil {
		return nil, nil, fmt.Errorf("hash: %v", err)
	}
	if len(hash) != mosqHashLen {
		return nil, nil, fmt.Errorf("hash of %d bytes, want %d", len(hash), mosqHashLen)
	}
	return salt, hash, nil
}

// decodeB64 decodes standard base64 with or without padding.
func decodeB64(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("empty")
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("bad base64")
	}
	return b, nil
}
