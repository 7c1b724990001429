package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"weak"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/gannet-mqtt/gannet/store"
)

// Store is a store.Store and store.Syncer on a Pebble database in one
// directory. It is safe for concurrent use.
//
// Lock order: closeMu, then mu, then cacheMu.
type Store struct {
	db   *pebble.DB
	dir  string
	opts Options
	log  *slog.Logger

	// closeMu is held shared by every method that uses db, and exclusively
	// by Close. No method calls back into the caller while holding it.
	closeMu sync.RWMutex
	closed  bool

	// mu serialises the writes that change message reference counts, from
	// the decision to the commit, so that a message is written before or in
	// the same batch as the first entry that refers to it and deleted with
	// the last one.
	mu      sync.Mutex
	refs    map[uint64]int32  // entries referring to each stored message; mu held
	lastSeq map[string]uint64 // highest Seq of each non-empty queue; mu held

	written atomic.Uint64 // writes committed
	flushed atomic.Uint64 // writes known to be in the operating system (the log written to its file)
	synced  atomic.Uint64 // writes known durable (the log fsynced)

	// wal turns the log's syncs into writes with Fsync Interval and Never;
	// nil with Always.
	wal *walFS

	// cache shares one decoded message among the entries that LoadQueue
	// returns, across calls, while the broker restores: it holds the
	// messages that several entries referred to when the store opened. The
	// first Append drops it.
	cacheMu sync.Mutex
	cache   map[uint64]weak.Pointer[store.Message] // cacheMu held
	caching atomic.Bool                            // cache is not nil

	corrupt atomic.Pointer[string] // the last file Pebble found damaged

	stop chan struct{} // closed to end the interval syncer
	done chan struct{} // closed when it has ended
	once sync.Once
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Syncer = (*Store)(nil)
)

// Open opens the store in dir, creating the directory and an empty store
// if there is none. It refuses a directory that holds other files, one
// that another process has open, and one written by a newer Gannet. A
// damaged directory gives an error that wraps ErrDamaged and names it.
func Open(dir string, opts Options) (_ *Store, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	s := &Store{
		dir:     dir,
		opts:    opts,
		log:     opts.Logger.With("store", dir),
		refs:    make(map[uint64]int32),
		lastSeq: make(map[string]uint64),
		cache:   make(map[uint64]weak.Pointer[store.Message]),
	}
	defer func() {
		// Pebble panics on some damage it finds while opening.
		if r := recover(); r != nil {
			err = s.damaged(fmt.Errorf("%v", r))
		}
		if err != nil && s.db != nil {
			func() {
				defer func() { recover() }() // it may panic again
				s.db.Close()
			}()
		}
	}()
	el := pebble.EventListener{
		BackgroundError: func(err error) { s.log.Error("store: background error", "error", err) },
		// Pebble's default ends the process.
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			s.corrupt.Store(&info.Path)
			s.log.Error("store: damaged file; restore the data directory from a backup, or move it aside to start empty",
				"file", info.Path, "error", firstLine(info.Details))
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			s.log.Warn("store: disk slow", "file", info.Path, "op", info.OpType.String(), "duration", info.Duration)
		},
	}
	fs := opts.fs
	if fs == nil {
		fs = vfs.Default
	}
	if opts.Fsync != Always {
		s.wal = newWALFS(fs, opts.Fsync == Interval)
		fs = s.wal
	}
	start := time.Now()
	s.db, err = pebble.Open(dir, &pebble.Options{
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       16 << 20,
		Logger:             pebbleLogger{s.log},
		EventListener:      &el,
		FS:                 fs,
	})
	if err != nil {
		return nil, s.openErr(err)
	}
	if err := s.checkFormat(); err != nil {
		return nil, err
	}
	opened := time.Since(start)
	if err := s.scan(); err != nil {
		return nil, err
	}
	s.log.Debug("store: opened", "open", opened, "scan", time.Since(start)-opened,
		"messages", len(s.refs), "queues", len(s.lastSeq))
	s.caching.Store(true)
	if opts.Fsync == Interval {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.syncEvery(opts.Interval)
	}
	return s, nil
}

// Dir returns the directory of the store.
func (s *Store) Dir() string { return s.dir }

// checkDir refuses a directory that holds files but no Pebble database,
// so that a mistyped --data-dir does not fill a home directory.
func checkDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store/pebble: data directory %s: %w", dir, err)
	}
	if len(ents) == 0 {
		return nil
	}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "MANIFEST-") || strings.HasPrefix(n, "OPTIONS-") || n == "CURRENT" || n == "LOCK" || strings.HasPrefix(n, "marker.") {
			return nil
		}
	}
	return fmt.Errorf("store/pebble: %s holds files but no Gannet store; choose an empty or new directory for the data", dir)
}

// openErr explains an error of pebble.Open.
func (s *Store) openErr(err error) error {
	msg := firstLine(err)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("store/pebble: opening %s: %s; give the user gannet runs as access to the directory", s.dir, msg)
	case strings.Contains(msg, "LOCK") || strings.Contains(msg, "lock"):
		return fmt.Errorf("store/pebble: %s is in use by another process (is another gannet running with this data directory?): %s", s.dir, msg)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.ENOTDIR), errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("store/pebble: opening %s: %s", s.dir, msg)
	}
	// Anything else is a file Pebble cannot read or make sense of.
	return s.damaged(err)
}

