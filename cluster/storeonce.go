package cluster

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// QoS 2 messages stored once (broker.OnceRouter).
//
// A QoS 2 message is stored in the messages stream, then routed, then its
// packet identifier's record is stored in the publisher's session, and
// only then PUBREC goes out. A node that dies between the first and the
// third leaves a message stored (and delivered, by the others' audits if
// not live) whose identifier no other node knows: the publisher, which
// had no PUBREC, resends the PUBLISH (DUP) to a survivor, which would
// take it for a new message and deliver it a second time. The record
// cannot go first: a node that died after it and before the store would
// make the resend look like a duplicate of a message never stored (lost).
//
// So each QoS 2 message is stored with a JetStream message identifier
// (Nats-Msg-Id) made of the publisher's client identifier, the packet
// identifier, the topic and the payload: within the stream's duplicate
// window (JetStream's default, two minutes) the same PUBLISH resent to any
// node is not stored again, and that node acknowledges it without
// routing it (broker.ErrStoredBefore). A client may reuse a packet
// identifier once the flow completed, for a new message with the same
// topic and payload: that one comes without DUP [MQTT-3.3.1-1], so a
// duplicate answer to a PUBLISH without DUP is stored again, under an
// identifier of its own.
//
// A store this node refused (its acknowledgement lost or late: stored all
// the same) was not forwarded, and the node's own audit skips what it
// stored: a resend of it to this node is delivered as a new message, from
// the stored copy (onceRefused).
//
// Not covered: a resend after the duplicate window (the publisher offline
// longer); a resend of such a reused identifier's message whose node died
// between the two stores; a resend to another node of a message whose
// store its live node refused (the others' audits deliver the stored copy,
// that node's own subscribers miss it).

// hdrMsgID is JetStream's message identifier header.
const hdrMsgID = jetstream.MsgIDHeader

// errDuplicate is asyncStored's answer for a message whose identifier
// was stored before.
var errDuplicate = errors.New("cluster: message identifier stored before")

// onceID is the JetStream message identifier of a QoS 2 PUBLISH.
func onceID(key broker.OnceKey, p *packet.Publish) string {
	h := sha256.New()
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(key.ClientID)))
	h.Write(n[:])
	h.Write([]byte(key.ClientID))
	binary.BigEndian.PutUint16(n[:2], key.PacketID)
	h.Write(n[:2])
	binary.BigEndian.PutUint32(n[:], uint32(len(p.Topic)))
	h.Write(n[:])
	h.Write([]byte(p.Topic))
	h.Write(p.Payload)
	return "q2-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}

// StoreOnce implements broker.OnceRouter.
func (c *Cluster) StoreOnce(p *packet.Publish, key broker.OnceKey, done func(uint64, error)) {
	if p.Retain || p.QoS != 2 {
		c.Store(p, done)
		return
	}
	msg, err := c.readyMsg(p)
	if err != nil {
		done(0, err)
		return
	}
	id := onceID(key, p)
	msg.Header.Set(hdrMsgID, id)
	topicName := p.Topic
	c.storeAsync(msg, topicName, func(seq uint64, err error) {
		if err != nil && !errors.Is(err, errDuplicate) {
			c.onceRefuse(id)
		}
		if !errors.Is(err, errDuplicate) {
			done(seq, err)
			return
		}
		if c.onceWasRefused(id) {
			// This node refused it before (its acknowledgement lost or
			// late) and forwarded nothing, and its own audit skips what
			// it stored: the stored copy is delivered from here now.
			c.stored(seq)
			done(seq, nil)
			return
		}
		if key.Dup {
			c.log.Info("cluster: a resent QoS 2 message was stored before (its node died before acknowledging it): acknowledged, not routed again", "client", key.ClientID, "packet_id", key.PacketID, "topic", topicName, "seq", seq)
			done(0, broker.ErrStoredBefore)
			return
		}
		// A new message that reuses the identifier of an earlier one
		// with the same topic and payload: stored under its own. Not on
		// the JetStream client's goroutine, which a full window would
		// stall.
		again := &nats.Msg{Subject: msg.Subject, Data: msg.Data, Header: nats.Header{}}
		for k, v := range msg.Header {
			again.Header[k] = v
		}
		again.Header.Set(hdrMsgID, id+"-"+nuid.Next())
		go c.storeAsync(again, topicName, done)
	})
}

// onceWindow is how long a refused store is remembered: JetStream's
// default duplicate window.
const onceWindow = 2 * time.Minute

// onceRefuse remembers that this node refused the publisher the QoS 2
// message with identifier id: the store may have happened all the same.
func (c *Cluster) onceRefuse(id string) {
	now := time.Now()
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	if c.onceRefused == nil {
		c.onceRefused = make(map[string]time.Time)
	}
	if len(c.onceRefused) >= 4096 {
		for k, at := range c.onceRefused {
			if now.Sub(at) > onceWindow {
				delete(c.onceRefused, k)
			}
		}
	}
	c.onceRefused[id] = now
}

// onceWasRefused reports (once) whether this node refused the store of
// the QoS 2 message with identifier id within the duplicate window.
func (c *Cluster) onceWasRefused(id string) bool {
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	at, ok := c.onceRefused[id]
	delete(c.onceRefused, id)
	return ok && time.Since(at) <= onceWindow
}
