package broker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
)

// outState is where an outbound QoS 1/2 message stands.
type outState uint8

const (
	outQueued   outState = iota // waiting for a place in the inflight window
	outSent                     // PUBLISH sent, awaiting PUBACK or PUBREC
	outReleased                 // PUBREL sent, awaiting PUBCOMP
)

// outbound is one QoS 1/2 delivery to one session.
type outbound struct {
	msg    *message
	qos    byte
	retain bool // the RETAIN flag this copy carries
	id     uint16
	state  outState
	subIDs []uint32
	// held: the cluster records that this node holds it for a shared
	// member (SharedTracker), until acknowledged or sent at QoS 2.
	held   bool
	share  string    // the shared subscription group it was chosen for
	seq    uint64    // position in the stored queue; 0 when not stored
	resend bool      // inflight, to be re-sent (DUP, same identifier) when the window allows
	txn    *storeTxn // the transaction its stored entry was written in (storetxn.go)
}

// session is the state the broker keeps for one client identifier
// [MQTT-3.1.3-2]: subscriptions, outbound QoS 1/2 deliveries, inbound QoS 2
// identifiers awaiting PUBREL, and the will of its current connection.
//
// Lock order: Server.mu, then session.mu, then conn.wmu.
type session struct {
	// entryOut and entriesOut are the record appendLocked and updateLocked
	// pass to the store, reused (sess.mu): the store keeps neither.
	entryOut   store.Entry
	entriesOut [1]*store.Entry

	id  string
	srv *Server

	// conn is the session's live connection, nil while offline. Read
	// without the lock on the QoS 0 path; written with mu held.
	conn atomic.Pointer[conn]

	mu          sync.Mutex
	version     byte
	persistent  bool                          // clean session 0: kept after disconnect
	expiry      time.Duration                 // 5.0 session expiry interval
	subs        map[string]store.Subscription // by filter string, as sent
	inflight    []*outbound                   // sent, in send order
	queue       fifo                          // waiting, in arrival order
	nextID      uint16                        // last packet identifier used
	idsRestored bool                          // inflight restored from the store: identifiers maybe not in allocation order
	inbound2    map[uint16]struct{}           // QoS 2 identifiers awaiting PUBREL [MQTT-4.3.3-2]
	dropped     uint64                        // messages dropped because the queue was full
	maxInflight int                           // client's Receive Maximum capped by the broker's
	resends     int                           // inflight entries waiting to be re-sent
	timerGen    uint64                        // bumped when timers stop; callbacks check it

	pendingWill *message    // will waiting for its delay or the session's end
	willTimer   *time.Timer // fires the delayed will
	expiryTimer *time.Timer // ends the session while offline
	ended       atomic.Bool // discarded: deliveries to it go nowhere

	authc        atomic.Pointer[auth.Client] // who the client is, for delivery checks
	owner        string                      // identity that created it (identityOf); set with Server.mu and mu held
	stored       bool                        // the store holds a record of this session
	seq          uint64                      // last stored queue position
	disconnected time.Time                   // when the last connection ended
	spilled      int                         // queued deliveries kept only in the store
	spilledBytes int64                       // what they cost (outCost)
	loadedSeq    uint64                      // last stored position also held in memory
	// cseen, while the cluster replays messages to a session it loaded
	// (cluster.go), holds the cluster sequence numbers of the QoS 1/2
	// messages delivered to it since, so that none is delivered twice.
	cseen       map[uint64]struct{}
	txns        []*storeTxn // transactions that may hold deliveries of the session (storetxn.go)
	uncommitted int         // deliveries spilled in transactions not yet written
}

func newSession(srv *Server, id string) *session {
	s := &session{
		id:          id,
		srv:         srv,
		maxInflight: srv.opt().MaxInflight,
	}
	s.queue.total = &srv.queuedBytes
	return s
}

