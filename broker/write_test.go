package broker

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// tcpPair returns a broker-side conn on a real TCP socket and its peer.
func tcpPair(t *testing.T) (*conn, net.Conn) {
	t.Helper()
	opts := DefaultOptions()
	opts.Logger = discardLogger()
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	nc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &conn{srv: srv, nc: nc, raw: rawConn(nc), version: packet.V311, done: make(chan struct{})}
	return c, peer
}

func readN(t *testing.T, nc net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(nc, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

// A packet queued on a quiet TCP connection is written by the goroutine
// that queued it, before sendPacket returns: no flusher goroutine starts,
// and no write buffer stays behind (issue 14).
func TestQuietWriteInline(t *testing.T) {
	c, peer := tcpPair(t)
	if c.raw == nil {
		t.Skip("no raw socket writes on this platform")
	}
	for range 3 {
		c.sendPacket(&packet.Pingresp{})
		c.wmu.Lock()
		flushing, pending := c.flushing, len(c.out)
		buffered := c.out != nil
		c.wmu.Unlock()
		if flushing || pending > 0 || buffered {
			t.Fatalf("after sendPacket: flushing %v, %d bytes pending, buffer held %v; want written inline", flushing, pending, buffered)
		}
		if got := readN(t, peer, 2); got[0] != byte(packet.PINGRESP)<<4 {
			t.Fatalf("got % x, want PINGRESP", got)
		}
	}
}

// While a read loop handles one read, what it queues is held and written
// once at the end of the read: batching stays under load (issue 14).
func TestBatchedWriteAtEndOfRead(t *testing.T) {
	c, peer := tcpPair(t)
	if c.raw == nil {
		t.Skip("no raw socket writes on this platform")
	}
	other, otherPeer := tcpPair(t)
	c.startBatch()
	for i := range 3 {
		c.sendPacket(&packet.Puback{PacketID: uint16(i + 1)})
	}
	m := newMessage(&packet.Publish{Topic: "t", Payload: []byte("x")}, time.Now())
	m.via.Store(&c.batch)
	other.sendPublish(m, 0, 0, false, false, nil)
	m.via.Store(nil)
	c.wmu.Lock()
	pending := len(c.out)
	c.wmu.Unlock()
	other.wmu.Lock()
	otherPending := len(other.out)
	other.wmu.Unlock()
	if pending != 12 || otherPending == 0 {
		t.Fatalf("during the read: %d and %d bytes held, want 12 and the PUBLISH", pending, otherPending)
	}
	c.endBatch(true)
	for _, x := range []*conn{c, other} {
		x.wmu.Lock()
		if len(x.out) > 0 || x.deferred {
			t.Errorf("after the read: %d bytes still held, deferred %v", len(x.out), x.deferred)
		}
		x.wmu.Unlock()
	}
	readN(t, peer, 12)
	if got := readN(t, otherPeer, 6); got[0]>>4 != byte(packet.PUBLISH) {
		t.Fatalf("got % x, want the PUBLISH", got)
	}
}
