package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/topic"
)

// Cluster-wide sessions.
//
// The broker writes its persistent sessions through a store.Store
// (sharedStore) whose sessions, queues and inbound QoS 2 identifiers are
// keys of the replicated KV bucket gannet_NAME_sessions:
//
//	s.TOKEN          the session record (subscriptions, expiry, ...)
//	q.TOKEN.SEQ      one queued or inflight delivery (SEQ zero-padded)
//	i.TOKEN.ID       an inbound QoS 2 identifier awaiting PUBREL
//	n.ORIGIN         the checkpoint of a node (see below)
//
// where TOKEN is the client identifier's owners key. Each write returns
// once a majority of the replicas has it. Retained and delayed messages
// stay in the node's local store.
//
// A node loads a session when its client connects there (after it won the
// owners bucket's compare-and-set; the previous owner, asked to take the
// connection over, drops its copy first), or adopts the sessions of a node
// that died. Either way the writes of the previous node may miss messages
// it received, or would have received, over core NATS: the node replays
// them from the messages stream. Each node's checkpoint is a stream
// sequence up to which every message has been applied to its sessions:
// its audit of the messages stream (audit.go) has seen every sequence up
// to it delivered here (live or read from the stream) or not this node's,
// and every message this node stored itself up to it was forwarded. The
// new node replays, for the session, the stored messages after the
// previous node's checkpoint that match its subscriptions, except those
// its queue holds and the QoS 2 ones it completed (a tombstone in the
// bucket gannet_NAME_done, kept as long as the messages stream keeps
// messages). Until the replay ends the session takes each sequence once,
// whether it comes live or replayed.

// ApplyGrace is how long a replay waits for a resumed session's
// subscriptions to reach this node live before it reads the stream.
const ApplyGrace = 2 * time.Second

// hdrStreamSeq is the header of a routed QoS 1/2 message with its sequence
// in the messages stream.
const hdrStreamSeq = "Gannet-Stream-Seq"

func sessionKey(id string) string  { return "s." + ownerKey(id) }
func queuePrefix(id string) string { return "q." + ownerKey(id) + "." }
func inboundPrefix(id string) string {
	return "i." + ownerKey(id) + "."
}
func queueKey(id string, seq uint64) string { return fmt.Sprintf("%s%020d", queuePrefix(id), seq) }
func doneKey(id string, cseq uint64) string {
	return "d." + ownerKey(id) + "." + strconv.FormatUint(cseq, 10)
}
func checkpointKey(origin string) string { return "n." + origin }

// kvSession is a session record as stored.
type kvSession struct {
	ClientID      string
	Version       byte
	Expiry        time.Duration
	Disconnected  time.Time
	Owner         string
	Subscriptions []store.Subscription
	Node          string // the node instance that wrote it
}

// kvEntry is a queue entry as stored; the message is a 5.0 PUBLISH.
type kvEntry struct {
	Seq      uint64
	QoS      byte
	Retain   bool
	PacketID uint16
	State    store.EntryState
	SubIDs   []uint32 `json:",omitempty"`
	CSeq     uint64   `json:",omitempty"` // the message's cluster sequence
	Msg      []byte   `json:",omitempty"`
	MsgID    uint64   `json:",omitempty"`
	Created  time.Time
	Expiry   time.Time
}

func encodeEntry(e *store.Entry, cseq uint64) ([]byte, error) {
	k := kvEntry{Seq: e.Seq, QoS: e.QoS, Retain: e.Retain, PacketID: e.PacketID, State: e.State, SubIDs: e.SubIDs, CSeq: cseq}
	if m := e.Message; m != nil {
		p := packet.Publish{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain, Properties: m.Properties}
		if p.QoS > 0 {
			p.PacketID = 1
		}
		b, err := p.Append(nil, packet.V5)
		if err != nil {
			return nil, err
		}
		k.Msg, k.MsgID, k.Created, k.Expiry = b, m.ID, m.Created, m.Expiry
		if m.ClusterSeq != 0 {
			k.CSeq = m.ClusterSeq
		}
	}
	return json.Marshal(&k)
}

