//go:build unix

package broker

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// readReady reads what the socket has already received, without waiting
// for more: 0 and no error when nothing is there. A connection that cannot
// be read that way (TLS, WebSocket) is read until deadline.
func readReady(nc net.Conn, b []byte, deadline time.Time) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return readUntil(nc, b, deadline)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return readUntil(nc, b, deadline)
	}
	nc.SetReadDeadline(time.Time{}) // the takeover's past deadline would refuse the read
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), b) // the descriptor is non-blocking
		return true                        // never wait for more
	})
	switch {
	case err != nil:
		return 0, err
	case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EINTR):
		return 0, nil
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(b) > 0:
		return 0, io.EOF
	case n < 0:
		return 0, nil
	}
	return n, nil
}
