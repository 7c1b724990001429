//go:build !unix

package broker

import (
	"net"
	"time"
)

// readReady reads what the connection delivers until deadline.
func readReady(nc net.Conn, b []byte, deadline time.Time) (int, error) {
	return readUntil(nc, b, deadline)
}
