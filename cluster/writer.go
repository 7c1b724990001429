package cluster

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Write-behind of persistent sessions (sessions.go).
//
// The shared store's writes (a session record, a queue entry, its state
// and removal, an inbound QoS 2 identifier, a QoS 2 tombstone) return at
// once: each is queued, in order, on its session's write queue. A small
// pool of writeWorkers goroutines drains the queues that have writes,
// one session per worker at a time, so a session's writes reach
// JetStream in the order the broker made them; a worker pipelines up to
// writePipeline writes of a session (asynchronous publishes to the
// bucket's stream, which keeps their order) and, when one fails, writes
// it and every later one again, in order, after a backoff (each write is
// a put or a purge of one key: written again in order, the keys end as
// they would have). A write to another bucket (the tombstone of a
// completed QoS 2 delivery, in gannet_NAME_done) waits for the writes
// before it, and the ones after it wait for it: the tombstone is stored
// before the queue entry it stands for is removed.
//
// Nothing waits for these writes under a session's lock or in the
// dispatch goroutine, except where an acknowledgement needs them:
//
//   - the connection's flusher waits (SyncSession) for the writes that
//     what it sends depends on: a QoS 2 delivery's packet identifier and
//     state before its PUBLISH or PUBREL, a forgotten inbound QoS 2
//     identifier before the PUBCOMP (the client may then reuse it);
//   - PUBREC to a QoS 2 publisher waits for the inbound identifier's write
//     (bounded; 0x80 or a closed connection if it times out);
//   - a session record (CONNECT, SUBSCRIBE, UNSUBSCRIBE, disconnect) and
//     the deletion of a session are waited for, bounded, as before;
//   - a session taken over by another node is flushed before the takeover
//     is answered; what cannot be written within StoreTimeout is dropped
//     (the new owner replays it, see below).
//
// The node's checkpoint covers only messages whose session writes are
// stored: for each session with writes queued, one less than the smallest
// message sequence among them (an appended delivery, a QoS 2 tombstone)
// bounds where a replay to it starts (boundsBySession, checkpoint.go). When
// JetStream is unavailable for a long time the writes are retried with a
// backoff up to writeRetryMax, the checkpoint stalls where it is (it
// never skips a message whose write is not stored), and once
// maxPendingWrites writes are queued the broker's deliveries to
// persistent sessions wait for room: memory stays bounded.

const (
	writeWorkers     = 8       // sessions written at once
	writePipeline    = 256     // a session's writes in flight at once
	maxPendingWrites = 1 << 17 // queued writes of all sessions; past it a write waits
	writeRetryMax    = 2 * time.Second
	// dropFloorHold is how long writes dropped at a takeover hold the
	// checkpoint below their messages: the new owner reads the
	// checkpoint right after the takeover.
	dropFloorHold = time.Minute
)

// Buckets a write goes to.
const (
	bucketSessions = iota
	bucketDone
)

// wop is one queued write.
type wop struct {
	n      uint64 // its number in the session's queue
	bucket int
	key    string
	data   []byte
	purge  bool   // purge key (else put data)
	del    bool   // delete the whole session (DeleteSession)
	cseq   uint64 // the message sequence it makes durable (0: none)
	must   bool   // what goes out to the client depends on it
	done   chan error
	failed int  // attempts that failed
	issued bool // in flight: a worker is writing it
}

// wqueue is one session's queue of writes.
type wqueue struct {
	id      string
	ops     []*wop // not yet stored, in order
	next    uint64 // number of the next write
	done    uint64 // every write numbered below it is stored (or dropped)
	must    uint64 // one more than the number of the last must write
	dropped bool   // its writes were dropped (flushSession): waits fail
	running bool   // a worker holds it, or it is in the ready list
	wake    chan struct{}
}

// floor holds the checkpoint below a dropped write's message.
type floor struct {
	id    string // the session
	seq   uint64
	until time.Time
}

