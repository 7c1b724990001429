package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"weak"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gannet-mqtt/gannet/store"
)

// A queue entry refers to its message by ID; the message is stored once
// under m/<id> however many entries refer to it. s.refs counts the entries
// of each message (rebuilt by Open's scan): the batch that adds the first
// reference writes the message, the batch that drops the last deletes it.
// s.mu is held from the count to the commit.

// bufPool holds encoding buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

// refTxn collects the reference count changes of one batch; commit makes
// them count once the batch has committed. s.mu held throughout. A refTxn
// lives on the caller's stack: the usual batch changes one or two counts.
type refTxn struct {
	s      *Store
	b      *pebble.Batch
	buf    *[]byte
	key    [len(prefixMessage) + 8]byte
	inline [2]refDelta
	n      int              // of inline in use
	more   map[uint64]int32 // the changes that do not fit inline
}

type refDelta struct {
	id uint64
	n  int32
}

// init starts a transaction.
func (t *refTxn) init(s *Store) {
	t.s, t.b, t.buf = s, s.db.NewBatch(), getBuf()
}

func (t *refTxn) close() {
	t.b.Close()
	putBuf(t.buf)
}

// add changes the count of message id by d and returns the new count.
func (t *refTxn) add(id uint64, d int32) int32 {
	for i := range t.inline[:t.n] {
		if t.inline[i].id == id {
			t.inline[i].n += d
			return t.s.refs[id] + t.inline[i].n
		}
	}
	if _, ok := t.more[id]; !ok && t.n < len(t.inline) {
		t.inline[t.n] = refDelta{id, d}
		t.n++
		return t.s.refs[id] + d
	}
	if t.more == nil {
		t.more = make(map[uint64]int32)
	}
	t.more[id] += d
	return t.s.refs[id] + t.more[id]
}

// ref adds a reference to m, writing m if nothing referred to it.
func (t *refTxn) ref(m *store.Message) {
	if t.add(m.ID, 1) == 1 {
		if n := messageSize(m); cap(*t.buf) < n {
			*t.buf = make([]byte, 0, n)
		}
		*t.buf = appendMessage((*t.buf)[:0], m)
		t.b.Set(messageKey(t.key[:0], m.ID), *t.buf, nil)
	}
}

// unref drops a reference to message id, deleting it with the last.
func (t *refTxn) unref(id uint64) {
	if t.add(id, -1) == 0 {
		t.b.Delete(messageKey(t.key[:0], id), nil)
	}
}

// commit commits the batch and applies the counts.
func (t *refTxn) commit() error {
	if err := t.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("store/pebble: writing %s: %w", t.s.dir, err)
	}
	for _, d := range t.inline[:t.n] {
		t.s.addRefs(d.id, d.n)
	}
	for id, n := range t.more {
		t.s.addRefs(id, n)
	}
	t.s.wrote()
	return nil
}

// addRefs changes the count of message id by n. s.mu held.
func (s *Store) addRefs(id uint64, n int32) {
	switch c := s.refs[id] + n; {
	case n == 0:
	case c <= 0:
		delete(s.refs, id)
	default:
		s.refs[id] = c
	}
}

func checkClientID(clientID string) error {
	if len(clientID) > maxClientID {
		return fmt.Errorf("store/pebble: client identifier of %d bytes; the longest a queue holds is %d", len(clientID), maxClientID)
	}
	return nil
}

// Append adds entries at the end of the client's queue. An entry whose
// Seq is in the queue already replaces it.
func (s *Store) Append(clientID string, entries ...*store.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := checkClientID(clientID); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	s.dropCache()
	var t refTxn
	t.init(s)
	defer t.close()
	kb, vb := getBuf(), getBuf()
	defer putBuf(kb)
	defer putBuf(vb)

	s.mu.Lock()
	defer s.mu.Unlock()
	last, err := s.appendLocked(&t, kb, vb, clientID, entries)
	if err != nil {
		return err
	}
	if err := t.commit(); err != nil {
		return err
	}
	s.lastSeq[clientID] = last
	return nil
}

// appendLocked adds to t the entries appended to clientID's queue and
// returns the queue's last Seq once t commits; kb and vb are scratch.
// s.mu held.
func (s *Store) appendLocked(t *refTxn, kb, vb *[]byte, clientID string, entries []*store.Entry) (uint64, error) {
	last, known := s.lastSeq[clientID]
	for i, e := range entries {
		*kb = queueKey((*kb)[:0], clientID, e.Seq)
		if known && e.Seq <= last {
			// Seq may be in the queue: drop the reference of the entry replaced.
			old, has, err := s.replaced(*kb, e.Seq, entries[:i])
			if err != nil {
				return 0, err
			}
			if has {
				t.unref(old)
			}
		}
		*vb = appendEntry((*vb)[:0], e)
		t.b.Set(*kb, *vb, nil)
		if e.Message != nil {
			t.ref(e.Message)
		}
		if !known || e.Seq > last {
			last, known = e.Seq, true
		}
	}
	return last, nil
}

