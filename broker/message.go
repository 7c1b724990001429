package broker

import (
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
)

// message is an application message the broker owns: immutable once routed,
// shared by every queue and subscriber that holds it.
type message struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
	props   packet.Properties // 5.0 properties forwarded to subscribers
	created time.Time
	expiry  time.Time    // zero: never expires
	source  *auth.Client // the publisher of a retained message, with Options.CheckRetainSource

	// owner is the publisher's identity (identityOf), charged for the
	// message while it is retained; "" for the broker's own and restored
	// ones. refuseOverQuota asks publish to drop, not just leave
	// unretained, a retained message over its quota. Both are set before
	// the message is routed.
	owner           string
	refuseOverQuota bool

	// tm are the per-topic counters of the filters the topic matches
	// (topicmetrics.go), set by publish before the message is shared.
	tm []*topicCounters

	// enc caches the 3.1/3.1.1 encoding of the message, one for QoS 0 and
	// one for QoS 1/2 (whose packet identifier and flags are patched per
	// copy), so a publish is encoded once for all such subscribers.
	enc [2]atomic.Pointer[[]byte]

	// via is the batch of the read loop routing the message, while it
	// routes it: the copies it queues are written at the end of that read
	// (write.go). nil otherwise.
	via atomic.Pointer[batch]

	// cseq is the cluster's sequence number of a QoS 1/2 message stored
	// by the cluster (SequencedRouter), 0 otherwise. Set before the
	// message is delivered.
	cseq uint64
	// txn is the store transaction of the routing of an inbound QoS 2
	// message, while it routes it (storetxn.go). nil otherwise.
	txn atomic.Pointer[storeTxn]

	// stored is the store's record of the message, made on first need.
	stored atomic.Pointer[store.Message]

	// small holds topic and payload of a small message (newMessage), in
	// the message's own allocation.
	small [smallMessage]byte
}

// smallMessage is the most topic and payload bytes a message holds inline.
const smallMessage = 128

// newMessage copies an inbound PUBLISH (which aliases the read buffer) into
// a message the broker owns: topic and payload share one buffer (the topic
// is a string over it, not a copy), inside the message when small.
func newMessage(p *packet.Publish, now time.Time) *message {
	m := &message{qos: p.QoS, retain: p.Retain, created: now}
	var buf []byte
	if n := len(p.Topic) + len(p.Payload); n <= smallMessage {
		buf = m.small[:n:n]
	} else {
		buf = make([]byte, n)
	}
	copy(buf, p.Topic)
	copy(buf[len(p.Topic):], p.Payload)
	m.topic = unsafe.String(unsafe.SliceData(buf), len(p.Topic)) // buf's first bytes are never written again
	m.payload = buf[len(p.Topic):]
	if !p.Properties.Empty() {
		m.props = p.Properties.Clone()
		m.props.Present.Remove(packet.PropTopicAlias)
		m.props.SubscriptionIDs = nil
		if m.props.Has(packet.PropMessageExpiry) {
			m.expiry = now.Add(time.Duration(m.props.MessageExpiry) * time.Second)
		}
	}
	return m
}

// expired reports whether the message's expiry interval has passed.
func (m *message) expired(now time.Time) bool {
	return !m.expiry.IsZero() && !now.Before(m.expiry)
}

// encoded311 returns the cached 3.1.1 encoding at QoS 0 or at QoS 1/2 with a
// zero packet identifier at offset idOffset311.
func (m *message) encoded311(qos byte) []byte {
	i := 0
	if qos > 0 {
		i = 1
	}
	if b := m.enc[i].Load(); b != nil {
		return *b
	}
	p := packet.Publish{QoS: qos, Topic: m.topic, Payload: m.payload}
	if qos > 0 {
		p.PacketID = 1 // patched per copy
	}
	b, _ := p.Append(make([]byte, 0, p.Size(packet.V311)), packet.V311)
	m.enc[i].Store(&b)
	return b
}
