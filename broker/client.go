package broker

import (
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/topic"
)

// handle runs the protocol for one decoded packet of an established
// connection. It runs on the read loop; p is valid only during the call.
func (c *conn) handle(p packet.Packet) error {
	c.srv.emitPacket(EventPacketIn, c, p)
	switch p := p.(type) {
	case *packet.Publish:
		return c.handlePublish(p)
	case *packet.Puback:
		if c.sess.acked(p.PacketID, outSent) == ackWrongType {
			return protocolError("PUBACK for a QoS 2 delivery") // [MQTT-4.3.3-3]
		}
	case *packet.Pubrec:
		switch c.sess.received(c, p.PacketID, p.ReasonCode) {
		case ackWrongType:
			return protocolError("PUBREC for a QoS 1 delivery") // [MQTT-4.3.2-3]
		case ackUnknown:
			if !p.ReasonCode.IsError() {
				// Unknown identifier (say, after a restart lost it): release
				// it so the client's state does not hang on it.
				c.sendPacket(&packet.Pubrel{PacketID: p.PacketID, ReasonCode: packet.PacketIdentifierNotFound})
			}
		}
	case *packet.Pubcomp:
		if c.sess.acked(p.PacketID, outReleased) == ackWrongType {
			return protocolError("PUBCOMP for a delivery not released") // [MQTT-4.3.2-3] [MQTT-4.3.3-5]
		}
	case *packet.Pubrel:
		rc := packet.Success
		delete(c.quota2, p.PacketID)
		c.sess.mu.Lock()
		if _, ok := c.sess.inbound2[p.PacketID]; ok {
			delete(c.sess.inbound2, p.PacketID)
			c.sess.inboundLocked(p.PacketID, false)
		} else {
			rc = packet.PacketIdentifierNotFound
		}
		c.sess.mu.Unlock()
		c.sendPacket(&packet.Pubcomp{PacketID: p.PacketID, ReasonCode: rc}) // [MQTT-4.3.3-11]
	case *packet.Subscribe:
		return c.handleSubscribe(p)
	case *packet.Unsubscribe:
		return c.handleUnsubscribe(p)
	case *packet.Pingreq:
		c.sendPacket(&packet.Pingresp{}) // [MQTT-3.12.4-1]
	case *packet.Disconnect:
		return c.handleDisconnect(p)
	case *packet.Auth:
		return c.handleAuth(p)
	case *packet.Connect:
		return protocolError("second CONNECT on one connection") // [MQTT-3.1.0-2]
	default:
		return protocolError("unexpected " + p.Type().String() + " from a client")
	}
	return nil
}

func (c *conn) handleDisconnect(p *packet.Disconnect) error {
	if c.version >= packet.V5 && !packet.ClientDisconnectCode(p.ReasonCode) {
		// A code only a server sends: the will stays [MQTT-3.14.2-1].
		return protocolError("DISCONNECT from a client with " + p.ReasonCode.String() + ", a reason code only a server may send")
	}
	if c.version >= packet.V5 && p.Properties.Has(packet.PropSessionExpiry) {
		secs := p.Properties.SessionExpiry
		if c.expiryZero && secs != 0 {
			return protocolError("DISCONNECT sets a session expiry interval after CONNECT set 0") // 5.0 3.14.2.2.2
		}
		if max := c.srv.opt().MaxSessionExpiry; max > 0 && secs > max {
			secs = max
		}
		if max := c.srv.opt().MaxAnonymousSessionExpiry; max > 0 && secs > max && identityOf(c.authc) == ownerAnonymous {
			secs = max // nor can DISCONNECT make an anonymous session last longer
		}
		s := c.sess
		s.mu.Lock()
		if s.conn.Load() != c { // taken over meanwhile: not ours to change
			s.mu.Unlock()
			return errDisconnect
		}
		s.persistent = secs > 0
		s.expiry = neverExpires
		if secs != 0xFFFFFFFF {
			s.expiry = time.Duration(secs) * time.Second
		}
		s.mu.Unlock()
	}
	// DISCONNECT discards the will [MQTT-3.14.4-3]; 5.0's 0x04 keeps it.
	if p.ReasonCode != packet.DisconnectWithWill {
		c.will = nil
	}
	c.clean = true
	return errDisconnect
}

