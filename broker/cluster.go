package broker

import (
	"errors"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/topic"
)

// Cluster connects the broker to the other nodes of a cluster (package
// cluster implements it on NATS JetStream; the broker never imports it).
// With Options.Cluster nil the broker is a single node and none of this
// runs.
//
// The broker tells the cluster what this node subscribes to and hands it
// every message published here; the cluster hands the broker, through
// Inbound, what other nodes published and the cluster-wide retained
// messages. Shared subscriptions ($share/GROUP/FILTER) are served through
// the cluster alone, so that each message reaches one member cluster-wide:
// a node never delivers a message to a shared member unless the cluster
// handed it to the node for that group.
type Cluster interface {
	// Start is called once by New, before any client connects, with the
	// side of the broker the cluster delivers into.
	Start(in Inbound) error
	// Route hands the cluster a message published on this node (by a
	// client, a will or Server.Publish), before it is delivered locally.
	// For QoS 1 and 2 and retained messages it returns once the cluster
	// has accepted the message, or an error: the publisher is then refused
	// (5.0: 0x80; 3.1.1: the connection is closed), never acknowledged.
	// p is only valid during the call.
	Route(p *packet.Publish) error
	// Subscribe tells the cluster that one more subscription on this
	// node uses filter (a plain filter or $share/GROUP/FILTER);
	// Unsubscribe that one fewer does. The cluster counts them: it needs
	// the other nodes' messages for a filter while its count is above 0.
	Subscribe(filter string)
	Unsubscribe(filter string)
	// Close leaves the cluster; the broker calls it from Server.Close.
	Close() error
}

// Inbound is the side of the broker a Cluster delivers into. Its methods
// may be called from any goroutine, but not concurrently with each other
// for the same topic if order matters (the cluster delivers in order).
type Inbound interface {
	// Deliver hands a message published on another node to this node's
	// matching subscriptions. With share "", it goes to the matching
	// non-shared subscriptions; otherwise to one member of the shared
	// group share among the subscriptions of filter. Deliver keeps
	// nothing of p after it returns.
	Deliver(p *packet.Publish, share, filter string)
	// Retain makes p the retained message of its topic on this node (an
	// empty payload deletes it), without delivering it.
	Retain(p *packet.Publish)
	// TakeOver ends the connection of clientID on this node, if any, as
	// taken over by a connection on another node (5.0: 0x8E
	// [MQTT-3.1.4-3]), and drops its session here: the session now lives
	// where the client connected. It returns once that is done.
	TakeOver(clientID string)
	// Publish publishes p as if a client of this node had (a will the
	// cluster keeps for a node that died): to the cluster and to local
	// subscribers, retained handling included.
	Publish(p *packet.Publish)
	// DeliverSeq is Deliver for a QoS 1/2 message that the cluster stored
	// with sequence number seq (see SequencedRouter).
	DeliverSeq(p *packet.Publish, share, filter string, seq uint64)
	// Adopt makes a persistent session read from the cluster's shared
	// store (SharedSessions) one of this node's, offline, with its
	// subscriptions, queue, inflight messages and expiry. It returns false
	// if this node already has a session for the client identifier. Until
	// EndReplay, the session takes each cluster sequence number once.
	Adopt(rec *store.Session, entries []*store.Entry) bool
	// Replay delivers p, stored by the cluster with sequence seq, to the
	// matching non-shared subscriptions of clientID's session, unless the
	// session got seq already since Adopt.
	Replay(clientID string, p *packet.Publish, seq uint64)
	// EndReplay ends the replay that Adopt began.
	EndReplay(clientID string)
}

// SharedTracker is implemented by a Cluster that hands the messages a
// node held for a member of a shared subscription to another member if the
// node dies [MQTT-4.8.2-5]. The broker tells it about the QoS 1/2 messages
// (numbered by SequencedRouter) it holds for members with a clean session
// (a persistent member's stay in its session, which survives its node):
// SharedHeld when one is queued or sent to a member, SharedDone when the
// member acknowledged it (QoS 1) or got it at QoS 2. Both are called with
// the session's lock held and must not block.
type SharedTracker interface {
	SharedHeld(group string, seq uint64)
	SharedDone(group string, seq uint64)
}

