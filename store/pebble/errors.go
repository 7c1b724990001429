package pebble

import "errors"

var (
	// ErrDamaged is wrapped by the errors that report a data directory
	// whose content cannot be read: a file truncated or overwritten, a
	// record that does not decode, a queue entry whose message is missing.
	ErrDamaged = errors.New("store/pebble: data directory damaged")
	// ErrClosed is returned by the methods of a closed Store.
	ErrClosed = errors.New("store/pebble: store closed")
)
