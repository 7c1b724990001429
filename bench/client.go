package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// role is what a client does in a run; its letter goes in the client ID.
type role byte

const (
	roleConn role = 'c'
	rolePub  role = 'p'
	roleSub  role = 's'
)

// Read buffer sizes: publishers and subscribers read in large gulps; the
// connections of a conn run, which only ever see PINGRESP, keep a small one
// so that a hundred thousand of them stay cheap. Both grow to fit a packet
// larger than themselves.
const (
	bigReadBuf   = 64 << 10
	smallReadBuf = 256
	// maxLatency is the largest plausible latency: anything further from
	// now is a payload that does not start with a bench timestamp.
	maxLatency = time.Hour
)

// client is one raw MQTT connection. Its handshake runs in the goroutine
// that connects it; then readLoop owns the read side and, for a publisher,
// publish owns the write side. Writes from both goroutines (a batch of
// PUBLISH from publish; acknowledgements and PINGREQ from readLoop) are
// whole packets passed to one Write call each, which net.Conn performs
// under a per-connection lock, so they never interleave.
type client struct {
	e     *engine
	role  role
	index int
	id    string
	nc    net.Conn

	// Read side: owned by the handshake, then by readLoop.
	rbuf []byte
	have int // bytes of rbuf holding input not yet handled

	ping time.Duration // PINGREQ interval; 0: none

	// Publisher: a pre-encoded PUBLISH patched per message.
	tmpl  []byte
	idOff int // offset of the packet identifier in tmpl; QoS > 0 only
	tsOff int // offset of the timestamp in tmpl; -1: payload too short
	win   *window

	// Counters, each written by one goroutine of this client and read by
	// the progress line and the report.
	sent        atomic.Uint64 // PUBLISH written (publisher)
	acked       atomic.Uint64 // PUBACK or PUBCOMP received (publisher)
	received    atomic.Uint64 // PUBLISH received (subscriber)
	noTimestamp atomic.Uint64 // PUBLISH received without a usable timestamp
	stale       atomic.Uint64 // PUBLISH sent before the run began, not counted as received
	lastRecv    atomic.Int64  // unix nanoseconds of the last PUBLISH received

	ready   atomic.Bool // handshake (and subscription) succeeded
	lost    atomic.Bool // the connection ended before teardown
	closing atomic.Bool // teardown started: read and write errors are expected
	stalled atomic.Bool // publisher: its last write was cut short at the end of publishing
}

func (c *client) version() byte { return c.e.cfg.Version }

// setup dials, connects and, for a subscriber, subscribes. It records the
// failure kind on error.
func (c *client) setup(ctx context.Context, d *net.Dialer) bool {
	cfg := &c.e.cfg
	begin := time.Now()
	dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	dcfg := cfg
	if c.role == roleSub && cfg.SubAddr != "" {
		sc := *cfg
		sc.Addr = cfg.SubAddr
		dcfg = &sc
	}
	nc, err := dcfg.dial(dctx, d)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.e.errs.add(errorKind("dial", err))
		}
		return false
	}
	c.nc = nc
	size := bigReadBuf
	if c.role == roleConn {
		size = smallReadBuf
	}
	c.rbuf = make([]byte, size)
	nc.SetDeadline(begin.Add(cfg.ConnectTimeout))
	if err := c.connect(); err != nil {
		c.e.errs.add(err.Error())
		nc.Close()
		return false
	}
	c.e.connLatency.record(c.index, time.Since(begin).Nanoseconds())
	if c.role == roleSub {
		nc.SetDeadline(time.Now().Add(cfg.ConnectTimeout))
		if err := c.subscribe(expand(cfg.filter(), c.index)); err != nil {
			c.e.errs.add(err.Error())
			nc.Close()
			return false
		}
	}
	nc.SetDeadline(time.Time{})
	c.ready.Store(true)
	return true
}

// handshakeError is a failed handshake step, named without the details
// (identifiers, addresses) that would make each one a kind of its own.
type handshakeError string

func (e handshakeError) Error() string { return string(e) }

