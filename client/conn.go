package client

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// conn is one network connection of a Client, from CONNACK to its end. It
// runs three goroutines: the read loop (Client.readLoop), the writer that
// drains the write buffer, and the keep-alive timer.
type conn struct {
	nc      net.Conn
	version byte

	// Fixed once CONNACK is read.
	keepAlive   time.Duration // 0: none
	pingTimeout time.Duration
	sendQuota   int    // server's Receive Maximum [MQTT-3.3.4-7]
	aliasMax    uint16 // server's Topic Alias Maximum
	maxPacket   int    // server's Maximum Packet Size; 0: none
	maxQoS      byte   // server's Maximum QoS
	retainOK    bool   // server's Retain Available

	// Guarded by Client.mu.
	aliasOut   map[string]uint16   // outbound topic aliases
	inflightIn map[uint16]struct{} // QoS 1/2 from the server, not yet acknowledged

	// Owned by the read loop.
	rd      packetReader
	aliasIn map[uint16]string

	// Write side, guarded by wmu. Lock order: Client.mu, then wmu.
	wmu      sync.Mutex
	out      []byte
	spare    []byte
	closing  bool  // close once out is written
	closeErr error // why, when closing after a protocol error
	kick     chan struct{}
	lastSend atomic.Int64 // unix nanoseconds of the last write (or CONNECT)
	pingSent atomic.Int64 // unix nanoseconds of the outstanding PINGREQ; 0: none

	writeTimeout time.Duration
	done         chan struct{} // closed when the connection has ended
	endOnce      sync.Once
	err          error // why it ended; read after done is closed
}

func newConn(nc net.Conn, version byte, o *Options) *conn {
	cn := &conn{
		nc:           nc,
		version:      version,
		kick:         make(chan struct{}, 1),
		done:         make(chan struct{}),
		writeTimeout: orDefault(o.WriteTimeout, DefaultWriteTimeout),
		inflightIn:   make(map[uint16]struct{}),
	}
	cn.rd = packetReader{r: nc, dec: packet.Decoder{Version: version, MaxSize: int(o.MaxPacketSize), Reuse: true}}
	return cn
}

// end closes the connection once, recording why.
func (cn *conn) end(err error) {
	cn.endOnce.Do(func() {
		cn.err = err
		cn.nc.Close()
		close(cn.done)
	})
}

// alive reports whether the connection has not ended.
func (cn *conn) alive() bool {
	select {
	case <-cn.done:
		return false
	default:
		return true
	}
}

// send encodes p into the write buffer; the writer sends it. Encoding
// errors (which the callers' checks should have prevented) end the
// connection.
func (cn *conn) send(p packet.Packet) error {
	cn.wmu.Lock()
	if cn.closing {
		cn.wmu.Unlock()
		return net.ErrClosed
	}
	n := len(cn.out)
	var err error
	cn.out, err = p.Append(cn.out, cn.version)
	return cn.queued(n, err)
}

// sendPublish is send for a PUBLISH: called with the concrete type, the
// packet (often a per-send copy on the caller's stack) does not escape.
func (cn *conn) sendPublish(p *packet.Publish) error {
	cn.wmu.Lock()
	if cn.closing {
		cn.wmu.Unlock()
		return net.ErrClosed
	}
	n := len(cn.out)
	var err error
	cn.out, err = p.Append(cn.out, cn.version)
	return cn.queued(n, err)
}

// First bytes of the acknowledgements sendAck writes.
const (
	firstPuback  = byte(packet.PUBACK) << 4
	firstPubrec  = byte(packet.PUBREC) << 4
	firstPubrel  = byte(packet.PUBREL)<<4 | 2 // [MQTT-3.6.1-1]
	firstPubcomp = byte(packet.PUBCOMP) << 4
)

// sendAck queues a successful PUBACK, PUBREC, PUBREL or PUBCOMP (first
// byte first) without properties: in every version its four bytes, as 5.0
// leaves out reason code Success with no properties [MQTT-3.4.2-1]. It
// allocates nothing, and it is on the path of every QoS 1 and 2 message.
func (cn *conn) sendAck(first byte, id uint16) error {
	cn.wmu.Lock()
	if cn.closing {
		cn.wmu.Unlock()
		return net.ErrClosed
	}
	cn.out = append(cn.out, first, 2, byte(id>>8), byte(id))
	return cn.queued(len(cn.out), nil)
}

// queued ends a send: it drops a packet that failed to encode (the buffer
// back to n bytes), releases wmu, which the caller holds, and wakes the
// writer.
func (cn *conn) queued(n int, err error) error {
	if err != nil {
		cn.out = cn.out[:n]
		cn.wmu.Unlock()
		return err
	}
	cn.wmu.Unlock()
	select {
	case cn.kick <- struct{}{}:
	default:
	}
	return nil
}

// closeAfterFlush makes the writer close the connection once the buffer is
// written: the way out after DISCONNECT [MQTT-3.14.4-1].
func (cn *conn) closeAfterFlush() {
	cn.wmu.Lock()
	cn.closing = true
	cn.wmu.Unlock()
	select {
	case cn.kick <- struct{}{}:
	default:
	}
}