// SequencedRouter is implemented by a Cluster that numbers the QoS 1/2
// messages it stores, so that a session resumed on another node can be
// given the ones its previous node had not applied (Inbound.Replay).
type SequencedRouter interface {
	// RouteSeq is Route that also returns the sequence number the
	// cluster stored a QoS 1/2 message with (0 for other messages).
	RouteSeq(p *packet.Publish) (uint64, error)
}

// SharedSessions is implemented by a Cluster that keeps persistent
// sessions where every node reads them, so that a client resumes its
// session on any node.
type SharedSessions interface {
	// SessionStore returns the store the broker uses instead of local:
	// sessions, their queues and inbound QoS 2 identifiers go to the
	// cluster, the rest to local. Its LoadSessions yields nothing (a node
	// loads a session when its client connects, or adopts it); it
	// implements SessionLoader.
	SessionStore(local store.Store) store.Store
}

// SessionLoader is implemented by a store shared by the nodes of a
// cluster (SharedSessions).
type SessionLoader interface {
	// LoadSession reads clientID's session and queue, once this node has
	// claimed the client identifier (SessionOwners.Claim); ErrNotFound
	// when there is none.
	LoadSession(clientID string) (*store.Session, []*store.Entry, error)
}

// WillKeeper is implemented by a Cluster that publishes, from a surviving
// node, the wills of the clients of a node that dies.
type WillKeeper interface {
	// KeepWill records the will of clientID's connection on this node,
	// once it is connected; DropWill forgets it when the connection ends
	// (this node then publishes or drops the will itself). The broker
	// calls them with no lock held.
	KeepWill(clientID string, will *packet.Publish, delay time.Duration)
	DropWill(clientID string)
}

// SessionOwners is implemented by a Cluster that gives each client
// identifier one owning node, so that two nodes never both keep a live
// connection for it.
type SessionOwners interface {
	// Claim makes this node the owner of clientID's session, asking the
	// previous owner to take its connection over (Inbound.TakeOver). The
	// broker calls it before it accepts a CONNECT, with no lock held; an
	// error refuses the CONNECT (0x88 Server unavailable).
	Claim(clientID string) error
	// Owns reports whether this node still owns clientID, as claimed by
	// the last Claim; the broker asks once the connection is attached and
	// takes it over itself if another node claimed the identifier
	// meanwhile.
	Owns(clientID string) bool
}

// RetainedSyncer is implemented by a Cluster whose retained messages reach
// this node asynchronously (through Inbound.Retain). SyncRetained returns
// once every retained message the cluster had acknowledged when it was
// called has been applied here (or it gives up after a bounded wait), so
// that a SUBSCRIBE on any node gets a retained message whose publisher has
// its acknowledgement. The broker calls it before it looks up the retained
// messages of a SUBSCRIBE, with no lock held.
type RetainedSyncer interface {
	SyncRetained()
}

// syncRetained waits for the cluster's retained messages before a
// SUBSCRIBE that may get some looks them up.
func (s *Server) syncRetained(p *packet.Subscribe) {
	rs, ok := s.cluster.(RetainedSyncer)
	if !ok {
		return
	}
	for _, sub := range p.Subscriptions {
		if _, _, shared := topic.ParseShare(sub.Filter); !shared && sub.RetainHandling < 2 {
			rs.SyncRetained()
			return
		}
	}
}

// inbound is the Server's Inbound.
type inbound struct{ s *Server }

func (in inbound) Deliver(p *packet.Publish, share, filter string) {
	in.s.deliverRemote(p, share, filter, 0)
}

func (in inbound) DeliverSeq(p *packet.Publish, share, filter string, seq uint64) {
	in.s.deliverRemote(p, share, filter, seq)
}

func (in inbound) Adopt(rec *store.Session, entries []*store.Entry) bool {
	return in.s.adoptShared(rec, entries)
}

func (in inbound) Replay(clientID string, p *packet.Publish, seq uint64) {
	in.s.replay(clientID, p, seq)
}

func (in inbound) EndReplay(clientID string) {
	in.s.mu.Lock()
	sess := in.s.sessions[clientID]
	in.s.mu.Unlock()
	if sess != nil {
		sess.mu.Lock()
		sess.cseen = nil
		sess.mu.Unlock()
	}
}

func (in inbound) Retain(p *packet.Publish) { in.s.retainRemote(p) }

func (in inbound) TakeOver(clientID string) { in.s.takeOverRemote(clientID) }

