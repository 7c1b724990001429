package pebble

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/storetest"
)

// wantDamaged checks err reports the damaged directory dir and names what.
func wantDamaged(t *testing.T, err error, dir, what string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("no error, want one saying %s is damaged", dir)
	case !errors.Is(err, ErrDamaged):
		t.Errorf("error %q does not wrap ErrDamaged", err)
	case !strings.Contains(err.Error(), dir):
		t.Errorf("error %q does not name the directory %s", err, dir)
	case !strings.Contains(err.Error(), what):
		t.Errorf("error %q does not name %s", err, what)
	}
}

// A record that does not decode gives an error naming its key, from the
// Load that reads it or from Open.
func TestDamagedRecord(t *testing.T) {
	s := openT(t, "")
	defer func() { s.Close() }()
	ok(t, s.SaveSession(&store.Session{ClientID: "c", Version: 5}))
	ok(t, s.Append("c", &store.Entry{Seq: 1, Message: storetest.Sample(1, "t", "p"), QoS: 1}))
	ok(t, s.SetRetained(storetest.Sample(2, "r", "p")))
	bad := []byte{0xff, 0xff, 0xff}
	ok(t, s.db.Set(sessionKey(nil, "c"), bad, pebble.Sync))
	ok(t, s.db.Set(retainedKey(nil, "r"), bad, pebble.Sync))
	ok(t, s.db.Set(messageKey(nil, 1), bad, pebble.Sync))
	s = s.reopenT(t)
	wantDamaged(t, s.LoadSessions(func(*store.Session) error { return nil }), s.dir, `record s/"c"`)
	wantDamaged(t, s.LoadRetained(func(*store.Message) error { return nil }), s.dir, `record r/"r"`)
	wantDamaged(t, s.LoadQueue("c", func(*store.Entry) error { return nil }), s.dir, "record m/1")

	ok(t, s.db.Set(queueKey(nil, "c", 1), bad, pebble.Sync))
	ok(t, s.Close())
	_, err := Open(s.dir, quiet())
	wantDamaged(t, err, s.dir, `record q/"c"/1`)
}

// Open refuses a queue entry whose message is missing.
func TestMissingMessage(t *testing.T) {
	s := openT(t, "")
	ok(t, s.Append("c", &store.Entry{Seq: 7, Message: storetest.Plain(3, "t", "p"), QoS: 1}))
	ok(t, s.db.Delete(messageKey(nil, 3), pebble.Sync))
	ok(t, s.Close())
	_, err := Open(s.dir, quiet())
	wantDamaged(t, err, s.dir, `q/"c"/7 refers to message 3`)
}

func TestFormatRecord(t *testing.T) {
	s := openT(t, "")
	ok(t, s.SaveSession(&store.Session{ClientID: "c"}))
	ok(t, s.db.Set([]byte(keyFormat), []byte{formatVersion + 1}, pebble.Sync))
	ok(t, s.Close())
	_, err := Open(s.dir, quiet())
	if err == nil || !strings.Contains(err.Error(), "newer Gannet") || !strings.Contains(err.Error(), s.dir) {
		t.Errorf("Open of a newer format: %v, want an error naming the directory and a newer Gannet", err)
	}

	s = openT(t, "")
	ok(t, s.SaveSession(&store.Session{ClientID: "c"}))
	ok(t, s.db.Delete([]byte(keyFormat), pebble.Sync))
	ok(t, s.Close())
	_, err = Open(s.dir, quiet())
	wantDamaged(t, err, s.dir, "format record")
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	ok(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
	if _, err := Open(dir, quiet()); err == nil || !strings.Contains(err.Error(), "no Gannet store") {
		t.Errorf("Open of a directory of other files: %v, want a refusal", err)
	}

	s := openT(t, "")
	defer s.Close()
	if _, err := Open(s.dir, quiet()); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second Open of %s: %v, want an error saying it is in use", s.dir, err)
	}

	file := filepath.Join(t.TempDir(), "file")
	ok(t, os.WriteFile(file, nil, 0o644))
	if _, err := Open(file, quiet()); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("Open of a file: %v, want an error naming it", err)
	}

	opts := quiet()
	opts.Fsync, opts.Interval = Interval, 0
	if _, err := Open(t.TempDir(), opts); err == nil {
		t.Error("Open with Fsync Interval and no interval succeeded")
	}
}