// deliver hands the session one message at the QoS and RETAIN flag chosen
// by routing. QoS 0 goes straight to the connection (or is dropped while
// offline); QoS 1/2 enters the inflight window or the queue.
func (s *session) deliver(m *message, qos byte, retain bool, subIDs []uint32, share string) {
	if qos == 0 {
		if c := s.conn.Load(); c != nil {
			if c.mayRead(m.topic) { // see readaccess.go
				c.sendPublish(m, 0, 0, retain, false, subIDs)
			}
			return
		}
		if !s.srv.opt().QueueQoS0 {
			return
		}
	}
	o := &outbound{msg: m, qos: qos, retain: retain, share: share}
	if len(subIDs) > 0 {
		o.subIDs = append([]uint32(nil), subIDs...)
	}
	s.mu.Lock()
	if s.ended.Load() {
		s.mu.Unlock()
		if share != "" {
			s.srv.redeliverShared([]*outbound{o})
		}
		return
	}
	if m.cseq != 0 && s.cseen != nil {
		if _, dup := s.cseen[m.cseq]; dup {
			s.mu.Unlock()
			return // arrived live and replayed: delivered once
		}
		s.cseen[m.cseq] = struct{}{}
	}
	if !s.mayRead(m.topic) { // under s.mu: whoever the session belongs to now
		s.mu.Unlock()
		return
	}
	if share != "" && qos > 0 && m.cseq != 0 && !s.stored {
		s.srv.sharedHeld(o, m.cseq)
	}
	c := s.conn.Load()
	switch {
	case c != nil && qos == 0: // came online meanwhile
		c.sendPublish(m, 0, 0, retain, false, subIDs)
	case c != nil && s.queue.len() == 0 && s.spilled == 0 && s.resends == 0 && len(s.inflight) < s.maxInflight && !s.overSessionCapLocked(o):
		s.sendLocked(c, o, false)
	case s.queueFullLocked() || s.overQueuedBytesLocked(o) || s.overSessionCapLocked(o):
		s.dropped++
		s.srv.stats.dropped.Add(1)
		m.countDropped(qos)
		s.srv.emitMessage(EventDropped, m, s.id, userOfAuth(s), DropQueueFull, qos)
	case s.overQueuedBytesTotalLocked(o) && !s.maySpillLocked():
		// Over the memory budget of all queues together, with no disk
		// to keep it on.
		s.dropped++
		s.srv.stats.dropped.Add(1)
		s.srv.stats.droppedBudget.Add(1)
		m.countDropped(qos)
		s.srv.emitMessage(EventDropped, m, s.id, userOfAuth(s), DropQueueFull, qos)
	case s.spillLocked() || s.overQueuedBytesTotalLocked(o):
		// Beyond what a session keeps in memory: the queue continues on
		// disk and is read back as the window drains.
		s.appendLocked(o)
		if o.txn != nil && o.txn.spill(s) {
			s.uncommitted++ // not on disk yet: no unspill until it is
		}
		s.spilled++
		s.spilledBytes += outCost(o)
	default:
		s.queue.push(o) // [MQTT-3.1.2-5]
		s.appendLocked(o)
		s.loadedSeq = o.seq
	}
	s.mu.Unlock()
}

// sendLocked assigns o a packet identifier, records it in the store (so
// that what the client sees is what a restarted broker finds), and sends
// it. queued tells whether o is already stored as a queued entry. s.mu held.
func (s *session) sendLocked(c *conn, o *outbound, queued bool) {
	if o.held && o.qos == 2 {
		s.srv.sharedDone(o) // sent at QoS 2: the member's now [MQTT-4.8.2-5]
	}
	o.id = s.allocIDLocked()
	o.state = outSent
	s.inflight = append(s.inflight, o)
	if queued {
		s.updateLocked(o)
	} else {
		s.appendLocked(o)
	}
	if !c.sendPublish(o.msg, o.qos, o.id, o.retain, false, o.subIDs) {
		// Too large for the client: dropped as if delivered [MQTT-3.1.2-25].
		s.inflight = s.inflight[:len(s.inflight)-1]
		s.removeLocked(o)
	}
}

// allocIDLocked returns a packet identifier not in use [MQTT-2.3.1-4]. s.mu held.
func (s *session) allocIDLocked() uint16 {
	next := s.nextID + 1
	if next == 0 {
		next = 1
	}
	switch n := len(s.inflight); {
	case n == 0:
		s.idsRestored = false
		s.nextID = next
		return next
	case !s.idsRestored:
		// Identifiers are allocated in turn and the window keeps them in
		// that order, so those in use lie between the oldest's and
		// nextID, circularly: the next one is free unless that range has
		// come round to it. No scan of a large window (a bridge's).
		first := s.inflight[0].id
		if idDistance(first, next) > idDistance(first, s.nextID) {
			s.nextID = next
			return next
		}
	}
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if !s.inUseLocked(s.nextID) {
			return s.nextID
		}
	}
}

