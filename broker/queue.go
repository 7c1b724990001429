package broker

// fifo is a queue of deliveries: O(1) at both ends on average, compacting
// its backing array when more than half of it is consumed. It keeps the
// bytes its deliveries hold (see outCost).
type fifo struct {
	items []*outbound
	head  int
	bytes int64
}

func (q *fifo) len() int { return len(q.items) - q.head }

func (q *fifo) push(o *outbound) {
	q.items = append(q.items, o)
	q.bytes += outCost(o)
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

// pushFront puts os before everything queued, in their order.
func (q *fifo) pushFront(os []*outbound) {
	rest := q.items[q.head:]
	q.items = append(append(make([]*outbound, 0, len(os)+len(rest)), os...), rest...)
	q.head = 0
	for _, o := range os {
		q.bytes += outCost(o)
	}
}

func (q *fifo) pop() *outbound {
	o := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	q.bytes -= outCost(o)
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

func (q *fifo) reset() { q.items, q.head, q.bytes = nil, 0, 0 }
