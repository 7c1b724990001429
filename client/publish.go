package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

// PublishOptions are the delivery options of one message.
type PublishOptions struct {
	QoS    byte // 0, 1 or 2
	Retain bool
	// Properties are the 5.0 PUBLISH properties (Message Expiry, Content
	// Type, Response Topic, Correlation Data, User Properties...). A Topic
	// Alias here is ignored: see Options.TopicAliases. Subscription
	// Identifiers are not allowed [MQTT-3.3.4-6].
	Properties packet.Properties
	// PacketID, when not 0, is the packet identifier of a QoS 1 or 2
	// message, chosen by the caller instead of the client: a relay that
	// must send a message again with the identifier it had before a
	// restart. It must not be in use by the client (ErrPacketIDInUse).
	PacketID uint16
	// Dup sets DUP on the first send too: the message may have been sent
	// before, by an earlier run of the caller [MQTT-3.3.1-1].
	Dup bool
}

// pubState is where an outbound QoS 1/2 message stands.
type pubState uint8

const (
	pubWaiting  pubState = iota // not sent: no connection, or the server's quota is used up
	pubSent                     // PUBLISH sent, awaiting PUBACK or PUBREC
	pubReceived                 // PUBREC came; PUBREL waits for Exchange.Release
	pubReleased                 // PUBREL sent, awaiting PUBCOMP
)

// pubOp is one outbound QoS 1/2 message until it is complete. Its fields
// are guarded by Client.mu.
type pubOp struct {
	p        *packet.Publish // owned copy; PacketID set at the first send and kept
	state    pubState
	sent     bool // sent at least once: DUP on any resend [MQTT-3.3.1-1]
	dup      bool // DUP from the first send (PublishOptions.Dup)
	finished bool
	err      error
	done     chan struct{} // closed when finished; made by the first waiter (waitOp), so that a publish nobody waits on before it completes allocates none

	// A held QoS 2 exchange (Exchange): PUBREL waits for the caller.
	hold     bool
	relOK    bool          // the caller released it
	recv     chan struct{} // closed at PUBREC, or when finished
	recvDone bool
}

func (op *pubOp) finish(err error) {
	if op.finished {
		return
	}
	op.finished, op.err = true, err
	op.received()
	if op.done != nil {
		close(op.done)
	}
}

// received wakes the callers waiting for PUBREC of a held exchange.
func (op *pubOp) received() {
	if op.recv != nil && !op.recvDone {
		op.recvDone = true
		close(op.recv)
	}
}

// Publish sends a message and waits for it to complete: for QoS 0 until it
// is queued on the live connection, for QoS 1 until PUBACK, for QoS 2 until
// PUBCOMP. A failure reason code from the server is a *ReasonError.
//
// While the client is offline and reconnecting, Publish waits for the
// connection; QoS 1 and 2 messages are queued in order and sent on
// reconnect, and so are those the server had not acknowledged when the
// connection was lost (again, with DUP set). At most as many QoS 1 and 2
// messages are unacknowledged as the server's Receive Maximum allows; the
// others wait their turn.
//
// When ctx ends first, a message not yet sent is withdrawn. One already
// sent stays with the client, which keeps trying to complete it, and
// Publish returns ctx's error.
func (c *Client) Publish(ctx context.Context, topicName string, payload []byte, o PublishOptions) error {
	where := "" // pubWhere(topicName), built only for an error
	if !topic.ValidName(topicName) {
		return fmt.Errorf("%s: %w: a topic name has 1 to 65535 bytes and no wildcard or U+0000", pubWhereOr(where, topicName), ErrInvalidTopic)
	}
	if o.QoS > 2 {
		return fmt.Errorf("%s: QoS %d is above 2", pubWhereOr(where, topicName), o.QoS)
	}
	if !o.Properties.Empty() && c.version < packet.V5 {
		return fmt.Errorf("%s: PUBLISH properties need MQTT 5.0", pubWhereOr(where, topicName))
	}
	if len(o.Properties.SubscriptionIDs) > 0 {
		return fmt.Errorf("%s: a client must not send subscription identifiers [MQTT-3.3.4-6]", pubWhereOr(where, topicName))
	}
	if o.QoS == 0 {
		cn, err := c.waitOnline(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", pubWhereOr(where, topicName), err)
		}
		op := pubOp{p: &packet.Publish{Retain: o.Retain, Topic: topicName, Payload: payload, Properties: o.Properties}}
		err = c.writePublishLocked(cn, &op)
		c.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%s: %w", pubWhereOr(where, topicName), err)
		}
		return nil
	}

	wait, err := c.enqueue(where, topicName, payload, o)
	if err != nil {
		return err
	}
	return wait(ctx)
}

