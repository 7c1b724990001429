//go:build unix

package broker

import (
	"errors"
	"net"
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

// tryWrite writes what the socket takes of b now, without waiting. ok is
// false on an error other than a full socket buffer.
func tryWrite(rc syscall.RawConn, b []byte) (n int, ok bool) {
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), b) // the descriptor is non-blocking
		return true                         // never wait
	})
	if n < 0 {
		n = 0
	}
	switch {
	case err != nil:
		return n, false
	case werr == nil, errors.Is(werr, syscall.EAGAIN), errors.Is(werr, syscall.EINTR):
		return n, true
	}
	return n, false
}
