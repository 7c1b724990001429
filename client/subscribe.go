package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

// Subscription is one topic filter to subscribe to, with its options and
// where its messages go.
type Subscription struct {
	Filter            string // may be a shared filter, "$share/{group}/{filter}" (5.0)
	QoS               byte   // maximum QoS wanted: 0, 1 or 2
	NoLocal           bool   // 5.0: not the messages this client publishes
	RetainAsPublished bool   // 5.0: keep the RETAIN flag of forwarded messages
	RetainHandling    byte   // 5.0: 0 send retained messages, 1 only for a new subscription, 2 never

	// Handler receives the messages matching Filter, or else Chan does;
	// with neither, Options.OnMessage does. See Message for the order of
	// calls.
	Handler func(*Message)
	// Chan receives the messages matching Filter when Handler is nil.
	// While it is full the client's message dispatch waits (and with it
	// every subscription's delivery): give it a buffer or a steady reader.
	Chan chan<- *Message
}

// route is a subscription as the client knows it: the filter, the options
// to resubscribe with, and the handler. Guarded by Client.mu.
type route struct {
	sub     Subscription
	subID   uint32 // 5.0 Subscription Identifier it was made with; 0: none
	handler func(*Message)
	granted bool // a SUBACK granted it: part of the session to restore
}

// subOp is one SUBSCRIBE or UNSUBSCRIBE awaiting its acknowledgement.
// Guarded by Client.mu.
type subOp struct {
	sub    *packet.Subscribe
	unsub  *packet.Unsubscribe
	routes []*route // SUBSCRIBE: the route of each filter
	resub  bool     // sent by the client to restore its subscriptions
	sentOn *conn    // the connection it was last sent on
	codes  []packet.ReasonCode
	err    error
	done   chan struct{}
	ended  bool
}

func (op *subOp) packet() packet.Packet {
	if op.sub != nil {
		return op.sub
	}
	return op.unsub
}

func (op *subOp) id() uint16 {
	if op.sub != nil {
		return op.sub.PacketID
	}
	return op.unsub.PacketID
}

func (op *subOp) finish(err error) {
	if op.ended {
		return
	}
	op.ended, op.err = true, err
	if op.done != nil {
		close(op.done)
	}
}

// Subscribe subscribes to one or more filters in one SUBSCRIBE and waits for
// SUBACK. It returns the server's code per filter (the granted QoS, or a
// failure code); when some filter was refused the error joins a
// *ReasonError for each. Messages may arrive before Subscribe returns.
//
// The client remembers granted subscriptions: after a reconnect to a server
// that has no session for it, it subscribes to them again. While the client
// is offline and reconnecting, the SUBSCRIBE waits for the connection. When
// ctx ends first, Subscribe returns its error; the subscription may still
// be made.
func (c *Client) Subscribe(ctx context.Context, subs ...Subscription) ([]packet.ReasonCode, error) {
	return c.SubscribeWith(ctx, packet.Properties{}, subs...)
}

// SubscribeWith is Subscribe with 5.0 SUBSCRIBE properties: a Subscription
// Identifier, User Properties.
func (c *Client) SubscribeWith(ctx context.Context, props packet.Properties, subs ...Subscription) ([]packet.ReasonCode, error) {
	where := "client: subscribe"
	if len(subs) == 1 {
		where = "client: subscribe to " + quote(subs[0].Filter)
	}
	if len(subs) == 0 {
		return nil, fmt.Errorf("%s: no topic filter [MQTT-3.8.3-3]", where)
	}
	if err := c.checkProps(props, packet.PropSubscriptionID); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	pk := &packet.Subscribe{Properties: props.Clone()}
	op := &subOp{sub: pk, done: make(chan struct{})}
	var subID uint32
	if len(props.SubscriptionIDs) > 0 {
		subID = props.SubscriptionIDs[0]
	}
	for _, s := range subs {
		if err := c.checkSubscription(&s); err != nil {
			return nil, fmt.Errorf("client: subscribe to %q: %w", s.Filter, err)
		}
		pk.Subscriptions = append(pk.Subscriptions, s.packet())
		op.routes = append(op.routes, &route{sub: s, subID: subID, handler: c.handlerFor(&s)})
	}

	c.mu.Lock()
	if err := c.queueSubOpLocked(op); err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	for _, r := range op.routes {
		c.addRouteLocked(r)
	}
	c.mu.Unlock()

	select {
	case <-op.done:
		return op.codes, op.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", where, ctx.Err())
	}
}

// Unsubscribe removes subscriptions in one UNSUBSCRIBE and waits for
// UNSUBACK. It returns the server's code per filter (5.0; Success for each
// at 3.1.1); a failure code is a *ReasonError. The filters' handlers stay
// in place until UNSUBACK, so messages in flight still reach them.
func (c *Client) Unsubscribe(ctx context.Context, filters ...string) ([]packet.ReasonCode, error) {
	return c.UnsubscribeWith(ctx, packet.Properties{}, filters...)
}

