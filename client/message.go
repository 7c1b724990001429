package client

import (
	"errors"
	"strings"
	"sync"
	"unsafe"

	"github.com/gannet-mqtt/gannet/packet"
)

// Message is an application message received from the server. It belongs
// to the handler: the client keeps no reference to it once delivered.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Dup     bool // the server may have sent it before
	// PacketID is the packet identifier of a QoS 1 or 2 message: a relay
	// passes it on (PublishOptions.PacketID) so that the server's resend
	// after a restart of the relay is recognised on the other side.
	PacketID uint16
	// Properties are the 5.0 PUBLISH properties, Subscription
	// Identifiers included; a Topic Alias is resolved into Topic and
	// removed.
	Properties packet.Properties

	// With Options.ManualAck, Ack sends PUBACK or PUBREC for this delivery
	// (once: acker is cleared).
	acker *Client
	ackx  *delivery
}

// Ack acknowledges a QoS 1 or 2 message received with Options.ManualAck:
// PUBACK, or PUBREC for QoS 2. Call it once the message is safe, in the
// order the messages arrived [MQTT-4.6.0-2]; a message not acknowledged
// before the connection is lost is sent again by a server that kept the
// session. Without ManualAck, or for QoS 0, it does nothing.
func (m *Message) Ack() {
	if c := m.acker; c != nil {
		m.acker = nil
		c.acknowledge(m.ackx)
	}
}

// delivery is one received message on its way to the handlers.
type delivery struct {
	msg      *Message // &m
	m        Message  // one allocation for both
	handlers []func(*Message)
	h1       [1]func(*Message)  // handlers' backing array for one handler
	cn       *conn              // the connection it came on
	id       uint16             // packet identifier (QoS 1 and 2)
	st       *inbound2          // QoS 2 state
	small    [smallMessage]byte // topic and payload of a small message, in the same allocation
}

// smallMessage is the most topic and payload bytes a delivery holds
// inline, without an allocation of their own.
const smallMessage = 128

// inbound2 is the state of a QoS 2 message from the server between PUBLISH
// and PUBREL. Guarded by Client.mu.
type inbound2 struct {
	handled  bool // handlers ran; PUBREC may go
	released bool // PUBREL came (before the handlers ran)
}

// dispatcher is the queue between the read loop, which never waits for a
// handler, and the one goroutine that calls handlers in arrival order.
type dispatcher struct {
	mu   sync.Mutex
	q    []*delivery
	head int
	wake chan struct{}
}

func (d *dispatcher) init() { d.wake = make(chan struct{}, 1) }