// abort ends the connection because of err: it sends d first when it is
// not nil, waiting a moment for it to be written [MQTT-4.13.1-1].
func (cn *conn) abort(err error, d *packet.Disconnect) {
	if d != nil && cn.send(d) == nil {
		cn.wmu.Lock()
		cn.closeErr = err
		cn.wmu.Unlock()
		cn.closeAfterFlush()
		t := time.NewTimer(time.Second)
		select {
		case <-cn.done:
		case <-t.C:
		}
		t.Stop()
	}
	cn.end(err)
}

// writeLoop writes the buffer whenever there is something in it.
func (cn *conn) writeLoop() {
	for {
		select {
		case <-cn.kick:
		case <-cn.done:
			return
		}
		for {
			cn.wmu.Lock()
			b, closing := cn.out, cn.closing
			cn.out, cn.spare = cn.spare, nil
			cn.wmu.Unlock()
			if len(b) == 0 {
				cn.wmu.Lock()
				if cn.spare == nil {
					cn.spare = b
				}
				cn.wmu.Unlock()
				if closing {
					cn.wmu.Lock()
					err := cn.closeErr
					cn.wmu.Unlock()
					if err == nil {
						err = errDisconnected
					}
					cn.end(err)
					return
				}
				break
			}
			now := time.Now()
			cn.lastSend.Store(now.UnixNano()) // one clock reading per write, not per packet
			cn.nc.SetWriteDeadline(now.Add(cn.writeTimeout))
			if _, err := cn.nc.Write(b); err != nil {
				cn.end(err)
				return
			}
			cn.wmu.Lock()
			if cn.spare == nil && cap(b) <= maxSpare {
				cn.spare = b[:0]
			}
			cn.wmu.Unlock()
		}
	}
}

// maxSpare is the largest write buffer the writer keeps for the next
// write. A busy publisher (a bridge with 1,000 messages in flight) fills
// more than 64 KiB between two writes: growing a fresh buffer for each
// write was a tenth of the bridge's allocations.
const maxSpare = 512 << 10

// errDisconnected ends a connection closed by the client after DISCONNECT.
var errDisconnected = errors.New("client: disconnected")

// keepAliveLoop sends PINGREQ when the client has been silent for most of
// the keep-alive [MQTT-3.1.2-23], and ends the connection when PINGRESP
// does not come within the ping timeout.
func (cn *conn) keepAliveLoop() {
	if cn.keepAlive <= 0 {
		return
	}
	tick := min(cn.keepAlive, cn.pingTimeout) / 4
	t := time.NewTicker(max(tick, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-cn.done:
			return
		case now := <-t.C:
			if sent := cn.pingSent.Load(); sent != 0 {
				if now.Sub(time.Unix(0, sent)) > cn.pingTimeout {
					cn.end(ErrPingTimeout)
					return
				}
				continue
			}
			// Ping a little early: the server allows 1.5 x keep-alive,
			// and the ticker's granularity is a quarter of it.
			if now.Sub(time.Unix(0, cn.lastSend.Load())) >= cn.keepAlive*3/4 {
				cn.pingSent.Store(now.UnixNano())
				cn.send(&packet.Pingreq{})
			}
		}
	}
}

// packetReader reads packets from a stream into one growing buffer.
type packetReader struct {
	r          io.Reader
	dec        packet.Decoder
	buf        []byte
	start, end int
}

// next returns the next packet. With dec.Reuse the packet aliases the
// buffer and is valid until the next call.
func (pr *packetReader) next() (packet.Packet, error) {
	for {
		need := 0
		if pr.end > pr.start {
			p, n, err := pr.dec.Decode(pr.buf[pr.start:pr.end])
			if err != nil {
				return nil, err
			}
			if p != nil {
				pr.start += n
				return p, nil
			}
			need = n
		}
		if pr.start == pr.end {
			pr.start, pr.end = 0, 0
		}
		if pr.end == len(pr.buf) || pr.start+need > len(pr.buf) {
			size := pr.end - pr.start
			if pr.start > 0 && size+max(need-size, 1) <= len(pr.buf) {
				copy(pr.buf, pr.buf[pr.start:pr.end])
			} else {
				grown := make([]byte, max(2*len(pr.buf), 4096, need))
				copy(grown, pr.buf[pr.start:pr.end])
				pr.buf = grown
			}
			pr.start, pr.end = 0, size
		}
		n, err := pr.r.Read(pr.buf[pr.end:])
		pr.end += n
		if err != nil && n == 0 {
			return nil, err
		}
	}
}

// handshake sends CONNECT on nc and reads CONNACK, within ctx.
func handshake(ctx context.Context, cn *conn, p *packet.Connect) (*packet.Connack, error) {
	// Ending ctx interrupts the exchange; ctx.Err is set by then.
	stop := context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, err := p.Append(nil, p.Version)
	if err != nil {
		return nil, err
	}
	if _, err := cn.nc.Write(b); err != nil {
		return nil, err
	}
	cn.lastSend.Store(time.Now().UnixNano())
	pk, err := cn.rd.next()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	ack, ok := pk.(*packet.Connack)
	if !ok {
		return nil, errors.New("client: server sent " + pk.Type().String() + " before CONNACK [MQTT-3.2.0-1]")
	}
	if !stop() {
		return nil, ctx.Err()
	}
	cn.nc.SetDeadline(time.Time{})
	return ack, nil
}