// PublishAsync queues a QoS 1 or 2 message as Publish does, in the order
// of the calls, and returns at once; wait waits, within its context, for
// the message to complete as Publish would (a message withdrawn when that
// context ends is only one not yet sent). Call wait once.
func (c *Client) PublishAsync(topicName string, payload []byte, o PublishOptions) (wait func(context.Context) error, err error) {
	if err := c.checkAsync(topicName, o); err != nil {
		return nil, err
	}
	return c.enqueue("", topicName, payload, o)
}

// checkAsync checks the arguments of PublishAsync and PublishPending.
func (c *Client) checkAsync(topicName string, o PublishOptions) error {
	if !topic.ValidName(topicName) {
		return fmt.Errorf("%s: %w: a topic name has 1 to 65535 bytes and no wildcard or U+0000", pubWhere(topicName), ErrInvalidTopic)
	}
	if o.QoS < 1 || o.QoS > 2 {
		return fmt.Errorf("%s: PublishAsync takes QoS 1 or 2, not %d", pubWhere(topicName), o.QoS)
	}
	if !o.Properties.Empty() && c.version < packet.V5 {
		return fmt.Errorf("%s: PUBLISH properties need MQTT 5.0", pubWhere(topicName))
	}
	if len(o.Properties.SubscriptionIDs) > 0 {
		return fmt.Errorf("%s: a client must not send subscription identifiers [MQTT-3.3.4-6]", pubWhere(topicName))
	}
	return nil
}

// PublishPending queues a QoS 1 or 2 message as PublishAsync does, and
// returns it as a Pending to wait on, which costs less than PublishAsync's
// wait function: it is meant for a relay (a bridge) that publishes many
// messages. Unlike PublishAsync it does not copy payload: the caller must
// not change payload until the message has completed, and the client may
// keep it until then (to send it again on a reconnect).
func (c *Client) PublishPending(topicName string, payload []byte, o PublishOptions) (*Pending, error) {
	if err := c.checkAsync(topicName, o); err != nil {
		return nil, err
	}
	a := new(queuedPublish)
	if _, err := c.enqueueOp(a, "", topicName, payload, o, false, true); err != nil {
		return nil, err
	}
	return &a.pend, nil // without hold, enqueueOp queues &a.pend.op
}

// Pending is a QoS 1 or 2 message queued by PublishPending.
type Pending struct {
	c  *Client
	op pubOp
}

// Wait waits within ctx for the message to complete and returns its
// error, as PublishAsync's wait does. It may be called more than once.
func (x *Pending) Wait(ctx context.Context) error {
	return x.c.waitOp(ctx, "", &x.op, false)
}

// queuedPublish is a pubOp and its PUBLISH in one allocation.
type queuedPublish struct {
	pend Pending
	pub  packet.Publish
}

// enqueue queues a checked QoS 1 or 2 message and returns the wait for it.
func (c *Client) enqueue(where, topicName string, payload []byte, o PublishOptions) (func(context.Context) error, error) {
	op, err := c.enqueueOp(new(queuedPublish), where, topicName, payload, o, false, false)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return c.waitOp(ctx, where, op, false) }, nil
}

// enqueueOp queues a checked QoS 1 or 2 message. where names the publish
// in errors; "" stands for pubWhere(topicName), so that the hot path
// formats no text. The op is &a.pend.op, its PUBLISH a.pub (one
// allocation); with keepPayload the PUBLISH keeps payload instead of a
// copy. With hold, its PUBREL waits for Exchange.Release; a Dup message
// whose caller-chosen identifier names a held exchange in flight returns
// that exchange's op.
func (c *Client) enqueueOp(a *queuedPublish, where, topicName string, payload []byte, o PublishOptions, hold, keepPayload bool) (*pubOp, error) {
	a.pend.c = c
	op, p := &a.pend.op, &a.pub
	*p = packet.Publish{QoS: o.QoS, Retain: o.Retain, Topic: topicName, Properties: o.Properties.Clone(), PacketID: o.PacketID}
	switch {
	case keepPayload:
		p.Payload = payload // the caller's, unchanged until op completes (PublishPending)
	case payload != nil:
		p.Payload = append(make([]byte, 0, len(payload)), payload...) // kept for resending
	}
	op.p, op.dup, op.hold = p, o.Dup, hold
	if hold {
		op.recv = make(chan struct{})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%s: %w", pubWhereOr(where, topicName), c.endErrLocked())
	}
	if !c.started {
		return nil, fmt.Errorf("%s: not connected: call Connect first", pubWhereOr(where, topicName))
	}
	if cn := c.cn; cn != nil {
		if err := checkPublish(cn, p); err != nil {
			return nil, fmt.Errorf("%s: %w", pubWhereOr(where, topicName), err)
		}
	}
	if id := o.PacketID; id != 0 {
		if v, used := c.ids[id]; used {
			if old, ok := v.(*pubOp); ok && hold && old.hold && o.Dup && old.p.Topic == topicName {
				return old, nil // sent again by the caller: the same exchange
			}
			return nil, fmt.Errorf("%s: %w (%d)", pubWhereOr(where, topicName), ErrPacketIDInUse, id)
		}
		c.ids[id] = op
	}
	c.waiting = append(c.waiting, op)
	c.fillLocked()
	return op, nil
}

