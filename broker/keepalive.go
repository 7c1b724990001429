package broker

import "time"

// The keep-alive costs no timer operation per packet. setReadDeadline
// (conn.go) sets the read deadline once, 1.5 x Keep Alive after the packet
// last seen; every packet only records when it arrived (conn.lastPacket).
// When the deadline passes, readAlive looks at that time: if a packet came
// since, the deadline moves to 1.5 x Keep Alive after it and the read goes
// on; if not, the client has been silent that long and the read fails with
// the time-out that ends the connection, its will published
// [MQTT-3.1.2-24]. A busy connection so sets its deadline about once per
// keep-alive period instead of once per read.

// readAlive reads as conn.read does, moving a keep-alive deadline that
// passed while packets kept arriving. Read loop only.
func (c *conn) readAlive(b []byte) (int, error) {
	for {
		n, err := c.read(b)
		if err == nil || !isTimeout(err) || !c.rearm() {
			return n, err
		}
	}
}

// rearm moves the keep-alive deadline to 1.5 x Keep Alive after the last
// packet and reports true, or reports false when the deadline stands: the
// client was silent that long, or a takeover or the broker's close set it
// to stop the read (they set their flag, then the deadline; the flags are
// checked again after the deadline is moved, so neither is lost).
func (c *conn) rearm() bool {
	if c.keepAlive == 0 || c.yield.Load() || c.closed.Load() {
		return false
	}
	next := c.lastPacket.Add(c.keepAlive)
	if !next.After(time.Now()) {
		return false
	}
	c.nc.SetReadDeadline(next)
	return !c.yield.Load() && !c.closed.Load()
}
