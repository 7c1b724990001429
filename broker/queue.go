package broker

import (
	"sync/atomic"
	"time"
)

// fifo is a queue of deliveries: O(1) at both ends on average, compacting
// its backing array when more than half of it is consumed. It keeps the
// bytes its deliveries hold (see outCost).
type fifo struct {
	items []*outbound
	head  int
	bytes int64
	// soonest is at most the earliest expiry of a queued message (zero:
	// none expires): before it, nothing queued can have expired.
	soonest time.Time
	// total, when set, follows bytes: the sum over all sessions
	// (Options.MaxQueuedBytesTotal).
	total *atomic.Int64
}

// addBytes changes bytes, and total with it.
func (q *fifo) addBytes(d int64) {
	q.bytes += d
	if q.total != nil {
		q.total.Add(d)
	}
}

func (q *fifo) len() int { return len(q.items) - q.head }

func (q *fifo) push(o *outbound) {
	q.items = append(q.items, o)
	q.addBytes(outCost(o))
	q.noteExpiry(o)
}

// outOverhead is what a queued delivery costs besides its message's topic
// and payload.
const outOverhead = 128

// outCost is the memory a queued delivery holds, its message counted
// whole even when other sessions share it.
func outCost(o *outbound) int64 {
	if o.msg == nil {
		return outOverhead
	}
	return outOverhead + int64(len(o.msg.topic)+len(o.msg.payload))
}

// noteExpiry lowers soonest to o's expiry.
func (q *fifo) noteExpiry(o *outbound) {
	if o.msg != nil && !o.msg.expiry.IsZero() && (q.soonest.IsZero() || o.msg.expiry.Before(q.soonest)) {
		q.soonest = o.msg.expiry
	}
}

// mayHaveExpired reports whether a queued message can have expired by now.
func (q *fifo) mayHaveExpired(now time.Time) bool {
	return !q.soonest.IsZero() && !now.Before(q.soonest)
}

// evictExpired removes the queued deliveries whose message has expired by
// now, keeping the order of the rest, calls gone for each, and returns how
// many went.
func (q *fifo) evictExpired(now time.Time, gone func(*outbound)) int {
	q.soonest = time.Time{}
	kept := q.items[:q.head]
	n := 0
	for _, o := range q.items[q.head:] {
		if o.msg != nil && o.msg.expired(now) {
			q.addBytes(-outCost(o))
			gone(o)
			n++
			continue
		}
		kept = append(kept, o)
		q.noteExpiry(o)
	}
	clear(q.items[len(kept):])
	q.items = kept
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return n
}

// pushFront puts os before everything queued, in their order.
func (q *fifo) pushFront(os []*outbound) {
	for _, o := range os {
		q.noteExpiry(o)
		q.addBytes(outCost(o))
	}
	rest := q.items[q.head:]
	q.items = append(append(make([]*outbound, 0, len(os)+len(rest)), os...), rest...)
	q.head = 0
}

func (q *fifo) pop() *outbound {
	o := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	q.addBytes(-outCost(o))
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head >= 64 && q.head*2 >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return o
}

// all returns the queued deliveries, oldest first, without removing them.
func (q *fifo) all() []*outbound { return q.items[q.head:] }

func (q *fifo) reset() {
	q.addBytes(-q.bytes)
	q.items, q.head, q.soonest = nil, 0, time.Time{}
}
