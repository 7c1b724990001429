package client

import (
	"context"
	"fmt"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

// Exchange is an outbound QoS 2 message whose PUBREL the caller sends: a
// relay (a bridge) passes each step of the exchange on to the other side
// and moves on here only once that side has made the step durable, so that
// an exchange interrupted by a crash of the relay resumes at the step it
// had reached, with the same packet identifier: PUBLISH again with DUP
// before PUBREC, PUBREL after it (ResumeRelease), never a new PUBLISH
// [MQTT-4.3.3-1] [MQTT-4.4.0-1].
type Exchange struct {
	c     *Client
	op    *pubOp
	where string
}

// PublishHeld queues a QoS 2 message as PublishAsync does, but the client
// does not answer the server's PUBREC with PUBREL on its own: Received
// reports the PUBREC, and PUBREL goes when the caller calls Release. Set
// o.PacketID and o.Dup to send again a message that an earlier run may have
// sent. A Dup message whose PacketID names a held exchange already in flight
// for the same topic returns that exchange.
func (c *Client) PublishHeld(topicName string, payload []byte, o PublishOptions) (*Exchange, error) {
	where := fmt.Sprintf("client: publish to %q", topicName)
	if !topic.ValidName(topicName) {
		return nil, fmt.Errorf("%s: %w: a topic name has 1 to 65535 bytes and no wildcard or U+0000", where, ErrInvalidTopic)
	}
	if o.QoS != 2 {
		return nil, fmt.Errorf("%s: PublishHeld takes QoS 2, not %d", where, o.QoS)
	}
	if !o.Properties.Empty() && c.version < packet.V5 {
		return nil, fmt.Errorf("%s: PUBLISH properties need MQTT 5.0", where)
	}
	if len(o.Properties.SubscriptionIDs) > 0 {
		return nil, fmt.Errorf("%s: a client must not send subscription identifiers [MQTT-3.3.4-6]", where)
	}
	op, err := c.enqueueOp(new(queuedPublish), where, topicName, payload, o, true, false)
	if err != nil {
		return nil, err
	}
	return &Exchange{c: c, op: op, where: where}, nil
}

// ResumeRelease resumes the exchange of packet identifier id at PUBREL: it
// sends PUBREL (now, or once connected) and the returned exchange completes
// at PUBCOMP. A relay calls it after a restart for an exchange whose PUBREC
// it had passed on before. When id names a held exchange in flight,
// ResumeRelease releases that one.
func (c *Client) ResumeRelease(id uint16) (*Exchange, error) {
	where := fmt.Sprintf("client: release packet %d", id)
	if id == 0 {
		return nil, fmt.Errorf("%s: packet identifier 0 [MQTT-2.3.1-1]", where)
	}
	c.mu.Lock()
	if c.closed {
		err := c.endErrLocked()
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if !c.started {
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: not connected: call Connect first", where)
	}
	if v, used := c.ids[id]; used {
		c.mu.Unlock()
		if op, ok := v.(*pubOp); ok && op.hold {
			x := &Exchange{c: c, op: op, where: where}
			x.Release()
			return x, nil
		}
		return nil, fmt.Errorf("%s: %w", where, ErrPacketIDInUse)
	}
	op := &pubOp{p: &packet.Publish{QoS: 2, PacketID: id}, state: pubReleased, sent: true,
		hold: true, relOK: true, recv: make(chan struct{})}
	op.received()
	c.ids[id] = op
	c.inflight = append(c.inflight, op)
	if cn := c.cn; cn != nil {
		cn.send(&packet.Pubrel{PacketID: id}) // [MQTT-4.3.3-4]
	}
	c.mu.Unlock()
	return &Exchange{c: c, op: op, where: where}, nil
}

// PacketID returns the exchange's packet identifier, 0 until it is sent
// (when the client chose it).
func (x *Exchange) PacketID() uint16 {
	x.c.mu.Lock()
	defer x.c.mu.Unlock()
	return x.op.p.PacketID
}

// Received waits within ctx for the server's PUBREC: nil once it came, or
// the error that ended the exchange first (a *ReasonError for a failure
// code in PUBREC, or the client's end). A message not yet sent when ctx
// ends is withdrawn.
func (x *Exchange) Received(ctx context.Context) error {
	return x.c.waitOp(ctx, x.where, x.op, true)
}

// Release lets PUBREL go: at once when PUBREC came, else as soon as it
// does (and again on a reconnect that keeps the session, until PUBCOMP).
func (x *Exchange) Release() {
	c := x.c
	c.mu.Lock()
	defer c.mu.Unlock()
	op := x.op
	if op.finished || op.relOK {
		return
	}
	op.relOK = true
	if op.state == pubReceived {
		op.state = pubReleased
		if cn := c.cn; cn != nil {
			cn.send(&packet.Pubrel{PacketID: op.p.PacketID}) // [MQTT-4.3.3-4]
		}
	}
}

// Wait waits within ctx for the exchange to complete (PUBCOMP) and returns
// its error, as PublishAsync's wait does. A PUBCOMP with Packet Identifier
// Not Found (5.0) is a *ReasonError: the server no longer knew the
// identifier, which after a resumed PUBREL means it had completed the
// exchange before.
func (x *Exchange) Wait(ctx context.Context) error {
	return x.c.waitOp(ctx, x.where, x.op, false)
}