// UnsubscribeWith is Unsubscribe with 5.0 UNSUBSCRIBE properties (User
// Properties).
func (c *Client) UnsubscribeWith(ctx context.Context, props packet.Properties, filters ...string) ([]packet.ReasonCode, error) {
	where := "client: unsubscribe"
	if len(filters) == 1 {
		where = "client: unsubscribe from " + quote(filters[0])
	}
	if len(filters) == 0 {
		return nil, fmt.Errorf("%s: no topic filter [MQTT-3.10.3-2]", where)
	}
	if err := c.checkProps(props); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	for _, f := range filters {
		if !validFilter(f) {
			return nil, fmt.Errorf("client: unsubscribe from %q: %w", f, ErrInvalidTopic)
		}
	}
	op := &subOp{unsub: &packet.Unsubscribe{Properties: props.Clone(), Filters: slices.Clone(filters)}, done: make(chan struct{})}
	c.mu.Lock()
	err := c.queueSubOpLocked(op)
	c.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	select {
	case <-op.done:
		return op.codes, op.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", where, ctx.Err())
	}
}

// checkProps refuses properties before 5.0, and Subscription Identifiers
// unless allowed.
func (c *Client) checkProps(props packet.Properties, allowed ...packet.PropID) error {
	if props.Empty() {
		return nil
	}
	if c.version < packet.V5 {
		return errors.New("properties need MQTT 5.0")
	}
	if len(props.SubscriptionIDs) > 0 && !slices.Contains(allowed, packet.PropSubscriptionID) {
		return errors.New("subscription identifiers are not allowed here")
	}
	if len(props.SubscriptionIDs) > 1 {
		return errors.New("a SUBSCRIBE carries at most one subscription identifier")
	}
	if props.Present != 0 {
		return errors.New("only user properties (and a subscription identifier in SUBSCRIBE) are allowed")
	}
	return nil
}

func (c *Client) checkSubscription(s *Subscription) error {
	if !validFilter(s.Filter) {
		return ErrInvalidTopic
	}
	if s.QoS > 2 {
		return fmt.Errorf("QoS %d is above 2", s.QoS)
	}
	if s.RetainHandling > 2 {
		return fmt.Errorf("retain handling %d is above 2", s.RetainHandling)
	}
	if c.version < packet.V5 && (s.NoLocal || s.RetainAsPublished || s.RetainHandling != 0) {
		return errors.New("no local, retain as published and retain handling need MQTT 5.0")
	}
	if _, _, shared := topic.ParseShare(s.Filter); shared && s.NoLocal {
		return errors.New("no local is not allowed on a shared subscription [MQTT-3.8.3-4]")
	}
	return nil
}

// validFilter checks a filter, shared or not.
func validFilter(f string) bool {
	if strings.HasPrefix(f, "$share/") {
		_, inner, ok := topic.ParseShare(f)
		return ok && topic.ValidFilter(inner) && len(f) <= topic.MaxLen
	}
	return topic.ValidFilter(f)
}

func (s *Subscription) packet() packet.Subscription {
	return packet.Subscription{
		Filter:            s.Filter,
		QoS:               s.QoS,
		NoLocal:           s.NoLocal,
		RetainAsPublished: s.RetainAsPublished,
		RetainHandling:    s.RetainHandling,
	}
}

// handlerFor returns the function that delivers s's messages, nil when
// they go to Options.OnMessage.
func (c *Client) handlerFor(s *Subscription) func(*Message) {
	if s.Handler != nil {
		return s.Handler
	}
	if ch := s.Chan; ch != nil {
		return func(m *Message) {
			select {
			case ch <- m:
			case <-c.quit:
			}
		}
	}
	return nil
}

// queueSubOpLocked gives op an identifier and sends it, now or on the next
// connection. c.mu held.
func (c *Client) queueSubOpLocked(op *subOp) error {
	if c.closed {
		return c.endErrLocked()
	}
	if !c.started {
		return errors.New("not connected: call Connect first")
	}
	id := c.allocIDLocked(op)
	if id == 0 {
		return errors.New("all 65535 packet identifiers are in use")
	}
	if op.sub != nil {
		op.sub.PacketID = id
	} else {
		op.unsub.PacketID = id
	}
	if cn := c.cn; cn != nil {
		if cn.maxPacket > 0 && op.packet().Size(cn.version) > cn.maxPacket {
			delete(c.ids, id)
			return ErrPacketTooLarge
		}
		if err := cn.send(op.packet()); err != nil {
			delete(c.ids, id)
			return err
		}
		op.sentOn = cn
	}
	c.subOps = append(c.subOps, op)
	return nil
}

