package broker

import (
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// The event seam: what happens to clients and messages, told to observers
// (webhooks, traces) as it happens. With no observer the broker pays one
// atomic load and a nil check at each point, and allocates nothing.

// EventKind is what an Event reports.
type EventKind uint8

const (
	EventConnected      EventKind = iota + 1 // a client's CONNECT was accepted
	EventDisconnected                        // a connected client's connection ended; Reason says why
	EventSubscribed                          // a subscription was made; Topic is the filter
	EventUnsubscribed                        // a subscription was removed; Topic is the filter
	EventPublished                           // a message was routed (from a client, a will, or the broker)
	EventDelivered                           // a PUBLISH was written to a subscriber
	EventDropped                             // a message went nowhere, or not to one subscriber; Reason says why
	EventSessionCreated                      // a new session (no session present)
	EventSessionEnded                        // a session was discarded: clean, expired or replaced
	EventPacketIn                            // a control packet from a client (PacketObserver only)
	EventPacketOut                           // a control packet other than PUBLISH to a client (PacketObserver only)
)

var eventNames = [...]string{
	EventConnected:      "client.connected",
	EventDisconnected:   "client.disconnected",
	EventSubscribed:     "client.subscribed",
	EventUnsubscribed:   "client.unsubscribed",
	EventPublished:      "message.published",
	EventDelivered:      "message.delivered",
	EventDropped:        "message.dropped",
	EventSessionCreated: "session.created",
	EventSessionEnded:   "session.ended",
	EventPacketIn:       "packet.in",
	EventPacketOut:      "packet.out",
}

// String returns the event's name as webhooks and traces write it
// ("client.connected", "message.dropped").
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// ParseEventKind returns the kind named name (see EventKind.String).
func ParseEventKind(name string) (EventKind, bool) {
	for k, n := range eventNames {
		if n == name && n != "" {
			return EventKind(k), true
		}
	}
	return 0, false
}

// Reasons an EventDropped or EventDisconnected carries.
const (
	DropQueueFull      = "queue_full"     // the session's queue is at its limit
	DropSlowClient     = "slow_client"    // QoS 0: the client does not read fast enough
	DropTooLarge       = "too_large"      // over the client's Maximum Packet Size
	DropExpired        = "expired"        // its Message Expiry Interval passed while queued
	DropNoSubscribers  = "no_subscribers" // published, matched by nobody
	DropNotAuthorized  = "not_authorized" // the publisher may not publish there
	DropQuotaExceeded  = "quota_exceeded" // a retained message over the retained quota, refused
	DropSessionEnded   = "session_ended"  // the subscriber's session ended before delivery
	DisconnectNormal   = "normal"         // DISCONNECT from the client
	DisconnectTakeover = "takenover"      // another connection took the session over
	DisconnectKicked   = "kicked"         // closed by the broker (admin, shutdown, slow reader)
	DisconnectKeepAliv = "keepalive_timeout"
	DisconnectClosed   = "closed"         // the network connection closed without DISCONNECT
	DisconnectProtocol = "protocol_error" // the client broke the protocol; Detail says how
	DisconnectError    = "error"          // a network error; Detail says which
)

// Event is one thing that happened. Fields that do not apply are zero.
// Its strings stay valid after the call.
// Payload is the message's own immutable bytes: an observer may keep it
// but must never modify it; only for EventPacketIn it is the read buffer,
// valid during the call alone.
type Event struct {
	Kind     EventKind
	Time     time.Time
	ClientID string // the client concerned: publisher, subscriber, or the session's
	Username string
	Remote   string // the client's address (connect and disconnect events)
	Protocol byte   // 3, 4 or 5 (connect events)

	Topic   string // topic name, or the filter for subscribe events
	QoS     byte
	Retain  bool
	Payload []byte

	Reason string // why a message was dropped or a client disconnected
	Detail string // more about Reason, for an operator
	Packet string // EventPacketIn/Out: the packet type (PUBACK, PINGREQ, ...)
	Clean  bool   // EventConnected: clean start; EventSessionEnded: discarded by the client, not expired
}

// Observer is told of events. Observe runs on the goroutine where the
// event happens, possibly with broker locks held: it must return quickly,
// must not block, and must not call back into the Server (queue the event
// and handle it elsewhere). e is valid only during the call.
type Observer interface {
	Observe(e *Event)
}

// PacketObserver is an Observer that also wants EventPacketIn and
// EventPacketOut for some clients: asked at each packet, it must answer
// quickly.
type PacketObserver interface {
	Observer
	ObservePackets(clientID string) bool
}

// observers is an immutable set; AddObserver swaps it whole.
type observers struct {
	all     []Observer
	packets []PacketObserver
}

var observersMu sync.Mutex // serialises AddObserver and its remove functions

// AddObserver starts telling o of events, until the function it returns
// is called.
func (s *Server) AddObserver(o Observer) (remove func()) {
	observersMu.Lock()
	defer observersMu.Unlock()
	next := &observers{}
	if cur := s.observers.Load(); cur != nil {
		next.all = slices.Clone(cur.all)
		next.packets = slices.Clone(cur.packets)
	}
	next.all = append(next.all, o)
	if po, ok := o.(PacketObserver); ok {
		next.packets = append(next.packets, po)
	}
	s.observers.Store(next)
	var once sync.Once
	return func() {
		once.Do(func() {
			observersMu.Lock()
			defer observersMu.Unlock()
			cur := s.observers.Load()
			if cur == nil {
				return
			}
			next := &observers{}
			for _, x := range cur.all {
				if x != o {
					next.all = append(next.all, x)
				}
			}
			for _, x := range cur.packets {
				if Observer(x) != o {
					next.packets = append(next.packets, x)
				}
			}
			if len(next.all) == 0 {
				next = nil
			}
			s.observers.Store(next)
		})
	}
}

// emit tells every observer of e.
func (obs *observers) emit(e *Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	for _, o := range obs.all {
		o.Observe(e)
	}
}

// emitMessage tells of a message event.
func (s *Server) emitMessage(kind EventKind, m *message, clientID, user, reason string, qos byte) {
	if s.observers.Load() != nil { // inlined: no call without an observer
		s.emitMessageSlow(kind, m, clientID, user, reason, qos)
	}
}

func (s *Server) emitMessageSlow(kind EventKind, m *message, clientID, user, reason string, qos byte) {
	obs := s.observers.Load()
	if obs == nil {
		return
	}
	obs.emit(&Event{Kind: kind, ClientID: clientID, Username: user, Topic: m.topic, QoS: qos, Retain: m.retain, Payload: m.payload, Reason: reason})
}

// emitClient tells of a client event of connection c.
func (s *Server) emitClient(kind EventKind, c *conn, topicOrFilter string, qos byte, reason, detail string) {
	if s.observers.Load() != nil { // inlined: no call without an observer
		s.emitClientSlow(kind, c, topicOrFilter, qos, reason, detail)
	}
}

func (s *Server) emitClientSlow(kind EventKind, c *conn, topicOrFilter string, qos byte, reason, detail string) {
	obs := s.observers.Load()
	if obs == nil {
		return
	}
	// An UNSUBSCRIBE's filter is a slice of the read buffer, reused once
	// the packet is handled; observers keep events, so copy it.
	e := &Event{Kind: kind, ClientID: c.clientID, Username: userOf(c), Topic: strings.Clone(topicOrFilter), QoS: qos, Reason: reason, Detail: detail, Protocol: c.version}
	if kind == EventConnected || kind == EventDisconnected {
		e.Remote = c.nc.RemoteAddr().String()
	}
	obs.emit(e)
}

// emitSession tells of a session created or ended.
func (s *Server) emitSession(kind EventKind, sess *session, reason string) {
	if s.observers.Load() != nil { // inlined: no call without an observer
		s.emitSessionSlow(kind, sess, reason)
	}
}

func (s *Server) emitSessionSlow(kind EventKind, sess *session, reason string) {
	obs := s.observers.Load()
	if obs == nil {
		return
	}
	obs.emit(&Event{Kind: kind, ClientID: sess.id, Username: userOfAuth(sess), Reason: reason})
}

// emitPacket tells packet observers that want c's packets of packet p.
func (s *Server) emitPacket(kind EventKind, c *conn, p packet.Packet) {
	if s.observers.Load() != nil { // inlined: no call without an observer
		s.emitPacketSlow(kind, c, p)
	}
}

func (s *Server) emitPacketSlow(kind EventKind, c *conn, p packet.Packet) {
	obs := s.observers.Load()
	if obs == nil || len(obs.packets) == 0 {
		return
	}
	var e *Event
	for _, o := range obs.packets {
		if !o.ObservePackets(c.clientID) {
			continue
		}
		if e == nil {
			e = &Event{Kind: kind, Time: time.Now(), ClientID: c.clientID, Username: userOf(c), Packet: p.Type().String()}
			switch p := p.(type) {
			case *packet.Publish:
				e.Topic, e.QoS, e.Retain, e.Payload = p.Topic, p.QoS, p.Retain, p.Payload
			case *packet.Disconnect:
				e.Reason = p.ReasonCode.String()
			}
		}
		o.Observe(e)
	}
}

func userOf(c *conn) string {
	if c.authc != nil {
		return c.authc.Username
	}
	return ""
}

func userOfAuth(sess *session) string {
	if a := sess.authc.Load(); a != nil {
		return a.Username
	}
	return ""
}

// disconnectReason names why a connected client's read loop ended with err.
func disconnectReason(c *conn, err error) (reason, detail string) {
	var perr *packet.Error
	var ce *closeError
	switch {
	case c.takenOver.Load() || errors.Is(err, errTakenOver):
		return DisconnectTakeover, ""
	case errors.Is(err, errDisconnect):
		return DisconnectNormal, ""
	case c.closed.Load() && !c.clean && !errors.As(err, &perr) && !errors.As(err, &ce):
		return DisconnectKicked, ""
	case errors.As(err, &perr):
		return DisconnectProtocol, perr.Code.String() + ": " + perr.Msg
	case errors.As(err, &ce):
		return DisconnectProtocol, ce.code.String() + ": " + ce.msg
	case isTimeout(err):
		return DisconnectKeepAliv, ""
	case err == nil || err == io.EOF || errors.Is(err, net.ErrClosed):
		return DisconnectClosed, ""
	}
	return DisconnectError, err.Error()
}

// emitPublished tells of a message published (kind EventPublished) or
// dropped for reason (EventDropped), by from (nil: the broker or a will).
func (s *Server) emitPublished(m *message, from *session, kind EventKind, reason string) {
	if s.observers.Load() != nil { // inlined: no call without an observer
		s.emitPublishedSlow(m, from, kind, reason)
	}
}

func (s *Server) emitPublishedSlow(m *message, from *session, kind EventKind, reason string) {
	obs := s.observers.Load()
	if obs == nil {
		return
	}
	id, user := "", ""
	if from != nil {
		id, user = from.id, userOfAuth(from)
	}
	obs.emit(&Event{Kind: kind, ClientID: id, Username: user, Topic: m.topic, QoS: m.qos, Retain: m.retain, Payload: m.payload, Reason: reason})
}
