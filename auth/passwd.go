package auth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// PasswordFile holds user names and password hashes, read from and written
// to a file of "username:hash" lines. It implements Authenticator.
//
// File format: one "username:hash" per line; blank lines and lines whose
// first non-blank character is '#' are ignored and kept on rewrite; blanks
// around the user name and the hash are ignored. The user name runs to the
// first ':'. Hashes are in any scheme that VerifyPassword reads, so
// Mosquitto password files load unchanged.
//
// Locking: one sync.RWMutex guards the entries. Authenticate holds the read
// lock only to look the user up and verifies the password after releasing
// it. Set, SetHash and Delete take the write lock; Set hashes before taking
// it.
type PasswordFile struct {
	// Params hashes the passwords given to Set. Change it before the
	// PasswordFile is shared between goroutines.
	Params Argon2Params

	mu      sync.RWMutex
	lines   []pwLine       // file order, comments included
	entries map[string]int // user name -> index in lines

	// sem bounds concurrent hash verifications: argon2id at the default
	// parameters takes 64 MiB each, and a burst of CONNECTs must not take
	// the broker's memory with it.
	sem chan struct{}

	dummyOnce sync.Once
	dummy     passwordHash // verified against for unknown users of an empty file
}

// pwLine is one line of the file: an entry (user != "") or a raw line.
type pwLine struct {
	user string
	hash string
	h    passwordHash
	raw  string // comment or blank line, kept as read
}

// NewPasswordFile returns an empty PasswordFile hashing with
// DefaultArgon2Params.
func NewPasswordFile() *PasswordFile {
	return &PasswordFile{
		Params:  DefaultArgon2Params(),
		entries: make(map[string]int),
		sem:     make(chan struct{}, max(runtime.GOMAXPROCS(0), 1)),
	}
}

// maxLineLen is the longest line a password or ACL file may have.
const maxLineLen = 1 << 20

// LoadPasswordFile reads the password file at path. Every bad line is
// reported, each as a *ParseError naming path and line number.
func LoadPasswordFile(path string) (*PasswordFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: password file: %w", err)
	}
	defer f.Close()
	return ParsePasswordFile(path, f)
}

// ParsePasswordFile reads a password file from r; name is used in errors.
func ParsePasswordFile(name string, r io.Reader) (*PasswordFile, error) {
	pf, bad, err := parsePasswordFile(name, r, false)
	if err != nil {
		return nil, err
	}
	if bad != nil {
		return nil, bad
	}
	return pf, nil
}

// LoadPasswordFileSkipping reads the password file at path as Mosquitto
// does: a malformed line (no colon, an empty user name, a hash it cannot
// read, a user defined twice) is skipped, not fatal. skipped reports each
// one as a *ParseError naming the file and line (nil if none); such lines
// are kept as read if the file is written back. err is for a file that
// cannot be read.
func LoadPasswordFileSkipping(path string) (pf *PasswordFile, skipped, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: password file: %w", err)
	}
	defer f.Close()
	return parsePasswordFile(path, f, true)
}

// parsePasswordFile reads a password file; bad lines are returned in bad.
// With skip, pf holds the good entries and keeps the bad lines as raw ones.
func parsePasswordFile(name string, r io.Reader, skip bool) (pf *PasswordFile, bad, err error) {
	pf = NewPasswordFile()
	errs := lineErrors{file: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			pf.lines = append(pf.lines, pwLine{raw: strings.TrimRight(raw, "\r")})
			continue
		}
		if e := pf.parseLine(line); e != nil {
			errs.add(n, e)
			if skip {
				pf.lines = append(pf.lines, pwLine{raw: strings.TrimRight(raw, "\r")})
			}
		}
	}
	if err := sc.Err(); err != nil {
		if !errors.Is(err, bufio.ErrTooLong) || skip {
			return nil, nil, fmt.Errorf("auth: reading %s: %w", name, err)
		}
		errs.add(n+1, syntaxf("line longer than %d bytes", maxLineLen))
	}
	return pf, errs.err(), nil
}

// parseLine adds the entry of a "user:hash" line to pf.
func (pf *PasswordFile) parseLine(line string) error {
	user, hash, ok := strings.Cut(line, ":")
	if !ok {
		return syntaxf("want username:hash")
	}
	user, hash = strings.TrimSpace(user), strings.TrimSpace(hash)
	if user == "" {
		return syntaxf("empty user name")
	}
	h, err := parseHash(hash)
	if err != nil {
		return fmt.Errorf("user %q: %w", user, err)
	}
	if i, dup := pf.entries[user]; dup {
		return syntaxf("user %q already defined on line %d", user, i+1)
	}
	pf.entries[user] = len(pf.lines)
	pf.lines = append(pf.lines, pwLine{user: user, hash: hash, h: h})
	return nil
}

