package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

// conn moves bytes between one network connection and the protocol logic
// in client.go: a read loop that decodes packets and hands them over, and a
// write buffer drained by a flusher goroutine that runs only while there is
// something to write. An idle connection holds no buffer, and on Linux no
// goroutine once parked (park_linux.go).
type conn struct {
	srv *Server
	nc  net.Conn
	lo  *listenerState

	authc      *auth.Client  // who the client is, for authorisation
	authMethod string        // 5.0 enhanced authentication method, "" when none
	reauth     auth.Exchange // re-authentication under way
	hsRest     []byte        // bytes read beyond CONNECT during the handshake
	refused    bool          // a refusing CONNACK was sent
	bridge     bool          // CONNECT had Mosquitto's bridge bit (try_private)

	disconnectAt time.Time   // credentials expire: close then (zero: never)
	expiryTimer  *time.Timer // closes the connection at disconnectAt

	pubRate  *rate.Limiter // PUBLISH packets per second, nil: no cap
	byteRate *rate.Limiter // PUBLISH bytes per second, nil: no cap

	// Fixed once CONNECT is accepted.
	sess      *session
	clientID  string
	version   byte
	keepAlive time.Duration // 1.5 x the negotiated keep alive; 0: none

	lastPacket time.Time // when the last complete packet arrived (read loop)
	kaArmed    bool      // the keep-alive read deadline is set (read loop, keepalive.go)
	maxOut     int       // client's Maximum Packet Size (5.0); 0: none

	// 5.0 connection settings, fixed once CONNECT is accepted.
	aliasOutMax uint16        // client's Topic Alias Maximum
	problemInfo bool          // client wants reason strings and user properties
	expiryZero  bool          // CONNECT had Session Expiry Interval 0
	willDelay   time.Duration // Will Delay Interval

	// Owned by the read loop.
	dec       packet.Decoder
	matches   *topic.Matches[*session] // routing scratch, allocated on first PUBLISH
	will      *message                 // nil when there is none or DISCONNECT removed it
	aliasIn   map[uint16]string
	quota2    map[uint16]struct{} // QoS 2 identifiers received on this connection awaiting PUBREL (5.0 4.9)
	clean     bool                // ended by DISCONNECT, will discarded
	acks      []ackLater          // acknowledgements waiting for the store to sync
	pubackOut packet.Puback       // the read loop's PUBACK, reused: sendPacket encodes it at once (one allocation less per QoS 1 message)
	pipe      *pubPipe            // messages being stored by the cluster (clusterpub.go); made by the read loop
	syncRead  bool                // this read wrote what no acknowledgement covers (a retained QoS 0 message): sync at its end
	connected bool
	willKept  bool // the cluster keeps the will (cluster.go): set by connect, read by disconnected

	// Write side, guarded by wmu.
	wmu       sync.Mutex
	out       []byte
	spare     []byte
	flushing  bool
	closing   bool // close once out is written
	closed    atomic.Bool
	takenOver atomic.Bool
	yield     atomic.Bool   // a new connection waits to take the session over
	done      chan struct{} // made on demand, closed when the read loop has handed over session and will (handover.go); guarded by wmu
	// syncWrites makes the flusher sync the store before each write: the
	// session is persistent and the store durable.
	syncWrites atomic.Bool
	// sessSync makes the flusher wait for the session's writes that what
	// it sends depends on: the session is persistent and its store
	// writes behind (sessionsync.go).
	sessSync   atomic.Bool
	aliasOut   map[string]uint16       // outbound topic aliases, guarded by wmu
	wdone      chan struct{}           // closing gracefully: closed when the last write is done (see linger.go)
	deferred   bool                    // in a read loop's batch, written at the end of its read (write.go); guarded by wmu
	handedOver atomic.Bool             // the read loop has handed over session and will (handover.go); set under wmu
	pipeRef    atomic.Pointer[pubPipe] // c.pipe, for a takeover to see from its goroutine (takeover.go)
	raw        syscall.RawConn         // the socket, for writes that do not wait; nil: TLS, WebSocket (write.go)

	batch batch // connections this read loop queued packets on during a read (write.go)

	park parkState // an idle connection parked without a goroutine (park_linux.go)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledBuf = 64 << 10

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledBuf {
		return
	}
	b = b[:0]
	bufPool.Put(&b)
}

