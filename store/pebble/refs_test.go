package pebble

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/storetest"
)

func openT(t testing.TB, dir string) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(dir, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// quiet returns the default options with a logger that discards.
func quiet() Options {
	o := DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

func (s *Store) reopenT(t testing.TB) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return openT(t, s.dir)
}

// count returns the number of records under prefix.
func (s *Store) count(t testing.TB, prefix string) int {
	t.Helper()
	n := 0
	if err := s.scanPrefix(prefix, func(k, v []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantRefs checks the stored messages and the reference counts.
func (s *Store) wantRefs(t testing.TB, what string, want map[uint64]int32) {
	t.Helper()
	if n := s.count(t, prefixMessage); n != len(want) {
		t.Errorf("%s: %d messages stored, want %d", what, n, len(want))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fmt.Sprint(s.refs) != fmt.Sprint(want) {
		t.Errorf("%s: reference counts %v, want %v", what, s.refs, want)
	}
}

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A message queued for many sessions is stored once, and deleted with the
// last entry that refers to it, however that entry goes; the counts are
// rebuilt on Open.
func TestMessageStoredOnce(t *testing.T) {
	s := openT(t, "")
	defer func() { s.Close() }()
	m := storetest.Sample(1, "fan/out", "payload")
	for i := range 100 {
		ok(t, s.Append(fmt.Sprint("c", i), &store.Entry{Seq: 1, Message: m, QoS: 1}))
	}
	s.wantRefs(t, "after fan-out", map[uint64]int32{1: 100})
	s = s.reopenT(t)
	s.wantRefs(t, "after reopen", map[uint64]int32{1: 100})

	for i := range 50 {
		ok(t, s.Remove(fmt.Sprint("c", i), 1))
	}
	for i := 50; i < 98; i++ {
		ok(t, s.DeleteSession(fmt.Sprint("c", i)))
	}
	s.wantRefs(t, "after remove and delete", map[uint64]int32{1: 2})
	other := storetest.Plain(2, "other", "x")
	ok(t, s.Update("c98", &store.Entry{Seq: 1, Message: other, QoS: 1}))
	s.wantRefs(t, "after update to another message", map[uint64]int32{1: 1, 2: 1})
	ok(t, s.Update("c99", &store.Entry{Seq: 1, QoS: 2, State: store.EntryReleased}))
	s.wantRefs(t, "after update without message", map[uint64]int32{2: 1})
	s = s.reopenT(t)
	s.wantRefs(t, "after reopen", map[uint64]int32{2: 1})
	// An Append that replaces an entry drops its reference.
	ok(t, s.Append("c98", &store.Entry{Seq: 1, Message: m, QoS: 1}, &store.Entry{Seq: 1, Message: m, QoS: 2}))
	s.wantRefs(t, "after replacing appends", map[uint64]int32{1: 1})
	ok(t, s.DeleteSession("c98"))
	s.wantRefs(t, "after the last delete", map[uint64]int32{})
}

// Open deletes a message no entry refers to.
func TestOpenSweepsUnreferencedMessages(t *testing.T) {
	s := openT(t, "")
	ok(t, s.Append("c", &store.Entry{Seq: 1, Message: storetest.Plain(1, "t", "kept"), QoS: 1}))
	ok(t, s.db.Set(messageKey(nil, 2), appendMessage(nil, storetest.Plain(2, "t", "orphan")), pebble.Sync))
	s = s.reopenT(t)
	defer s.Close()
	s.wantRefs(t, "after reopen", map[uint64]int32{1: 1})
}

// Sync writes back only when something was written since the last sync;
// Interval syncs on its own.
func TestSync(t *testing.T) {
	s := openT(t, "")
	ok(t, s.Sync())
	ok(t, s.SaveSession(&store.Session{ClientID: "c"}))
	if s.synced.Load() == s.written.Load() {
		t.Fatal("a write counts as synced before Sync")
	}
	ok(t, s.Sync())
	if s.synced.Load() != s.written.Load() {
		t.Fatal("Sync did not count the write as synced")
	}
	ok(t, s.Close())

	opts := quiet()
	opts.Fsync, opts.Interval = Interval, 10*time.Millisecond
	s, err := Open(s.dir, opts)
	ok(t, err)
	defer s.Close()
	ok(t, s.SaveSession(&store.Session{ClientID: "c"}))
	ok(t, s.Sync()) // returns at once
	deadline := time.Now().Add(5 * time.Second)
	for s.synced.Load() != s.written.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the interval syncer did not sync within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// LoadQueueAfter seeks; LoadQueue reads in chunks and stops when fn fails.
func TestLoadQueueAfter(t *testing.T) {
	s := openT(t, "")
	defer s.Close()
	for i := range 1000 {
		ok(t, s.Append("c", &store.Entry{Seq: uint64(2 * (i + 1)), Message: storetest.Plain(uint64(i+1), "t", "p"), QoS: 1}))
	}
	for _, tc := range []struct {
		after      uint64
		first, num uint64
	}{{0, 2, 1000}, {1, 2, 1000}, {2, 4, 999}, {1001, 1002, 500}, {2000, 0, 0}, {1<<64 - 1, 0, 0}} {
		var seqs []uint64
		ok(t, s.LoadQueueAfter("c", tc.after, func(e *store.Entry) error {
			seqs = append(seqs, e.Seq)
			return nil
		}))
		if uint64(len(seqs)) != tc.num || tc.num > 0 && seqs[0] != tc.first {
			t.Errorf("LoadQueueAfter(%d): %d entries from %v, want %d from %d", tc.after, len(seqs), seqs[:min(1, len(seqs))], tc.num, tc.first)
		}
	}
	stop := errors.New("stop")
	n := 0
	err := s.LoadQueue("c", func(e *store.Entry) error {
		if n++; n == 100 {
			return stop
		}
		return nil
	})
	if err != stop || n != 100 {
		t.Errorf("LoadQueue stopped after %d with %v, want 100 and stop", n, err)
	}
}

// With Interval and Never, Sync writes the log without an fsync; the
// interval syncer's sync fsyncs it. With Always, Sync fsyncs.
func TestSyncFsyncsOnlyWhenAsked(t *testing.T) {
	for _, mode := range []Fsync{Always, Interval, Never} {
		t.Run(mode.String(), func(t *testing.T) {
			cfs := &syncCountingFS{FS: vfs.Default}
			opts := quiet()
			opts.Fsync, opts.Interval, opts.fs = mode, time.Hour, cfs
			s, err := Open(t.TempDir(), opts)
			ok(t, err)
			defer s.Close()
			before := cfs.syncs.Load()
			ok(t, s.SaveSession(&store.Session{ClientID: "c"}))
			ok(t, s.Sync())
			synced := cfs.syncs.Load() > before
			if synced != (mode == Always) {
				t.Errorf("Sync fsynced the log: %v, want %v", synced, mode == Always)
			}
			if s.flushed.Load() != s.written.Load() {
				t.Error("Sync did not count the write as written to the operating system")
			}
			ok(t, s.SaveSession(&store.Session{ClientID: "d"}))
			before = cfs.syncs.Load()
			ok(t, s.sync()) // what the interval syncer runs
			if cfs.syncs.Load() == before {
				t.Error("sync did not fsync the log")
			}
			if s.synced.Load() != s.written.Load() {
				t.Error("sync did not count the writes as durable")
			}
		})
	}
}