func (c *client) connect() error {
	cfg := &c.e.cfg
	p := &packet.Connect{Version: cfg.Version, CleanStart: !cfg.Persistent, KeepAlive: cfg.KeepAlive, ClientID: c.id}
	if cfg.Persistent && cfg.Version >= packet.V5 {
		p.Properties.SetUint(packet.PropSessionExpiry, 3600)
	}
	if cfg.Username != "" {
		p.UsernameFlag, p.Username = true, cfg.Username
		p.PasswordFlag, p.Password = cfg.Password != "", []byte(cfg.Password)
	}
	if err := c.writePacket(p); err != nil {
		return handshakeError(errorKind("connect", err))
	}
	rp, err := c.readPacket()
	if err != nil {
		return handshakeError(errorKind("connack", err))
	}
	ack, ok := rp.(*packet.Connack)
	if !ok {
		return handshakeError(fmt.Sprintf("connack: got %v", rp.Type()))
	}
	if ack.ReasonCode != packet.Success {
		return handshakeError("connack: refused: " + ack.ReasonCode.String())
	}
	if ack.SessionPresent {
		c.e.sessionPresent.Add(1)
	}
	ka := time.Duration(cfg.KeepAlive) * time.Second
	if cfg.Version >= packet.V5 {
		props := &ack.Properties
		if props.Has(packet.PropServerKeepAlive) {
			ka = time.Duration(props.ServerKeepAlive) * time.Second
		}
		if props.Has(packet.PropMaximumQoS) && cfg.QoS > props.MaximumQoS && c.role != roleConn {
			return handshakeError(fmt.Sprintf("connack: broker's maximum QoS is %d", props.MaximumQoS))
		}
		if c.role == rolePub {
			if props.Has(packet.PropMaximumPacketSize) && len(c.tmpl) > int(props.MaximumPacketSize) {
				return handshakeError(fmt.Sprintf("connack: broker's maximum packet size is %d bytes", props.MaximumPacketSize))
			}
			if props.Has(packet.PropReceiveMaximum) && c.win != nil {
				c.win.shrink(int(props.ReceiveMaximum)) // [MQTT-3.3.4-7]
			}
		}
	}
	c.ping = ka * 2 / 3
	return nil
}

func (c *client) subscribe(filter string) error {
	cfg := &c.e.cfg
	p := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: cfg.QoS}}}
	if err := c.writePacket(p); err != nil {
		return handshakeError(errorKind("subscribe", err))
	}
	rp, err := c.readPacket()
	if err != nil {
		return handshakeError(errorKind("suback", err))
	}
	ack, ok := rp.(*packet.Suback)
	if !ok || len(ack.ReasonCodes) != 1 {
		return handshakeError(fmt.Sprintf("suback: got %v", rp.Type()))
	}
	if rc := ack.ReasonCodes[0]; rc.IsError() {
		return handshakeError("suback: refused: " + rc.String())
	}
	return nil
}

func (c *client) writePacket(p packet.Packet) error {
	b, err := p.Append(nil, c.version())
	if err != nil {
		return err
	}
	_, err = c.nc.Write(b)
	return err
}

// readPacket reads and decodes one packet during the handshake; bytes
// after it stay in rbuf for readLoop.
func (c *client) readPacket() (packet.Packet, error) {
	d := packet.Decoder{Version: c.version()}
	for {
		p, n, err := d.Decode(c.rbuf[:c.have])
		if err != nil {
			return nil, err
		}
		if p != nil {
			c.have = copy(c.rbuf, c.rbuf[n:c.have])
			return p, nil
		}
		if n > len(c.rbuf) {
			c.rbuf = append(c.rbuf, make([]byte, n-len(c.rbuf))...)
		}
		m, err := c.nc.Read(c.rbuf[c.have:])
		c.have += m
		if err != nil {
			return nil, err
		}
	}
}