// readLoop reads and handles packets until the connection ends. It starts
// with the bytes the handshake read beyond CONNECT. It runs on its own
// goroutine, started after the handshake so that its stack is small.
func (c *conn) readLoop(pending []byte) {
	c.lastPacket = time.Now() // CONNECT
	c.readFrom(pending)
}

// readFrom is the read loop from buf on. It returns when the connection
// ends, or when it is parked while idle: a new goroutine runs readFrom
// again when it has something to read (park_linux.go). The read loop owns
// one count of the server's wait group until the connection ends.
func (c *conn) readFrom(buf []byte) {
	var err error
	var small [16]byte
	for err == nil {
		if len(buf) > 0 {
			if buf, err = c.process(buf); err != nil {
				break
			}
		}
		if c.setReadDeadline() {
			break // a new connection takes the session over
		}
		if len(buf) == 0 {
			// Idle: give the buffer back and wait with a few bytes of stack.
			putBuf(buf)
			buf = nil
			var n int
			var parked bool
			n, err, parked = c.readIdle(small[:])
			if parked {
				return // resumed on another goroutine; c is not ours any more
			}
			c.srv.stats.bytesIn.Add(uint64(n))
			if n > 0 {
				buf = append(getBuf(), small[:n]...)
			}
			continue
		}
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), 2*cap(buf))
			copy(grown, buf)
			putBuf(buf)
			buf = grown
		}
		var n int
		n, err = c.readAlive(buf[len(buf):cap(buf)])
		c.srv.stats.bytesIn.Add(uint64(n))
		buf = buf[:len(buf)+n]
	}
	if c.yield.Load() && (err == nil || isTimeout(err)) {
		// Handle what the client sent before the takeover, its
		// DISCONNECT above all [MQTT-3.14.4-3] [MQTT-3.1.2-10].
		buf, err = c.drainForTakeover(buf)
	}
	putBuf(buf)
	c.waitStores() // clusterpub.go
	linger := c.ended(err)
	c.handOver() // session and will handed over: a takeover need not wait for the linger
	if linger {
		c.linger()
	}
	c.srv.wg.Done()
}

// setReadDeadline arms the keep-alive: 1.5 x Keep Alive after the last
// complete control packet, not after the last byte, so that a client
// trickling a packet byte by byte is still cut off [MQTT-3.1.2-24]
// [MQTT-3.1.2-22]. It sets the deadline once; a deadline that passes after
// later packets arrived is moved on then (readAlive, keepalive.go), not at
// every read. It reports true when a takeover asks the read loop to stop:
// the deadline is set before the check, and the takeover sets the flag
// before its own deadline, so a read never waits past the takeover.
func (c *conn) setReadDeadline() (yield bool) {
	if c.keepAlive > 0 && !c.kaArmed {
		c.kaArmed = true
		c.nc.SetReadDeadline(c.lastPacket.Add(c.keepAlive))
	}
	return c.yield.Load()
}

// process decodes and handles every complete packet in buf and returns the
// unprocessed rest, moved to the front of buf.
func (c *conn) process(buf []byte) ([]byte, error) {
	c.startBatch()
	handled := 0
	defer func() { c.endBatch(handled <= 1) }() // write.go
	off := 0
	for off < len(buf) {
		p, n, err := c.dec.Decode(buf[off:])
		if err != nil {
			return buf, err
		}
		if p == nil {
			// An incomplete packet: readLoop grows buf as its bytes
			// arrive, never to the announced size up front (a 4-byte
			// header must not cost MaxPacketSize of memory).
			break
		}
		if c.closed.Load() {
			// Taken over or closed by the broker: what the client sent
			// after that is not handled [MQTT-3.1.4-3].
			return buf, errClosedByBroker
		}
		if err := c.handle(p); err != nil {
			return buf, err
		}
		handled++
		off += n
	}
	if off > 0 {
		c.lastPacket = time.Now() // a complete packet resets the keep-alive
	}
	c.flushAcks()
	rest := copy(buf, buf[off:])
	return buf[:rest], nil
}

// ackLater holds a PUBACK or PUBREC until the store has made what it
// acknowledges durable: acknowledgements for a whole read share one sync.
type ackLater struct {
	id  uint16
	qos byte
	rc  packet.ReasonCode
}