func TestClosed(t *testing.T) {
	s := openT(t, "")
	ok(t, s.Close())
	for name, err := range map[string]error{
		"SaveSession":   s.SaveSession(&store.Session{}),
		"Append":        s.Append("c", &store.Entry{Seq: 1}),
		"Update":        s.Update("c", &store.Entry{Seq: 1}),
		"Remove":        s.Remove("c", 1),
		"DeleteSession": s.DeleteSession("c"),
		"LoadQueue":     s.LoadQueue("c", func(*store.Entry) error { return nil }),
		"LoadSessions":  s.LoadSessions(func(*store.Session) error { return nil }),
		"SetRetained":   s.SetRetained(&store.Message{}),
		"Close":         s.Close(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// fill writes a little of everything.
func fill(t *testing.T, s *Store, from int) {
	for i := from; i < from+20; i++ {
		id := fmt.Sprint("client-", i)
		ok(t, s.SaveSession(&store.Session{ClientID: id, Version: 5, Expiry: storetest.Never}))
		ok(t, s.Append(id, &store.Entry{Seq: 1, Message: storetest.Sample(uint64(i+1), "t", strings.Repeat("p", 3000)), QoS: 1}))
		ok(t, s.SetRetained(storetest.Sample(uint64(i+1), fmt.Sprint("r/", i), "retained")))
		ok(t, s.Sync()) // as the broker does before it acknowledges
	}
}

// loadAll reads everything, returning a summary to compare and the first
// error.
func loadAll(s *Store) (string, error) {
	var b strings.Builder
	var ids []string
	err := s.LoadSessions(func(sess *store.Session) error {
		ids = append(ids, sess.ClientID)
		fmt.Fprintf(&b, "s %s %d\n", sess.ClientID, sess.Version)
		return nil
	})
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		err := s.LoadQueue(id, func(e *store.Entry) error {
			fmt.Fprintf(&b, "q %s %d %s %d\n", id, e.Seq, e.Message.Topic, len(e.Message.Payload))
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	err = s.LoadRetained(func(m *store.Message) error {
		fmt.Fprintf(&b, "r %s %q\n", m.Topic, m.Payload)
		return nil
	})
	return b.String(), err
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	ok(t, err)
}

// Each file of a data directory, truncated or overwritten in part, gives
// an error naming the directory from Open or a Load, or loses nothing;
// never a panic. Two directories: one closed cleanly (tables, empty log)
// and one copied while open, as after a crash (the data in the log).
func TestDamagedFiles(t *testing.T) {
	clean := openT(t, "")
	fill(t, clean, 0)
	cleanDir := clean.dir
	ok(t, clean.Close())

	live := openT(t, "")
	defer live.Close()
	fill(t, live, 0)
	live.db.Flush()
	fill(t, live, 20) // in the log only
	newestLog := ""
	logs, _ := filepath.Glob(filepath.Join(live.dir, "*.log"))
	if len(logs) > 0 {
		newestLog = filepath.Base(logs[len(logs)-1])
	}
	crashDir := filepath.Join(t.TempDir(), "crash")
	ok(t, live.db.Checkpoint(crashDir)) // the files as they are, the log not flushed

	damages := []struct {
		name string
		fn   func(b []byte) []byte
	}{
		{"empty", func(b []byte) []byte { return nil }},
		{"half", func(b []byte) []byte { return b[:len(b)/2] }},
		{"last byte cut", func(b []byte) []byte { return b[:max(len(b)-1, 0)] }},
		{"middle overwritten", func(b []byte) []byte {
			for i := len(b) / 3; i < len(b)/3+16 && i < len(b); i++ {
				b[i] ^= 0x5a
			}
			return b
		}},
	}
	for _, image := range []struct{ name, dir string }{{"clean", cleanDir}, {"crash", crashDir}} {
		want, err := func() (string, error) {
			dir := t.TempDir()
			copyDir(t, image.dir, dir)
			s, err := Open(dir, quiet())
			if err != nil {
				return "", err
			}
			defer s.Close()
			return loadAll(s)
		}()
		if err != nil {
			t.Fatalf("%s image: %v", image.name, err)
		}
		ents, err := os.ReadDir(image.dir)
		ok(t, err)
		for _, e := range ents {
			if e.Name() == "LOCK" {
				continue
			}
			for _, dmg := range damages {
				t.Run(image.name+"/"+e.Name()+"/"+dmg.name, func(t *testing.T) {
					dir := t.TempDir()
					copyDir(t, image.dir, dir)
					path := filepath.Join(dir, e.Name())
					b, err := os.ReadFile(path)
					ok(t, err)
					ok(t, os.WriteFile(path, dmg.fn(b), 0o644))
					got, err := func() (got string, err error) {
						defer func() {
							if r := recover(); r != nil {
								t.Fatalf("panic: %v\n%s", r, debug.Stack())
							}
						}()
						s, err := Open(dir, quiet())
						if err != nil {
							return "", err
						}
						defer s.Close()
						return loadAll(s)
					}()
					// The log being written, cut short, looks like the log
					// of a crash in the middle of a write: Pebble replays it
					// up to the cut. What a sync made durable is lost, and
					// nothing can tell.
					cut := image.name == "crash" && e.Name() == newestLog && dmg.name != "middle overwritten"
					switch {
					case cut && err == nil && subset(got, want):
						t.Logf("log cut short: %d of %d lines of content loaded", strings.Count(got, "\n"), strings.Count(want, "\n"))
					case err != nil && !strings.Contains(err.Error(), dir):
						t.Errorf("error does not name the directory %s: %v", dir, err)
					case err != nil:
						t.Logf("error: %v", err)
					case got != want:
						t.Errorf("no error, but the content changed: %d of %d lines loaded, subset: %v", strings.Count(got, "\n"), strings.Count(want, "\n"), subset(got, want))
					}
				})
			}
		}
	}
}

// subset reports whether every line of a is a line of b.
func subset(a, b string) bool {
	lines := make(map[string]bool)
	for _, l := range strings.Split(b, "\n") {
		lines[l] = true
	}
	for _, l := range strings.Split(a, "\n") {
		if !lines[l] {
			return false
		}
	}
	return true
}