// idDistance is how many identifiers to step from a to b, going up and
// round from 65535 to 1.
func idDistance(a, b uint16) int { return (int(b) - int(a) + 65535) % 65535 }

func (s *session) inUseLocked(id uint16) bool {
	for _, o := range s.inflight {
		if o.id == id {
			return true
		}
	}
	return false
}

// findLocked returns the index of inflight identifier id, or -1. s.mu held.
// Acknowledgements usually come in order, so the scan usually stops at 0.
func (s *session) findLocked(id uint16) int {
	for i, o := range s.inflight {
		if o.id == id {
			return i
		}
	}
	return -1
}

// fillLocked moves queued messages into the inflight window of the live
// connection, if there is one. s.mu held.
func (s *session) fillLocked() {
	c := s.conn.Load()
	if c == nil {
		return
	}
	now := time.Now()
	// Unacknowledged messages of an earlier connection go first, with
	// their identifiers, as the window allows [MQTT-4.4.0-1].
	for i := 0; s.resends > 0 && i < len(s.inflight) && len(s.inflight)-s.resends < s.maxInflight; i++ {
		if o := s.inflight[i]; o.resend {
			o.resend = false
			s.resends--
			if !c.sendPublish(o.msg, o.qos, o.id, o.retain, true, o.subIDs) { // [MQTT-3.3.1-1]
				s.dropInflightLocked(i) // [MQTT-3.1.2-25]
				i--
			}
		}
	}
	if s.spilled > 0 && s.uncommitted == 0 && s.queue.len() < queueMemory/2 && s.queue.bytes < queueMemoryBytes/2 {
		s.unspillBytesLocked(queueMemory-s.queue.len(), queueMemoryBytes)
	}
	for s.resends == 0 && s.queue.len() > 0 && len(s.inflight) < s.maxInflight {
		o := s.queue.pop()
		if o.msg.expired(now) { // [MQTT-3.3.2-5]
			s.srv.emitMessage(EventDropped, o.msg, s.id, userOfAuth(s), DropExpired, o.qos)
			s.removeLocked(o)
			continue
		}
		if !s.srv.allowed(s.authc.Load(), auth.Read, o.msg.topic) {
			s.removeLocked(o) // queued before the client was known (restored session)
			continue
		}
		if o.qos == 0 {
			c.sendPublish(o.msg, 0, 0, o.retain, false, o.subIDs)
			s.removeLocked(o)
			continue
		}
		s.sendLocked(c, o, true)
	}
}

// ackResult is what an acknowledgement from the client did.
type ackResult uint8

const (
	ackUnknown   ackResult = iota // no such identifier in flight
	ackDone                       // the acknowledgement applied
	ackWrongType                  // the identifier belongs to a flow of the other QoS
)

// acked handles PUBACK (QoS 1) and PUBCOMP (QoS 2): the identifier is free
// again [MQTT-2.3.1-4]. A PUBACK completes only a QoS 1 delivery and a
// PUBCOMP only a released QoS 2 one: an acknowledgement of the wrong type
// leaves the message unacknowledged [MQTT-4.3.2-3] [MQTT-4.3.3-3].
func (s *session) acked(id uint16, want outState) ackResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findLocked(id)
	if i < 0 {
		return ackUnknown
	}
	o := s.inflight[i]
	if o.state != want || (want == outSent && o.qos != 1) {
		return ackWrongType
	}
	if o.resend {
		s.resends--
	}
	if o.held {
		s.srv.sharedDone(o)
	}
	s.removeLocked(o)
	if i == 0 {
		// Acknowledgements usually come in order: the window moves
		// forward instead of shifting down (a bridge's holds 1,000).
		s.inflight[0] = nil
		s.inflight = s.inflight[1:]
	} else {
		copy(s.inflight[i:], s.inflight[i+1:])
		s.inflight[len(s.inflight)-1] = nil
		s.inflight = s.inflight[:len(s.inflight)-1]
	}
	s.fillLocked()
	return ackDone
}

