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
	// Always makes Sync wait for the disk (fsync): the broker calls it
	// before it acknowledges anything it stored (PUBACK, PUBREC, SUBACK,
	// UNSUBACK, CONNACK) and after the writes nothing acknowledges (a
	// retained QoS 0 message, a session ended at DISCONNECT), so these
	// survive a crash of the process and of the machine, deletions
	// included. Writers that sync at the same time share one fsync (group
	// commit).
	Always Fsync = iota
	// Interval makes Sync write the log to the operating system (write(2),
	// no fsync), and a timer fsyncs it every Options.Interval. A crash of
	// the process loses nothing acknowledged; a crash of the machine or a
	// power cut loses at most the writes of the last interval (plus the
	// time one fsync takes).
	Interval
	// Never makes Sync write the log to the operating system (write(2), no
	// fsync) and leaves writing back to it; the store fsyncs only when it
	// closes. A crash of the process loses nothing acknowledged; a crash of
	// the machine loses whatever the operating system had not written back
	// (on Linux, usually up to 30 seconds).
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
