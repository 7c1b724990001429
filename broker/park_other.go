//go:build !linux

package broker

// Idle connections are parked only on Linux (park_linux.go): elsewhere each
// connection keeps its read loop's goroutine while idle.

type parkState struct{}

// readIdle waits for the next bytes of an idle connection.
func (c *conn) readIdle(b []byte) (n int, err error, parked bool) {
	n, err = c.readAlive(b)
	return n, err, false
}

// wakeReader is a no-op: the read loop is always in a read that notices.
func (c *conn) wakeReader() {}
