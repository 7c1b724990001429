package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/topic"
)

// The broker writes through to its store.Store as state changes: a
// persistent session when it connects, subscribes, unsubscribes and
// disconnects; each QoS 1/2 delivery queued for a persistent session, its
// packet identifier and state, and its completion; retained messages.
// restore reads it all back when a Server starts.

// storeErr logs a store failure: the broker keeps serving from memory, but
// what failed is not durable.
func (s *Server) storeErr(op, key string, err error) {
	if s.syncer != nil {
		s.writeSeq.Add(1)
	}
	if err != nil {
		s.log.Error("store: "+op+" failed; the state is kept in memory only, check the store", "key", key, "error", err)
	}
}

// syncStore makes every store write made so far durable, if the store
// syncs. Calls from many connections share one sync: a call returns at once
// when a sync that started after the last write has completed.
func (s *Server) syncStore() {
	if s.syncer == nil {
		return
	}
	target := s.writeSeq.Load()
	if s.syncedSeq.Load() >= target {
		return
	}
	if err := s.syncer.Sync(); err != nil {
		s.log.Error("store: sync failed; acknowledged messages may not be durable, check the disk", "error", err)
		return
	}
	for {
		done := s.syncedSeq.Load()
		if done >= target || s.syncedSeq.CompareAndSwap(done, target) {
			return
		}
	}
}

// storeMessage returns the store's record of m, made once and shared by
// every queue entry that refers to m.
func (s *Server) storeMessage(m *message) *store.Message {
	if p := m.stored.Load(); p != nil {
		return p
	}
	p := &store.Message{
		ID:         s.msgSeq.Add(1),
		Topic:      m.topic,
		Payload:    m.payload,
		QoS:        m.qos,
		Retain:     m.retain,
		Properties: m.props,
		Created:    m.created,
		Expiry:     m.expiry,
		ClusterSeq: m.cseq,
	}
	if a := m.source; a != nil {
		// Kept with a retained message, so that CheckRetainSource holds
		// after a restart too.
		p.Source = &store.Source{ClientID: a.ClientID, Username: a.Username, Listener: a.Listener, CertCommonName: a.CertCommonName}
	}
	if !m.stored.CompareAndSwap(nil, p) {
		return m.stored.Load()
	}
	return p
}

// fromStore makes a broker message from a stored one.
func fromStore(p *store.Message) *message {
	m := &message{
		topic:   p.Topic,
		payload: p.Payload,
		qos:     p.QoS,
		retain:  p.Retain,
		props:   p.Properties,
		created: p.Created,
		expiry:  p.Expiry,
		cseq:    p.ClusterSeq,
	}
	if src := p.Source; src != nil { // a retained message's publisher, for CheckRetainSource
		m.source = &auth.Client{ClientID: src.ClientID, Username: src.Username, Listener: src.Listener, CertCommonName: src.CertCommonName}
	}
	m.stored.Store(p)
	return m
}

// save stores the session if it is persistent.
func (sess *session) save() {
	sess.mu.Lock()
	sess.saveLocked()
	sess.mu.Unlock()
}

// saveLocked stores the session record if it is persistent. sess.mu held.
func (sess *session) saveLocked() {
	if !sess.persistent || sess.ended.Load() {
		return
	}
	rec := &store.Session{
		ClientID:     sess.id,
		Version:      sess.version,
		Expiry:       sess.expiry,
		Disconnected: sess.disconnected,
		Owner:        sess.owner,
	}
	for _, sub := range sess.subs {
		rec.Subscriptions = append(rec.Subscriptions, sub)
	}
	sess.srv.storeErr("save session", sess.id, sess.srv.store.SaveSession(rec))
	sess.stored = true
}

func (sess *session) entry(o *outbound) *store.Entry {
	e := new(store.Entry)
	sess.fillEntry(e, o)
	return e
}

// fillEntry sets e to the store's record of o.
func (sess *session) fillEntry(e *store.Entry, o *outbound) {
	*e = store.Entry{
		Seq:      o.seq,
		QoS:      o.qos,
		Retain:   o.retain,
		PacketID: o.id,
		State:    store.EntryState(o.state),
		SubIDs:   o.subIDs,
	}
	if o.msg != nil {
		e.Message = sess.srv.storeMessage(o.msg)
	}
}