// replaced returns the message an entry at key refers to: an earlier one
// of the same Append, or the stored one. s.mu held.
func (s *Store) replaced(key []byte, seq uint64, earlier []*store.Entry) (id uint64, has bool, err error) {
	for i := len(earlier) - 1; i >= 0; i-- {
		if e := earlier[i]; e.Seq == seq {
			if e.Message == nil {
				return 0, false, nil
			}
			return e.Message.ID, true, nil
		}
	}
	id, has, _, err = s.storedEntry(key)
	return id, has, err
}

// storedEntry reads the message ID of the entry at key. s.mu held.
func (s *Store) storedEntry(key []byte) (msgID uint64, hasMsg, found bool, err error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, false, nil
	}
	if err != nil {
		return 0, false, false, s.readErr(err)
	}
	defer closer.Close()
	msgID, hasMsg, err = entryMessageID(v)
	if err != nil {
		return 0, false, false, s.recordErr(key, err)
	}
	return msgID, hasMsg, true, nil
}

// Update records a new packet identifier, state or message of an entry;
// it returns an error wrapping store.ErrNotFound for an entry not queued.
func (s *Store) Update(clientID string, e *store.Entry) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	var t refTxn
	t.init(s)
	defer t.close()
	kb, vb := getBuf(), getBuf()
	defer putBuf(kb)
	defer putBuf(vb)
	*kb = queueKey((*kb)[:0], clientID, e.Seq)

	s.mu.Lock()
	defer s.mu.Unlock()
	old, oldHas, found, err := s.storedEntry(*kb)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("store/pebble: entry %d of %q: %w", e.Seq, clientID, store.ErrNotFound)
	}
	*vb = appendEntry((*vb)[:0], e)
	t.b.Set(*kb, *vb, nil)
	newHas := e.Message != nil
	if newHas && (!oldHas || old != e.Message.ID) {
		t.ref(e.Message)
	}
	if oldHas && (!newHas || old != e.Message.ID) {
		t.unref(old)
	}
	return t.commit()
}

// Remove deletes a delivery; removing one not queued is not an error.
func (s *Store) Remove(clientID string, seq uint64) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	var t refTxn
	t.init(s)
	defer t.close()
	kb := getBuf()
	defer putBuf(kb)
	*kb = queueKey((*kb)[:0], clientID, seq)

	s.mu.Lock()
	defer s.mu.Unlock()
	old, oldHas, found, err := s.storedEntry(*kb)
	if err != nil || !found {
		return err
	}
	t.b.Delete(*kb, nil)
	if oldHas {
		t.unref(old)
	}
	return t.commit()
}

// deleteQueue adds to t the deletion of clientID's queue. s.mu held.
func (s *Store) deleteQueue(t *refTxn, clientID string) error {
	p := queuePrefix(nil, clientID)
	end := prefixEnd(p)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: end})
	if err != nil {
		return s.readErr(err)
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return s.readErr(err)
		}
		id, has, err := entryMessageID(v)
		if err != nil {
			err = s.recordErr(it.Key(), err)
			it.Close()
			return err
		}
		if has {
			t.unref(id)
		}
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return s.readErr(err)
	}
	if n > 0 {
		t.b.DeleteRange(p, end, nil)
	}
	return nil
}

// LoadQueue calls fn for each entry of the client's queue, in Seq order.
// Entries that refer to the same message share one *store.Message, also
// across calls while the broker restores: do not modify it. fn may call
// the store; the queue is read in chunks, each from a snapshot.
func (s *Store) LoadQueue(clientID string, fn func(*store.Entry) error) error {
	return s.loadQueue(clientID, 0, fn)
}

// LoadQueueAfter is LoadQueue from the first entry whose Seq is greater
// than after: it seeks there instead of reading the queue from its start.
func (s *Store) LoadQueueAfter(clientID string, after uint64, fn func(*store.Entry) error) error {
	if after == math.MaxUint64 {
		return nil
	}
	return s.loadQueue(clientID, after+1, fn)
}

// loadQueue reads the queue from Seq from in chunks, calling fn without
// holding closeMu. A chunk starts small, for callers that stop early, and
// doubles.
func (s *Store) loadQueue(clientID string, from uint64, fn func(*store.Entry) error) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	p := queuePrefix(nil, clientID)
	lo, hi := binary.BigEndian.AppendUint64(p[:len(p):len(p)], from), prefixEnd(p)
	for n := 64; ; n = min(2*n, 4096) {
		list, next, err := s.readQueue(clientID, lo, hi, n)
		if err != nil {
			return err
		}
		for _, e := range list {
			if err := fn(e); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		lo = next
	}
}