// flushAcks syncs the store if acknowledgements (or a retained QoS 0
// message) wait for it, then sends them: one sync for the whole read.
func (c *conn) flushAcks() {
	if c.pipe != nil {
		c.drainPipe() // clusterpub.go
	}
	if len(c.acks) == 0 {
		if c.syncRead {
			c.syncRead = false
			c.srv.syncStore()
		}
		return
	}
	c.syncRead = false
	c.flushBatch() // deliveries need not wait for the sync (write.go)
	c.srv.syncStore()
	for _, a := range c.acks {
		if a.qos == 1 {
			c.sendPuback(a.id, a.rc)
		} else {
			c.sendPacket(&packet.Pubrec{PacketID: a.id, ReasonCode: a.rc})
		}
	}
	c.acks = c.acks[:0]
}

// sendPuback sends a PUBACK from the read loop, in c.pubackOut.
func (c *conn) sendPuback(id uint16, rc packet.ReasonCode) {
	c.pubackOut = packet.Puback{PacketID: id, ReasonCode: rc}
	c.sendPacket(&c.pubackOut)
}

// ended runs when the read loop stops: it reports why, and hands the
// session and the will to the server.
func (c *conn) ended(err error) (linger bool) {
	reason, detail := "", ""
	if c.connected && c.srv.observers.Load() != nil {
		reason, detail = disconnectReason(c, err) // before the connection is marked closed below
	}
	var perr *packet.Error
	switch {
	case errors.Is(err, errTakenOver):
		c.srv.log.Info("session taken over by a new connection", "client", c.clientID, "remote", c.nc.RemoteAddr())
		if c.version >= packet.V5 {
			linger = c.closeLinger(&packet.Disconnect{ReasonCode: packet.SessionTakenOver}) // [MQTT-3.1.4-3]
		}
	case c.takenOver.Load():
		// The new connection's CONNECT already logged the takeover.
	case c.closed.Load() && !c.clean:
		c.srv.log.Debug("connection closed by the broker", "client", c.clientID, "remote", c.nc.RemoteAddr())
	case errors.As(err, &perr):
		c.srv.log.Info("closing connection: client broke the protocol",
			"client", c.clientID, "remote", c.nc.RemoteAddr(), "reason", perr.Code.String(), "detail", perr.Msg)
		if c.version >= packet.V5 {
			linger = c.closeLinger(&packet.Disconnect{ReasonCode: perr.Code}) // [MQTT-4.13.1-1]
		}
	case isTimeout(err):
		c.srv.log.Info("closing connection: nothing received within 1.5 x keep-alive",
			"client", c.clientID, "remote", c.nc.RemoteAddr(), "keepalive", c.keepAlive*2/3)
		if c.version >= packet.V5 {
			linger = c.closeLinger(&packet.Disconnect{ReasonCode: packet.KeepAliveTimeout})
		}
	case err == io.EOF || errors.Is(err, net.ErrClosed):
		if c.srv.log.Enabled(context.Background(), slog.LevelDebug) { // nor does a storm of disconnections
			c.srv.log.Debug("connection closed", "client", c.clientID, "remote", c.nc.RemoteAddr())
		}
	case errors.Is(err, errDisconnect):
	default:
		var ce *closeError
		if errors.As(err, &ce) {
			c.srv.log.Info("closing connection", "client", c.clientID, "remote", c.nc.RemoteAddr(), "reason", ce.code.String(), "detail", ce.msg)
			if c.version >= packet.V5 {
				linger = c.closeLinger(&packet.Disconnect{ReasonCode: ce.code})
			}
		} else {
			c.srv.log.Info("connection lost", "client", c.clientID, "remote", c.nc.RemoteAddr(), "error", err)
		}
	}
	// After a DISCONNECT the session goes offline before the socket
	// closes: a client that saw the close finds its messages queued, under
	// the queue's limit, not sent to a connection already ending.
	clean := errors.Is(err, errDisconnect)
	if !clean {
		c.closeWith(nil)
	}
	if c.expiryTimer != nil {
		c.expiryTimer.Stop()
	}
	if reason != "" {
		c.srv.emitClient(EventDisconnected, c, "", 0, reason, detail)
	}
	c.srv.disconnected(c)
	if clean {
		c.closeWith(nil)
	}
	return linger
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sendPacket encodes p into the write buffer.
func (c *conn) sendPacket(p packet.Packet) { c.sendPacketVia(p, nil) }

// sendPacketVia is sendPacket written at the end of the batch via (if
// active; see kickLocked).
func (c *conn) sendPacketVia(p packet.Packet, via *batch) {
	c.wmu.Lock()
	if c.closing {
		c.wmu.Unlock()
		return
	}
	if !c.fits(p) {
		c.wmu.Unlock()
		if p.Type() == packet.CONNACK {
			// Nothing smaller can be said: the client cannot proceed.
			c.srv.log.Info("closing connection: CONNACK exceeds the client's maximum packet size",
				"client", c.clientID, "remote", c.nc.RemoteAddr(), "max", c.maxOut)
			c.nc.Close()
		}
		return // [MQTT-3.1.2-24]
	}
	if c.out == nil {
		c.out = getBuf()
	}
	c.out, _ = p.Append(c.out, c.version)
	c.checkHardLimitLocked()
	c.kickLocked(via)
	c.wmu.Unlock()
	c.srv.emitPacket(EventPacketOut, c, p)
}

// checkHardLimitLocked cuts off a client whose unwritten bytes pass the
// hard bound: it is not reading, and holding more for it would let one
// client exhaust the broker. wmu held.
func (c *conn) checkHardLimitLocked() {
	o := c.srv.opt()
	hard := o.WriteBufferHardLimit
	if hard == 0 {
		hard = 16 * o.WriteBufferLimit
	}
	if len(c.out) <= hard {
		return
	}
	c.srv.limits.slowClosed.Add(1)
	c.srv.log.Warn("disconnecting a client that does not read: its unwritten data passed the hard limit",
		"client", c.clientID, "remote", c.nc.RemoteAddr(), "pending_bytes", len(c.out), "limit", hard)
	c.closing = true
	c.closed.Store(true)
	c.out = c.out[:0]
	go c.closeAndWake()
}

// closeAndWake closes the socket and lets a parked read loop see it.
func (c *conn) closeAndWake() {
	c.nc.Close()
	c.wakeReader()
}

// sendPublish writes one PUBLISH of m with the given QoS, identifier and
// flags. For 3.1 and 3.1.1 the message's shared encoding is copied and its
// flags and identifier patched; 5.0 copies are encoded per connection.
//
// It reports false when the packet was dropped for good because it exceeds
// the client's Maximum Packet Size, or lies outside the mount point of the
// client's listener: the caller then treats the message as delivered
// [MQTT-3.1.2-25].
func (c *conn) sendPublish(m *message, qos byte, id uint16, retain, dup bool, subIDs []uint32) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing {
		return true
	}
	name, visible := c.outTopic(m) // see mount.go
	if !visible {
		return false // outside the listener's mount point: dropped as if delivered
	}
	if qos == 0 && len(c.out) > c.srv.opt().WriteBufferLimit {
		c.srv.stats.slowDropped.Add(1)
		c.srv.emitMessage(EventDropped, m, c.clientID, userOf(c), DropSlowClient, qos)
		m.countDropped(0)
		return true
	}
	if c.out == nil {
		c.out = getBuf()
	}
	first := byte(packet.PUBLISH)<<4 | qos<<1
	if dup && qos > 0 {
		first |= 0x08
	}
	if retain {
		first |= 0x01
	}
	if c.version < packet.V5 && len(name) != len(m.topic) {
		c.appendMounted311(m, name, qos, id, retain, dup)
	} else if c.version < packet.V5 {
		tmpl := m.encoded311(qos)
		start := len(c.out)
		c.out = append(c.out, tmpl...)
		c.out[start] = first
		if qos > 0 {
			at := start + len(tmpl) - len(m.payload) - 2
			c.out[at], c.out[at+1] = byte(id>>8), byte(id)
		}
	} else {
		p := packet.Publish{Dup: dup && qos > 0, QoS: qos, Retain: retain, Topic: name, PacketID: id, Payload: m.payload}
		p.Properties = m.props
		p.Properties.SubscriptionIDs = subIDs
		if !m.expiry.IsZero() {
			p.Properties.MessageExpiry = expiryLeft(m.expiry, time.Now()) // [MQTT-3.3.2-6]
		}
		newAlias := false
		if c.aliasOutMax > 0 { // [MQTT-3.1.2-26] [MQTT-3.3.2-11]
			if a, ok := c.aliasOut[m.topic]; ok {
				p.Topic = ""
				p.Properties.SetUint(packet.PropTopicAlias, uint32(a))
			} else if len(c.aliasOut) < int(c.aliasOutMax) {
				p.Properties.SetUint(packet.PropTopicAlias, uint32(len(c.aliasOut)+1))
				newAlias = true
			}
		}
		if c.maxOut > 0 && p.Size(packet.V5) > c.maxOut {
			c.srv.stats.tooLarge.Add(1)
			c.srv.emitMessage(EventDropped, m, c.clientID, userOf(c), DropTooLarge, qos)
			m.countDropped(qos)
			return false // [MQTT-3.1.2-24] [MQTT-3.1.2-25]
		}
		if newAlias {
			if c.aliasOut == nil {
				c.aliasOut = make(map[string]uint16)
			}
			c.aliasOut[m.topic] = p.Properties.TopicAlias
		}
		c.out, _ = p.Append(c.out, packet.V5)
	}
	c.srv.stats.sent.Add(1)
	c.srv.stats.sentQoS[qos].Add(1)
	c.srv.emitMessage(EventDelivered, m, c.clientID, userOf(c), "", qos)
	m.countOut(qos)
	c.checkHardLimitLocked()
	c.kickLocked(m.via.Load())
	return true
}