// storedEntry is sess.entryOut set to o's record, for one call of the
// store, which does not keep it (store.QueueStore): no allocation per
// delivery. sess.mu held.
func (sess *session) storedEntry(o *outbound) *store.Entry {
	sess.fillEntry(&sess.entryOut, o)
	sess.entriesOut[0] = &sess.entryOut
	return &sess.entryOut
}

// appendLocked stores a new delivery of a persistent session. sess.mu held.
func (sess *session) appendLocked(o *outbound) {
	if !sess.stored {
		return
	}
	sess.seq++
	o.seq = sess.seq
	if o.msg != nil {
		if t := o.msg.txn.Load(); t != nil && t.add(sess, o, sess.entry(o)) { // the transaction keeps its entry
			o.txn = t
			sess.noteTxnLocked(t)
			return
		}
	}
	sess.storedEntry(o)
	sess.srv.storeErr("queue message", sess.id, sess.srv.store.Append(sess.id, sess.entriesOut[:]...))
	sess.entryOut = store.Entry{}
}

// updateLocked stores a delivery's new identifier or state. sess.mu held.
func (sess *session) updateLocked(o *outbound) {
	if o.seq == 0 || !sess.stored {
		return
	}
	if o.txn != nil && o.txn.update(o, sess.entry(o)) { // the transaction keeps its entry
		return
	}
	sess.srv.storeErr("update queued message", sess.id, sess.srv.store.Update(sess.id, sess.storedEntry(o)))
	sess.entryOut = store.Entry{}
}

// queueMemory is how many queued deliveries a session holds in memory when
// its store is durable; the rest stay on disk until the window drains, so
// memory does not grow with offline queues.
const queueMemory = 1000

// queueMemoryBytes is how many bytes of queued deliveries a session holds
// in memory when its store is durable: large messages go to disk sooner.
const queueMemoryBytes = 4 << 20

// spillLocked reports whether a new queued delivery should stay on disk
// only. sess.mu held.
func (sess *session) spillLocked() bool {
	return sess.stored && sess.srv.syncer != nil &&
		(sess.spilled > 0 || sess.queue.len() >= queueMemory || sess.queue.bytes >= queueMemoryBytes)
}

// maySpillLocked reports whether queued deliveries of the session can be
// kept on disk only. sess.mu held.
func (sess *session) maySpillLocked() bool { return sess.stored && sess.srv.syncer != nil }

// overQueuedBytesTotalLocked reports whether queuing o in memory would take
// the queues of all sessions together over Options.MaxQueuedBytesTotal.
// sess.mu held.
func (sess *session) overQueuedBytesTotalLocked(o *outbound) bool {
	max := sess.srv.opt().MaxQueuedBytesTotal
	return max > 0 && sess.srv.queuedBytes.Load()+outCost(o) > max
}

// overQueuedBytesLocked reports whether queuing o would take the session
// over Options.MaxQueuedBytes, counting what waits in memory and on disk.
// sess.mu held.
func (sess *session) overQueuedBytesLocked(o *outbound) bool {
	max := sess.srv.opt().MaxQueuedBytes
	return max > 0 && sess.queue.bytes+sess.spilledBytes+outCost(o) > max
}

var errPageFull = errors.New("page full")

// unspillLocked reads the next stored deliveries back into memory, in
// order. sess.mu held.
//
// want is how many to read back at most.
func (sess *session) unspillLocked(want int) { sess.unspillBytesLocked(want, 0) }

