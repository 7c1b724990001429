package broker_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// Timeouts used throughout the end-to-end tests. Every network wait has one
// of them as its deadline, so no test can hang.
const (
	// waitFor bounds a wait for something that must happen.
	waitFor = 3 * time.Second
	// quiet is how long a test listens to be fairly sure something does
	// not happen, where no ping barrier can prove it.
	quiet = 200 * time.Millisecond
)

// testBroker is a running server and its address.
type testBroker struct {
	*broker.Server
	Addr string
}

// testOptions returns DefaultOptions with a logger that stays quiet unless
// GANNET_TEST_LOG is set.
func testOptions() broker.Options {
	o := broker.DefaultOptions()
	o.Logger = testLogger()
	o.SysInterval = 0 // $SYS retained messages would reach "#" subscribers
	return o
}

func testLogger() *slog.Logger {
	if os.Getenv("GANNET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// runBroker starts a server with opts on a 127.0.0.1:0 listener and closes
// it when the test ends.
func runBroker(t testing.TB, opts broker.Options) *testBroker {
	t.Helper()
	return runBrokerOn(t, opts, listen(t))
}

// listen returns a listener on a free loopback port.
func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return l
}

// runBrokerOn is runBroker on a listener the test provides.
func runBrokerOn(t testing.TB, opts broker.Options, l net.Listener) *testBroker {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	srv, err := broker.New(opts)
	if err != nil {
		l.Close()
		t.Fatalf("broker.New: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-served:
			if !errors.Is(err, broker.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(waitFor):
			t.Errorf("Serve did not return after Close")
		}
	})
	return &testBroker{Server: srv, Addr: l.Addr().String()}
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitOffline waits until the session of client id has no connection (the
// broker has finished with the old one, will included).
func (b *testBroker) waitOffline(t testing.TB, id string) {
	t.Helper()
	eventually(t, "session "+id+" to go offline", func() bool {
		_, online := b.SessionState(id)
		return !online
	})
}

// waitSubscriptions waits until the broker holds n subscriptions.
func (b *testBroker) waitSubscriptions(t testing.TB, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d subscriptions", n), func() bool { return b.Stats().Subscriptions == n })
}

// rawClient is a test client on a plain TCP socket: it writes bytes or
// encoded packets and reads packets decoded with packet.Decoder.
type rawClient struct {
	t      testing.TB
	nc     net.Conn
	dec    packet.Decoder
	buf    []byte
	ver    byte
	nextID uint16
}

// dialRaw opens a TCP connection to addr; it is closed when the test ends.
func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc, ver: packet.V311}
	c.dec.Version = packet.V311
	return c
}

// write sends raw bytes. Errors are returned, not fatal: hostile tests
// write to sockets the broker may already have closed.
func (c *rawClient) write(b []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(waitFor))
	_, err := c.nc.Write(b)
	return err
}

// encode returns the bytes of packets at the client's protocol level.
func (c *rawClient) encode(ps ...packet.Packet) []byte {
	c.t.Helper()
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = p.Append(b, c.ver); err != nil {
			c.t.Fatalf("encode %s: %v", p.Type(), err)
		}
	}
	return b
}

// send writes packets in one write; a failure is fatal.
func (c *rawClient) send(ps ...packet.Packet) {
	c.t.Helper()
	if err := c.write(c.encode(ps...)); err != nil {
		c.t.Fatalf("write %v: %v", ps[0].Type(), err)
	}
}

// read returns the next packet, waiting at most d.
func (c *rawClient) read(d time.Duration) (packet.Packet, error) {
	deadline := time.Now().Add(d)
	for {
		if len(c.buf) > 0 {
			p, n, err := c.dec.Decode(c.buf)
			if err != nil {
				return nil, fmt.Errorf("decode % x: %w", c.buf[:min(len(c.buf), 16)], err)
			}
			if p != nil {
				c.buf = c.buf[:copy(c.buf, c.buf[n:])]
				return p, nil
			}
		}
		c.nc.SetReadDeadline(deadline)
		if cap(c.buf)-len(c.buf) < 4096 {
			c.buf = append(c.buf, make([]byte, 4096)...)[:len(c.buf)]
		}
		n, err := c.nc.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if err != nil && n == 0 {
			return nil, err
		}
	}
}

// expect returns the next packet or fails the test.
func (c *rawClient) expect() packet.Packet {
	c.t.Helper()
	p, err := c.read(waitFor)
	if err != nil {
		c.t.Fatalf("waiting for a packet: %v", err)
	}
	return p
}

