package broker_test

import (
	"net"
	"syscall"
	"testing"
)

// soKeepAlive reads SO_KEEPALIVE of the socket under tc.
func soKeepAlive(t *testing.T, tc *net.TCPConn) bool {
	t.Helper()
	rc, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return v != 0
}