// writer is the node's write-behind of session writes.
type writer struct {
	c  *Cluster
	js jetstream.JetStream

	mu      sync.Mutex
	cond    sync.Cond // ready gained a queue, or room was freed
	qs      map[string]*wqueue
	ready   []*wqueue
	pending int
	floors  []floor
	stopped bool
	wg      sync.WaitGroup
	// gate, when set, holds every write until it is closed (tests:
	// JetStream too slow to answer).
	gate atomic.Pointer[chan struct{}]
}

func newWriter(c *Cluster, js jetstream.JetStream) *writer {
	w := &writer{c: c, js: js, qs: make(map[string]*wqueue)}
	w.cond.L = &w.mu
	return w
}

// start runs the workers.
func (w *writer) start() {
	for range writeWorkers {
		w.wg.Add(1)
		go w.work()
	}
}

// stop ends the workers; queued writes are lost (after flushAll).
func (w *writer) stop() {
	w.mu.Lock()
	w.stopped = true
	w.cond.Broadcast()
	for _, q := range w.qs {
		q.wakeLocked()
	}
	w.mu.Unlock()
	w.wg.Wait()
}

func (q *wqueue) wakeLocked() {
	if q.wake != nil {
		close(q.wake)
		q.wake = nil
	}
}

// enqueue queues op for session id and returns its queue. It waits while
// maxPendingWrites writes are queued.
func (w *writer) enqueue(id string, op *wop) *wqueue {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.pending >= maxPendingWrites && !w.stopped {
		w.cond.Wait()
	}
	q := w.qs[id]
	if q == nil {
		q = &wqueue{id: id}
		w.qs[id] = q
	}
	op.n = q.next
	q.next++
	if op.must {
		q.must = q.next
	}
	q.ops = append(q.ops, op)
	w.pending++
	if !q.running {
		q.running = true
		w.ready = append(w.ready, q)
		w.cond.Broadcast()
	}
	return q
}

// wait returns once q's writes numbered below target are stored, or an
// error after d.
func (w *writer) wait(q *wqueue, target uint64, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	w.mu.Lock()
	for q.done < target || q.dropped {
		if q.dropped {
			w.mu.Unlock()
			return errWriteTimeout
		}
		if w.stopped {
			w.mu.Unlock()
			return ErrNotReady
		}
		if q.wake == nil {
			q.wake = make(chan struct{})
		}
		ch := q.wake
		w.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return errWriteTimeout
		}
		w.mu.Lock()
	}
	w.mu.Unlock()
	return nil
}

var errWriteTimeout = errors.New("cluster: session write not stored in time (JetStream slow or without quorum)")

// syncSession waits for id's must writes queued so far.
func (w *writer) syncSession(id string, d time.Duration) error {
	w.mu.Lock()
	q := w.qs[id]
	if q == nil || q.done >= q.must {
		w.mu.Unlock()
		return nil
	}
	target := q.must
	w.mu.Unlock()
	return w.wait(q, target, d)
}

// flushSession waits for every write of id queued so far; past d it drops
// those not stored yet, their messages held below the checkpoint for a
// while (dropFloorHold). The session is no longer this node's.
func (w *writer) flushSession(id string, d time.Duration) {
	w.mu.Lock()
	q := w.qs[id]
	if q == nil {
		w.mu.Unlock()
		return
	}
	target := q.next
	w.mu.Unlock()
	if w.wait(q, target, d) == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.qs[id] != q {
		return
	}
	low := uint64(math.MaxUint64)
	for _, op := range q.ops {
		if op.cseq != 0 {
			low = min(low, op.cseq)
		}
		if op.done != nil {
			op.done <- errWriteTimeout
			op.done = nil
		}
	}
	if low != math.MaxUint64 {
		w.floors = append(w.floors, floor{id, low - 1, time.Now().Add(dropFloorHold)})
	}
	w.pending -= len(q.ops)
	q.ops = nil
	q.done = q.next
	q.dropped = true
	q.wakeLocked()
	delete(w.qs, id) // a worker holding it finds it gone
	w.cond.Broadcast()
	w.c.log.Warn("cluster: writes of a session taken over by another node were not stored in time and are dropped; the new owner replays its messages", "client", id)
}