// damaged wraps err, from reading the store, in an error that names the
// damaged file if Pebble reported one and says what to do.
func (s *Store) damaged(err error) error {
	msg := firstLine(err)
	if p := s.corrupt.Load(); p != nil && !strings.Contains(msg, *p) {
		msg = "file " + *p + ": " + msg
	} else if strings.Contains(msg, "WAL") && !strings.Contains(msg, ".log") {
		// Pebble does not say which log it was replaying.
		if logs, _ := filepath.Glob(filepath.Join(s.dir, "*.log")); len(logs) > 0 {
			msg = "a write-ahead log (" + strings.Join(logs, ", ") + "): " + msg
		}
	}
	return fmt.Errorf("%w: %s: %s; restore the directory from a backup, or move it aside to start with an empty store (losing the sessions, queues and retained messages it holds)",
		ErrDamaged, s.dir, msg)
}

// firstLine returns the message of err without the stack traces of
// Pebble's errors.
func firstLine(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "\n"); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// readErr wraps an error of a read.
func (s *Store) readErr(err error) error {
	if pebble.IsCorruptionError(err) {
		return s.damaged(err)
	}
	return fmt.Errorf("store/pebble: reading %s: %w", s.dir, err)
}

// recordErr reports a record that does not decode.
func (s *Store) recordErr(key []byte, err error) error {
	return s.damaged(fmt.Errorf("record %s: %w", keyString(key), err))
}

// checkFormat reads the format version, and writes it in a new store.
func (s *Store) checkFormat() error {
	v, closer, err := s.db.Get([]byte(keyFormat))
	if errors.Is(err, pebble.ErrNotFound) {
		it, err := s.db.NewIter(nil)
		if err != nil {
			return s.readErr(err)
		}
		empty := !it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return s.readErr(err)
		}
		if !empty {
			return s.damaged(errors.New("the format record " + keyFormat + " is missing"))
		}
		if err := s.db.Set([]byte(keyFormat), []byte{formatVersion}, pebble.Sync); err != nil {
			return fmt.Errorf("store/pebble: writing %s: %w", s.dir, err)
		}
		return nil
	}
	if err != nil {
		return s.readErr(err)
	}
	defer closer.Close()
	switch {
	case len(v) != 1 || v[0] == 0:
		return s.damaged(fmt.Errorf("the format record %s holds %q", keyFormat, v))
	case v[0] > formatVersion:
		return fmt.Errorf("store/pebble: %s was written by a newer Gannet (store format %d; this one reads format %d): run the newer version, or move the directory aside",
			s.dir, v[0], formatVersion)
	}
	return nil
}

// scan counts the entries that refer to each message and the last Seq of
// each queue, deletes the messages no entry refers to, and checks every
// referred message is there.
func (s *Store) scan() error {
	// The sizes Close saved spare the maps growing step by step.
	if v, c, err := s.db.Get([]byte(keyHint)); err == nil {
		d := decoder{b: v}
		refs, queues := d.uvarint(), d.uvarint()
		c.Close()
		if d.err == nil && refs < 1<<28 && queues < 1<<28 {
			s.refs = make(map[uint64]int32, refs)
			s.lastSeq = make(map[string]uint64, queues)
		}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefixQueue), UpperBound: prefixEnd([]byte(prefixQueue))})
	if err != nil {
		return s.readErr(err)
	}
	var (
		last   []byte
		lastID string
	)
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		id, seq, ok := parseQueueKey(k)
		if !ok {
			it.Close()
			return s.recordErr(k, errors.New("malformed queue key"))
		}
		if string(id) != string(last) || last == nil {
			lastID = string(id)
			last = append(last[:0], id...)
		}
		s.lastSeq[lastID] = seq // keys come in Seq order
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return s.readErr(err)
		}
		mid, has, err := entryMessageID(v)
		if err != nil {
			it.Close()
			return s.recordErr(k, err)
		}
		if has {
			s.refs[mid]++
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return s.readErr(err)
	}

	// Count the messages. Fewer than are referred to: some are missing.
	// More: delete those no entry refers to (none should be; every batch
	// writes or deletes a message with its entries).
	mlo, mhi := []byte(prefixMessage), prefixEnd([]byte(prefixMessage))
	stored := 0
	it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: mlo, UpperBound: mhi})
	if err != nil {
		return s.readErr(err)
	}
	for it.First(); it.Valid(); it.Next() {
		if k := it.Key(); len(k) != len(prefixMessage)+8 {
			it.Close()
			return s.recordErr(k, errors.New("malformed message key"))
		}
		stored++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return s.readErr(err)
	}
	if stored < len(s.refs) {
		return s.missing()
	}
	if stored > len(s.refs) {
		if err := s.sweep(mlo, mhi); err != nil {
			return err
		}
	}
	// LoadQueue shares the messages that several entries refer to.
	for id, n := range s.refs {
		if n > 1 {
			s.cache[id] = weak.Pointer[store.Message]{}
		}
	}
	return nil
}