// waitOp waits within ctx for op to finish (with recv, for op.recv to
// close: PUBREC of a held exchange), and returns op's error once op has
// finished. When ctx ends first, an op not yet sent is withdrawn.
func (c *Client) waitOp(ctx context.Context, where string, op *pubOp, recv bool) error {
	topicName := op.p.Topic
	var ch chan struct{}
	c.mu.Lock()
	switch {
	case op.finished:
	case recv:
		ch = op.recv
	default:
		if op.done == nil {
			op.done = make(chan struct{})
		}
		ch = op.done
	}
	c.mu.Unlock()
	if ch == nil {
		ch = closedChan
	}
	select {
	case <-ch:
	case <-ctx.Done():
		c.mu.Lock()
		if !op.finished && op.state == pubWaiting && !op.sent {
			c.withdrawLocked(op)
			op.finish(ctx.Err())
		}
		finished := op.finished
		c.mu.Unlock()
		if !finished {
			return fmt.Errorf("%s: %w", pubWhereOr(where, topicName), ctx.Err())
		}
	}
	c.mu.Lock()
	finished, err := op.finished, op.err
	c.mu.Unlock()
	if !finished || err == nil {
		return nil
	}
	var re *ReasonError
	if errors.As(err, &re) {
		return err
	}
	return fmt.Errorf("%s: %w", pubWhereOr(where, topicName), err)
}

// closedChan stands for the channel of an op that finished before anyone waited.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// checkPublish checks p against the server's limits from CONNACK.
func checkPublish(cn *conn, p *packet.Publish) error {
	if p.QoS > cn.maxQoS {
		return fmt.Errorf("%w (QoS %d, maximum %d)", ErrQoSNotSupported, p.QoS, cn.maxQoS) // [MQTT-3.2.2-11]
	}
	if p.Retain && !cn.retainOK {
		return ErrRetainNotSupported // [MQTT-3.2.2-14]
	}
	if cn.maxPacket > 0 && p.Size(cn.version) > cn.maxPacket {
		return fmt.Errorf("%w (%d bytes, maximum %d)", ErrPacketTooLarge, p.Size(cn.version), cn.maxPacket) // [MQTT-3.1.2-24]
	}
	return nil
}

// writePublishLocked encodes op's PUBLISH for cn, with DUP when it is a
// resend and a topic alias when enabled. c.mu held.
func (c *Client) writePublishLocked(cn *conn, op *pubOp) error {
	p := *op.p // shallow copy: the alias and DUP are per send
	p.Dup = (op.sent || op.dup) && p.QoS > 0
	p.Properties.Present.Remove(packet.PropTopicAlias)
	if err := checkPublish(cn, &p); err != nil {
		return err
	}
	var newAlias uint16
	if cn.aliasMax > 0 {
		if a, ok := cn.aliasOut[p.Topic]; ok {
			p.Properties.SetUint(packet.PropTopicAlias, uint32(a))
			p.Topic = "" // the alias stands for it [MQTT-3.3.2-12]
		} else if len(cn.aliasOut) < int(cn.aliasMax) { // [MQTT-3.3.2-10]
			newAlias = uint16(len(cn.aliasOut) + 1)
			p.Properties.SetUint(packet.PropTopicAlias, uint32(newAlias))
			if cn.maxPacket > 0 && p.Size(cn.version) > cn.maxPacket {
				return ErrPacketTooLarge
			}
		}
	}
	if err := cn.sendPublish(&p); err != nil {
		return err
	}
	if newAlias != 0 {
		if cn.aliasOut == nil {
			cn.aliasOut = make(map[string]uint16)
		}
		cn.aliasOut[op.p.Topic] = newAlias
	}
	if p.QoS > 0 {
		op.sent = true
	}
	return nil
}

// fillLocked sends waiting messages while the server's quota allows
// [MQTT-4.9.0-2]. c.mu held.
func (c *Client) fillLocked() {
	cn := c.cn
	if cn == nil {
		return
	}
	i := 0
	for i < len(c.waiting) && len(c.inflight) < cn.sendQuota {
		op := c.waiting[i]
		if op.p.PacketID == 0 {
			id := c.allocIDLocked(op)
			if id == 0 {
				break // all identifiers in use: wait for an acknowledgement
			}
			op.p.PacketID = id
		}
		c.waiting[i] = nil
		i++
		op.state = pubSent
		if err := c.writePublishLocked(cn, op); err != nil {
			c.finishLocked(op, err)
			continue
		}
		c.inflight = append(c.inflight, op)
	}
	switch {
	case i < len(c.waiting):
		c.waiting = c.waiting[i:]
	case cap(c.waiting) <= 1024:
		c.waiting = c.waiting[:0] // kept for the next publish, usually sent at once
	default:
		c.waiting = nil // let a large backing array go
	}
}

