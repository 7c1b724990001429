package gannettest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// Conn is a raw MQTT connection: it writes bytes or packets encoded at
// Version and reads packets decoded with packet.Decoder. It serves as a
// client (Dial, ConnectRaw) or as the server side of a scripted peer
// (NewConn on an accepted connection). It counts the bytes it moves, for
// tests of the broker's byte counters. Not safe for concurrent use.
type Conn struct {
	T  testing.TB
	NC net.Conn
	// Version is the protocol level packets are encoded and decoded at.
	Version byte
	// Timeout bounds Expect and the reads of the helpers built on it;
	// WaitFor when zero.
	Timeout time.Duration
	// BytesWritten and BytesRead count the bytes that went over NC.
	BytesWritten, BytesRead int

	dec    packet.Decoder
	buf    []byte
	nextID uint16
}

// NewConn wraps nc, which is closed when the test ends.
func NewConn(t testing.TB, nc net.Conn, version byte) *Conn {
	t.Cleanup(func() { nc.Close() })
	return &Conn{T: t, NC: nc, Version: version}
}

// Dial opens a TCP connection to addr speaking version; nothing is sent
// yet. It is closed when the test ends.
func Dial(t testing.TB, addr string, version byte) *Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, WaitFor)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return NewConn(t, nc, version)
}

func (c *Conn) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return WaitFor
}

// Write sends raw bytes. Errors are returned, not fatal: hostile tests
// write to sockets the broker may already have closed.
func (c *Conn) Write(b []byte) error {
	c.NC.SetWriteDeadline(time.Now().Add(c.timeout()))
	n, err := c.NC.Write(b)
	c.BytesWritten += n
	return err
}

// Encode returns the bytes of packets at the connection's protocol level.
func (c *Conn) Encode(ps ...packet.Packet) []byte {
	c.T.Helper()
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = p.Append(b, c.Version); err != nil {
			c.T.Fatalf("encode %s: %v", p.Type(), err)
		}
	}
	return b
}

// Send writes packets in one write; a failure is fatal.
func (c *Conn) Send(ps ...packet.Packet) {
	c.T.Helper()
	if err := c.Write(c.Encode(ps...)); err != nil {
		c.T.Fatalf("write %v: %v", ps[0].Type(), err)
	}
}

// Read returns the next packet, waiting at most d.
func (c *Conn) Read(d time.Duration) (packet.Packet, error) {
	deadline := time.Now().Add(d)
	c.dec.Version = c.Version
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
		c.NC.SetReadDeadline(deadline)
		if cap(c.buf)-len(c.buf) < 4096 {
			c.buf = append(c.buf, make([]byte, 4096)...)[:len(c.buf)]
		}
		n, err := c.NC.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		c.BytesRead += n
		if err != nil && n == 0 {
			return nil, err
		}
	}
}

// Unread puts bytes the test read from NC itself back in front of what
// Read decodes next.
func (c *Conn) Unread(b []byte) {
	c.buf = append(append(make([]byte, 0, len(b)+len(c.buf)), b...), c.buf...)
}

// Expect returns the next packet or fails the test.
func (c *Conn) Expect() packet.Packet {
	c.T.Helper()
	p, err := c.Read(c.timeout())
	if err != nil {
		c.T.Fatalf("waiting for a packet: %v", err)
	}
	return p
}

// ExpectPacket reads the next packet and fails unless it is a T.
func ExpectPacket[T packet.Packet](c *Conn) T {
	c.T.Helper()
	p := c.Expect()
	v, ok := p.(T)
	if !ok {
		var want T
		c.T.Fatalf("got %s %s, want %T", p.Type(), Describe(p), want)
	}
	return v
}

// Describe renders a packet for failure messages.
func Describe(p packet.Packet) string {
	switch p := p.(type) {
	case *packet.Publish:
		return fmt.Sprintf("{topic %q payload %q qos %d id %d dup %v retain %v}", p.Topic, p.Payload, p.QoS, p.PacketID, p.Dup, p.Retain)
	default:
		return fmt.Sprintf("%+v", p)
	}
}

