package broker

// fifo is a queue of deliveries: O(1) at both ends on average, compacting
// its backing array when more than half of it is consumed.
type fifo struct {
	items []*outbound
	head  int
}

func (q *fifo) len() int { return len(q.items) - q.head }

func (q *fifo) push(o *outbound) { q.items = append(q.items, o) }

// pushFront puts os before everything queued, in their order.
func (q *fifo) pushFront(os []*outbound) {
	rest := q.items[q.head:]
	q.items = append(append(make([]*outbound, 0, len(os)+len(rest)), os...), rest...)
	q.head = 0
}

func (q *fifo) pop() *outbound {
	o := q.items[q.head]
	q.items[q.head] = nil
	q.head++
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

func (q *fifo) reset() { q.items, q.head = nil, 0 }
