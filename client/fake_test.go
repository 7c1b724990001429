package client_test

import (
	"net"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// fakeServer is a scripted MQTT server: the test reads the client's
// packets and writes the answers itself, to check what goes over the wire
// and to play behaviours no real broker offers on demand.
type fakeServer struct {
	t     testing.TB
	l     net.Listener
	conns chan net.Conn
}

func newFakeServer(t testing.TB) *fakeServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, l: l, conns: make(chan net.Conn, 16)}
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				close(s.conns)
				return
			}
			s.conns <- nc
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for nc := range s.conns {
			nc.Close()
		}
	})
	return s
}

func (s *fakeServer) url() string { return "mqtt://" + s.l.Addr().String() }

// accept waits for a connection and its CONNECT.
func (s *fakeServer) accept() (*fakeConn, *packet.Connect) {
	s.t.Helper()
	select {
	case nc := <-s.conns:
		c := &fakeConn{Conn: gannettest.NewConn(s.t, nc, 0), t: s.t, nc: nc}
		c.Timeout = waitFor
		p := c.read()
		connect, ok := p.(*packet.Connect)
		if !ok {
			s.t.Fatalf("first packet is %s, want CONNECT", p.Type())
		}
		c.Version = connect.Version
		return c, connect
	case <-time.After(waitFor):
		s.t.Fatal("no connection to the fake server")
		return nil, nil
	}
}

// fakeConn is one connection to the fake server: a gannettest.Conn on
// the server's side, at the version of the client's CONNECT.
type fakeConn struct {
	*gannettest.Conn
	t  testing.TB
	nc net.Conn
}

// send writes packets.
func (c *fakeConn) send(ps ...packet.Packet) { c.t.Helper(); c.Send(ps...) }

// readWithin returns the next packet, waiting at most d.
func (c *fakeConn) readWithin(d time.Duration) (packet.Packet, error) { return c.Read(d) }

// read returns the next packet, failing the test after waitFor.
func (c *fakeConn) read() packet.Packet {
	c.t.Helper()
	p, err := c.readWithin(waitFor)
	if err != nil {
		c.t.Fatalf("fake server read: %v", err)
	}
	return p
}

// readType reads the next packet, skipping PINGREQ, and checks its type.
func readType[P packet.Packet](c *fakeConn) P {
	c.t.Helper()
	for {
		p := c.read()
		if _, ping := p.(*packet.Pingreq); ping {
			c.send(&packet.Pingresp{})
			continue
		}
		want, ok := p.(P)
		if !ok {
			var zero P
			c.t.Fatalf("got %s, want %T", p.Type(), zero)
		}
		return want
	}
}

// nothing checks that the client sends nothing (but PINGREQ) for a while.
func (c *fakeConn) nothing() {
	c.t.Helper()
	deadline := time.Now().Add(quiet)
	for {
		p, err := c.readWithin(time.Until(deadline))
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return
			}
			c.t.Fatalf("fake server read: %v", err)
		}
		if _, ping := p.(*packet.Pingreq); !ping {
			c.t.Fatalf("unexpected %s from the client", p.Type())
		}
	}
}

// fakeClient is a client connected to a fake server.
type fakeClient struct {
	*client.Client
	fc      *fakeConn
	connect *packet.Connect
}

// dialFake connects a client with o to fs, which answers with ack.
func dialFake(t testing.TB, fs *fakeServer, o client.Options, ack *packet.Connack) *fakeClient {
	t.Helper()
	type result struct {
		c   *client.Client
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := client.Dial(testCtx(t), o)
		res <- result{c, err}
	}()
	fc, connect := fs.accept()
	fc.send(ack)
	r := waitChan(t, res, "Dial")
	if r.err != nil {
		t.Fatalf("dial fake server: %v", r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return &fakeClient{Client: r.c, fc: fc, connect: connect}
}