// ExpectPublish reads a PUBLISH and checks its topic and payload.
func (c *Conn) ExpectPublish(topic, payload string) *packet.Publish {
	c.T.Helper()
	p := ExpectPacket[*packet.Publish](c)
	if p.Topic != topic || string(p.Payload) != payload {
		c.T.Fatalf("got PUBLISH %s, want topic %q payload %q", Describe(p), topic, payload)
	}
	return p
}

// IsClosed reports whether err means the peer closed the connection.
func IsClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE)
}

// ExpectClosed reads until the peer closes the connection, at most d, and
// returns the packets received meanwhile.
func (c *Conn) ExpectClosed(d time.Duration) []packet.Packet {
	c.T.Helper()
	deadline := time.Now().Add(d)
	var got []packet.Packet
	for {
		p, err := c.Read(time.Until(deadline))
		if err != nil {
			if IsClosed(err) {
				return got
			}
			c.T.Fatalf("connection not closed within %v (received %d packets): %v", d, len(got), err)
		}
		got = append(got, p)
	}
}

// ExpectClosedSilently expects the connection to close without the peer
// sending anything.
func (c *Conn) ExpectClosedSilently(d time.Duration) {
	c.T.Helper()
	if got := c.ExpectClosed(d); len(got) > 0 {
		c.T.Fatalf("broker sent %s before closing, want nothing", got[0].Type())
	}
}

// ExpectDisconnect expects the broker to send DISCONNECT with reason rc as
// the next and last packet, then close the connection [MQTT-3.14.4-2]. No
// DISCONNECT from the server carries a Session Expiry Interval
// [MQTT-3.14.2-2].
func (c *Conn) ExpectDisconnect(rc packet.ReasonCode) *packet.Disconnect {
	c.T.Helper()
	got := c.ExpectClosed(c.timeout())
	if len(got) == 0 {
		c.T.Fatalf("connection closed without DISCONNECT, want DISCONNECT %s (%#x)", rc, byte(rc))
	}
	if len(got) > 1 {
		c.T.Fatalf("received %d packets before the connection closed (first %s %s), want only DISCONNECT %#x",
			len(got), got[0].Type(), Describe(got[0]), byte(rc))
	}
	d, ok := got[0].(*packet.Disconnect)
	if !ok {
		c.T.Fatalf("got %s %s before the close, want DISCONNECT %#x", got[0].Type(), Describe(got[0]), byte(rc))
	}
	if d.ReasonCode != rc {
		c.T.Fatalf("DISCONNECT %s (%#x), want %s (%#x)", d.ReasonCode, byte(d.ReasonCode), rc, byte(rc))
	}
	if d.Properties.Has(packet.PropSessionExpiry) {
		c.T.Errorf("server DISCONNECT carries Session Expiry Interval %d [MQTT-3.14.2-2]", d.Properties.SessionExpiry)
	}
	return d
}

// Sync sends PINGREQ and expects PINGRESP as the very next packet. The
// broker handles a connection's packets in order and routes a PUBLISH
// before reading the next packet, so after Sync every packet this client
// sent before has been handled; and since the PINGRESP is queued behind
// whatever the broker had already queued for this client, nothing else was
// pending for it [MQTT-3.12.4-1].
func (c *Conn) Sync() {
	c.T.Helper()
	c.Send(&packet.Pingreq{})
	if p := c.Expect(); p.Type() != packet.PINGRESP {
		c.T.Fatalf("got %s %s, want PINGRESP", p.Type(), Describe(p))
	}
}

// NextID returns the next packet identifier, never zero.
func (c *Conn) NextID() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// LastID returns the packet identifier NextID returned last (0: none yet).
func (c *Conn) LastID() uint16 { return c.nextID }

