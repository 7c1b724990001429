//go:build !unix

package broker

import (
	"net"
	"syscall"
)

// rawConn returns nil: every write goes through the flusher.
func rawConn(net.Conn) syscall.RawConn { return nil }

func tryWrite(syscall.RawConn, []byte) (int, bool) { return 0, false }

// read reads from the connection.
func (c *conn) read(b []byte) (int, error) { return c.nc.Read(b) }