// readQueue reads up to n entries of clientID's queue in [lo, hi) from a
// snapshot, with their messages. next is where the following chunk
// starts, nil at the end of the queue.
func (s *Store) readQueue(clientID string, lo, hi []byte, n int) (list []*store.Entry, next []byte, err error) {
	if err := s.enter(); err != nil {
		return nil, nil, err
	}
	defer s.closeMu.RUnlock()
	defer func() {
		// Pebble panics on some damage it finds in a table.
		if r := recover(); r != nil {
			err = s.damaged(fmt.Errorf("reading the queue of %q: %v", clientID, r))
		}
	}()
	snap := s.db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, nil, s.readErr(err)
	}
	defer it.Close()
	msgs := messageReader{s: s, snap: snap}
	defer msgs.close()
	plen := len(lo) - 8
	list = make([]*store.Entry, 0, min(n, 64))
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != plen+8 {
			return nil, nil, s.recordErr(k, errors.New("malformed queue key"))
		}
		seq := binary.BigEndian.Uint64(k[plen:])
		if len(list) == n {
			return list, append([]byte(nil), k...), nil
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, s.readErr(err)
		}
		e, id, has, err := decodeEntry(seq, v)
		if err != nil {
			return nil, nil, s.recordErr(k, err)
		}
		if has {
			if e.Message, err = msgs.get(id, k); err != nil {
				return nil, nil, err
			}
		}
		list = append(list, e)
	}
	if err := it.Error(); err != nil {
		return nil, nil, s.readErr(err)
	}
	return list, nil, nil
}

// messageReader reads the messages of a queue in ID order, which is
// mostly the order of the queue, with one iterator.
type messageReader struct {
	s    *Store
	snap *pebble.Snapshot
	it   *pebble.Iterator
	last *store.Message
	key  [len(prefixMessage) + 8]byte
}

func (r *messageReader) close() {
	if r.it != nil {
		r.it.Close()
	}
}

// get returns message id, which the entry at entryKey refers to.
func (r *messageReader) get(id uint64, entryKey []byte) (*store.Message, error) {
	if r.last != nil && r.last.ID == id {
		return r.last, nil
	}
	m, shared := r.s.cached(id)
	if m != nil {
		r.last = m
		return m, nil
	}
	if r.it == nil {
		it, err := r.snap.NewIter(&pebble.IterOptions{LowerBound: []byte(prefixMessage), UpperBound: prefixEnd([]byte(prefixMessage))})
		if err != nil {
			return nil, r.s.readErr(err)
		}
		r.it = it
	}
	k := messageKey(r.key[:0], id)
	// Messages are mostly queued in ID order: try the next one first.
	if !(r.it.Valid() && bytes.Compare(r.it.Key(), k) < 0 && r.it.Next() && bytes.Equal(r.it.Key(), k)) &&
		(!r.it.SeekGE(k) || !bytes.Equal(r.it.Key(), k)) {
		if err := r.it.Error(); err != nil {
			return nil, r.s.readErr(err)
		}
		return nil, r.s.damaged(fmt.Errorf("queue entry %s refers to message %d, which is missing", keyString(entryKey), id))
	}
	v, err := r.it.ValueAndErr()
	if err != nil {
		return nil, r.s.readErr(err)
	}
	m, err = decodeMessage(v)
	if err != nil {
		return nil, r.s.recordErr(k, err)
	}
	if m.ID != id {
		return nil, r.s.recordErr(k, fmt.Errorf("%w: holds message %d", errBad, m.ID))
	}
	if shared {
		r.s.remember(m)
	}
	r.last = m
	return m, nil
}

// cached returns the message with id that a LoadQueue returned and the
// broker still holds, or nil, and whether several entries refer to it.
func (s *Store) cached(id uint64) (m *store.Message, shared bool) {
	if !s.caching.Load() {
		return nil, false
	}
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	w, ok := s.cache[id]
	return w.Value(), ok
}

func (s *Store) remember(m *store.Message) {
	s.cacheMu.Lock()
	if _, ok := s.cache[m.ID]; ok {
		s.cache[m.ID] = weak.Make(m)
	}
	s.cacheMu.Unlock()
}

// dropCache ends the sharing of loaded messages: the broker has restored.
func (s *Store) dropCache() {
	if s.caching.Load() {
		s.cacheMu.Lock()
		s.cache = nil
		s.caching.Store(false)
		s.cacheMu.Unlock()
	}
}
