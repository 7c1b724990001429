package bench

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
)

// ErrNoConnection is returned, with a report of the failures, when no
// client could connect.
var ErrNoConnection = errors.New("bench: no client could connect")

// errorCounts counts errors by kind. Errors are rare, so one lock will do.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (e *errorCounts) add(kind string) {
	e.mu.Lock()
	if e.m == nil {
		e.m = make(map[string]uint64)
	}
	e.m[kind]++
	e.mu.Unlock()
}

func (e *errorCounts) total() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n uint64
	for _, c := range e.m {
		n += c
	}
	return n
}

func (e *errorCounts) snapshot() map[string]uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[string]uint64, len(e.m))
	for k, v := range e.m {
		m[k] = v
	}
	return m
}

// errorKind names a network error without the addresses and ports that
// would make every occurrence a kind of its own.
func errorKind(op string, err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return op + ": connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return op + ": connection reset"
	case errors.Is(err, syscall.EPIPE):
		return op + ": broken pipe"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return op + ": out of local ports (add --bind addresses)"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return op + ": too many open files (raise ulimit -n)"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return op + ": timeout"
	case errors.Is(err, net.ErrClosed):
		return op + ": connection closed"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return op + ": timeout"
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return op + ": " + se.Err.Error()
	}
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	return op + ": " + err.Error()
}

// errNoMemoryFigure: the broker published nothing on the memory topic.
var errNoMemoryFigure = errors.New("no figure on the memory topic (is $SYS enabled, with a short interval?)")