func decodeEntry(b []byte) (*store.Entry, uint64, error) {
	var k kvEntry
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, 0, err
	}
	e := &store.Entry{Seq: k.Seq, QoS: k.QoS, Retain: k.Retain, PacketID: k.PacketID, State: k.State, SubIDs: k.SubIDs}
	if k.Msg != nil {
		p, err := decode(k.Msg)
		if err != nil {
			return nil, 0, err
		}
		e.Message = &store.Message{ID: k.MsgID, Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain,
			Properties: p.Properties, Created: k.Created, Expiry: k.Expiry, ClusterSeq: k.CSeq}
	}
	return e, k.CSeq, nil
}

// sharedStore is the store.Store of a node whose persistent sessions live
// in the cluster (broker.SharedSessions). Its writes are queued on the
// node's write-behind (writer.go).
type sharedStore struct {
	c     *Cluster
	local store.Store
	w     *writer

	mu sync.Mutex
	// qos2 maps each stored QoS 2 delivery (client, queue position) to
	// the cluster sequence of its message, for its tombstone.
	qos2 map[string]map[uint64]uint64
}

// SessionStore implements broker.SharedSessions.
func (c *Cluster) SessionStore(local store.Store) store.Store {
	js, err := jetstream.New(c.nc, jetstream.WithPublishAsyncTimeout(StoreTimeout),
		jetstream.WithPublishAsyncMaxPending(2*writeWorkers*writePipeline))
	if err != nil { // only with invalid options: the shared context then
		c.log.Error("cluster: JetStream context for session writes", "error", err)
		js = c.js
	}
	c.shared = &sharedStore{c: c, local: local, qos2: make(map[string]map[uint64]uint64), w: newWriter(c, js)}
	c.shared.w.start()
	return c.shared
}

func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), StoreTimeout)
}

// put queues a write and returns at once.
func (s *sharedStore) put(id string, op *wop) *wqueue { return s.w.enqueue(id, op) }

// putWait queues a write and waits (StoreTimeout at most) until it, and
// every write of the session before it, is stored.
func (s *sharedStore) putWait(id string, op *wop) error {
	done := make(chan error, 1)
	op.done = done
	s.w.enqueue(id, op)
	t := time.NewTimer(StoreTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return errWriteTimeout
	case <-s.c.stop:
		return ErrNotReady
	}
}

// SaveSession stores the session record, once the session's earlier
// writes are stored (bounded wait: CONNACK, SUBACK and UNSUBACK follow).
func (s *sharedStore) SaveSession(rec *store.Session) error {
	b, err := json.Marshal(&kvSession{ClientID: rec.ClientID, Version: rec.Version, Expiry: rec.Expiry,
		Disconnected: rec.Disconnected, Owner: rec.Owner, Subscriptions: rec.Subscriptions, Node: s.c.origin})
	if err != nil {
		return err
	}
	return s.putWait(rec.ClientID, &wop{key: sessionKey(rec.ClientID), data: b, must: true})
}

// DeleteSession removes the session, its queue and inbound identifiers,
// after the session's earlier writes (bounded wait).
func (s *sharedStore) DeleteSession(id string) error {
	s.mu.Lock()
	delete(s.qos2, id)
	s.mu.Unlock()
	return s.putWait(id, &wop{key: id, del: true, must: true})
}