// flushAll waits, at most d, until every queued write is stored.
func (w *writer) flushAll(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		n := w.pending
		w.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// durableBoundFor is the highest message sequence S such that every
// write of session id for a message up to S is stored (math.MaxUint64:
// none waits).
func (w *writer) durableBoundFor(id string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	low := uint64(math.MaxUint64)
	now := time.Now()
	for _, f := range w.floors {
		if f.id == id && now.Before(f.until) {
			low = min(low, f.seq)
		}
	}
	if q := w.qs[id]; q != nil {
		for _, op := range q.ops {
			if op.cseq != 0 && op.cseq-1 < low {
				low = op.cseq - 1
			}
		}
	}
	return low
}

// Pending returns how many session writes wait to be stored.
func (w *writer) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pending
}

// work drains ready queues.
func (w *writer) work() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		for len(w.ready) == 0 && !w.stopped {
			w.cond.Wait()
		}
		if w.stopped {
			w.mu.Unlock()
			return
		}
		q := w.ready[0]
		w.ready[0] = nil
		w.ready = w.ready[1:]
		if len(w.ready) == 0 {
			w.ready = nil
		}
		if len(q.ops) == 0 || w.qs[q.id] != q { // cancelled or dropped meanwhile
			if w.qs[q.id] == q {
				q.running = false
				delete(w.qs, q.id)
			}
			w.mu.Unlock()
			continue
		}
		if g := w.gate.Load(); g != nil { // tests
			w.mu.Unlock()
			select {
			case <-*g:
			case <-w.c.stop:
				return
			}
			w.mu.Lock()
			if len(q.ops) == 0 || w.qs[q.id] != q {
				if w.qs[q.id] == q {
					q.running = false
					delete(w.qs, q.id)
				}
				w.mu.Unlock()
				continue
			}
		}
		// A batch: the first writes, up to a change of bucket or a
		// deletion (each waits for what is before it).
		n := 0
		for n < len(q.ops) && n < writePipeline {
			op := q.ops[n]
			if n > 0 && (op.del || op.bucket != q.ops[0].bucket || q.ops[0].del) {
				break
			}
			n++
		}
		batch := append([]*wop(nil), q.ops[:n]...)
		for _, op := range batch {
			op.issued = true
		}
		w.mu.Unlock()

		ok, err := w.write(batch)

		w.mu.Lock()
		for _, op := range batch[ok:] {
			op.issued = false // not in flight any more (write waited for them)
		}
		if w.qs[q.id] != q { // dropped (flushSession)
			w.mu.Unlock()
			continue
		}
		for _, op := range batch[:ok] {
			if op.done != nil {
				op.done <- nil
				op.done = nil
			}
		}
		if ok > 0 {
			clear(q.ops[:ok])
			q.ops = q.ops[ok:]
			q.done = batch[ok-1].n + 1
			w.pending -= ok
			q.wakeLocked()
			w.cond.Broadcast()
		}
		var backoff time.Duration
		if err != nil {
			op := batch[ok]
			op.failed++
			backoff = min(writeRetryMax, 10*time.Millisecond<<min(op.failed, 8))
			if op.failed == 1 || op.failed%20 == 0 {
				w.c.log.Warn("cluster: a session write was not stored, retrying; the node's checkpoint waits for it", "client", q.id, "key", op.key, "attempts", op.failed, "error", err)
			}
		}
		if len(q.ops) == 0 {
			q.running = false
			delete(w.qs, q.id)
			w.mu.Unlock()
			continue
		}
		if backoff == 0 {
			w.ready = append(w.ready, q)
			w.mu.Unlock()
			continue
		}
		w.mu.Unlock()
		w.wg.Add(1)
		go func() { // back in the ready list after the backoff
			defer w.wg.Done()
			select {
			case <-time.After(backoff):
			case <-w.c.stop:
			}
			w.mu.Lock()
			if w.qs[q.id] == q {
				w.ready = append(w.ready, q)
				w.cond.Broadcast()
			}
			w.mu.Unlock()
		}()
	}
}

