package broker

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// When the broker ends a connection with a reason code (a DISCONNECT, a
// CONNACK refusal) the client may still be sending. Closing the socket at
// once with its bytes unread makes the kernel answer with a reset, and a
// client whose next write then fails often gives up before reading the
// reason code waiting for it. So the broker closes gracefully: it writes the
// final packet, shuts down its write side, and reads and discards what
// still comes for a bounded time and number of bytes before closing.
//
// A lingering connection keeps the goroutine that was already reading it
// (the read loop, or the handshake) and a small stack buffer; no more than
// maxLingering linger at once, beyond which connections close at once.

const (
	lingerTime   = time.Second // how long input is read and discarded
	lingerBytes  = 256 << 10   // and how much of it at most
	maxLingering = 1024        // connections lingering at once
)

// closeLinger queues p (if not nil and it fits) as the connection's last
// packet, like closeWith, but leaves the socket open for linger. It reports
// false when the connection is closed the plain way instead (already
// closing, the server shutting down, or too many lingering); true obliges
// the caller, the goroutine that reads the connection, to call linger.
func (c *conn) closeLinger(p packet.Packet) bool {
	if !c.srv.startLinger(c) {
		c.closeWith(p)
		return false
	}
	c.wmu.Lock()
	if c.closing {
		c.wmu.Unlock()
		c.srv.endLinger(c)
		return false
	}
	c.wdone = make(chan struct{})
	if p != nil && c.fits(p) {
		if c.out == nil {
			c.out = getBuf()
		}
		c.out, _ = p.Append(c.out, c.version) // nothing follows it [MQTT-3.14.4-1]
	}
	c.kickNowLocked()
	c.closing = true
	c.closed.Store(true)
	if c.flushing {
		c.nc.SetWriteDeadline(time.Now().Add(closeTimeout)) // under wmu: ordered with flush's
	} else {
		close(c.wdone)
	}
	c.wmu.Unlock()
	return true
}

// linger waits until the final packet is written, shuts down the write
// side, reads and discards input for at most lingerTime and lingerBytes,
// then closes the connection.
func (c *conn) linger() {
	defer c.srv.endLinger(c)
	t := time.NewTimer(2 * closeTimeout) // the flusher's writes end within closeTimeout
	select {
	case <-c.wdone:
	case <-t.C:
	}
	t.Stop()
	shutdownWrite(c.nc)
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	var b [512]byte
	for n := 0; n < lingerBytes; {
		m, err := c.nc.Read(b[:])
		n += m
		if err != nil {
			break
		}
	}
	c.nc.Close()
}

// shutdownWrite ends the sending direction of nc where it can: TCP and
// Unix sockets send FIN, TLS its close_notify alert and then FIN. Other
// connections (WebSocket) are left as they are; they are read and
// discarded all the same.
func shutdownWrite(nc net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	if tc, ok := nc.(*tls.Conn); ok {
		tc.CloseWrite()
		nc = tc.NetConn()
	}
	if cw, ok := nc.(closeWriter); ok {
		cw.CloseWrite()
	}
}

// startLinger registers c as lingering, unless the server is closing or
// maxLingering connections already linger.
func (s *Server) startLinger(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.lingering) >= maxLingering {
		return false
	}
	if s.lingering == nil {
		s.lingering = make(map[*conn]struct{})
	}
	s.lingering[c] = struct{}{}
	return true
}

func (s *Server) endLinger(c *conn) {
	s.mu.Lock()
	delete(s.lingering, c)
	s.mu.Unlock()
}