// expiryLeft is the Message Expiry Interval a forwarded copy carries: the
// received one less the time waited, in whole seconds rounded up, so that a
// message forwarded at once keeps its interval [MQTT-3.3.2-6]; never below 1.
func expiryLeft(expiry, now time.Time) uint32 {
	left := expiry.Sub(now)
	if left < time.Second {
		return 1
	}
	return uint32((left + time.Second - 1) / time.Second)
}

// flush writes the buffer until it is empty, then exits; many packets
// queued meanwhile go out in one write.
func (c *conn) flush() {
	for {
		c.wmu.Lock()
		b := c.out
		if len(b) == 0 {
			c.flushing = false
			closing, wdone := c.closing, c.wdone
			putBuf(c.out)
			putBuf(c.spare)
			c.out, c.spare = nil, nil
			c.wmu.Unlock()
			switch {
			case closing && wdone != nil:
				close(wdone) // linger closes the socket
			case closing:
				c.closeAndWake()
			}
			return
		}
		c.out = c.spare
		c.spare = nil
		timeout := writeTimeout
		if c.closing {
			timeout = closeTimeout
		}
		c.nc.SetWriteDeadline(time.Now().Add(timeout)) // under wmu: ordered with closeWith's
		c.wmu.Unlock()

		if c.syncWrites.Load() {
			// What goes out (packet identifiers, PUBRELs) must match what
			// a restarted broker will find on disk: deliveries of a
			// transaction are there once it has ended (storetxn.go).
			c.sess.waitTxns()
			c.srv.syncStore()
		}
		var n int
		var err error
		if c.syncSessionWrites() { // sessionsync.go
			n, err = c.nc.Write(b)
		} else {
			err = errSessionSync // closed, as after a failed write
		}
		c.srv.stats.bytesOut.Add(uint64(n))

		c.wmu.Lock()
		if cap(b) <= maxPooledBuf {
			c.spare = b[:0]
		}
		if err != nil {
			c.closing = true
			c.out = c.out[:0]
		}
		c.wmu.Unlock()
		if err != nil {
			c.closeAndWake()
		}
	}
}

const writeTimeout = 30 * time.Second

// closeTimeout bounds the final flush of a connection being closed, so that
// a client that stopped reading does not keep its socket and flusher for the
// whole write timeout after a takeover or Server.Close.
const closeTimeout = time.Second

// closeWith sends p (if not nil), then closes the connection once the
// write buffer is out. Packets sent later are dropped.
func (c *conn) closeWith(p packet.Packet) {
	c.wmu.Lock()
	if c.closing {
		c.wmu.Unlock()
		return
	}
	if p != nil && c.fits(p) {
		// Appended and closed under one lock: nothing follows it
		// [MQTT-3.14.4-1].
		if c.out == nil {
			c.out = getBuf()
		}
		c.out, _ = p.Append(c.out, c.version)
	}
	c.kickNowLocked()
	c.closing = true
	c.closed.Store(true)
	if !c.flushing {
		c.wmu.Unlock()
		c.closeAndWake()
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(closeTimeout)) // under wmu: ordered with flush's
	c.wmu.Unlock()
	// The flusher closes the socket when done; the read side stops now.
	c.nc.SetReadDeadline(time.Now())
	c.wakeReader()
}
