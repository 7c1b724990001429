package pebble

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Fsync says when the store makes its writes durable.
type Fsync uint8

const (
	// Always makes Sync wait for the disk: the broker calls it before
	// acknowledging (PUBACK, PUBREC, SUBACK), so what a client was told is
	// stored survives a crash of the process or of the machine. Writers that
	// sync at the same time share one fsync (group commit).
	Always Fsync = iota
	// Interval syncs on a timer every Options.Interval, and Sync returns at
	// once. A crash of the machine loses at most the writes of the last
	// interval (plus the time one fsync takes); a crash of the process alone
	// loses nothing, as the writes are in the operating system's page cache.
	Interval
	// Never leaves writing back to the operating system: Sync returns at
	// once and the store syncs only when it closes. A crash of the process
	// loses nothing; a crash of the machine loses what the operating system
	// had not written back (on Linux, usually up to 30 seconds).
	Never
)

// String returns the name used by the --fsync flag.
func (f Fsync) String() string {
	switch f {
	case Always:
		return "always"
	case Interval:
		return "interval"
	case Never:
		return "never"
	}
	return fmt.Sprintf("Fsync(%d)", uint8(f))
}

// ParseFsync parses "always", "interval" or "never".
func ParseFsync(s string) (Fsync, error) {
	for _, f := range []Fsync{Always, Interval, Never} {
		if s == f.String() {
			return f, nil
		}
	}
	return 0, fmt.Errorf("store/pebble: fsync mode %q: use always, interval or never", s)
}

// Options configure a Store.
type Options struct {
	// Fsync says when writes become durable; see Always, Interval, Never.
	Fsync Fsync
	// Interval is the time between syncs with Fsync Interval: the most
	// writes a crash of the machine can lose.
	Interval time.Duration
	// Logger receives the storage engine's errors and, at debug level, its
	// flushes and compactions; nil means slog.Default().
	Logger *slog.Logger

	fs vfs.FS // for tests that count syncs; nil means the operating system's
}

// DefaultOptions returns Fsync Always and, for Interval, a 1 s interval.
func DefaultOptions() Options {
	return Options{Fsync: Always, Interval: time.Second}
}

// Validate reports every invalid option at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Fsync > Never {
		errs = append(errs, fmt.Errorf("store/pebble: Fsync %d: use Always, Interval or Never", o.Fsync))
	}
	if o.Fsync == Interval && o.Interval <= 0 {
		errs = append(errs, fmt.Errorf("store/pebble: Interval %v: Fsync Interval needs a positive interval", o.Interval))
	}
	return errors.Join(errs...)
}