// checkUsername reports whether user can be written to a password file.
func checkUsername(user string) error {
	switch {
	case user == "":
		return fmt.Errorf("auth: %w: empty", ErrBadUsername)
	case strings.ContainsAny(user, ":\r\n\x00"):
		return fmt.Errorf("auth: %w %q: contains ':', NUL or a line break", ErrBadUsername, user)
	case strings.TrimSpace(user) != user:
		return fmt.Errorf("auth: %w %q: leading or trailing blanks", ErrBadUsername, user)
	case user[0] == '#':
		return fmt.Errorf("auth: %w %q: starts with '#'", ErrBadUsername, user)
	}
	return nil
}

// Set adds user or changes its password, hashing pw with f.Params.
func (f *PasswordFile) Set(user string, pw []byte) error {
	if err := checkUsername(user); err != nil {
		return err
	}
	hash, err := f.Params.Hash(pw)
	if err != nil {
		return err
	}
	return f.SetHash(user, hash)
}

// SetHash adds user or changes its password to an existing hash, in any
// scheme VerifyPassword reads.
func (f *PasswordFile) SetHash(user, hash string) error {
	if err := checkUsername(user); err != nil {
		return err
	}
	h, err := parseHash(hash)
	if err != nil {
		return fmt.Errorf("auth: user %q: %w", user, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.entries == nil {
		f.entries = make(map[string]int)
	}
	if i, ok := f.entries[user]; ok {
		f.lines[i].hash, f.lines[i].h = hash, h
		return nil
	}
	f.entries[user] = len(f.lines)
	f.lines = append(f.lines, pwLine{user: user, hash: hash, h: h})
	return nil
}

// Delete removes user and reports whether it was there.
func (f *PasswordFile) Delete(user string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.entries[user]
	if !ok {
		return false
	}
	f.lines = slices.Delete(f.lines, i, i+1)
	delete(f.entries, user)
	for u, j := range f.entries {
		if j > i {
			f.entries[u] = j - 1
		}
	}
	return true
}

// Users returns the user names in file order.
func (f *PasswordFile) Users() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	users := make([]string, 0, len(f.entries))
	for _, l := range f.lines {
		if l.user != "" {
			users = append(users, l.user)
		}
	}
	return users
}

// Has reports whether user is in the file.
func (f *PasswordFile) Has(user string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, ok := f.entries[user]
	return ok
}

// WriteTo writes the file, comments and blank lines included, to w.
func (f *PasswordFile) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	f.mu.RLock()
	for _, l := range f.lines {
		if l.user == "" {
			b.WriteString(l.raw)
		} else {
			b.WriteString(l.user)
			b.WriteByte(':')
			b.WriteString(l.hash)
		}
		b.WriteByte('\n')
	}
	f.mu.RUnlock()
	return b.WriteTo(w)
}

// WriteFile writes the file to path atomically: to a temporary file in the
// same directory, with mode 0600, synced, then renamed over path. A reader
// sees either the old file or the new one, never a part.
func (f *PasswordFile) WriteFile(path string) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	if _, err = f.WriteTo(tmp); err != nil {
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	// Make the rename durable; not every file system supports syncing a
	// directory, so a failure here is not reported.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Authenticate checks c's user name and password against the file.
//
// An anonymous client gets DenyNotAuthorized (wrap the file in
// AllowAnonymous to admit them); an unknown user, a missing or zero-length
// password or a wrong one gets Deny. An unknown user costs the same hashing time as a known
// one, so response time does not tell which user names exist. The error is
// non-nil only when ctx ends while waiting for a hashing slot.
func (f *PasswordFile) Authenticate(ctx context.Context, c *Client) (Result, error) {
	if c.Anonymous() {
		return DenyNotAuthorized, nil
	}
	f.mu.RLock()
	var h passwordHash
	i, known := f.entries[c.Username]
	if known {
		h = f.lines[i].h
	} else {
		// Spend the time a known user would cost: verify against another
		// user's hash (same scheme, same cost in a uniform file) and ignore
		// the outcome.
		for _, l := range f.lines {
			if l.h != nil {
				h = l.h
				break
			}
		}
	}
	f.mu.RUnlock()
	if h == nil {
		h = f.dummyHash()
	}
	if f.sem != nil {
		select {
		case f.sem <- struct{}{}:
			defer func() { <-f.sem }()
		case <-ctx.Done():
			return Deny, fmt.Errorf("auth: password check for %q: %w", c.Username, ctx.Err())
		}
	}
	ok := h.verify(c.Password)
	// A zero-length password is no password, as for Mosquitto: it never
	// matches, even a hash of the empty string.
	if !known || !c.HasPassword || len(c.Password) == 0 || !ok {
		return Deny, nil
	}
	return Allow, nil
}

// dummyHash returns a hash of f.Params' cost that no password matches.
func (f *PasswordFile) dummyHash() passwordHash {
	f.dummyOnce.Do(func() {
		p := f.Params
		if p.Validate() != nil {
			p = DefaultArgon2Params()
		}
		f.dummy = &argon2Hash{p: p, salt: make([]byte, p.SaltLen), key: make([]byte, p.KeyLen)}
	})
	return f.dummy
}
