//go:build unix

package broker

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// rawReader is a read made through syscall.RawConn.Read with sysRead;
// pooled with its closure so that a read allocates nothing.
type rawReader struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

var rawReaders = sync.Pool{New: func() any {
	r := new(rawReader)
	r.fn = func(fd uintptr) bool {
		r.n, r.err = sysRead(fd, r.b)  // the descriptor is non-blocking
		return r.err != syscall.EAGAIN // nothing there: the poller waits for more
	}
	return r
}}

// read reads from the connection as net.Conn.Read does, honouring the read
// deadline, with errors a net.Conn would return (io.EOF, a net.Error for a
// deadline, net.ErrClosed). A plain TCP or Unix socket is read with
// rawSyscall, anything else (TLS, WebSocket, PROXY protocol) by its Read.
func (c *conn) read(b []byte) (int, error) {
	if c.raw == nil || len(b) == 0 {
		return c.nc.Read(b)
	}
	r := rawReaders.Get().(*rawReader)
	r.b, r.n, r.err = b, 0, nil
	err := c.raw.Read(r.fn)
	n, rerr := r.n, r.err
	r.b, r.err = nil, nil
	rawReaders.Put(r)
	switch {
	case err != nil: // deadline passed, or closed
		return 0, err
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: c.nc.LocalAddr().Network(), Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
