package broker

import (
	"sync"
	"sync/atomic"

	"github.com/gannet-mqtt/gannet/store"
)

// Routing an inbound QoS 2 message of a persistent session to a durable
// store writes its deliveries to the subscribers' queues, its retained
// record, and the packet identifier that marks it received; all in one
// store.Batch [MQTT-4.3.3-2]. Written one by one, a kill between the
// deliveries and the identifier would keep the deliveries without the
// identifier, and the publisher's resent PUBLISH (DUP, same identifier)
// would be routed a second time; the identifier first, and the resend of a
// message whose deliveries were lost would be taken for a duplicate.
//
// While a transaction is open, the store writes routing makes go into it:
// appendLocked, and updateLocked and removeLocked of a delivery appended
// in it (outbound.txn), and the retained write (retainLocked). publish
// commits it at its end, under Server.retainMu for a retained message, so
// that retained writes of a topic reach the store in the order they were
// made. What others could see of the deliveries before the commit is held
// back:
//
//   - the flusher of a persistent session's connection waits for the
//     open transactions holding deliveries of its session when it took its
//     buffer before it syncs and writes (session.waitTxns): a subscriber
//     never sees, and so never acknowledges, a delivery the store does not
//     hold yet; a transaction holding none of its deliveries does not
//     hold it back;
//   - a session does not read its queue back from the store (unspill)
//     while a delivery spilled to disk in an open transaction is not
//     written yet (session.uncommitted); the commit fills its window;
//   - a session that is discarded, or stops being persistent, first takes
//     its entries out of the open transactions (forgetTxnsLocked), so a
//     commit never writes to a queue the store has deleted.
//
// Lock order: session.mu, then storeTxn.mu (a leaf but for the store
// write the commit makes under it); Server.retainMu before both.

// storeTxn collects the store writes of routing one message.
type storeTxn struct {
	srv  *Server
	done chan struct{} // closed when committed or dropped

	mu        sync.Mutex
	closed    bool // committed or dropped: later writes go to the store
	entries   []txnEntry
	retained  *store.Message
	deleteRet string
	inbound   []store.Inbound
	spilled   []*session // sessions with a delivery on disk only, one per delivery
}

// txnEntry is one delivery appended in a transaction.
type txnEntry struct {
	sess *session
	o    *outbound
	e    *store.Entry // nil once removed
}

// txnSet is the set of open transactions.
type txnSet struct {
	batcher store.Batcher // nil: the store cannot write a batch
	n       atomic.Int32  // open transactions
	mu      sync.Mutex
	open    map[*storeTxn]struct{}
}

// beginTxn opens a transaction for routing an inbound QoS 2 message of
// sess, whose identifier id it will record, if the store is durable, can
// write a batch and keeps inbound identifiers, and the session is stored.
// It returns nil otherwise: each write then goes to the store on its own.
func (s *Server) beginTxn(sess *session, id uint16) *storeTxn {
	if s.syncer == nil || s.txns.batcher == nil {
		return nil
	}
	if _, ok := store.Find[store.InboundStore](s.store); !ok {
		return nil
	}
	sess.mu.Lock()
	stored := sess.stored
	sess.mu.Unlock()
	if !stored {
		return nil
	}
	t := &storeTxn{srv: s, done: make(chan struct{})}
	t.inbound = append(t.inbound, store.Inbound{ClientID: sess.id, ID: id})
	s.txns.mu.Lock()
	if s.txns.open == nil {
		s.txns.open = make(map[*storeTxn]struct{})
	}
	s.txns.open[t] = struct{}{}
	s.txns.n.Add(1)
	s.txns.mu.Unlock()
	return t
}

// commit writes the transaction's batch to the store, once; later writes
// through it go to the store directly. Called by publish (retainMu held
// for a retained message) or by end.
func (t *storeTxn) commit() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	b := &store.Batch{Retained: t.retained, DeleteRetained: t.deleteRet, Inbound: t.inbound}
	for _, te := range t.entries {
		if te.e != nil {
			b.Queues = append(b.Queues, store.QueueAppend{ClientID: te.sess.id, Entries: []*store.Entry{te.e}})
		}
	}
	key := ""
	if len(t.inbound) > 0 {
		key = t.inbound[0].ClientID
	}
	t.srv.storeErr("record inbound QoS 2 message with its deliveries", key, t.srv.txns.batcher.WriteBatch(b))
	t.entries = nil
}

// end closes the transaction: it drops what commit did not write (the
// message was refused), lets the sessions that spilled a delivery in it
// read their queues again, and releases the flushers waiting for it. No
// lock held.
func (t *storeTxn) end() {
	t.mu.Lock()
	t.closed = true
	t.entries = nil
	spilled := t.spilled
	t.spilled = nil
	t.mu.Unlock()
	ts := &t.srv.txns
	ts.mu.Lock()
	delete(ts.open, t)
	ts.n.Add(-1)
	ts.mu.Unlock()
	close(t.done)
	for _, sess := range spilled {
		sess.mu.Lock()
		sess.uncommitted--
		if sess.uncommitted == 0 {
			sess.fillLocked()
		}
		sess.mu.Unlock()
	}
}

// add records a delivery appended to sess's queue; false when the
// transaction is closed. sess.mu held.
func (t *storeTxn) add(sess *session, o *outbound, e *store.Entry) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.entries = append(t.entries, txnEntry{sess: sess, o: o, e: e})
	return true
}

// spill records that sess holds a delivery of the transaction on disk
// only. sess.mu held.
func (t *storeTxn) spill(sess *session) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.spilled = append(t.spilled, sess)
	return true
}

// update replaces the entry of o, or removes it when e is nil; false when
// the transaction is closed (the store holds the entry). The session's
// mu held.
func (t *storeTxn) update(o *outbound, e *store.Entry) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	for i := range t.entries {
		if t.entries[i].o == o {
			t.entries[i].e = e
		}
	}
	return true
}

// retain records the retained write of the message; false when the
// transaction is closed. Server.retainMu held.
func (t *storeTxn) retain(m *store.Message, deleteTopic string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	if m != nil {
		t.retained = m
	} else {
		t.retained, t.deleteRet = nil, deleteTopic
	}
	return true
}

// forget drops the entries of sess. sess.mu held.
func (t *storeTxn) forget(sess *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	for i := range t.entries {
		if t.entries[i].sess == sess {
			t.entries[i].e = nil
		}
	}
}

// forgetTxnsLocked takes the session's deliveries out of every open
// transaction, before the store deletes its queue. sess.mu held.
func (sess *session) forgetTxnsLocked() {
	for _, t := range sess.txns {
		t.forget(sess)
	}
	sess.txns = nil
}

// noteTxnLocked remembers that t holds a delivery of sess, dropping the
// transactions that have ended. sess.mu held.
func (sess *session) noteTxnLocked(t *storeTxn) {
	n := 0
	for _, old := range sess.txns {
		select {
		case <-old.done:
		default:
			if old != t {
				sess.txns[n] = old
				n++
			}
		}
	}
	clear(sess.txns[n:])
	sess.txns = append(sess.txns[:n], t)
}

// waitTxns returns once every transaction that held a delivery of sess
// when called has ended: what the flusher took is then in the store.
// Only the session's own transactions: another publisher's message does
// not hold back its deliveries. No lock held.
func (sess *session) waitTxns() {
	var buf [4]chan struct{}
	chans := buf[:0]
	sess.mu.Lock()
	for _, t := range sess.txns {
		chans = append(chans, t.done)
	}
	sess.mu.Unlock()
	for _, ch := range chans {
		<-ch
	}
}