// unspillBytesLocked is unspillLocked that also stops once the queue in
// memory holds maxBytes (0: no byte limit). sess.mu held.
func (sess *session) unspillBytesLocked(want int, maxBytes int64) {
	msgs := make(map[uint64]*message)
	loaded := 0
	load := func(fn func(*store.Entry) error) error { return sess.srv.store.LoadQueue(sess.id, fn) }
	if qs, ok := store.Find[store.QueueSeeker](sess.srv.store); ok {
		after := sess.loadedSeq
		load = func(fn func(*store.Entry) error) error { return qs.LoadQueueAfter(sess.id, after, fn) }
	}
	err := load(func(e *store.Entry) error {
		if e.Seq <= sess.loadedSeq || e.State != store.EntryQueued {
			return nil
		}
		if loaded == want || (maxBytes > 0 && loaded > 0 && sess.queue.bytes >= maxBytes) {
			return errPageFull
		}
		o := &outbound{qos: e.QoS, retain: e.Retain, subIDs: e.SubIDs, seq: e.Seq}
		if e.Message != nil {
			if m, ok := msgs[e.Message.ID]; ok {
				o.msg = m
			} else {
				o.msg = fromStore(e.Message)
				msgs[e.Message.ID] = o.msg
			}
		}
		sess.queue.push(o)
		sess.spilledBytes -= outCost(o)
		sess.loadedSeq = e.Seq
		loaded++
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		sess.srv.storeErr("read queued messages back", sess.id, err)
	}
	sess.spilled -= loaded
	if (loaded == 0 && want > 0) || sess.spilled <= 0 {
		sess.spilled, sess.spilledBytes = 0, 0 // nothing left on disk after all
	}
}

// inboundLocked records (add) or forgets an inbound QoS 2 identifier
// awaiting PUBREL, when the store keeps them. sess.mu held.
func (sess *session) inboundLocked(id uint16, add bool) {
	is, ok := store.Find[store.InboundStore](sess.srv.store)
	if !ok || !sess.stored {
		return
	}
	if add {
		sess.srv.storeErr("record inbound QoS 2 identifier", sess.id, is.AddInbound(sess.id, id))
	} else {
		sess.srv.storeErr("forget inbound QoS 2 identifier", sess.id, is.RemoveInbound(sess.id, id))
	}
}

// removeLocked forgets a completed delivery. sess.mu held.
func (sess *session) removeLocked(o *outbound) {
	if o.seq == 0 || !sess.stored {
		return
	}
	if o.txn != nil && o.txn.update(o, nil) {
		o.seq = 0
		return
	}
	sess.srv.storeErr("remove queued message", sess.id, sess.srv.store.Remove(sess.id, o.seq))
	o.seq = 0
}

// restore loads retained messages and persistent sessions, with their
// subscriptions and queues, from the store.
func (s *Server) restore() error {
	now := time.Now()
	var maxID uint64
	msgs := make(map[uint64]*message)
	load := func(p *store.Message) *message {
		if m, ok := msgs[p.ID]; ok {
			return m
		}
		m := fromStore(p)
		msgs[p.ID] = m
		maxID = max(maxID, p.ID)
		return m
	}
	var (
		expired  []string
		earliest time.Time
	)
	err := s.store.LoadRetained(func(p *store.Message) error {
		if !p.Expiry.IsZero() && !now.Before(p.Expiry) {
			expired = append(expired, p.Topic) // deleted below [MQTT-3.3.2-5]
			return nil
		}
		m := load(p)
		s.retained.Set(p.Topic, m)
		s.retainQuota.add(m) // charged to no one: owners are not stored
		if !p.Expiry.IsZero() && (earliest.IsZero() || p.Expiry.Before(earliest)) {
			earliest = p.Expiry
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("broker: loading retained messages: %w", err)
	}
	for _, t := range expired {
		s.storeErr("delete expired retained message", t, s.store.DeleteRetained(t))
	}
	if len(expired) > 0 {
		s.log.Info("deleted expired retained messages from the store", "count", len(expired))
		s.syncStore()
	}
	s.retainedExpiresAt(earliest)
	var sessions []*session
	err = s.store.LoadSessions(func(rec *store.Session) error {
		if sess := s.restoreSession(rec, now, false); sess != nil {
			sessions = append(sessions, sess)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("broker: loading sessions: %w", err)
	}
	for _, sess := range sessions {
		err := s.store.LoadQueue(sess.id, func(e *store.Entry) error {
			s.restoreEntry(sess, e, load)
			return nil
		})
		if err != nil {
			return fmt.Errorf("broker: loading the queue of session %q: %w", sess.id, err)
		}
		s.startExpiryLocked(sess)
	}
	s.msgSeq.Store(maxID)
	if len(sessions) > 0 || s.retained.Len() > 0 {
		s.log.Info("restored state from the store", "sessions", len(sessions), "retained", s.retained.Len())
	}
	return nil
}

// restoreSession makes the session of a stored record, with its
// subscriptions and inbound QoS 2 identifiers, and adds it to the server;
// an expired one is deleted from the store instead (nil). With replaying,
// the session records the cluster sequences delivered to it (cseen) from
// before its subscriptions can match anything. Called with Server.mu held,
// or before the server serves.
func (s *Server) restoreSession(rec *store.Session, now time.Time, replaying bool) *session {
	sess := newSession(s, rec.ClientID)
	if replaying {
		sess.cseen = make(map[uint64]struct{})
	}
	sess.version = rec.Version
	sess.persistent = true
	sess.stored = true
	sess.expiry = rec.Expiry
	sess.owner = rec.Owner
	sess.disconnected = rec.Disconnected
	if sess.disconnected.IsZero() {
		sess.disconnected = now // the broker stopped while it was connected
	}
	if sess.expiry != neverExpires && !now.Before(sess.disconnected.Add(sess.expiry)) {
		s.storeErr("delete expired session", rec.ClientID, s.store.DeleteSession(rec.ClientID))
		return nil
	}
	for _, sub := range rec.Subscriptions {
		if sess.subs == nil {
			sess.subs = make(map[string]store.Subscription)
		}
		sess.subs[sub.Filter] = sub
		share, _, _ := topic.ParseShare(sub.Filter)
		if !s.subs.Add(topic.Subscription[*session]{
			Subscriber: sess, Filter: sub.Filter, Share: share, QoS: sub.QoS,
			NoLocal: sub.NoLocal, RetainAsPublished: sub.RetainAsPublished,
			RetainHandling: sub.RetainHandling, ID: sub.ID,
		}) {
			s.clusterSub(sub.Filter)
		}
	}
	for _, id := range rec.Inbound {
		if sess.inbound2 == nil {
			sess.inbound2 = make(map[uint16]struct{})
		}
		sess.inbound2[id] = struct{}{}
	}
	s.sessions[rec.ClientID] = sess
	return sess
}

// restoreEntry puts a stored queue entry back into the session's queue or
// inflight window. load makes (or finds) the message of a stored one. The
// session is not yet shared with other goroutines, or sess.mu is held.
func (s *Server) restoreEntry(sess *session, e *store.Entry, load func(*store.Message) *message) {
	o := &outbound{qos: e.QoS, retain: e.Retain, id: e.PacketID, state: outState(e.State), subIDs: e.SubIDs, seq: e.Seq}
	if e.Message != nil {
		o.msg = load(e.Message)
	}
	sess.seq = max(sess.seq, e.Seq)
	switch {
	case o.state == outQueued && (sess.queue.len() >= queueMemory || sess.queue.bytes >= queueMemoryBytes) && s.syncer != nil:
		sess.spilled++ // read back as the window drains
		sess.spilledBytes += outCost(o)
	case o.state == outQueued:
		sess.queue.push(o)
		sess.loadedSeq = e.Seq
	case o.state == outSent && o.msg == nil:
		// Nothing to resend: drop the entry.
		s.storeErr("remove queued message", sess.id, s.store.Remove(sess.id, e.Seq))
	default:
		sess.inflight = append(sess.inflight, o)
		sess.nextID = max(sess.nextID, o.id)
		sess.idsRestored = true
	}
}

// startExpiryLocked starts the expiry timer of a restored (offline)
// session. Server.mu held, or before the server serves.
func (s *Server) startExpiryLocked(sess *session) {
	if sess.expiry != neverExpires {
		left := time.Until(sess.disconnected.Add(sess.expiry))
		gen := sess.timerGen
		sess.expiryTimer = time.AfterFunc(left, func() { s.expire(sess, gen) })
	}
}

// syncer is the optional capability of a store to make its writes durable
// on demand (store.Syncer, once the durable store defines it).
type syncer interface{ Sync() error }
