package listener

import (
	"context"
	"net"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// wsCloseTimeout bounds the WebSocket close handshake that Close starts;
// after it the transport is closed regardless.
const wsCloseTimeout = time.Second

// wsReadBuf is the size of the read-ahead buffer of a WebSocket conn.
const wsReadBuf = 4096

// wsConn adapts a WebSocket to the byte stream the broker reads.
//
// Writes go to a websocket.NetConn of MessageBinary: one binary message per
// Write [MQTT-6.0.0-1]. Reads come from the same NetConn, which joins frames
// and messages into one stream, so an MQTT packet may span frames and a
// frame may hold several packets [MQTT-6.0.0-2]; a text message makes it
// close the WebSocket with status 1003 and fail the read [MQTT-6.0.0-1].
//
// Two things differ from a bare NetConn:
//
//   - Read deadlines. A NetConn whose read deadline passes during a Read
//     closes the whole WebSocket. The broker sets a read deadline before
//     every read (keep alive) and sets one in the past to stop reading
//     while it flushes a last packet, which must still go out. So a pump
//     goroutine reads the NetConn without deadline into a buffer, and Read
//     waits for the pump or the deadline, returning os.ErrDeadlineExceeded
//     (a net.Error with Timeout true) and leaving the connection usable,
//     as a TCP conn does. The cost: one goroutine and one copy per read.
//   - Close. NetConn's Close runs the close handshake and may wait 10 s
//     for the peer; the broker closes conns with locks held. Close here
//     returns at once and runs the handshake in the background, closing
//     the transport after wsCloseTimeout at the latest.
type wsConn struct {
	ws     *websocket.Conn
	nc     net.Conn // websocket.NetConn(ws, MessageBinary)
	raw    net.Conn // the HTTP connection below the WebSocket
	remote net.Addr

	rmu     sync.Mutex // serialises Read; guards pending and rerr
	pending []byte     // unread part of buf
	rerr    error      // the pump's last error, sticky

	buf     []byte          // the pump's buffer, owned by Read between filled and drained
	filled  chan readResult // pump -> Read: buf holds a result
	drained chan struct{}   // Read -> pump: buf is free again
	rdl     deadline

	closeOnce sync.Once
	closed    chan struct{}
}

type readResult struct {
	n   int
	err error
}

func newWSConn(ws *websocket.Conn, raw net.Conn, remote net.Addr) *wsConn {
	c := &wsConn{
		ws:      ws,
		nc:      websocket.NetConn(context.Background(), ws, websocket.MessageBinary),
		raw:     raw,
		remote:  remote,
		buf:     make([]byte, wsReadBuf),
		filled:  make(chan readResult, 1),
		drained: make(chan struct{}, 1),
		closed:  make(chan struct{}),
	}
	c.rdl.init()
	go c.pump()
	return c
}

// pump reads the WebSocket into buf, one result at a time, until an error.
func (c *wsConn) pump() {
	for {
		n, err := c.nc.Read(c.buf)
		c.filled <- readResult{n, err}
		if err != nil {
			return
		}
		select {
		case <-c.drained:
		case <-c.closed:
			return
		}
	}
}

func (c *wsConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	case <-c.rdl.wait():
		return 0, os.ErrDeadlineExceeded
	default:
	}
	if len(c.pending) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		select {
		case r := <-c.filled:
			c.pending, c.rerr = c.buf[:r.n], r.err
			if r.n == 0 && r.err != nil {
				return 0, r.err
			}
		case <-c.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 && c.rerr == nil {
		c.drained <- struct{}{} // never blocks: the pump waits for exactly this one
	}
	return n, nil
}

// Write sends p as one binary message [MQTT-6.0.0-1].
func (c *wsConn) Write(p []byte) (int, error) { return c.nc.Write(p) }

// Close starts the WebSocket close handshake and returns; see wsConn.
func (c *wsConn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.closed)
		c.rdl.set(time.Time{})
		go func() {
			t := time.AfterFunc(wsCloseTimeout, func() { c.raw.Close() })
			// ws.Close, not nc.Close: the NetConn's Close cancels the
			// pump's read first, which drops the transport before the
			// close frame is written. ws.Close writes status 1000, then
			// waits for the peer's close frame, which ends the pump.
			c.ws.Close(websocket.StatusNormalClosure, "")
			c.nc.Close()
			t.Stop()
			c.raw.Close()
		}()
	})
	if !first {
		return net.ErrClosed
	}
	return nil
}

// RemoteAddr is the HTTP client's address, or the one a trusted proxy gave
// in X-Forwarded-For (port 0).
func (c *wsConn) RemoteAddr() net.Addr { return c.remote }

func (c *wsConn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

func (c *wsConn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	return c.nc.SetWriteDeadline(t)
}

func (c *wsConn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline is NetConn's: a write still blocked when it passes
// closes the WebSocket.
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// NetConn returns the HTTP connection below the WebSocket (a *tls.Conn on
// wss), for PeerIdentity. Reading or writing it corrupts the WebSocket.
func (c *wsConn) NetConn() net.Conn { return c.raw }

// deadline is a resettable deadline that blocked readers can wait on: the
// channel from wait is closed once the deadline has passed. Setting it
// reuses the timer and the channel unless the channel was already closed,
// so a deadline moved before every read allocates nothing.
type deadline struct {
	mu     sync.Mutex
	at     time.Time // zero: none
	timer  *time.Timer
	cancel chan struct{}
}

func (d *deadline) init() { d.cancel = make(chan struct{}) }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at = t
	if d.timer != nil {
		d.timer.Stop()
	}
	select {
	case <-d.cancel:
		d.cancel = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.cancel)
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(dur, d.fire)
	} else {
		d.timer.Reset(dur)
	}
}

// fire closes the channel if the current deadline has passed; a timer
// that fires for a deadline since moved later is set again.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.at.IsZero() {
		return
	}
	if dur := time.Until(d.at); dur > 0 {
		d.timer.Reset(dur)
		return
	}
	select {
	case <-d.cancel:
	default:
		close(d.cancel)
	}
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}