// readLoop handles everything the broker sends until the connection ends:
// it counts and acknowledges PUBLISH packets, measures their latency,
// completes the publisher's QoS 1 and 2 flows, and sends PINGREQ every
// c.ping by way of a read deadline. It scans fixed headers in place and
// allocates nothing per packet.
func (c *client) readLoop() {
	e := c.e
	v5 := c.version() >= packet.V5
	var (
		out     []byte   // acknowledgements to write after this read
		samples []int64  // end-to-end latencies measured in this read
		ackLat  []int64  // publish-to-acknowledgement latencies
		done    []uint16 // packet identifiers freed in this read
	)
	nextPing := time.Time{}
	if c.ping > 0 {
		nextPing = time.Now().Add(c.ping)
		c.nc.SetReadDeadline(nextPing)
	}
	for {
		n, err := c.nc.Read(c.rbuf[c.have:])
		c.have += n
		if err != nil {
			if c.ping > 0 && errors.Is(err, os.ErrDeadlineExceeded) && !c.closing.Load() {
				nextPing = nextPing.Add(c.ping)
				if time.Until(nextPing) <= 0 {
					nextPing = time.Now().Add(c.ping)
				}
				c.nc.SetReadDeadline(nextPing)
				if _, err := c.nc.Write(pingreq); err != nil {
					c.fail(errorKind("write", err))
					return
				}
				continue
			}
			switch {
			case c.closing.Load():
			case errors.Is(err, io.EOF):
				c.fail("connection closed by broker")
			default:
				c.fail(errorKind("read", err))
			}
			return
		}
		now := time.Now().UnixNano()
		var got, acks uint64
		off := 0
		for {
			total, hl, err := packet.Header(c.rbuf[off:c.have], 0)
			if err != nil {
				c.fail("protocol: " + err.Error())
				return
			}
			if total == 0 || off+total > c.have {
				if total > len(c.rbuf) {
					grown := make([]byte, total)
					c.have = copy(grown, c.rbuf[off:c.have])
					c.rbuf, off = grown, 0
				}
				break
			}
			pkt := c.rbuf[off : off+total]
			off += total
			body := pkt[hl:]
			switch packet.Type(pkt[0] >> 4) {
			case packet.PUBLISH:
				qos, id, payload, ok := publishFields(pkt[0], body, v5)
				if !ok {
					c.fail("protocol: malformed PUBLISH")
					return
				}
				ts, stamped := timestamp(payload)
				switch {
				case stamped && ts < e.staleBefore:
					c.stale.Add(1) // sent before this run began: not ours
				case stamped && now-ts > -int64(time.Second) && now-ts < int64(maxLatency):
					got++
					samples = append(samples, max(now-ts, 0))
				default:
					got++
					c.noTimestamp.Add(1)
				}
				switch qos {
				case 1:
					out, _ = (&packet.Puback{PacketID: id}).Append(out, c.version())
				case 2:
					out, _ = (&packet.Pubrec{PacketID: id}).Append(out, c.version())
				}
			case packet.PUBREL:
				id, _, ok := ackFields(body, v5)
				if !ok {
					c.fail("protocol: malformed PUBREL")
					return
				}
				out, _ = (&packet.Pubcomp{PacketID: id}).Append(out, c.version())
			case packet.PUBACK, packet.PUBREC, packet.PUBCOMP:
				t := packet.Type(pkt[0] >> 4)
				id, rc, ok := ackFields(body, v5)
				if !ok || c.win == nil || int(id) >= len(c.win.sentAt) {
					c.fail("protocol: unexpected " + t.String())
					return
				}
				if t == packet.PUBREC && !rc.IsError() {
					if c.win.sentAt[id].Load() == 0 {
						c.fail("protocol: PUBREC for a packet identifier not in flight")
						return
					}
					out, _ = (&packet.Pubrel{PacketID: id}).Append(out, c.version())
					continue
				}
				sent := c.win.sentAt[id].Swap(0)
				if sent == 0 {
					c.fail("protocol: " + t.String() + " for a packet identifier not in flight")
					return
				}
				if rc.IsError() {
					e.errs.add(t.String() + ": " + rc.String())
				} else {
					acks++
					ackLat = append(ackLat, now-sent)
				}
				done = append(done, id)
			case packet.PINGRESP:
			case packet.DISCONNECT:
				reason := "disconnected by broker"
				if len(body) > 0 {
					reason += ": " + packet.ReasonCode(body[0]).String()
				}
				c.fail(reason)
				return
			default:
				c.fail("protocol: unexpected " + packet.Type(pkt[0]>>4).String())
				return
			}
		}
		if off > 0 {
			c.have = copy(c.rbuf, c.rbuf[off:c.have])
		}
		if got > 0 {
			c.received.Add(got)
			c.lastRecv.Store(now)
			e.firstRecv.CompareAndSwap(0, now)
			if len(samples) > 0 {
				e.latency.recordAll(c.index, samples)
				samples = samples[:0]
			}
		}
		if len(done) > 0 {
			c.acked.Add(acks)
			c.win.put(done)
			done = done[:0]
			if len(ackLat) > 0 {
				e.ackLatency.recordAll(c.index, ackLat)
				ackLat = ackLat[:0]
			}
		}
		if len(out) > 0 {
			if _, err := c.nc.Write(out); err != nil {
				if !c.closing.Load() {
					c.fail(errorKind("write", err))
				}
				return
			}
			out = out[:0]
		}
	}
}

