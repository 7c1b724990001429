package broker

import (
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

// handle runs the protocol for one decoded packet of an established
// connection. It runs on the read loop; p is valid only during the call.
func (c *conn) handle(p packet.Packet) error {
	switch p := p.(type) {
	case *packet.Publish:
		return c.handlePublish(p)
	case *packet.Puback:
		c.sess.acked(p.PacketID, outSent)
	case *packet.Pubrec:
		c.sess.received(c, p.PacketID, p.ReasonCode)
	case *packet.Pubcomp:
		c.sess.acked(p.PacketID, outReleased)
	case *packet.Pubrel:
		rc := packet.Success
		c.sess.mu.Lock()
		if _, ok := c.sess.inbound2[p.PacketID]; ok {
			delete(c.sess.inbound2, p.PacketID)
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
	case *packet.Connect:
		return protocolError("second CONNECT on one connection") // [MQTT-3.1.0-2]
	default:
		return protocolError("unexpected " + p.Type().String() + " from a client")
	}
	return nil
}

func (c *conn) handleDisconnect(p *packet.Disconnect) error {
	// DISCONNECT discards the will [MQTT-3.14.4-3]; 5.0's 0x04 keeps it.
	if p.ReasonCode != packet.DisconnectWithWill {
		c.will = nil
	}
	c.clean = true
	return errDisconnect
}

func (c *conn) checkTopic(name string) bool {
	o := &c.srv.opts
	if o.MaxTopicLength > 0 && len(name) > o.MaxTopicLength {
		return false
	}
	if o.MaxTopicLevels > 0 && strings.Count(name, "/")+1 > o.MaxTopicLevels {
		return false
	}
	return true
}

func (c *conn) handlePublish(p *packet.Publish) error {
	if c.version >= packet.V5 {
		if len(p.Properties.SubscriptionIDs) > 0 {
			return protocolError("PUBLISH from a client carries a subscription identifier") // [MQTT-3.3.4-6]
		}
		if err := c.resolveAlias(p); err != nil {
			return err
		}
	}
	if !c.checkTopic(p.Topic) {
		if c.version >= packet.V5 {
			return &closeError{packet.TopicNameInvalid, "topic name exceeds the configured length or level limit"}
		}
		return protocolError("topic name exceeds the configured length or level limit")
	}
	c.srv.stats.received.Add(1)
	switch p.QoS {
	case 0:
		c.srv.publish(newMessage(p, time.Now()), c.sess, &c.matches)
	case 1:
		c.srv.publish(newMessage(p, time.Now()), c.sess, &c.matches)
		c.sendPacket(&packet.Puback{PacketID: p.PacketID}) // [MQTT-4.3.2-4]
	case 2:
		s := c.sess
		s.mu.Lock()
		_, dup := s.inbound2[p.PacketID]
		if !dup {
			if s.inbound2 == nil {
				s.inbound2 = make(map[uint16]struct{})
			}
			s.inbound2[p.PacketID] = struct{}{}
		}
		s.mu.Unlock()
		if !dup { // a resent PUBLISH before PUBREL is not delivered again [MQTT-4.3.3-10]
			c.srv.publish(newMessage(p, time.Now()), c.sess, &c.matches)
		}
		c.sendPacket(&packet.Pubrec{PacketID: p.PacketID}) // [MQTT-4.3.3-8]
	}
	return nil
}

// resolveAlias applies an inbound 5.0 Topic Alias [MQTT-3.3.2-12].
func (c *conn) resolveAlias(p *packet.Publish) error {
	if !p.Properties.Has(packet.PropTopicAlias) {
		return nil
	}
	alias := p.Properties.TopicAlias
	if int(alias) > c.srv.opts.TopicAliasMax() {
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
	var subID uint32
	if len(p.Properties.SubscriptionIDs) > 0 {
		subID = p.Properties.SubscriptionIDs[0]
	}
	for i, sub := range p.Subscriptions {
		if !c.checkTopic(sub.Filter) {
			codes[i] = packet.TopicFilterInvalid // 0x80 for 3.1.1 [MQTT-3.9.3-2]
			continue
		}
		granted := sub.QoS
		if granted > 2 {
			granted = 2
		}
		sub.QoS = granted
		filter := strings.Clone(sub.Filter)
		sub.Filter = filter
		share, inner, shared := topic.ParseShare(filter)
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
		s.subs[filter] = sub
		s.mu.Unlock()
		c.srv.subs.Add(ts)                    // replaces an identical filter [MQTT-3.8.4-3]
		codes[i] = packet.ReasonCode(granted) // [MQTT-3.8.4-5]
		if shared {
			continue // no retained messages on a shared subscription
		}
		_ = inner
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
	c.sendPacket(&packet.Suback{PacketID: p.PacketID, ReasonCodes: codes}) // [MQTT-3.8.4-1] [MQTT-3.8.4-2]
	for _, r := range sendRetained {
		var ids []uint32
		if r.id != 0 {
			ids = []uint32{r.id}
		}
		now := time.Now()
		c.srv.retained.Match(r.filter, func(_ string, m *message) bool {
			if m.expired(now) {
				return true
			}
			s.deliver(m, min(m.qos, r.sub.QoS), true, ids) // [MQTT-3.3.1-6] [MQTT-3.3.1-8]
			return true
		})
	}
	return nil
}

func (c *conn) handleUnsubscribe(p *packet.Unsubscribe) error {
	s := c.sess
	codes := make([]packet.ReasonCode, len(p.Filters))
	for i, f := range p.Filters {
		s.mu.Lock()
		_, ok := s.subs[f]
		delete(s.subs, f)
		s.mu.Unlock()
		if ok && c.srv.subs.Remove(s, f) { // [MQTT-3.10.4-1]
			codes[i] = packet.Success
		} else {
			codes[i] = packet.NoSubscriptionExisted
		}
	}
	c.sendPacket(&packet.Unsuback{PacketID: p.PacketID, ReasonCodes: codes}) // [MQTT-3.10.4-4] [MQTT-3.10.4-5]
	return nil
}