func (d *dispatcher) push(x *delivery) {
	d.mu.Lock()
	d.q = append(d.q, x)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// pop returns the next delivery, waiting for one; nil once quit is closed.
func (d *dispatcher) pop(quit <-chan struct{}) *delivery {
	for {
		select {
		case <-quit:
			return nil
		default:
		}
		d.mu.Lock()
		if d.head < len(d.q) {
			x := d.q[d.head]
			d.q[d.head] = nil
			d.head++
			if d.head == len(d.q) {
				d.q, d.head = d.q[:0], 0
			}
			d.mu.Unlock()
			return x
		}
		d.mu.Unlock()
		select {
		case <-d.wake:
		case <-quit:
			return nil
		}
	}
}

// dispatchLoop calls the handlers of each received message, one message at
// a time in the order they arrived, then acknowledges QoS 1 and 2 messages:
// PUBACK and PUBREC go out only once the handlers have returned, in arrival
// order [MQTT-4.6.0-2] [MQTT-4.6.0-3].
func (c *Client) dispatchLoop() {
	defer c.bg.Done()
	for {
		x := c.disp.pop(c.quit)
		if x == nil {
			return
		}
		if c.opts.ManualAck && x.msg.QoS > 0 {
			x.msg.acker, x.msg.ackx = c, x
		}
		for _, h := range x.handlers {
			h(x.msg)
		}
		if !c.opts.ManualAck || x.msg.QoS == 0 {
			c.acknowledge(x)
		}
	}
}

// acknowledge sends PUBACK or PUBREC for a handled message.
func (c *Client) acknowledge(x *delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch x.msg.QoS {
	case 1:
		// Only on the connection it came on: after a reconnect the server
		// sends it again, and an identifier on a new connection may
		// already name another message.
		if c.cn == x.cn {
			delete(x.cn.inflightIn, x.id)
			x.cn.sendAck(firstPuback, x.id) // [MQTT-4.3.2-4]
		}
	case 2:
		if c.inbound2[x.id] != x.st {
			return // the session was discarded meanwhile
		}
		x.st.handled = true
		if x.st.released {
			delete(c.inbound2, x.id)
			return
		}
		// The state belongs to the session, so PUBREC may go on a newer
		// connection of the same session.
		if cn := c.cn; cn != nil {
			cn.sendAck(firstPubrec, x.id) // [MQTT-4.3.3-8]
		}
	}
}

// readLoop reads and handles the packets of one connection until it ends.
func (c *Client) readLoop(cn *conn) {
	for {
		p, err := cn.rd.next()
		if err == nil {
			err = c.handle(cn, p)
		}
		if err == nil {
			continue
		}
		var perr *packet.Error
		if errors.As(err, &perr) && cn.version >= packet.V5 {
			// The server broke the protocol: say why, then close.
			cn.abort(err, &packet.Disconnect{ReasonCode: perr.Code})
			return
		}
		cn.end(err)
		return
	}
}

// protocolErr is a protocol violation by the server.
func protocolErr(code packet.ReasonCode, msg string) error {
	return &packet.Error{Code: code, Msg: msg}
}

// handle runs the protocol for one packet from the server. p is valid only
// during the call.
func (c *Client) handle(cn *conn, p packet.Packet) error {
	switch p := p.(type) {
	case *packet.Publish:
		return c.handlePublish(cn, p)
	case *packet.Pingresp:
		cn.pingSent.Store(0)
		return nil
	case *packet.Disconnect: // 5.0 [MQTT-3.14.0-1]
		return &DisconnectError{
			Code:            p.ReasonCode,
			ReasonString:    strings.Clone(p.Properties.ReasonString),
			ServerReference: strings.Clone(p.Properties.ServerReference),
		}
	case *packet.Auth:
		return protocolErr(packet.BadAuthenticationMethod, "AUTH: enhanced authentication is not supported by this client")
	}
	if p, ok := p.(*packet.Pubrel); ok && c.opts.OnRelease != nil {
		c.handlePubrelManual(cn, p)
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch p := p.(type) {
	case *packet.Puback:
		c.handlePuback(p)
	case *packet.Pubrec:
		c.handlePubrec(cn, p)
	case *packet.Pubrel:
		c.handlePubrel(cn, p)
	case *packet.Pubcomp:
		c.handlePubcomp(p)
	case *packet.Suback:
		c.handleSuback(p)
	case *packet.Unsuback:
		c.handleUnsuback(cn.version, p)
	default:
		return protocolErr(packet.ProtocolError, "unexpected "+p.Type().String()+" from the server")
	}
	return nil
}

// handlePublish resolves a topic alias, finds the handlers and queues the
// message for them.
func (c *Client) handlePublish(cn *conn, p *packet.Publish) error {
	if cn.version >= packet.V5 && p.Properties.Has(packet.PropTopicAlias) {
		a := p.Properties.TopicAlias
		if a > c.opts.TopicAliasMaximum { // [MQTT-3.3.2-9]
			return protocolErr(packet.TopicAliasInvalid, "topic alias above the client's Topic Alias Maximum")
		}
		if p.Topic == "" {
			t, ok := cn.aliasIn[a]
			if !ok {
				return protocolErr(packet.ProtocolError, "topic alias not mapped on this connection")
			}
			p.Topic = t
		} else {
			if cn.aliasIn == nil {
				cn.aliasIn = make(map[uint16]string)
			}
			cn.aliasIn[a] = strings.Clone(p.Topic) // [MQTT-3.3.2-12]
		}
	}
	// p aliases the read buffer: topic and payload are copied out in one
	// allocation (none of their own when small), and the message lives
	// inside its delivery.
	x := &delivery{cn: cn, id: p.PacketID}
	x.handlers = x.h1[:0]
	m := &x.m
	x.msg = m
	var buf []byte
	if n := len(p.Topic) + len(p.Payload); n <= smallMessage {
		buf = x.small[:n:n]
	} else {
		buf = make([]byte, n)
	}
	copy(buf, p.Topic)
	copy(buf[len(p.Topic):], p.Payload)
	if len(p.Topic) > 0 {
		m.Topic = unsafe.String(&buf[0], len(p.Topic)) // buf's first bytes are never written again
	}
	if p.Payload != nil {
		m.Payload = buf[len(p.Topic):len(buf):len(buf)]
	}
	m.QoS, m.Retain, m.Dup, m.PacketID = p.QoS, p.Retain, p.Dup, p.PacketID
	m.Properties = p.Properties.Clone()
	m.Properties.Present.Remove(packet.PropTopicAlias)

	c.mu.Lock()
	defer c.mu.Unlock()
	if p.QoS > 0 {
		if _, ok := cn.inflightIn[p.PacketID]; !ok {
			cn.inflightIn[p.PacketID] = struct{}{}
			if max := c.opts.ReceiveMaximum; cn.version >= packet.V5 && max > 0 && len(cn.inflightIn) > int(max) {
				return protocolErr(packet.ReceiveMaximumExceeded, "more unacknowledged QoS 1 and 2 messages than the client's Receive Maximum") // [MQTT-3.3.4-9]
			}
		}
	}
	if p.QoS == 2 {
		if st := c.inbound2[p.PacketID]; st != nil {
			// Sent again before PUBREL: not delivered twice
			// [MQTT-4.3.3-9]; PUBREC again once handled.
			if st.handled {
				cn.sendAck(firstPubrec, p.PacketID)
			}
			return nil
		}
		x.st = &inbound2{}
		c.inbound2[p.PacketID] = x.st
	}
	c.matches.Reset()
	c.trie.Match(m.Topic, nil, nil, &c.matches)
	fallback := false
	for _, d := range c.matches.Deliveries {
		if h := d.Subscriber.handler; h != nil {
			x.handlers = append(x.handlers, h)
		} else {
			fallback = true
		}
	}
	c.matches.Reset()
	if (fallback || len(x.handlers) == 0) && c.opts.OnMessage != nil {
		x.handlers = append(x.handlers, c.opts.OnMessage)
	}
	c.disp.push(x)
	return nil
}

// handlePubrel answers PUBREL with PUBCOMP [MQTT-4.3.3-11] and forgets
// the identifier. c.mu held.
func (c *Client) handlePubrel(cn *conn, p *packet.Pubrel) {
	rc := packet.Success
	switch st := c.inbound2[p.PacketID]; {
	case st == nil:
		rc = packet.PacketIdentifierNotFound
	case st.handled:
		delete(c.inbound2, p.PacketID)
	default:
		st.released = true
	}
	delete(cn.inflightIn, p.PacketID)
	cn.send(&packet.Pubcomp{PacketID: p.PacketID, ReasonCode: rc})
}

// handlePubrelManual hands PUBREL to Options.OnRelease, which sends
// PUBCOMP through complete once the caller has passed the release on.
// Runs on the read loop, without c.mu.
func (c *Client) handlePubrelManual(cn *conn, p *packet.Pubrel) {
	id := p.PacketID
	c.mu.Lock()
	if st := c.inbound2[id]; st != nil {
		if st.handled {
			delete(c.inbound2, id)
		} else {
			st.released = true
		}
	}
	delete(cn.inflightIn, id)
	c.mu.Unlock()
	var once bool
	c.opts.OnRelease(id, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if once {
			return
		}
		once = true
		// On the live connection: when there is none, the server sends
		// PUBREL again on the next one [MQTT-4.4.0-1].
		if cn := c.cn; cn != nil {
			cn.send(&packet.Pubcomp{PacketID: id}) // [MQTT-4.3.3-11]
		}
	})
}