var pingreq, _ = (&packet.Pingreq{}).Append(nil, packet.V311)

// fail records why the connection ended and closes it, unless teardown
// ended it or a failure was already recorded.
func (c *client) fail(kind string) {
	if c.closing.Load() || c.lost.Swap(true) {
		return // teardown, or the other goroutine failed first
	}
	c.e.open.Add(-1)
	c.e.errs.add(kind)
	c.nc.Close()
}

// publishFields reads a PUBLISH body in place: its QoS, packet identifier
// and payload. ok is false when the body is too short for its fields.
func publishFields(first byte, body []byte, v5 bool) (qos byte, id uint16, payload []byte, ok bool) {
	qos = first >> 1 & 3
	if len(body) < 2 {
		return 0, 0, nil, false
	}
	p := 2 + int(binary.BigEndian.Uint16(body))
	if qos > 0 {
		if len(body) < p+2 {
			return 0, 0, nil, false
		}
		id = binary.BigEndian.Uint16(body[p:])
		p += 2
	}
	if v5 {
		n, w := uvarint(body[min(p, len(body)):])
		if w == 0 {
			return 0, 0, nil, false
		}
		p += w + n
	}
	if p > len(body) {
		return 0, 0, nil, false
	}
	return qos, id, body[p:], true
}

// timestamp reads the send time at the start of a payload.
func timestamp(payload []byte) (ts int64, ok bool) {
	if len(payload) < 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(payload)), true
}

// ackFields reads a PUBACK, PUBREC, PUBREL or PUBCOMP body: its packet
// identifier and 5.0 reason code (Success when left out).
func ackFields(body []byte, v5 bool) (id uint16, rc packet.ReasonCode, ok bool) {
	if len(body) < 2 {
		return 0, 0, false
	}
	id = binary.BigEndian.Uint16(body)
	if v5 && len(body) > 2 {
		rc = packet.ReasonCode(body[2])
	}
	return id, rc, true
}

// uvarint decodes an MQTT variable byte integer; w is 0 when b ends
// inside it or it is longer than 4 bytes.
func uvarint(b []byte) (v, w int) {
	for i := 0; i < len(b) && i < 4; i++ {
		v |= int(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

// window holds a publisher's free packet identifiers (1 to size) and the
// send time of each one in flight. publish takes identifiers in batches;
// readLoop returns them in batches, waking publish when enough are free.
type window struct {
	mu      sync.Mutex // guards free, waiting and want
	free    []uint16
	waiting bool // publish waits on wake for want free identifiers
	want    int
	wake    chan struct{}
	size    int // identifiers in all

	// sentAt holds, by packet identifier, the unix nanoseconds the
	// PUBLISH was sent; 0 while the identifier is free. publish stores it
	// before the write, readLoop swaps it back to 0 on the final
	// acknowledgement.
	sentAt []atomic.Int64
}

func newWindow(size int) *window {
	w := &window{wake: make(chan struct{}, 1), sentAt: make([]atomic.Int64, size+1), size: size}
	for id := 1; id <= size; id++ {
		w.free = append(w.free, uint16(id))
	}
	return w
}

// shrink lowers the window to the broker's Receive Maximum before any
// publish.
func (w *window) shrink(size int) {
	if size >= 1 && size < w.size {
		w.free, w.size = w.free[:size], size
	}
}

// refill is the smallest batch a publisher that may send as fast as it
// likes waits for: refilling the window a quarter at a time, rather than
// one identifier per acknowledgement, spares a write per message.
func (w *window) refill() int { return max(1, w.size/4) }

// take moves up to n free identifiers to dst, provided at least atLeast
// (<= n) are free. Otherwise it takes none and marks the caller as
// waiting, to be woken on w.wake once atLeast are free.
func (w *window) take(dst []uint16, n, atLeast int) []uint16 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.free) < atLeast || len(w.free) == 0 {
		w.waiting, w.want = true, max(atLeast, 1)
		return dst
	}
	k := min(n, len(w.free))
	dst = append(dst, w.free[len(w.free)-k:]...)
	w.free = w.free[:len(w.free)-k]
	w.waiting = false
	return dst
}

// put returns identifiers to the pool.
func (w *window) put(ids []uint16) {
	w.mu.Lock()
	w.free = append(w.free, ids...)
	wake := w.waiting && len(w.free) >= w.want
	if wake {
		w.waiting = false
	}
	w.mu.Unlock()
	if wake {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}