// Subscribe sends one SUBSCRIBE with an optional 5.0 Subscription
// Identifier (0: none) and returns the SUBACK's reason codes, one per
// filter [MQTT-3.8.4-5] under the SUBSCRIBE's identifier [MQTT-3.8.4-2].
func (c *Conn) Subscribe(subID uint32, subs ...packet.Subscription) []packet.ReasonCode {
	c.T.Helper()
	p := &packet.Subscribe{PacketID: c.NextID(), Subscriptions: subs}
	if subID != 0 {
		p.Properties.SubscriptionIDs = []uint32{subID}
	}
	c.Send(p)
	ack := ExpectPacket[*packet.Suback](c)
	if ack.PacketID != p.PacketID {
		c.T.Fatalf("SUBACK id %d, want %d [MQTT-3.8.4-2]", ack.PacketID, p.PacketID)
	}
	if len(ack.ReasonCodes) != len(subs) {
		c.T.Fatalf("SUBACK has %d codes for %d filters [MQTT-3.8.4-5]", len(ack.ReasonCodes), len(subs))
	}
	return ack.ReasonCodes
}

// Sub subscribes to one filter (with options and an optional Subscription
// Identifier) and fails unless the requested QoS is granted.
func (c *Conn) Sub(subID uint32, sub packet.Subscription) {
	c.T.Helper()
	if rc := c.Subscribe(subID, sub)[0]; rc != packet.ReasonCode(sub.QoS) {
		c.T.Fatalf("SUBSCRIBE %q QoS %d: SUBACK %s (%#x)", sub.Filter, sub.QoS, rc, byte(rc))
	}
}

// Publish sends p (giving a QoS 1 or 2 PUBLISH a packet identifier when it
// has none) and completes its flow: PUBACK for QoS 1, PUBREC-PUBREL-PUBCOMP
// for QoS 2. It returns the reason code of the PUBACK or PUBREC (Success
// for QoS 0 and before 5.0). A PUBREC of 0x80 or above ends the flow there
// [MQTT-4.4.0-2]. The client must not be receiving messages meanwhile.
func (c *Conn) Publish(p *packet.Publish) packet.ReasonCode {
	c.T.Helper()
	if p.QoS > 0 && p.PacketID == 0 {
		p.PacketID = c.NextID()
	}
	c.Send(p)
	switch p.QoS {
	case 1:
		ack := ExpectPacket[*packet.Puback](c)
		if ack.PacketID != p.PacketID {
			c.T.Fatalf("PUBACK id %d, want %d", ack.PacketID, p.PacketID)
		}
		return ack.ReasonCode
	case 2:
		rec := ExpectPacket[*packet.Pubrec](c)
		if rec.PacketID != p.PacketID {
			c.T.Fatalf("PUBREC id %d, want %d", rec.PacketID, p.PacketID)
		}
		if rec.ReasonCode.IsError() {
			return rec.ReasonCode
		}
		c.Send(&packet.Pubrel{PacketID: p.PacketID})
		comp := ExpectPacket[*packet.Pubcomp](c)
		if comp.PacketID != p.PacketID || comp.ReasonCode != packet.Success {
			c.T.Fatalf("PUBCOMP id %d code %s, want id %d, success", comp.PacketID, comp.ReasonCode, p.PacketID)
		}
		return rec.ReasonCode
	}
	return packet.Success
}

// Pub publishes a message without properties and completes its flow.
func (c *Conn) Pub(topic, payload string, qos byte, retain bool) packet.ReasonCode {
	c.T.Helper()
	return c.Publish(&packet.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain})
}

// Ack completes the receiver's side of an inbound PUBLISH: PUBACK for QoS
// 1; PUBREC, then the broker's PUBREL [MQTT-4.3.3-4], then PUBCOMP for QoS 2.
func (c *Conn) Ack(p *packet.Publish) {
	c.T.Helper()
	switch p.QoS {
	case 1:
		c.Send(&packet.Puback{PacketID: p.PacketID})
	case 2:
		c.Send(&packet.Pubrec{PacketID: p.PacketID})
		rel := ExpectPacket[*packet.Pubrel](c) // [MQTT-4.3.3-4]
		if rel.PacketID != p.PacketID {
			c.T.Fatalf("PUBREL id %d, want %d", rel.PacketID, p.PacketID)
		}
		c.Send(&packet.Pubcomp{PacketID: p.PacketID})
	}
}