// expectPacket reads the next packet and fails unless it is a T.
func expectPacket[T packet.Packet](c *rawClient) T {
	c.t.Helper()
	p := c.expect()
	v, ok := p.(T)
	if !ok {
		var want T
		c.t.Fatalf("got %s %s, want %T", p.Type(), describe(p), want)
	}
	return v
}

// describe renders a packet for failure messages.
func describe(p packet.Packet) string {
	switch p := p.(type) {
	case *packet.Publish:
		return fmt.Sprintf("{topic %q payload %q qos %d id %d dup %v retain %v}", p.Topic, p.Payload, p.QoS, p.PacketID, p.Dup, p.Retain)
	default:
		return fmt.Sprintf("%+v", p)
	}
}

// expectPublish reads a PUBLISH and checks its topic and payload.
func (c *rawClient) expectPublish(topic, payload string) *packet.Publish {
	c.t.Helper()
	p := expectPacket[*packet.Publish](c)
	if p.Topic != topic || string(p.Payload) != payload {
		c.t.Fatalf("got PUBLISH %s, want topic %q payload %q", describe(p), topic, payload)
	}
	return p
}

// isClosed reports whether err means the peer closed the connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE)
}

// expectClosed reads until the broker closes the connection, at most d,
// and returns the packets received meanwhile.
func (c *rawClient) expectClosed(d time.Duration) []packet.Packet {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var got []packet.Packet
	for {
		p, err := c.read(time.Until(deadline))
		if err != nil {
			if isClosed(err) {
				return got
			}
			c.t.Fatalf("connection not closed within %v (received %d packets): %v", d, len(got), err)
		}
		got = append(got, p)
	}
}

// expectClosedSilently expects the connection to close without the broker
// sending anything.
func (c *rawClient) expectClosedSilently(d time.Duration) {
	c.t.Helper()
	if got := c.expectClosed(d); len(got) > 0 {
		c.t.Fatalf("broker sent %s before closing, want nothing", got[0].Type())
	}
}

// sync sends PINGREQ and expects PINGRESP as the very next packet. The
// broker handles a connection's packets in order and routes a PUBLISH
// before reading the next packet, so after sync every packet this client
// sent before has been handled; and since the PINGRESP is queued behind
// whatever the broker had already queued for this client, nothing else
// was pending for it [MQTT-3.12.4-1].
func (c *rawClient) sync() {
	c.t.Helper()
	c.send(&packet.Pingreq{})
	if p := c.expect(); p.Type() != packet.PINGRESP {
		c.t.Fatalf("got %s %s, want PINGRESP", p.Type(), describe(p))
	}
}

// id returns the next packet identifier, never zero.
func (c *rawClient) id() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// subscribe subscribes to filter=qos pairs and returns the SUBACK codes.
func (c *rawClient) subscribe(subs ...packet.Subscription) []packet.ReasonCode {
	c.t.Helper()
	id := c.id()
	c.send(&packet.Subscribe{PacketID: id, Subscriptions: subs})
	ack := expectPacket[*packet.Suback](c)
	if ack.PacketID != id {
		c.t.Fatalf("SUBACK id %d, want %d [MQTT-3.8.4-2]", ack.PacketID, id)
	}
	if len(ack.ReasonCodes) != len(subs) {
		c.t.Fatalf("SUBACK has %d codes for %d filters [MQTT-3.8.4-5]", len(ack.ReasonCodes), len(subs))
	}
	return ack.ReasonCodes
}

// sub subscribes to one filter and fails unless the QoS is granted.
func (c *rawClient) sub(filter string, qos byte) {
	c.t.Helper()
	if rc := c.subscribe(packet.Subscription{Filter: filter, QoS: qos}); rc[0] != packet.ReasonCode(qos) {
		c.t.Fatalf("SUBSCRIBE %q QoS %d: granted %#x", filter, qos, byte(rc[0]))
	}
}

// publish sends a PUBLISH and completes its flow: PUBACK for QoS 1,
// PUBREC-PUBREL-PUBCOMP for QoS 2. The client must not be receiving
// messages meanwhile.
func (c *rawClient) publish(topic, payload string, qos byte, retain bool) {
	c.t.Helper()
	p := &packet.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}
	if qos > 0 {
		p.PacketID = c.id()
	}
	c.send(p)
	switch qos {
	case 1:
		if ack := expectPacket[*packet.Puback](c); ack.PacketID != p.PacketID {
			c.t.Fatalf("PUBACK id %d, want %d", ack.PacketID, p.PacketID)
		}
	case 2:
		if rec := expectPacket[*packet.Pubrec](c); rec.PacketID != p.PacketID {
			c.t.Fatalf("PUBREC id %d, want %d", rec.PacketID, p.PacketID)
		}
		c.send(&packet.Pubrel{PacketID: p.PacketID})
		if comp := expectPacket[*packet.Pubcomp](c); comp.PacketID != p.PacketID {
			c.t.Fatalf("PUBCOMP id %d, want %d", comp.PacketID, p.PacketID)
		}
	}
}