// sweep deletes the messages no entry refers to.
func (s *Store) sweep(lo, hi []byte) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return s.readErr(err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	found := 0
	for it.First(); it.Valid(); it.Next() {
		if s.refs[msgID(it.Key())] == 0 {
			b.Delete(it.Key(), nil)
		} else {
			found++
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return s.readErr(err)
	}
	if found != len(s.refs) {
		return s.missing()
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store/pebble: deleting unreferenced messages in %s: %w", s.dir, err)
	}
	s.log.Info("store: deleted messages no queue refers to", "count", b.Count())
	return nil
}

// missing reports the first queue entry whose message is missing.
func (s *Store) missing() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefixQueue), UpperBound: prefixEnd([]byte(prefixQueue))})
	if err != nil {
		return s.readErr(err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return s.readErr(err)
		}
		id, has, _ := entryMessageID(v)
		if !has {
			continue
		}
		_, c, err := s.db.Get(messageKey(nil, id))
		if err == nil {
			c.Close()
			continue
		}
		if !errors.Is(err, pebble.ErrNotFound) {
			return s.readErr(err)
		}
		return s.damaged(fmt.Errorf("queue entry %s refers to message %d, which is missing", keyString(it.Key()), id))
	}
	return s.damaged(errors.New("a queue entry refers to a missing message"))
}

// enter takes closeMu shared; the caller releases it.
func (s *Store) enter() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

// wrote counts a committed write for Sync.
func (s *Store) wrote() { s.written.Add(1) }

// Sync makes every write that returned before the call safe from a crash
// of the process, in every mode: it writes Pebble's log buffer to the file
// (write(2)), so that the operating system has it. With Fsync Always it also
// waits for the disk (fsync). Concurrent calls share one write and one
// fsync (Pebble's group commit); a call returns at once when nothing was
// written since the last one.
//
// With Interval, the timer fsyncs; with Never, the operating system writes
// back when it will.
func (s *Store) Sync() error {
	return s.flush()
}

// flush writes the log up to every write made so far to the file, and,
// with Fsync Always, syncs it.
func (s *Store) flush() error {
	w := s.written.Load()
	if s.flushed.Load() >= w {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	// An empty record committed with pebble.Sync waits for the log up to it
	// to be written and synced; with a walFS, the sync is only the write.
	// Pebble gives concurrent commits one write and one sync.
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("store/pebble: writing the log of %s: %w", s.dir, err)
	}
	ratchet(&s.flushed, w)
	if s.wal == nil {
		ratchet(&s.synced, w)
	}
	return nil
}

// sync makes every write made so far durable: it writes the log to the file
// and fsyncs it.
func (s *Store) sync() error {
	w := s.written.Load()
	if s.synced.Load() >= w {
		return nil
	}
	if err := s.flush(); err != nil {
		return err
	}
	if s.wal == nil {
		return nil // flush synced
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if err := s.wal.syncLogs(); err != nil {
		return fmt.Errorf("store/pebble: syncing the log of %s: %w", s.dir, err)
	}
	ratchet(&s.synced, w)
	return nil
}

// ratchet raises c to v unless it is already higher.
func ratchet(c *atomic.Uint64, v uint64) {
	for {
		cur := c.Load()
		if cur >= v || c.CompareAndSwap(cur, v) {
			return
		}
	}
}

// syncEvery syncs every d until Close.
func (s *Store) syncEvery(d time.Duration) {
	defer close(s.done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.sync(); err != nil && !errors.Is(err, ErrClosed) {
				s.log.Error("store: periodic sync failed; recent writes may not be durable", "error", err)
			}
		}
	}
}

// Close syncs, flushes the memory table so that the next Open need not
// replay the log, and closes the database. Later calls return ErrClosed.
func (s *Store) Close() error {
	s.once.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
	})
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	var errs []error
	hint := binary.AppendUvarint(nil, uint64(len(s.refs)))
	hint = binary.AppendUvarint(hint, uint64(len(s.lastSeq)))
	if err := s.db.Set([]byte(keyHint), hint, pebble.Sync); err != nil {
		errs = append(errs, err)
	}
	if err := s.db.Flush(); err != nil {
		errs = append(errs, err)
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store/pebble: closing %s: %w", s.dir, err)
	}
	return nil
}

// Metrics returns the storage engine's metrics: bytes written to the log
// and tables, disk space used, compactions.
func (s *Store) Metrics() (*pebble.Metrics, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	return s.db.Metrics(), nil
}

// pebbleLogger passes Pebble's logs to slog: its chatter about flushes and
// compactions at debug level.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("store: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// Leave out the stack traces of errors printed with %+v.
	if i := strings.Index(msg, "\n(1)"); i >= 0 {
		msg = msg[:i]
	}
	l.log.Error("store: " + msg)
}

// Fatalf reports an error after which Pebble cannot go on (a failed write
// to the log); Pebble expects it not to return.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := "store: " + fmt.Sprintf(format, args...)
	l.log.Error(msg)
	panic(msg)
}
