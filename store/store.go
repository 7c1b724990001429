// Package store defines where the broker keeps the state that outlives a
// connection: sessions with their subscriptions, the per-session queues of
// QoS 1 and 2 deliveries, and retained messages. A Store is three small
// interfaces; store/memory implements them in RAM.
//
// The broker writes through to the store as state changes and reads it
// back only when it starts (Load* calls), so a store need not be fast to
// read, only to write.
package store

import (
	"errors"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// ErrNotFound is returned for a session or entry the store does not hold.
var ErrNotFound = errors.New("store: not found")

// Store bundles the three parts of the broker's durable state.
type Store interface {
	SessionStore
	QueueStore
	RetainedStore
	Close() error
}

// Syncer is implemented by a Store whose writes are buffered when they
// return. The broker calls Sync before it acknowledges what it stored
// (PUBACK, PUBREC, SUBACK, UNSUBACK, CONNACK), after a retained message and
// after a session ended at DISCONNECT, so that an acknowledged write
// survives a crash.
type Syncer interface {
	// Sync makes every write that returned before the call survive a
	// crash of the process (it is in the operating system, not a buffer of
	// the process) and, if the store is so configured, of the machine
	// (fsync); concurrent calls share one write and one fsync.
	Sync() error
}

// Session is a persistent session as stored.
type Session struct {
	ClientID      string
	Version       byte          // protocol level of the last connection
	Expiry        time.Duration // 5.0 Session Expiry Interval; 0 with a 3.1.1 persistent session means never
	Disconnected  time.Time     // when the last connection ended; zero while connected
	Subscriptions []Subscription
	// Owner is the identity that created the session ("user:NAME",
	// "cert:IDENTITY" or "anonymous"); empty when not recorded.
	Owner string
	// Inbound lists the QoS 2 packet identifiers received from the client
	// and awaiting PUBREL, for stores that implement InboundStore.
	Inbound []uint16
}

// Unwrapper is implemented by decorators of a Store (one that times its
// calls, say) to expose the store they wrap, so that the optional
// capabilities of the inner store stay reachable through Find.
type Unwrapper interface {
	Unwrap() Store
}

// Find returns the first store along st's Unwrap chain that implements T.
func Find[T any](st Store) (T, bool) {
	for st != nil {
		if t, ok := st.(T); ok {
			return t, true
		}
		u, ok := st.(Unwrapper)
		if !ok {
			break
		}
		st = u.Unwrap()
	}
	var zero T
	return zero, false
}

// QueueSeeker is implemented by stores that can read a queue from a
// position on without scanning what comes before it.
type QueueSeeker interface {
	// LoadQueueAfter calls fn, in order, for the client's entries whose
	// Seq is greater than after.
	LoadQueueAfter(clientID string, after uint64, fn func(*Entry) error) error
}

// InboundStore is implemented by stores that keep the identifiers of
// inbound QoS 2 messages awaiting PUBREL, so that a broker restarted
// between PUBREC and PUBREL does not deliver a resent PUBLISH twice.
// LoadSessions then fills Session.Inbound.
type InboundStore interface {
	AddInbound(clientID string, id uint16) error
	RemoveInbound(clientID string, id uint16) error
}

// Subscription is one subscription of a session.
type Subscription struct {
	packet.Subscription
	ID uint32 // 5.0 subscription identifier, 0 when none
}

// Message is an application message held for delivery.
type Message struct {
	ID         uint64 // unique within the store, assigned by the broker
	Topic      string
	Payload    []byte
	QoS        byte
	Retain     bool
	Properties packet.Properties
	Created    time.Time
	Expiry     time.Time // zero: never
	// ClusterSeq is the cluster's sequence number of a QoS 1/2 message
	// (its position in the cluster's messages stream), 0 on a single node.
	ClusterSeq uint64
	// Source is who published a retained message, kept with it by
	// RetainedStore (not by queues) so that check_retain_source can
	// check its write access again after a restart; nil when unknown.
	Source *Source
}

// Source is the publisher of a retained message, as the authoriser sees
// it.
type Source struct {
	ClientID       string
	Username       string
	Listener       string
	CertCommonName string
}

// EntryState is where a queued delivery stands.
type EntryState uint8

const (
	EntryQueued   EntryState = iota // not yet sent
	EntrySent                       // PUBLISH sent, awaiting PUBACK/PUBREC
	EntryReleased                   // PUBREL sent, awaiting PUBCOMP
)

// Entry is one delivery in a session's queue: a reference to a message and
// the per-session state of its delivery.
type Entry struct {
	Seq      uint64 // position in the session's queue, increasing
	Message  *Message
	QoS      byte
	Retain   bool
	PacketID uint16
	State    EntryState
	SubIDs   []uint32
}

// SessionStore keeps persistent sessions.
type SessionStore interface {
	SaveSession(s *Session) error
	// DeleteSession removes the session and its queue.
	DeleteSession(clientID string) error
	LoadSessions(fn func(*Session) error) error
}

// QueueStore keeps each session's outbound QoS 1/2 deliveries in order.
// Append and Update keep neither the entries slice nor the *Entry values
// after they return (the broker reuses them); they may keep e.Message.
type QueueStore interface {
	// Append adds entries at the end of the client's queue.
	Append(clientID string, entries ...*Entry) error
	// Update records a new packet identifier or state of an entry.
	Update(clientID string, e *Entry) error
	// Remove deletes a completed delivery.
	Remove(clientID string, seq uint64) error
	// LoadQueue calls fn for each entry of the client's queue, in order.
	LoadQueue(clientID string, fn func(*Entry) error) error
}

// RetainedStore keeps the retained message of each topic.
type RetainedStore interface {
	SetRetained(m *Message) error
	DeleteRetained(topic string) error
	LoadRetained(fn func(*Message) error) error
}

// Delayed is a message held for publication at a later time (the broker's
// delayed publish, "$delayed/{seconds}/{topic}"). Message.Topic is the
// topic it will be published to.
type Delayed struct {
	ID      uint64 // unique among held messages, assigned by the broker
	Due     time.Time
	Message *Message
}

// DelayedStore is implemented by stores that keep delayed messages, so
// that a held message survives a restart. The broker finds it with Find;
// without it, held messages live in memory only.
type DelayedStore interface {
	AddDelayed(d *Delayed) error
	RemoveDelayed(id uint64) error
	// LoadDelayed calls fn for every held message, in ID order.
	LoadDelayed(fn func(*Delayed) error) error
}
