package pebble

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/store"
)

// TestRecovery1M writes 1,000,000 queued entries (1,000 sessions of 1,000
// entries, each of its own 100-byte message) and measures how long a
// restart takes to load them: after Close, and from a checkpoint taken
// while the store was open, as after a crash (the log replayed). Run with GANNET_LONG=1.
func TestRecovery1M(t *testing.T) {
	if testing.Short() || os.Getenv("GANNET_LONG") == "" {
		t.Skip("writes 1,000,000 entries; set GANNET_LONG=1 to run")
	}
	const sessions, perSession, batch = 1000, 1000, 100
	opts := quiet()
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	dir := t.TempDir()
	s, err := Open(dir, opts)
	ok(t, err)
	start := time.Now()
	payload := make([]byte, 100)
	id := uint64(0)
	entries := make([]*store.Entry, batch)
	for c := range sessions {
		client := fmt.Sprintf("client-%04d", c)
		ok(t, s.SaveSession(&store.Session{ClientID: client, Version: 5, Expiry: time.Hour}))
		for seq := 0; seq < perSession; seq += batch {
			for i := range entries {
				id++
				entries[i] = &store.Entry{Seq: uint64(seq + i + 1), QoS: 1,
					Message: &store.Message{ID: id, Topic: "recovery/" + client, Payload: payload, QoS: 1, Created: start}}
			}
			ok(t, s.Append(client, entries...))
		}
	}
	ok(t, s.Sync())
	t.Logf("wrote %d entries in %v", sessions*perSession, time.Since(start).Round(time.Millisecond))
	crash := filepath.Join(t.TempDir(), "crash")
	ok(t, s.db.Checkpoint(crash)) // the files as they are, the log not flushed
	ok(t, s.Close())
	t.Logf("directory: %d MiB after Close, %d MiB as copied while open", dirBytes(t, dir)>>20, dirBytes(t, crash)>>20)

	for _, image := range []struct{ name, dir string }{{"after Close", dir}, {"after a crash", crash}} {
		runtime.GC()
		start := time.Now()
		s, err := Open(image.dir, opts)
		ok(t, err)
		opened := time.Since(start)
		var ids []string
		ok(t, s.LoadSessions(func(sess *store.Session) error { ids = append(ids, sess.ClientID); return nil }))
		n := 0
		for _, id := range ids {
			ok(t, s.LoadQueue(id, func(e *store.Entry) error {
				if e.Message == nil || len(e.Message.Payload) != len(payload) {
					t.Fatalf("entry %d of %s without its message", e.Seq, id)
				}
				n++
				return nil
			}))
		}
		total := time.Since(start)
		if n != sessions*perSession {
			t.Errorf("%s: loaded %d entries, want %d", image.name, n, sessions*perSession)
		}
		t.Logf("%s: Open %v, Open + LoadSessions + LoadQueue of %d entries %v", image.name,
			opened.Round(time.Millisecond), n, total.Round(time.Millisecond))
		ok(t, s.Close())
	}
}

func dirBytes(t *testing.T, dir string) int64 {
	ents, err := os.ReadDir(dir)
	ok(t, err)
	var n int64
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}