// ack completes the receiver's side of an inbound PUBLISH: PUBACK for QoS
// 1; PUBREC, then the broker's PUBREL, then PUBCOMP for QoS 2.
func (c *rawClient) ack(p *packet.Publish) {
	c.t.Helper()
	switch p.QoS {
	case 1:
		c.send(&packet.Puback{PacketID: p.PacketID})
	case 2:
		c.send(&packet.Pubrec{PacketID: p.PacketID})
		rel := expectPacket[*packet.Pubrel](c) // [MQTT-4.3.3-4]
		if rel.PacketID != p.PacketID {
			c.t.Fatalf("PUBREL id %d, want %d", rel.PacketID, p.PacketID)
		}
		c.send(&packet.Pubcomp{PacketID: p.PacketID})
	}
}

// connectPacket returns a 3.1.1 CONNECT for id with clean session 1.
func connectPacket(id string) *packet.Connect {
	return &packet.Connect{Version: packet.V311, ClientID: id, CleanStart: true, KeepAlive: 60}
}

// connectRaw dials addr, sends p and returns the client and the CONNACK.
func connectRaw(t testing.TB, addr string, p *packet.Connect) (*rawClient, *packet.Connack) {
	t.Helper()
	c := dialRaw(t, addr)
	if p.Version == packet.V31 {
		c.ver, c.dec.Version = packet.V31, packet.V31
	}
	c.send(p)
	return c, expectPacket[*packet.Connack](c)
}

// connectOK connects with p and fails unless the CONNACK accepts it.
func connectOK(t testing.TB, addr string, p *packet.Connect) (*rawClient, *packet.Connack) {
	t.Helper()
	c, ack := connectRaw(t, addr, p)
	if ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK for %q: %s", p.ClientID, ack.ReasonCode)
	}
	return c, ack
}

// client connects a clean-session 3.1.1 client called id.
func client(t testing.TB, b *testBroker, id string) *rawClient {
	t.Helper()
	c, _ := connectOK(t, b.Addr, connectPacket(id))
	return c
}

// expectServing checks that the broker still accepts a client and
// answers it: the follow-up to every hostile input.
func expectServing(t testing.TB, b *testBroker) {
	t.Helper()
	c := client(t, b, fmt.Sprintf("check-%d", checkSeq.Add(1)))
	c.sub("serving/check", 1)
	c.publish("serving/check", "ok", 0, false)
	c.expectPublish("serving/check", "ok")
	c.send(&packet.Disconnect{})
}

var checkSeq atomic.Int64

// pahoClient connects a paho.mqtt.golang client (3.1 with version 3, 3.1.1
// with 4) and disconnects it when the test ends. configure may adjust the
// options before connecting.
func pahoClient(t testing.TB, addr, id string, version uint, configure func(*mqtt.ClientOptions)) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(id).
		SetProtocolVersion(version).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(waitFor).
		SetWriteTimeout(waitFor).
		SetKeepAlive(30 * time.Second)
	if configure != nil {
		configure(o)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) {
		t.Fatalf("paho %q: connect timed out", id)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("paho %q: connect: %v", id, err)
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// wait waits for a paho token.
func wait(t testing.TB, what string, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(waitFor) {
		t.Fatalf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// pahoMessages subscribes a paho client and returns the channel its
// messages arrive on.
func pahoMessages(t testing.TB, c mqtt.Client, filter string, qos byte, depth int) <-chan mqtt.Message {
	t.Helper()
	ch := make(chan mqtt.Message, depth)
	wait(t, "subscribe "+filter, c.Subscribe(filter, qos, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case ch <- m:
		default:
			t.Errorf("paho subscriber on %q: channel full", filter)
		}
	}))
	return ch
}

// nextMessage receives one message from ch within waitFor.
func nextMessage(t testing.TB, ch <-chan mqtt.Message) mqtt.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(waitFor):
		t.Fatalf("no message within %v", waitFor)
		return nil
	}
}

// hx parses hexadecimal bytes written with spaces: hx("30 05 00").
func hx(s string) []byte {
	var b []byte
	for _, f := range strings.Fields(s) {
		var v byte
		if _, err := fmt.Sscanf(f, "%02x", &v); err != nil {
			panic("hx: " + f)
		}
		b = append(b, v)
	}
	return b
}
