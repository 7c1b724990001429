//go:build unix

package broker

import (
	"net"
	"sync"
	"syscall"
)

// rawConn returns the descriptor of a plain TCP or Unix socket, whose bytes
// go to the network as written; nil for anything that transforms them
// (TLS, WebSocket) or is not a socket.
func rawConn(nc net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// rawWriter is a write made through syscall.RawConn.Write; pooled with
// its closure so that a write allocates nothing.
type rawWriter struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

var rawWriters = sync.Pool{New: func() any {
	w := new(rawWriter)
	w.fn = func(fd uintptr) bool {
		w.n, w.err = sysWrite(fd, w.b) // the descriptor is non-blocking
		return true                    // never wait
	}
	return w
}}

// tryWrite writes what the socket takes of b now, without waiting. ok is
// false on an error other than a full socket buffer.
func tryWrite(rc syscall.RawConn, b []byte) (n int, ok bool) {
	w := rawWriters.Get().(*rawWriter)
	w.b, w.n, w.err = b, 0, nil
	err := rc.Write(w.fn)
	n, werr := max(w.n, 0), w.err
	w.b, w.err = nil, nil
	rawWriters.Put(w)
	switch {
	case err != nil:
		return n, false
	case werr == nil, werr == syscall.EAGAIN, werr == syscall.EINTR:
		return n, true
	}
	return n, false
}