func (in inbound) Publish(p *packet.Publish) {
	m := newMessage(p, time.Now())
	in.s.pubMu.Lock()
	in.s.publish(m, nil, &in.s.pubMatches)
	in.s.pubMu.Unlock()
}

// keepWill tells the cluster about a connection's will.
func (s *Server) keepWill(c *conn) {
	wk, ok := s.cluster.(WillKeeper)
	if !ok || c.will == nil {
		return
	}
	w := c.will
	wk.KeepWill(c.clientID, &packet.Publish{Topic: w.topic, Payload: w.payload, QoS: w.qos, Retain: w.retain, Properties: w.props}, c.willDelay)
	c.willKept = true
}

// dropWill tells the cluster that a connection with a kept will ended.
func (s *Server) dropWill(c *conn) {
	if wk, ok := s.cluster.(WillKeeper); ok && c.willKept {
		wk.DropWill(c.clientID)
	}
}

// takeOverRemote ends the local connection and session of clientID, which
// another node now owns. The connection first handles what it received,
// as in a local takeover (takeover.go).
func (s *Server) takeOverRemote(id string) {
	s.mu.Lock()
	var owner string
	if sess := s.sessions[id]; sess != nil {
		owner = sess.owner // the other node checked the identity against its own sessions
	}
	s.mu.Unlock()
	s.letFinish(id, owner)
	_, shared := s.store.(SessionLoader)
	s.mu.Lock()
	sess := s.sessions[id]
	var oc *conn
	if sess != nil && shared {
		// The session moves with its client: its store record stays for
		// the node that now owns it (the cluster stores what this node
		// queued for it before it answers the other node).
		sess.mu.Lock()
		sess.stored = false
		sess.mu.Unlock()
	}
	if sess != nil {
		if oc = sess.conn.Swap(nil); oc != nil {
			oc.takenOver.Store(true)
		}
		s.discardLocked(sess)
	}
	s.mu.Unlock()
	if sess != nil {
		s.log.Info("session taken over by a connection on another node", "client", id)
	}
	if oc != nil {
		if oc.version >= packet.V5 {
			oc.closeWith(&packet.Disconnect{ReasonCode: packet.SessionTakenOver}) // [MQTT-3.1.4-3]
		} else {
			oc.closeWith(nil)
		}
	}
}

// routeFailed is what publish returns when the cluster refused a message.
const routeFailed = -2

// routed reports whether a message published here goes to the cluster:
// $SYS topics are each node's own.
func routed(topicName string) bool { return !strings.HasPrefix(topicName, "$SYS") }

// route hands m to the cluster. It returns false if the cluster refused it.
func (s *Server) route(m *message) bool {
	if s.cluster == nil || !routed(m.topic) {
		return true
	}
	p := packet.Publish{Topic: m.topic, Payload: m.payload, QoS: m.qos, Retain: m.retain, Properties: m.props}
	if !m.expiry.IsZero() { // what is left of the expiry interval travels [MQTT-3.3.2-6]
		left := time.Until(m.expiry)
		if left <= 0 {
			return true
		}
		p.Properties.MessageExpiry = uint32((left + time.Second - 1) / time.Second)
	}
	var err error
	if sr, ok := s.cluster.(SequencedRouter); ok {
		m.cseq, err = sr.RouteSeq(&p)
	} else {
		err = s.cluster.Route(&p)
	}
	if err != nil {
		s.log.Warn("cluster refused a message: the publisher is not acknowledged", "topic", m.topic, "qos", m.qos, "error", err)
		return false
	}
	return true
}

// clusterSub and clusterUnsub keep the cluster's count of this node's
// subscriptions per filter: called when the trie gains or loses one.
func (s *Server) clusterSub(filter string) {
	if s.cluster != nil {
		s.cluster.Subscribe(filter)
	}
}

func (s *Server) clusterUnsub(filter string) {
	if s.cluster != nil {
		s.cluster.Unsubscribe(filter)
	}
}

// deliverRemote delivers a message from another node to local
// subscriptions; it never goes back to the cluster.
func (s *Server) deliverRemote(p *packet.Publish, share, filter string, seq uint64) {
	var matches topic.Matches[*session]
	s.deliverRemoteVia(p, share, filter, seq, &matches, nil)
}