// finishLocked releases op's packet identifier and wakes its caller; the
// caller of finishLocked takes op out of the lists. c.mu held.
func (c *Client) finishLocked(op *pubOp, err error) {
	if id := op.p.PacketID; id != 0 && c.ids[id] == op {
		delete(c.ids, id) // [MQTT-2.3.1-4]
	}
	op.finish(err)
}

// completeLocked ends an inflight op and lets a waiting one take its place.
// c.mu held.
func (c *Client) completeLocked(op *pubOp, err error) {
	if len(c.inflight) > 0 && c.inflight[0] == op {
		// The usual case, acknowledgements in order: the slice moves
		// forward instead of shifting the whole window down.
		c.inflight[0] = nil
		c.inflight = c.inflight[1:]
	} else {
		for i, o := range c.inflight {
			if o == op {
				copy(c.inflight[i:], c.inflight[i+1:])
				c.inflight[len(c.inflight)-1] = nil
				c.inflight = c.inflight[:len(c.inflight)-1]
				break
			}
		}
	}
	c.finishLocked(op, err)
	c.fillLocked()
}

// withdrawLocked takes a waiting op out of the queue. c.mu held.
func (c *Client) withdrawLocked(op *pubOp) {
	for i, o := range c.waiting {
		if o == op {
			c.waiting = append(c.waiting[:i], c.waiting[i+1:]...)
			break
		}
	}
	if id := op.p.PacketID; id != 0 && c.ids[id] == op {
		delete(c.ids, id)
	}
}

// handlePuback completes a QoS 1 message [MQTT-4.3.2-1]. c.mu held.
func (c *Client) handlePuback(p *packet.Puback) {
	op, ok := c.ids[p.PacketID].(*pubOp)
	if !ok || op.p.QoS != 1 || op.state != pubSent {
		c.log.Debug("PUBACK for no QoS 1 message in flight", "packet_id", p.PacketID)
		return
	}
	c.completeLocked(op, pubReasonErr(op, p.ReasonCode, &p.Properties))
}

// handlePubrec answers PUBREC with PUBREL [MQTT-4.3.3-4], or completes the
// message on a failure code, which ends the exchange [MQTT-4.3.3-4] (5.0).
// c.mu held.
func (c *Client) handlePubrec(cn *conn, p *packet.Pubrec) {
	op, ok := c.ids[p.PacketID].(*pubOp)
	if !ok || op.p.QoS != 2 || op.state == pubWaiting {
		if !p.ReasonCode.IsError() {
			cn.send(&packet.Pubrel{PacketID: p.PacketID, ReasonCode: packet.PacketIdentifierNotFound})
		}
		return
	}
	if p.ReasonCode.IsError() {
		c.completeLocked(op, pubReasonErr(op, p.ReasonCode, &p.Properties))
		return
	}
	op.received()
	if op.hold && !op.relOK {
		op.state = pubReceived // PUBREL once the caller releases it
		return
	}
	op.state = pubReleased
	cn.sendAck(firstPubrel, p.PacketID)
}

// handlePubcomp completes a QoS 2 message. c.mu held.
func (c *Client) handlePubcomp(p *packet.Pubcomp) {
	op, ok := c.ids[p.PacketID].(*pubOp)
	if !ok || op.state != pubReleased {
		c.log.Debug("PUBCOMP for no QoS 2 message released", "packet_id", p.PacketID)
		return
	}
	c.completeLocked(op, pubReasonErr(op, p.ReasonCode, &p.Properties))
}

// pubReasonErr is reasonErr for op's acknowledgement: the text is built
// only for a failure.
func pubReasonErr(op *pubOp, rc packet.ReasonCode, props *packet.Properties) error {
	if !rc.IsError() {
		return nil
	}
	return reasonErr("publish to "+quote(op.p.Topic), rc, props)
}

// reasonErr returns a *ReasonError for a failure code, nil otherwise.
func reasonErr(op string, rc packet.ReasonCode, props *packet.Properties) error {
	if !rc.IsError() {
		return nil
	}
	return &ReasonError{Op: op, Code: rc, ReasonString: strings.Clone(props.ReasonString)}
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// pubWhere names a publish in errors.
func pubWhere(topicName string) string { return fmt.Sprintf("client: publish to %q", topicName) }

// pubWhereOr is where, or when it is "" pubWhere(topicName).
func pubWhereOr(where, topicName string) string {
	if where != "" {
		return where
	}
	return pubWhere(topicName)
}