// write stores batch in order and returns how many of its first writes
// are stored, with the error of the next one.
func (w *writer) write(batch []*wop) (int, error) {
	c := w.c
	if !c.ready.Load() {
		return 0, ErrNotReady
	}
	if batch[0].del {
		ctx, cancel := context.WithTimeout(c.base, StoreTimeout)
		defer cancel()
		if err := c.shared.deleteNow(ctx, batch[0].key); err != nil {
			return 0, err
		}
		return 1, nil
	}
	bucket := "gannet_" + c.opt.Name + "_sessions"
	if batch[0].bucket == bucketDone {
		bucket = "gannet_" + c.opt.Name + "_done"
	}
	pre := "$KV." + bucket + "."
	futs := make([]jetstream.PubAckFuture, 0, len(batch))
	var perr error
	for _, op := range batch {
		m := &nats.Msg{Subject: pre + op.key, Data: op.data}
		if op.purge {
			m.Header = nats.Header{}
			m.Header.Set("KV-Operation", "PURGE")
			m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		}
		// No retry inside nats.go: a write retried on its own timer
		// could land after the writes behind it.
		f, err := w.js.PublishMsgAsync(m, jetstream.WithRetryAttempts(0))
		if err != nil {
			perr = err
			break
		}
		futs = append(futs, f)
	}
	for i, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			// The rest may be stored or not: all written again.
			w.drain(futs[i+1:])
			return i, err
		case <-c.stop:
			return i, ErrNotReady
		}
	}
	if perr != nil {
		return len(futs), perr
	}
	return len(futs), nil
}

// drain waits for the outcome of futures whose writes are made again, so
// that a later attempt is not overtaken by them.
func (w *writer) drain(futs []jetstream.PubAckFuture) {
	for _, f := range futs {
		select {
		case <-f.Ok():
		case <-f.Err():
		case <-w.c.stop:
			return
		}
	}
}

// syncPending reports whether id has must writes not stored yet.
func (w *writer) syncPending(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.qs[id]
	return q != nil && q.done < q.must
}

// cancelPut takes the last write of key out of id's queue if it is a put
// not yet in flight, and reports whether it did: the key then never gets
// that value.
func (w *writer) cancelPut(id, key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.qs[id]
	if q == nil {
		return false
	}
	for i := len(q.ops) - 1; i >= 0; i-- {
		op := q.ops[i]
		if op.key != key && !op.del {
			continue
		}
		if op.del || op.purge || op.issued {
			return false
		}
		copy(q.ops[i:], q.ops[i+1:])
		q.ops[len(q.ops)-1] = nil
		q.ops = q.ops[:len(q.ops)-1]
		w.pending--
		if op.done != nil {
			op.done <- errWriteTimeout
		}
		q.must = 0
		for _, o := range q.ops {
			if o.must {
				q.must = o.n + 1
			}
		}
		if len(q.ops) == 0 {
			q.done = q.next
		}
		q.wakeLocked()
		w.cond.Broadcast()
		return true
	}
	return false
}

// boundsBySession returns, for each session with writes queued or
// dropped lately, durableBoundFor of it.
func (w *writer) boundsBySession() map[string]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]uint64)
	low := func(id string, seq uint64) {
		if b, ok := out[id]; !ok || seq < b {
			out[id] = seq
		}
	}
	now := time.Now()
	n := 0
	for _, f := range w.floors {
		if now.Before(f.until) {
			w.floors[n] = f
			n++
			low(f.id, f.seq)
		}
	}
	w.floors = w.floors[:n]
	for id, q := range w.qs {
		for _, op := range q.ops {
			if op.cseq != 0 {
				low(id, op.cseq-1)
			}
		}
	}
	return out
}