func (c *conn) checkTopic(name string) bool {
	o := c.srv.opt()
	if o.MaxTopicLength > 0 && len(name) > o.MaxTopicLength {
		return false
	}
	if o.MaxTopicLevels > 0 && strings.Count(name, "/")+1 > o.MaxTopicLevels {
		return false
	}
	return true
}

func (c *conn) handlePublish(p *packet.Publish) error {
	o := c.srv.opt()
	v5 := c.version >= packet.V5
	if v5 {
		if len(p.Properties.SubscriptionIDs) > 0 {
			return protocolError("PUBLISH from a client carries a subscription identifier") // [MQTT-3.3.4-6]
		}
		if err := c.resolveAlias(p); err != nil {
			return err
		}
	}
	if p.QoS > o.MaximumQoS {
		return &closeError{packet.QoSNotSupported, "PUBLISH above the broker's maximum QoS"} // 5.0 3.2.2.3.4
	}
	if p.Retain && !o.RetainAvailable {
		return &closeError{packet.RetainNotSupported, "retained PUBLISH while retain is not available"} // 5.0 3.2.2.3.5
	}
	var delay time.Duration
	delayed := false
	if o.DelayedPublish {
		if target, d, rc, ok := parseDelayed(p.Topic, o.MaxDelay); ok {
			if rc != packet.Success {
				if (c.pubRate != nil || c.byteRate != nil) && !c.throttle(len(p.Payload)+len(p.Topic)) {
					return &closeError{packet.MessageRateTooHigh, "publishing far above the configured rate"}
				}
				c.refuseDelayed(p, rc) // rate-limited like any PUBLISH
				return nil
			}
			p.Topic, delay, delayed = target, d, true // authorised and rewritten as the target
		}
	}
	p.Topic = c.mount(p.Topic) // see mount.go; a delayed message's target
	if len(o.Rewrite) > 0 {
		p.Topic = c.srv.rewrite(RewritePublish, p.Topic, false, c.who()) // before authorisation
	}
	if !c.checkTopic(p.Topic) {
		return &closeError{packet.TopicNameInvalid, "topic name exceeds the configured length or level limit"}
	}
	if v5 && o.ValidatePayloadFormat && p.Properties.Has(packet.PropPayloadFormat) && p.Properties.PayloadFormat == 1 {
		if err := packet.ValidUTF8(p.Payload); err != nil {
			if p.QoS == 0 {
				return &closeError{packet.PayloadFormatInvalid, "payload declared UTF-8 is not"}
			}
			c.ack(p, packet.PayloadFormatInvalid) // 5.0 3.3.2.3.2
			return nil
		}
	}
	c.srv.stats.received.Add(1)
	c.srv.stats.receivedQoS[p.QoS].Add(1)
	if (c.pubRate != nil || c.byteRate != nil) && !c.throttle(len(p.Payload)+len(p.Topic)) {
		return &closeError{packet.MessageRateTooHigh, "publishing far above the configured rate"}
	}
	if !c.srv.allowedMsg(c.authc, auth.Write, p.Topic, p.QoS, p.Retain) {
		c.srv.log.Debug("PUBLISH refused: not authorized", "client", c.clientID, "topic", p.Topic)
		if obs := c.srv.observers.Load(); obs != nil {
			obs.emit(&Event{Kind: EventDropped, ClientID: c.clientID, Username: userOf(c), Topic: p.Topic, QoS: p.QoS, Retain: p.Retain, Payload: p.Payload, Reason: DropNotAuthorized})
		}
		switch {
		case p.QoS > 0 && v5:
			c.ack(p, packet.NotAuthorized)
		case p.QoS > 0:
			c.ack(p, packet.Success) // acknowledged and dropped [MQTT-3.3.5-2]
		}
		return nil
	}
	if len(p.Payload) > 0 && c.overMemory(!v5) { // an empty payload frees memory: let it through
		if !v5 {
			// 3.1.1 cannot refuse a PUBLISH: closing is how it says no.
			return &closeError{packet.QuotaExceeded, "memory above the configured ceiling for longer than a PUBLISH may wait"}
		}
		if p.QoS > 0 {
			c.ack(p, packet.QuotaExceeded) // 5.0 3.4.2.1
		}
		return nil
	}
	if o.MaxPayloadSize > 0 && len(p.Payload) > o.MaxPayloadSize {
		c.dropTooLarge(p)
		return nil
	}
	if p.QoS == 2 {
		c.takeFreed() // identifiers the cluster refused (clusterpub.go)
		s := c.sess
		s.mu.Lock()
		_, dup := s.inbound2[p.PacketID]
		if !dup {
			// The quota counts what this connection received: it starts
			// afresh on each connection (5.0 section 4.9), so identifiers
			// an earlier connection left awaiting PUBREL do not count.
			if len(c.quota2) >= int(o.ReceiveMaximum) && v5 {
				s.mu.Unlock()
				return &closeError{packet.ReceiveMaximumExceeded, "more unacknowledged QoS 2 publishes than the receive maximum"} // 5.0 3.3.4
			}
			if c.quota2 == nil {
				c.quota2 = make(map[uint16]struct{})
			}
			c.quota2[p.PacketID] = struct{}{}
			if s.inbound2 == nil {
				s.inbound2 = make(map[uint16]struct{})
			}
			s.inbound2[p.PacketID] = struct{}{}
		}
		s.mu.Unlock()
		if dup { // a resent PUBLISH before PUBREL is not delivered again [MQTT-4.3.3-10] [MQTT-4.3.3-2]
			if !c.pipeAck(p.PacketID, 2, packet.Success, true) { // behind the first copy if the cluster is storing it
				c.sendPacket(&packet.Pubrec{PacketID: p.PacketID})
			}
			return nil
		}
	}
	if c.matches == nil {
		c.matches = new(topic.Matches[*session])
	}
	m := newMessage(p, time.Now())
	if p.Retain {
		m.owner = identityOf(c.authc)
		m.refuseOverQuota = v5 && p.QoS > 0
		if o.CheckRetainSource {
			m.source = c.authc
		}
	}
	var (
		n   int
		txn *storeTxn
	)
	if delayed {
		if rc := c.srv.hold(m, delay, c.clientID); rc != packet.Success {
			c.refuseDelayed(p, rc)
			return nil
		}
		n = 1 // held, not routed: no 0x10 No matching subscribers
		if c.srv.syncer != nil {
			c.syncRead = true // held durably before the read's acknowledgements
		}
	} else if c.storeAsync(m, p) {
		return nil // delivered and acknowledged once the cluster stored it (clusterpub.go)
	} else if c.srv.cluster != nil && !c.srv.route(m) {
		n = routeFailed
	} else {
		if p.QoS == 2 {
			// Deliveries, retained record and identifier: one write
			// (storetxn.go) [MQTT-4.3.3-2]. Opened once the cluster took
			// the message: its round trip holds back no flusher.
			txn = c.srv.beginTxn(c.sess, p.PacketID)
			if txn != nil {
				m.txn.Store(txn)
			}
		}
		m.via.Store(&c.batch) // copies are written at the end of this read (write.go)
		n = c.srv.publishLocal(m, c.sess, c.matches)
		m.via.Store(nil)
		if txn != nil {
			m.txn.Store(nil)
			txn.end() // a refused message leaves no trace in the store
		}
	}
	if n == routeFailed {
		switch {
		case p.QoS == 0: // nothing to refuse: dropped, as QoS 0 may be
		case !v5:
			if p.QoS == 2 {
				// The identifier is free again: the PUBLISH resent after
				// reconnecting is a new message, not a duplicate of one
				// never stored [MQTT-4.3.3-2].
				delete(c.quota2, p.PacketID)
				c.sess.mu.Lock()
				delete(c.sess.inbound2, p.PacketID)
				c.sess.inboundLocked(p.PacketID, false)
				c.sess.mu.Unlock()
			}
			// 3.1.1 cannot refuse a PUBLISH: closing is how it says no.
			return &closeError{packet.UnspecifiedError, "the cluster could not take the message"}
		default:
			c.ack(p, packet.UnspecifiedError)
		}
		return nil
	}
	if n == quotaRefused {
		c.srv.log.Info("retained PUBLISH refused: over the retained message quota", "client", c.clientID, "topic", p.Topic, "owner", m.owner)
		c.ack(p, packet.QuotaExceeded) // 5.0 3.4.2.1; frees a QoS 2 identifier [MQTT-4.3.3-9]
		return nil
	}
	if p.QoS == 2 && txn == nil {
		// Without a transaction, stored after the deliveries it guards,
		// as the log is replayed in order: a crash that keeps the
		// identifier keeps them too, and a resent PUBLISH is not taken
		// for one already delivered when it was not [MQTT-4.3.3-10].
		// Durable before PUBREC.
		c.sess.mu.Lock()
		c.sess.inboundLocked(p.PacketID, true)
		c.sess.mu.Unlock()
		if !c.inboundStored() { // a store that writes behind (sessionsync.go)
			if !v5 {
				// 3.1.1 cannot refuse a PUBLISH: closing is how it says no.
				return &closeError{packet.UnspecifiedError, "the QoS 2 identifier could not be stored"}
			}
			c.ack(p, packet.UnspecifiedError) // frees the identifier [MQTT-4.3.3-9]
			return nil
		}
	}
	if p.Retain && c.srv.syncer != nil {
		c.syncRead = true // the retained message is stored: no crash of the process loses it
	}
	if p.QoS > 0 {
		rc := packet.Success
		if n == 0 && v5 && c.srv.cluster == nil { // other nodes may have some
			rc = packet.NoMatchingSubscribers
		}
		c.ack(p, rc) // [MQTT-4.3.2-4] [MQTT-4.3.3-8] [MQTT-3.3.4-1]
	}
	return nil
}