// deliverRemoteVia is deliverRemote with the caller's scratch space, the
// copies written at the end of the batch via (nil: at once).
func (s *Server) deliverRemoteVia(p *packet.Publish, share, filter string, seq uint64, matches *topic.Matches[*session], via *batch) {
	m := newMessage(p, time.Now())
	m.cseq = seq
	if via != nil {
		m.via.Store(via)
		defer m.via.Store(nil)
	}
	matches.Reset()
	s.subs.Match(m.topic, nil, online, matches)
	for i := range matches.Deliveries {
		d := &matches.Deliveries[i] // deliver checks read access
		if d.Share != share {
			continue
		}
		if share != "" {
			d.Subscriber.mu.Lock()
			_, member := d.Subscriber.subs[filter]
			d.Subscriber.mu.Unlock()
			if !member {
				continue
			}
		}
		d.Subscriber.deliver(m, s.outQoS(m.qos, d.QoS), m.retain && d.RetainAsPublished, d.IDs, d.Share)
		if share != "" {
			return // one member of the group [MQTT-4.8.2-3]
		}
	}
}

// retainRemote applies a cluster-wide retained message to this node's
// retained index.
func (s *Server) retainRemote(p *packet.Publish) {
	m := newMessage(p, time.Now())
	m.retain = true
	s.retainMu.Lock()
	s.retainLocked(m)
	s.retainMu.Unlock()
}

// loadShared reads clientID's session from the cluster's shared store, once
// this node has claimed the identifier, unless this node has it already.
// With clean start it deletes the stored one instead [MQTT-3.1.2-4]. It
// returns an error if the store cannot answer: the CONNECT is refused
// rather than answered with a session that may not be the client's.
func (s *Server) loadShared(id string, clean bool) error {
	loader, ok := s.store.(SessionLoader)
	if !ok {
		return nil
	}
	s.mu.Lock()
	have := s.sessions[id] != nil
	s.mu.Unlock()
	if have {
		return nil
	}
	if clean {
		return s.store.DeleteSession(id)
	}
	rec, entries, err := loader.LoadSession(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.adoptShared(rec, entries)
	return nil
}

// adoptShared installs an offline session read from the cluster's shared
// store. It returns false if a session with that identifier is here.
func (s *Server) adoptShared(rec *store.Session, entries []*store.Entry) bool {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.sessions[rec.ClientID] != nil {
		return false
	}
	if rec.Disconnected.IsZero() {
		rec.Disconnected = now // its node ended without saying so
	}
	sess := s.restoreSession(rec, now, true)
	if sess == nil {
		return true // expired: deleted, once, by the node that claimed it
	}
	sess.mu.Lock()
	// Message identifiers are each node's own: no sharing between entries.
	load := func(p *store.Message) *message { return fromStore(p) }
	for _, e := range entries {
		s.restoreEntry(sess, e, load)
	}
	s.startExpiryLocked(sess)
	sess.mu.Unlock()
	return true
}

// replay delivers a message the cluster stored to the matching non-shared
// subscriptions of one session, once (see Inbound.Replay): at the highest
// QoS of those subscriptions, as the trie's delivery does.
func (s *Server) replay(id string, p *packet.Publish, seq uint64) {
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess == nil || sess.ended.Load() {
		return
	}
	m := newMessage(p, time.Now())
	m.cseq = seq
	best, rap := -1, false
	var ids []uint32
	sess.mu.Lock()
	for _, sub := range sess.subs {
		if _, _, sh := topic.ParseShare(sub.Filter); sh || !topic.MatchFilter(sub.Filter, m.topic) {
			continue
		}
		best = max(best, int(sub.QoS))
		rap = rap || sub.RetainAsPublished
		if sub.ID != 0 {
			ids = append(ids, sub.ID)
		}
	}
	sess.mu.Unlock()
	if best < 0 || m.expired(time.Now()) {
		return
	}
	sess.deliver(m, s.outQoS(m.qos, byte(best)), m.retain && rap, ids, "")
}

// sharedHeld tells the cluster that o, for a shared member, is held here.
// The session's lock held.
func (s *Server) sharedHeld(o *outbound, seq uint64) {
	if st, ok := s.cluster.(SharedTracker); ok {
		st.SharedHeld(o.share, seq)
		o.held = true
	}
}

// sharedDone tells the cluster that o is no longer held for a shared
// member. The session's lock held.
func (s *Server) sharedDone(o *outbound) {
	if st, ok := s.cluster.(SharedTracker); ok && o.msg != nil {
		st.SharedDone(o.share, o.msg.cseq)
	}
	o.held = false
}