// addRouteLocked installs r for its filter, replacing an earlier route of
// the same filter (as the server replaces the subscription
// [MQTT-3.8.4-3]). c.mu held.
func (c *Client) addRouteLocked(r *route) {
	f := r.sub.Filter
	if old := c.routes[f]; old != nil {
		r.granted = old.granted
		c.trie.Remove(old, f)
	}
	c.routes[f] = r
	share, _, _ := topic.ParseShare(f)
	c.trie.Add(topic.Subscription[*route]{Subscriber: r, Filter: f, Share: share, QoS: r.sub.QoS})
}

func (c *Client) removeRouteLocked(f string) {
	if r := c.routes[f]; r != nil {
		delete(c.routes, f)
		c.trie.Remove(r, f)
	}
}

// takeSubOpLocked removes and returns the SUBSCRIBE (unsub false) or
// UNSUBSCRIBE awaiting the acknowledgement with identifier id. c.mu held.
func (c *Client) takeSubOpLocked(id uint16, unsub bool) *subOp {
	op, ok := c.ids[id].(*subOp)
	if !ok || (op.unsub != nil) != unsub {
		return nil
	}
	delete(c.ids, id)
	if i := slices.Index(c.subOps, op); i >= 0 {
		c.subOps = slices.Delete(c.subOps, i, i+1)
	}
	return op
}

// handleSuback records the granted subscriptions and drops the routes of
// refused ones. c.mu held.
func (c *Client) handleSuback(p *packet.Suback) {
	op := c.takeSubOpLocked(p.PacketID, false)
	if op == nil {
		c.log.Debug("SUBACK for no SUBSCRIBE in flight", "packet_id", p.PacketID)
		return
	}
	subs := op.sub.Subscriptions
	if len(p.ReasonCodes) != len(subs) { // [MQTT-3.8.4-6]
		op.finish(fmt.Errorf("client: subscribe: SUBACK has %d codes for %d filters [MQTT-3.9.3-1]", len(p.ReasonCodes), len(subs)))
		return
	}
	var errs []error
	for i, rc := range p.ReasonCodes {
		f := subs[i].Filter
		r := c.routes[f]
		if !rc.IsError() {
			if r != nil {
				r.granted = true
			}
			continue
		}
		err := reasonErr("subscribe to "+quote(f), rc, &p.Properties)
		errs = append(errs, err)
		if op.resub {
			c.log.Warn("resubscription refused", "filter", f, "reason", rc.String())
		}
		if r != nil && !r.granted && (op.resub || slices.Contains(op.routes, r)) {
			c.removeRouteLocked(f)
		}
	}
	op.codes = slices.Clone(p.ReasonCodes)
	op.finish(errors.Join(errs...))
}

// handleUnsuback removes the routes of the filters. c.mu held.
func (c *Client) handleUnsuback(version byte, p *packet.Unsuback) {
	op := c.takeSubOpLocked(p.PacketID, true)
	if op == nil {
		c.log.Debug("UNSUBACK for no UNSUBSCRIBE in flight", "packet_id", p.PacketID)
		return
	}
	filters := op.unsub.Filters
	codes := slices.Clone(p.ReasonCodes)
	if version < packet.V5 {
		codes = make([]packet.ReasonCode, len(filters)) // 3.1.1 has none: Success each
	}
	var errs []error
	for i, f := range filters {
		if i < len(codes) && codes[i].IsError() {
			errs = append(errs, reasonErr("unsubscribe from "+quote(f), codes[i], &p.Properties))
			continue
		}
		c.removeRouteLocked(f)
	}
	op.codes = codes
	op.finish(errors.Join(errs...))
}

// resubscribeLocked subscribes again to every granted subscription, for a
// server that has no session [MQTT-3.2.2-5]: one SUBSCRIBE per
// subscription identifier, at most 64 filters each. c.mu held.
func (c *Client) resubscribeLocked(cn *conn) {
	// Earlier resubscriptions are superseded by this one.
	c.subOps = slices.DeleteFunc(c.subOps, func(op *subOp) bool {
		if op.resub {
			delete(c.ids, op.id())
		}
		return op.resub
	})
	byID := make(map[uint32][]*route)
	for _, r := range c.routes {
		if r.granted {
			byID[r.subID] = append(byID[r.subID], r)
		}
	}
	for subID, rs := range byID {
		slices.SortFunc(rs, func(a, b *route) int { return strings.Compare(a.sub.Filter, b.sub.Filter) })
		for len(rs) > 0 {
			n := min(len(rs), 64)
			pk := &packet.Subscribe{}
			if subID != 0 {
				pk.Properties.SubscriptionIDs = []uint32{subID}
			}
			for _, r := range rs[:n] {
				pk.Subscriptions = append(pk.Subscriptions, r.sub.packet())
			}
			op := &subOp{sub: pk, resub: true, sentOn: cn}
			if pk.PacketID = c.allocIDLocked(op); pk.PacketID == 0 {
				c.log.Warn("cannot resubscribe: all packet identifiers in use")
				return
			}
			c.subOps = append(c.subOps, op)
			cn.send(pk)
			rs = rs[n:]
		}
	}
}