// refuseDelayed answers a PUBLISH to a delayed topic that is malformed,
// asks for more than the maximum delay, or finds no room: a 5.0 QoS 1/2
// publisher hears rc; 3.1.1 cannot refuse a PUBLISH, so the message is
// acknowledged and dropped, as an unauthorised one [MQTT-3.3.5-2]. Counted.
func (c *conn) refuseDelayed(p *packet.Publish, rc packet.ReasonCode) {
	c.srv.stats.delayedRefused.Add(1)
	c.srv.log.Info("delayed PUBLISH refused", "client", c.clientID, "topic", p.Topic, "reason", rc.String())
	switch {
	case p.QoS == 0:
	case c.version >= packet.V5:
		c.ack(p, rc)
	default:
		c.ack(p, packet.Success)
	}
}

// ack answers a QoS 1 or 2 PUBLISH. With a store that syncs, the answer
// waits until the end of the read so that one sync covers many messages:
// what the broker acknowledged is on disk [MQTT-4.3.2-4] [MQTT-4.3.3-8].
func (c *conn) ack(p *packet.Publish, rc packet.ReasonCode) {
	if p.QoS == 2 && rc.IsError() { // the identifier is free again [MQTT-4.3.3-9]
		delete(c.quota2, p.PacketID)
		c.sess.mu.Lock()
		delete(c.sess.inbound2, p.PacketID)
		c.sess.inboundLocked(p.PacketID, false)
		c.sess.mu.Unlock()
	}
	if c.pipeAck(p.PacketID, p.QoS, rc, false) { // behind the messages the cluster is storing (clusterpub.go)
		return
	}
	if c.srv.syncer != nil {
		c.acks = append(c.acks, ackLater{id: p.PacketID, qos: p.QoS, rc: rc})
		return
	}
	if p.QoS == 1 {
		c.sendPuback(p.PacketID, rc)
		return
	}
	c.sendPacket(&packet.Pubrec{PacketID: p.PacketID, ReasonCode: rc})
}