// received handles PUBREC: the PUBLISH is settled and PUBREL goes out
// [MQTT-4.3.3-4]; the PUBLISH is never sent again [MQTT-4.3.3-6]. With a
// failure code the message is settled without PUBREL [MQTT-4.4.0-2]. A
// PUBREC for a QoS 1 delivery settles nothing [MQTT-4.3.2-3].
func (s *session) received(c *conn, id uint16, rc packet.ReasonCode) ackResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findLocked(id)
	if i < 0 {
		return ackUnknown
	}
	o := s.inflight[i]
	if o.qos != 2 {
		return ackWrongType
	}
	if o.resend {
		o.resend = false
		s.resends--
	}
	if rc.IsError() && o.state == outSent {
		s.removeLocked(o)
		copy(s.inflight[i:], s.inflight[i+1:])
		s.inflight[len(s.inflight)-1] = nil
		s.inflight = s.inflight[:len(s.inflight)-1]
		s.fillLocked()
		return ackDone
	}
	if o.state == outSent {
		o.state = outReleased
		s.updateLocked(o)
		o.msg = nil // the payload is no longer needed
	}
	c.sendPacket(&packet.Pubrel{PacketID: id})
	return ackDone
}

// resumeLocked re-sends, in their original order, the unacknowledged
// PUBLISH (with DUP) and PUBREL packets of a resumed session, then fills the
// window from the queue [MQTT-4.4.0-1] [MQTT-4.6.0-1]. Messages beyond a
// Receive Maximum smaller than before wait, keeping their identifiers.
// s.mu held.
func (s *session) resumeLocked(c *conn) {
	s.dropUnreadableLocked()
	s.resends = 0
	onWire := 0
	for i := 0; i < len(s.inflight); i++ {
		o := s.inflight[i]
		o.resend = false
		switch {
		case o.state == outReleased:
			c.sendPacket(&packet.Pubrel{PacketID: o.id})
			onWire++
		case onWire < s.maxInflight:
			if !c.sendPublish(o.msg, o.qos, o.id, o.retain, true, o.subIDs) { // [MQTT-3.3.1-1]
				// Too large for the client's new Maximum Packet Size: as
				// on the first send, dropped as if delivered, so that it
				// does not hold its place in the window for ever
				// [MQTT-3.1.2-25].
				s.dropInflightLocked(i)
				i--
				continue
			}
			onWire++
		default:
			o.resend = true
			s.resends++
		}
	}
	s.fillLocked()
}

// dropInflightLocked removes inflight entry i, which the client will never
// see, from the window and the store. s.mu held.
func (s *session) dropInflightLocked(i int) {
	s.removeLocked(s.inflight[i])
	copy(s.inflight[i:], s.inflight[i+1:])
	s.inflight[len(s.inflight)-1] = nil
	s.inflight = s.inflight[:len(s.inflight)-1]
}

// clearLocked drops all delivery state (clean session). s.mu held.
func (s *session) clearLocked() {
	s.inflight = nil
	s.resends = 0
	s.queue.reset()
	s.inbound2 = nil
}

// stopTimersLocked stops the session's expiry and will-delay timers. s.mu held.
func (s *session) stopTimersLocked() {
	s.timerGen++ // a callback already running finds it changed
	if s.expiryTimer != nil {
		s.expiryTimer.Stop()
		s.expiryTimer = nil
	}
	if s.willTimer != nil {
		s.willTimer.Stop()
		s.willTimer = nil
	}
}

// sharedInflightLocked returns the deliveries this session holds for shared
// subscriptions that another member may take over when the session ends:
// everything still queued, and QoS 1 messages sent but not acknowledged. A
// QoS 2 message already sent stays with this session [MQTT-4.8.2-4]
// [MQTT-4.8.2-5]. s.mu held.
func (s *session) sharedInflightLocked() []*outbound {
	var out []*outbound
	for _, o := range s.inflight {
		if o.share != "" && o.qos == 1 && o.msg != nil {
			out = append(out, o)
		}
	}
	for _, o := range s.queue.all() {
		if o.share != "" {
			out = append(out, o)
		}
	}
	return out
}