// deleteNow is DeleteSession's write, made by a writer.
func (s *sharedStore) deleteNow(ctx context.Context, id string) error {
	kv := s.c.sessions
	if _, err := kv.Get(ctx, sessionKey(id)); errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil // nothing stored: the common case of a clean CONNECT
	} else if err != nil {
		return err
	}
	keys, err := s.c.listKeys(ctx, kv, queuePrefix(id)+">", inboundPrefix(id)+">")
	if err != nil {
		return err
	}
	for _, k := range append(keys, sessionKey(id)) {
		if err := kv.Purge(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// LoadSessions yields nothing: a node loads a session when its client
// connects (LoadSession) or adopts those of a dead node.
func (s *sharedStore) LoadSessions(func(*store.Session) error) error { return nil }

// Append queues the entries' writes. Each carries its message's cluster
// sequence: the checkpoint waits for it (writer.boundsBySession). A QoS 2
// delivery's write is one its PUBLISH waits for (SyncSession).
func (s *sharedStore) Append(id string, entries ...*store.Entry) error {
	for _, e := range entries {
		var cseq uint64
		if e.Message != nil {
			cseq = e.Message.ClusterSeq
		}
		b, err := encodeEntry(e, cseq)
		if err != nil {
			return err
		}
		s.put(id, &wop{key: queueKey(id, e.Seq), data: b, cseq: cseq, must: e.QoS == 2})
		if e.QoS == 2 && cseq != 0 {
			s.mu.Lock()
			if s.qos2[id] == nil {
				s.qos2[id] = make(map[uint64]uint64)
			}
			s.qos2[id][e.Seq] = cseq
			s.mu.Unlock()
		}
	}
	return nil
}

// Update queues an entry's new packet identifier or state; for QoS 2 the
// PUBLISH or PUBREL waits for it (SyncSession).
func (s *sharedStore) Update(id string, e *store.Entry) error {
	s.mu.Lock()
	cseq := s.qos2[id][e.Seq]
	s.mu.Unlock()
	b, err := encodeEntry(e, cseq)
	if err != nil {
		return err
	}
	s.put(id, &wop{key: queueKey(id, e.Seq), data: b, must: e.QoS == 2})
	return nil
}

// Remove forgets a completed delivery; a QoS 2 one leaves a tombstone,
// stored before the entry is removed, so that a replay never delivers its
// message again (the checkpoint waits for the tombstone).
func (s *sharedStore) Remove(id string, seq uint64) error {
	s.mu.Lock()
	cseq, tomb := s.qos2[id][seq]
	delete(s.qos2[id], seq)
	s.mu.Unlock()
	if tomb {
		s.put(id, &wop{bucket: bucketDone, key: doneKey(id, cseq), cseq: cseq})
	}
	s.put(id, &wop{key: queueKey(id, seq), purge: true})
	return nil
}

// SyncSession implements broker.SessionSyncer: it waits (StoreTimeout at
// most) for the writes of id that what goes out to its client depends on.
func (s *sharedStore) SyncSession(id string) error {
	return s.w.syncSession(id, StoreTimeout)
}

func (s *sharedStore) LoadQueue(id string, fn func(*store.Entry) error) error {
	entries, _, err := s.loadQueue(id)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// AddInbound queues the record of an inbound QoS 2 identifier; the
// broker waits for it (SyncSession) before PUBREC.
func (s *sharedStore) AddInbound(id string, pid uint16) error {
	s.put(id, &wop{key: inboundPrefix(id) + strconv.Itoa(int(pid)), must: true})
	return nil
}

// RemoveInbound queues forgetting an inbound QoS 2 identifier; PUBCOMP
// waits for it (SyncSession): the client may reuse the identifier then.
func (s *sharedStore) RemoveInbound(id string, pid uint16) error {
	key := inboundPrefix(id) + strconv.Itoa(int(pid))
	// Its record not written yet (a PUBREC refused because it could not
	// be): it never will be, and nothing need wait for the removal.
	cancelled := s.w.cancelPut(id, key)
	s.put(id, &wop{key: key, purge: true, must: !cancelled})
	return nil
}

func (s *sharedStore) SetRetained(m *store.Message) error { return s.local.SetRetained(m) }
func (s *sharedStore) DeleteRetained(topic string) error  { return s.local.DeleteRetained(topic) }
func (s *sharedStore) LoadRetained(fn func(*store.Message) error) error {
	return s.local.LoadRetained(fn)
}
func (s *sharedStore) Close() error { return s.local.Close() }

// listKeys returns the keys matching filters, sorted (directget.go).
func (c *Cluster) listKeys(ctx context.Context, kv jetstream.KeyValue, filters ...string) ([]string, error) {
	return c.readKeyNames(ctx, kv, filters...)
}

// loadQueue reads a session's queue entries, in order, with the cluster
// sequences of their messages (0 when none).
func (s *sharedStore) loadQueue(id string) ([]*store.Entry, []uint64, error) {
	_, entries, r, err := s.loadSession(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return entries, r.cseqs, nil
}

// loadSession reads a session record, its inbound identifiers and queue,
// with one consumer (see readKeys); r lists what a replay to it must skip.
// The QoS 2 entries are remembered for their tombstones.
func (s *sharedStore) loadSession(id string) (rec *store.Session, entries []*store.Entry, r *replayed, err error) {
	var inbound []uint16
	kv, err := s.kv()
	if err != nil {
		return nil, nil, nil, err
	}
	if h := s.c.loadHook.Load(); h != nil { // tests
		if err := (*h)(id); err != nil {
			return nil, nil, nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*StoreTimeout)
	defer cancel()
	// Through a consumer, or without one where that cannot answer soon
	// (directget.go): a CONNECT needs no meta leader.
	all, err := s.c.readKeys(ctx, kv, sessionKey(id), queuePrefix(id)+">", inboundPrefix(id)+">")
	if err != nil {
		return nil, nil, nil, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Key() < all[j].Key() })
	var cseqs []uint64
	for _, e := range all {
		k := e.Key()
		switch {
		case k == sessionKey(id):
			var ks kvSession
			if err := json.Unmarshal(e.Value(), &ks); err != nil {
				return nil, nil, nil, fmt.Errorf("session record: %w", err)
			}
			rec = &store.Session{ClientID: ks.ClientID, Version: ks.Version, Expiry: ks.Expiry,
				Disconnected: ks.Disconnected, Owner: ks.Owner, Subscriptions: ks.Subscriptions}
		case strings.HasPrefix(k, inboundPrefix(id)):
			n, err := strconv.Atoi(strings.TrimPrefix(k, inboundPrefix(id)))
			if err == nil && n > 0 && n <= 0xFFFF {
				inbound = append(inbound, uint16(n))
			}
		default:
			en, cseq, err := decodeEntry(e.Value())
			if err != nil {
				s.c.log.Warn("cluster: unreadable queued message of a session skipped", "client", id, "key", k, "error", err)
				continue
			}
			if en.QoS == 2 && cseq != 0 {
				s.mu.Lock()
				if s.qos2[id] == nil {
					s.qos2[id] = make(map[uint64]uint64)
				}
				s.qos2[id][en.Seq] = cseq
				s.mu.Unlock()
			}
			entries = append(entries, en)
			cseqs = append(cseqs, cseq)
		}
	}
	if rec == nil {
		return nil, nil, nil, store.ErrNotFound
	}
	rec.Inbound = inbound
	r = newReplayed(rec, cseqs)
	r.cseqs = cseqs
	// The session's filters are subscribed next, each taking the last
	// stream sequence this node knows as the start of what the audit may
	// fill for it (Subscribe). That number comes from the audit and the
	// live messages, so it lags when the audit does (its consumer
	// stalled): the audit, once going again, filled for the session
	// messages the replay or the loaded queue had given it already, after
	// the replay window closed (QoS 2 twice in TestSessionOfDeadNode).
	// The stream's own last sequence now: what was stored up to it is
	// the replay's and the queue's, not the audit's.
	if last, err := s.c.lastSeq(ctx); err == nil {
		s.c.streamHighAt(last)
	}
	return rec, entries, r, nil
}

// LoadSession implements broker.SessionLoader. Once the broker has made
// the session its own, the messages the previous owner may have missed
// are replayed to it (in the background, after ApplyGrace).
func (s *sharedStore) LoadSession(id string) (*store.Session, []*store.Entry, error) {
	rec, entries, r, err := s.loadSession(id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.c.mu.Lock()
			delete(s.c.prevOwner, id)
			delete(s.c.prevCheckpoint, id)
			s.c.mu.Unlock()
		}
		// Else the replay's start stays, for the next attempt, or for
		// the node that claims the session next (takeover.go).
		return nil, nil, err
	}
	s.c.mu.Lock()
	prev := s.c.prevOwner[id]
	from, ok := s.c.prevCheckpoint[id]
	s.c.mu.Unlock()
	if prev != "" && prev != s.c.origin && !ok {
		// Its checkpoint could not be read at the claim (JetStream
		// electing a leader): without it the replay cannot start, and
		// the session would miss what its previous node had not
		// applied. Read again; else the CONNECT is refused and tried
		// again.
		if from, ok = s.c.checkpointOf(prev, id); !ok {
			return nil, nil, fmt.Errorf("cluster: no checkpoint of node %s, which held session %q: cannot replay what it missed", prev, id)
		}
	}
	s.c.mu.Lock()
	delete(s.c.prevOwner, id)
	delete(s.c.prevCheckpoint, id)
	s.c.mu.Unlock()
	if prev != "" && prev != s.c.origin {
		s.c.log.Debug("cluster: loaded a session from the bucket", "client", id, "previous", prev, "checkpoint", from, "found", ok, "entries", len(entries), "inbound", len(rec.Inbound))
		if ok {
			r.from = from
			s.c.replayStarts(r) // before the window can be closed by another replay's end
			done, advance := s.c.replayHoldFrom(from, id)
			s.c.wg.Add(1)
			go func() {
				defer s.c.wg.Done()
				defer done()
				s.c.replay(from, []*replayed{r}, advance)
			}()
			return rec, entries, nil
		}
		s.c.log.Warn("cluster: no checkpoint of the session's previous node: messages it missed are not replayed", "client", id, "previous", prev)
	}
	s.c.windowWithoutReplay(r)
	return rec, entries, nil
}

// replayed is a session being given the stored messages its previous node
// may have missed.
type replayed struct {
	id      string
	filters []string            // non-shared
	skip    map[uint64]struct{} // cluster sequences its queue holds
	cseqs   []uint64            // the same, per entry (0: none)
	done    map[uint64]struct{} // its completed QoS 2 deliveries (replay)
	from    uint64              // it takes the stored messages after this one
	gone    atomic.Bool         // its session was taken from this node: no more
}

func newReplayed(rec *store.Session, cseqs []uint64) *replayed {
	r := &replayed{id: rec.ClientID, skip: make(map[uint64]struct{})}
	for _, sub := range rec.Subscriptions {
		if !strings.HasPrefix(sub.Filter, "$share/") {
			r.filters = append(r.filters, sub.Filter)
		}
	}
	for _, cs := range cseqs {
		if cs != 0 {
			r.skip[cs] = struct{}{}
		}
	}
	return r
}

// doneOf returns the cluster sequences of id's completed QoS 2
// deliveries (tombstones): through a consumer, or a current replica (readKeys).
func (c *Cluster) doneOf(ctx context.Context, id string) (map[uint64]struct{}, error) {
	pre := "d." + ownerKey(id) + "."
	es, err := c.readKeys(ctx, c.done, pre+">") // directget.go
	if err != nil {
		return nil, err
	}
	done := make(map[uint64]struct{}, len(es))
	for _, e := range es {
		if n, err := strconv.ParseUint(strings.TrimPrefix(e.Key(), pre), 10, 64); err == nil {
			done[n] = struct{}{}
		}
	}
	return done, nil
}

// lastSeq returns the messages stream's last sequence.
func (c *Cluster) lastSeq(ctx context.Context) (uint64, error) {
	st, err := c.js.Stream(ctx, c.messageStream())
	if err != nil {
		return 0, err
	}
	return st.CachedInfo().State.LastSeq, nil
}

// replay gives sessions the stored messages after sequence from that match
// their subscriptions, once their subscriptions reach this node live
// (after ApplyGrace): up to the stream's last sequence then. It ends the
// sessions' replay windows. JetStream failing meanwhile (a leader being
// elected) makes it try again from where it stopped, for replayPatience:
// giving up loses the messages, so it says so.
func (c *Cluster) replay(from uint64, rs []*replayed, advance func(uint64)) {
	defer func() {
		// A live message the replay gave already may still be on its
		// way (a dispatch queue behind under load): the window stays
		// open a while longer.
		select {
		case <-c.stop:
		case <-time.After(ApplyGrace):
		}
		for _, r := range rs {
			c.replayEnds(r)
		}
	}()
	select {
	case <-c.stop:
		return
	case <-time.After(ApplyGrace):
	}
	ctx, cancel := context.WithTimeout(c.base, replayPatience)
	defer cancel()
	retry := func(what string, err error) bool {
		c.log.Debug("cluster: replay of the messages stream interrupted; trying again", "step", what, "error", err)
		select {
		case <-ctx.Done():
			c.log.Warn("cluster: cannot replay the messages stream: messages a resumed session missed are not delivered", "step", what, "error", err, "from", from)
			return false
		case <-time.After(200 * time.Millisecond):
			return true
		}
	}
	var end uint64
	for {
		actx, acancel := context.WithTimeout(ctx, StoreTimeout)
		var err error
		end, err = c.lastSeq(actx)
		acancel()
		if err == nil {
			break
		}
		if !retry("last sequence", err) {
			return
		}
	}
	if end <= from {
		advance(end)
		return
	}
	for _, r := range rs {
		// The tombstones as they are now: one written later is of a
		// delivery this replay's window (Inbound.Replay) has seen.
		for {
			// Each attempt bounded: a watch whose stream changes leader
			// meanwhile may never finish.
			actx, acancel := context.WithTimeout(ctx, StoreTimeout)
			done, err := c.doneOf(actx, r.id)
			acancel()
			if err == nil {
				r.done = done
				break
			}
			if !retry("completed QoS 2 deliveries", err) {
				return
			}
		}
	}
	next, n := from+1, 0
	for next <= end {
		done, err := c.replayRange(ctx, next, end, rs, &n, advance) // bounded by its fetches
		if err == nil {
			advance(end)
			break
		}
		next = done + 1
		if !retry("read", err) {
			return
		}
	}
	c.log.Debug("cluster: replayed stored messages to resumed sessions", "sessions", len(rs), "from", from, "to", end, "deliveries", n)
}

// replayPatience bounds a replay's retries.
const replayPatience = time.Minute

// replayRange replays the stream from sequence next to end; it returns
// the last sequence it handled (next-1 if none), with an error if it
// stopped before end.
func (c *Cluster) replayRange(ctx context.Context, next, end uint64, rs []*replayed, n *int, advance func(uint64)) (uint64, error) {
	last := next - 1
	sctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	st, err := c.js.Stream(sctx, c.messageStream())
	if err != nil {
		return last, err
	}
	cons, err := st.OrderedConsumer(sctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   next,
		// Fetch takes no context: an ordered consumer that cannot be
		// made again (the stream's nodes gone, this node closing) would
		// retry without end inside it, and the replay, and Close that
		// waits for it, with it. The replay's own retries go on.
		MaxResetAttempts: 2,
	})
	if err != nil {
		return last, err
	}
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return last, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			seq := md.Sequence.Stream
			if seq > end {
				return last, nil
			}
			last = seq
			p, err := decode(m.Data())
			if err != nil {
				continue
			}
			for _, r := range rs {
				if _, skip := r.skip[seq]; skip || seq <= r.from || r.gone.Load() || !matchesAny(r.filters, p.Topic) {
					continue
				}
				if p.QoS == 2 {
					if _, ok := r.done[seq]; ok {
						continue // completed before: exactly once
					}
				}
				c.in.Replay(r.id, p, seq)
				*n++
			}
			advance(seq) // given to the sessions, their writes queued
			if seq >= end {
				return last, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return last, err
		}
		if got == 0 {
			// Nothing more: the rest expired meanwhile (MaxAge), or the
			// stream's leader did not answer within the wait.
			if l, err := c.lastSeq(ctx); err != nil || l >= next && last < end {
				if err == nil {
					err = errors.New("no messages delivered")
				}
				return last, err
			}
			return last, nil
		}
	}
}

func matchesAny(filters []string, topicName string) bool {
	for _, f := range filters {
		if topic.MatchFilter(f, topicName) {
			return true
		}
	}
	return false
}

// kv returns the sessions bucket, or ErrNotReady.
func (s *sharedStore) kv() (jetstream.KeyValue, error) {
	if !s.c.ready.Load() {
		return nil, ErrNotReady
	}
	return s.c.sessions, nil
}

// SessionSyncPending implements broker.SessionSyncer.
func (s *sharedStore) SessionSyncPending(id string) bool {
	return s.w.syncPending(id)
}