// resolveAlias applies an inbound 5.0 Topic Alias [MQTT-3.3.2-12].
func (c *conn) resolveAlias(p *packet.Publish) error {
	if !p.Properties.Has(packet.PropTopicAlias) {
		return nil
	}
	alias := p.Properties.TopicAlias
	if alias > c.srv.opt().TopicAliasMaximum { // [MQTT-3.3.2-12]
		return &closeError{packet.TopicAliasInvalid, "topic alias above the maximum"}
	}
	if p.Topic == "" {
		t, ok := c.aliasIn[alias]
		if !ok {
			return protocolError("topic alias not yet mapped")
		}
		p.Topic = t
		return nil
	}
	if c.aliasIn == nil {
		c.aliasIn = make(map[uint16]string)
	}
	c.aliasIn[alias] = strings.Clone(p.Topic)
	return nil
}

func (c *conn) handleSubscribe(p *packet.Subscribe) error {
	s := c.sess
	codes := make([]packet.ReasonCode, len(p.Subscriptions))
	type retainedFor struct {
		filter string
		sub    packet.Subscription
		id     uint32
	}
	var sendRetained []retainedFor
	o := c.srv.opt()
	var subID uint32
	if len(p.Properties.SubscriptionIDs) > 0 {
		if !o.SubscriptionIdentifiers {
			return &closeError{packet.SubscriptionIdentifiersNotSupported, "subscription identifier while they are not available"}
		}
		subID = p.Properties.SubscriptionIDs[0]
	}
	// Checks first, without the retained lock: an authoriser may be slow
	// (an HTTP hook), and retained publishes wait for that lock.
	overMem := c.overMemory(false)
	for i := range p.Subscriptions {
		p.Subscriptions[i].Filter = c.mountFilter(p.Subscriptions[i].Filter) // see mount.go
		if len(o.Rewrite) > 0 {
			p.Subscriptions[i].Filter = c.srv.rewriteFilter(p.Subscriptions[i].Filter, c.who()) // before authorisation
		}
		sub := p.Subscriptions[i]
		_, inner, shared := topic.ParseShare(sub.Filter)
		if !shared {
			inner = sub.Filter
		}
		switch {
		case !c.checkTopic(sub.Filter):
			codes[i] = packet.TopicFilterInvalid // 0x80 for 3.1.1 [MQTT-3.9.3-2]
		case overMem:
			codes[i] = packet.QuotaExceeded // 0x80 for 3.1.1
		case !c.srv.allowedSubscribe(c.authc, inner, sub.QoS):
			codes[i] = packet.NotAuthorized // 0x80 for 3.1.1
		case shared && !o.SharedSubscriptions:
			codes[i] = packet.SharedSubscriptionsNotSupported
		case !o.WildcardSubscriptions && strings.ContainsAny(inner, "+#"):
			codes[i] = packet.WildcardSubscriptionsNotSupported // [MQTT-3.8.3-2] (3.1.1)
		}
	}
	c.srv.syncRetained(p)
	c.srv.retainMu.Lock() // see Server.publish
	defer c.srv.retainMu.Unlock()
	for i, sub := range p.Subscriptions {
		if codes[i] != packet.Success {
			continue
		}
		_, _, shared := topic.ParseShare(sub.Filter)
		granted := min(sub.QoS, o.MaximumQoS) // [MQTT-3.2.2-10]
		sub.QoS = granted
		if c.bridge {
			// A bridge (try_private) does not get its own messages back
			// and keeps the retain flag, as with Mosquitto.
			sub.NoLocal, sub.RetainAsPublished = true, true
		}
		filter := strings.Clone(sub.Filter)
		sub.Filter = filter
		share, _, _ := topic.ParseShare(filter)
		ts := topic.Subscription[*session]{
			Subscriber:        s,
			Filter:            filter,
			Share:             share,
			QoS:               granted,
			NoLocal:           sub.NoLocal,
			RetainAsPublished: sub.RetainAsPublished,
			RetainHandling:    sub.RetainHandling,
			ID:                subID,
		}
		s.mu.Lock()
		_, existed := s.subs[filter]
		if !existed && o.MaxSubscriptions > 0 && len(s.subs) >= o.MaxSubscriptions {
			s.mu.Unlock()
			codes[i] = packet.QuotaExceeded // 0x80 for 3.1.1
			continue
		}
		if s.subs == nil {
			s.subs = make(map[string]store.Subscription)
		}
		s.subs[filter] = store.Subscription{Subscription: sub, ID: subID}
		if !s.ended.Load() { // a taken-over session's trie entries are gone for good
			if !c.srv.subs.Add(ts) { // replaces an identical filter [MQTT-3.8.4-3]
				c.srv.clusterSub(filter)
			}
		}
		s.mu.Unlock()
		codes[i] = packet.ReasonCode(granted) // [MQTT-3.8.4-5]
		c.srv.emitClient(EventSubscribed, c, filter, granted, "", "")
		if shared {
			continue // no retained messages on a shared subscription
		}
		switch sub.RetainHandling {
		case 0: // [MQTT-3.3.1-9]
		case 1: // [MQTT-3.3.1-10]
			if existed {
				continue
			}
		default: // [MQTT-3.3.1-11]
			continue
		}
		sendRetained = append(sendRetained, retainedFor{filter, sub, subID})
	}
	s.save()                                                               // before SUBACK: an acknowledged subscription is kept
	c.sendPacket(&packet.Suback{PacketID: p.PacketID, ReasonCodes: codes}) // [MQTT-3.8.4-1] [MQTT-3.8.4-2]
	for _, r := range sendRetained {
		var ids []uint32
		if r.id != 0 {
			ids = []uint32{r.id}
		}
		now := time.Now()
		var expired []*message
		c.srv.retained.Match(r.filter, func(_ string, m *message) bool {
			if m.expired(now) {
				expired = append(expired, m) // deleted below [MQTT-3.3.2-5]
				return true
			}
			if !c.srv.retainSourceOK(m) {
				return true
			}
			s.deliver(m, c.srv.outQoS(m.qos, r.sub.QoS), true, ids, "") // [MQTT-3.3.1-6] [MQTT-3.3.1-8]; deliver checks read access
			return true
		})
		for _, m := range expired {
			c.srv.expireRetainedLocked(m) // retainMu held
		}
	}
	return nil
}

func (c *conn) handleUnsubscribe(p *packet.Unsubscribe) error {
	s := c.sess
	codes := make([]packet.ReasonCode, len(p.Filters))
	rewrite := len(c.srv.opt().Rewrite) > 0
	for i, f := range p.Filters {
		f = c.mountFilter(f)
		if rewrite {
			f = c.srv.rewriteFilter(f, c.who()) // as the SUBSCRIBE that made it
		}
		s.mu.Lock()
		_, ok := s.subs[f]
		delete(s.subs, f)
		s.mu.Unlock()
		if ok && c.srv.subs.Remove(s, f) { // [MQTT-3.10.4-1]
			c.srv.clusterUnsub(f)
			codes[i] = packet.Success
			c.srv.emitClient(EventUnsubscribed, c, f, 0, "", "")
		} else {
			codes[i] = packet.NoSubscriptionExisted
		}
	}
	s.save()
	c.sendPacket(&packet.Unsuback{PacketID: p.PacketID, ReasonCodes: codes}) // [MQTT-3.10.4-4] [MQTT-3.10.4-5]
	return nil
}
