package topic

import "slices"

// linearMax is the number of deliveries up to which Match finds a
// subscriber's earlier delivery by a linear scan; past it, Matches keeps a
// map.
const linearMax = 16

// Delivery is one copy of a message for one subscriber.
type Delivery[S comparable] struct {
	Subscriber S
	// QoS is the highest granted QoS among the subscriber's matching
	// non-shared subscriptions [MQTT-3.3.5-1] (v3.1.1) [MQTT-3.3.4-2] (v5),
	// or the member's granted QoS for a shared delivery [MQTT-4.8.2-3]. The
	// message goes out at the lower of this and its own QoS.
	QoS byte
	// RetainAsPublished is true if any of the matching subscriptions has it.
	RetainAsPublished bool
	// IDs are the subscription identifiers of all matching subscriptions
	// that have one [MQTT-3.3.4-3] [MQTT-3.3.4-4], nil when none. The slice
	// points into the Matches' scratch space: it is valid until the
	// Matches is Reset.
	IDs []uint32
	// Share is the group name for a delivery chosen from a shared group,
	// "" otherwise.
	Share string
}

// Matches receives the result of [Trie.Match]. Reuse one (per connection, or
// from a sync.Pool) so that matching does not allocate; it belongs to one
// goroutine at a time. The zero value is ready to use.
type Matches[S comparable] struct {
	Deliveries []Delivery[S]

	ids    []uint32         // backing store of Deliveries[i].IDs
	groups []*shareGroup[S] // shared groups matched by the current Match
	index  map[S]int32      // subscriber -> delivery, once past linearMax
	base   int              // first delivery of the current Match
	listed int              // subscription lists seen by the current Match
	done   int              // Deliveries[base:done] are in index
}

// Reset empties m for reuse, keeping its storage.
func (m *Matches[S]) Reset() {
	clear(m.Deliveries) // drop subscriber references
	m.Deliveries = m.Deliveries[:0]
	m.ids = m.ids[:0]
	if len(m.index) > 0 {
		clear(m.index)
	}
}

// begin starts one Match call.
func (m *Matches[S]) begin() {
	m.base = len(m.Deliveries)
	m.done = m.base
	m.listed = 0
	if len(m.index) > 0 {
		clear(m.index)
	}
}

// collect adds the subscriptions ending at n: each non-shared one to its
// subscriber's delivery, and each shared group to the groups to pick from.
// Trie read lock held on entry.
func (m *Matches[S]) collect(n *node[S], publisher S) {
	if len(n.subs.subs) > 0 {
		m.addList(n.subs.subs, publisher)
	}
	m.groups = append(m.groups, n.shares...)
}

// addList merges one node's non-shared subscriptions into the deliveries.
// A node holds at most one subscription per subscriber, so the first list of
// a Match is appended without looking for duplicates.
func (m *Matches[S]) addList(subs []Subscription[S], publisher S) {
	m.listed++
	if m.listed == 1 {
		m.addFirst(subs, publisher)
		return
	}
	for i := range subs {
		sub := &subs[i]
		if sub.NoLocal && sub.Subscriber == publisher { // [MQTT-3.8.3-3] (v5)
			continue
		}
		if d := m.find(sub.Subscriber); d < 0 {
			d = m.push(sub, "")
			if sub.ID != 0 {
				m.addID(d, sub.ID)
			}
		} else {
			dl := &m.Deliveries[d]
			// One copy at the highest QoS among the overlapping
			// subscriptions [MQTT-3.3.5-1] (v3.1.1) [MQTT-3.3.4-2] (v5).
			dl.QoS = max(dl.QoS, sub.QoS)
			dl.RetainAsPublished = dl.RetainAsPublished || sub.RetainAsPublished
			if sub.ID != 0 { // [MQTT-3.3.4-3] [MQTT-3.3.4-4]
				m.addID(d, sub.ID)
			}
		}
	}
}

// addFirst appends one delivery per subscription of the first list of a
// Match, which holds no subscriber twice. It is the fan-out path: storage is
// grown once, and each delivery is filled in place through local slices.
func (m *Matches[S]) addFirst(subs []Subscription[S], publisher S) {
	ds := slices.Grow(m.Deliveries, len(subs))
	ids := slices.Grow(m.ids, len(subs))
	for i := range subs {
		sub := &subs[i]
		if sub.NoLocal && sub.Subscriber == publisher { // [MQTT-3.8.3-3] (v5)
			continue
		}
		d := len(ds)
		ds = ds[:d+1]
		dl := &ds[d]
		dl.Subscriber = sub.Subscriber
		dl.QoS = sub.QoS
		dl.RetainAsPublished = sub.RetainAsPublished
		dl.Share = ""
		if sub.ID != 0 { // [MQTT-3.3.4-3]
			n := len(ids)
			ids = ids[:n+1]
			ids[n] = sub.ID
			dl.IDs = ids[n : n+1 : n+1]
		} else {
			dl.IDs = nil
		}
	}
	m.Deliveries, m.ids = ds, ids
}

// push appends a delivery for sub and returns its position. It fills the
// fields in place: building a Delivery and appending it costs a
// store-forwarding stall per delivery.
func (m *Matches[S]) push(sub *Subscription[S], share string) int {
	d := len(m.Deliveries)
	if d < cap(m.Deliveries) {
		m.Deliveries = m.Deliveries[:d+1]
	} else {
		m.Deliveries = append(m.Deliveries, Delivery[S]{})
	}
	dl := &m.Deliveries[d]
	dl.Subscriber = sub.Subscriber
	dl.QoS = sub.QoS
	dl.RetainAsPublished = sub.RetainAsPublished
	dl.IDs = nil
	dl.Share = share
	return d
}

// find returns the position of s's non-shared delivery in the current Match,
// or -1. Shared deliveries are only added after the walk, so every delivery
// from base on is non-shared here.
func (m *Matches[S]) find(s S) int {
	ds := m.Deliveries
	if len(ds)-m.base <= linearMax {
		for i := m.base; i < len(ds); i++ {
			if ds[i].Subscriber == s {
				return i
			}
		}
		return -1
	}
	if m.index == nil {
		m.index = make(map[S]int32, 2*len(ds))
	}
	for ; m.done < len(ds); m.done++ {
		m.index[ds[m.done].Subscriber] = int32(m.done)
	}
	if i, ok := m.index[s]; ok {
		return int(i)
	}
	return -1
}

// addShared appends the delivery for the member picked from group g.
func (m *Matches[S]) addShared(g *shareGroup[S], sub *Subscription[S]) {
	if sub == nil {
		return
	}
	d := m.push(sub, g.name) // the member's own QoS [MQTT-4.8.2-3]
	if sub.ID != 0 {
		m.addID(d, sub.ID)
	}
}

// addID adds id to the identifiers of delivery d. Each delivery's IDs are
// one run in m.ids: a run that ends m.ids grows in place, any other is
// copied to the end first (its old place is wasted until Reset). Runs are
// capped so that a caller appending to one cannot overwrite the next.
func (m *Matches[S]) addID(d int, id uint32) {
	dl := &m.Deliveries[d]
	n, k := len(m.ids), len(dl.IDs)
	if k == 0 || &dl.IDs[k-1] != &m.ids[n-1] {
		m.ids = append(m.ids, dl.IDs...)
		n += k
	}
	m.ids = append(m.ids, id)
	dl.IDs = m.ids[n-k : n+1 : n+1]
}

// finish ends one Match call.
func (m *Matches[S]) finish() {
	clear(m.groups) // drop node references
	m.groups = m.groups[:0]
}
