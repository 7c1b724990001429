package broker

import (
	"io"
	"net"
	"time"
)

// A client that sends DISCONNECT, closes its socket and connects again at
// once may have its new CONNECT handled before its old connection's read
// loop has read the DISCONNECT. Taking the session over then would publish
// a will the client had removed. So a takeover first lets the old
// connection handle what it has already received, and only then takes the
// session (3.1.1 MQTT-3.14.4-3, 5.0 MQTT-3.1.2-10).

const (
	// takeoverWait bounds how long a new connection waits for the old
	// one to finish; past it the session is taken over by force.
	takeoverWait = time.Second
	// takeoverDrainBytes bounds what an old connection reads once asked
	// to stop: a client that keeps sending cannot hold the takeover.
	takeoverDrainBytes = 1 << 20
	// takeoverGrace is how long an old connection whose socket cannot be
	// read without waiting (TLS, WebSocket) waits for bytes in flight.
	takeoverGrace = 20 * time.Millisecond
)

// letFinish asks the live connection of session id, if any, to handle what
// it has received and end, and waits for it at most takeoverWait, or
// takeoverWait plus storeDrainLimit while the cluster is storing messages
// of the old connection. A client
// of identity ident that may not use the session (session_ownership) leaves
// the live connection alone: it is refused afterwards. It runs on the new
// connection's handshake goroutine, with no lock held.
func (s *Server) letFinish(id, ident string) {
	s.mu.Lock()
	var old *conn
	if sess := s.sessions[id]; sess != nil && s.mayUseLocked(sess, ident) {
		old = sess.conn.Load()
	}
	s.mu.Unlock()
	if old == nil {
		return
	}
	old.takenOver.Store(true) // a will with a delay is cancelled [MQTT-3.1.2-8]
	old.yield.Store(true)
	old.nc.SetReadDeadline(time.Now()) // after the flag: see setReadDeadline
	old.wakeReader()                   // a parked read loop reads on (park_linux.go)
	t := time.NewTimer(takeoverWait)
	defer t.Stop()
	waited := takeoverWait
	select {
	case <-old.handedOverChan():
		return
	case <-t.C:
	}
	if pp := old.pipeRef.Load(); pp != nil && pp.storing() {
		// The cluster has not answered for messages of the old
		// connection: a QoS 2 PUBLISH resent on the new one before it
		// does would be acknowledged as received though the cluster may
		// still refuse the first copy [MQTT-4.3.3-2]. The old connection
		// waits up to storeDrainLimit for them (waitStores); so does this.
		t.Reset(storeDrainLimit)
		waited += storeDrainLimit
		select {
		case <-old.handedOverChan():
			return
		case <-t.C:
		}
	}
	s.log.Warn("taking a session over before its old connection finished", "client", id, "old_remote", old.nc.RemoteAddr(), "waited", waited)
}

// drainForTakeover reads and handles what the client sent before the
// takeover, without waiting for more, and returns errTakenOver, or the
// error that handling it ended with (errDisconnect for a DISCONNECT).
// Read loop only.
func (c *conn) drainForTakeover(buf []byte) ([]byte, error) {
	if len(buf) > 0 {
		var err error
		if buf, err = c.process(buf); err != nil {
			return buf, err
		}
	}
	deadline := time.Now().Add(takeoverGrace)
	for total := 0; total < takeoverDrainBytes; {
		if buf == nil {
			buf = getBuf()
		}
		if cap(buf)-len(buf) < 512 {
			grown := make([]byte, len(buf), 2*cap(buf)+512)
			copy(grown, buf)
			putBuf(buf)
			buf = grown
		}
		n, err := readReady(c.nc, buf[len(buf):cap(buf)], deadline)
		c.srv.stats.bytesIn.Add(uint64(n))
		total += n
		buf = buf[:len(buf)+n]
		if n > 0 {
			var perr error
			if buf, perr = c.process(buf); perr != nil {
				return buf, perr
			}
		}
		if n == 0 || err != nil {
			if err == io.EOF {
				return buf, err
			}
			break
		}
	}
	return buf, errTakenOver
}

// readUntil reads from nc until deadline: 0 and no error when it passes.
func readUntil(nc net.Conn, b []byte, deadline time.Time) (int, error) {
	nc.SetReadDeadline(deadline)
	n, err := nc.Read(b)
	if isTimeout(err) {
		err = nil
	}
	return n, err
}
