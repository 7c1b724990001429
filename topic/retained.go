package topic

import "sync"

// Retained indexes retained messages by topic name, a node per level where
// topics branch (a chain of levels without branches is one node), so that
// a filter walks only the branches it can match. It is safe for
// concurrent use: Set and Delete take the write lock, the rest the read lock.
//
// Retained stores whatever it is given; what is kept, replaced or deleted
// ([MQTT-3.3.1-5] to [MQTT-3.3.1-8] and their v3.1.1 counterparts) is the
// broker's decision.
type Retained[V any] struct {
	mu    sync.RWMutex
	root  rnode[V]
	n     int // stored messages
	nodes int // nodes below root, to check pruning
}

// rnode is one topic level.
type rnode[V any] struct {
	parent   *rnode[V]
	key      string // level that leads here from parent
	children childSet[rnode[V]]
	topic    string // full topic name, when set
	value    V
	set      bool
}

// NewRetained returns an empty index.
func NewRetained[V any]() *Retained[V] {
	return &Retained[V]{}
}

// Set stores v as the retained message of topic, replacing any earlier one.
// topic must be a valid name (see [ValidName]).
func (r *Retained[V]) Set(topic string, v V) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := &r.root
	for pos := 0; pos >= 0; {
		level, next := cut(topic, pos)
		c := n.children.get(level)
		if c == nil {
			// The rest of a topic that no other shares is one node: a
			// level costs its bytes, not a node each (see Trie).
			c = &rnode[V]{parent: n, key: topic[pos:]}
			n.children.add(level, c)
			r.nodes++
			n = c
			break
		}
		if k, after := common(c.key, len(level), topic, next); k < len(c.key) {
			mid := &rnode[V]{parent: n, key: c.key[:k]}
			n.children.replace(level, mid)
			c.key, c.parent = c.key[k+1:], mid
			mid.children.add(firstLevel(c.key), c)
			r.nodes++
			c, next = mid, after
		} else {
			next = after
		}
		n, pos = c, next
	}
	if !n.set {
		n.set = true
		n.topic = topic
		r.n++
	}
	n.value = v
}

// Delete removes the retained message of topic and reports whether there
// was one. Nodes left empty are pruned.
func (r *Retained[V]) Delete(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.find(topic)
	if n == nil || !n.set {
		return false
	}
	r.deleteLocked(n)
	return true
}

// deleteLocked removes the message of n and prunes the nodes left empty.
// Write lock held on entry.
func (r *Retained[V]) deleteLocked(n *rnode[V]) {
	var zero V
	n.value, n.set, n.topic = zero, false, ""
	r.n--
	for n != &r.root && !n.set && len(n.children.keys) == 0 {
		p := n.parent
		p.children.remove(firstLevel(n.key))
		n.parent = nil
		r.nodes--
		n = p
	}
}

// DeleteIf removes the retained message of topic if drop reports true for
// it, all under the write lock, and reports whether it did: the message can
// be checked and deleted without a newer one set meanwhile going instead.
func (r *Retained[V]) DeleteIf(topic string, drop func(V) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.find(topic)
	if n == nil || !n.set || !drop(n.value) {
		return false
	}
	r.deleteLocked(n)
	return true
}

// Range calls fn for every retained message, $ topics included, in no
// particular order, and stops early when fn returns false. fn runs under
// the read lock and must not call into r.
func (r *Retained[V]) Range(fn func(topic string, v V) bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rall(&r.root, false, fn)
}

// Get returns the retained message of topic.
func (r *Retained[V]) Get(topic string) (V, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n := r.find(topic); n != nil && n.set {
		return n.value, true
	}
	var zero V
	return zero, false
}

// Len returns the number of retained messages.
func (r *Retained[V]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.n
}

// find returns the node of topic, or nil. Lock held on entry.
func (r *Retained[V]) find(topic string) *rnode[V] {
	n := &r.root
	for pos := 0; pos >= 0; {
		level, next := cut(topic, pos)
		c := n.children.get(level)
		if c == nil {
			return nil
		}
		var ok bool
		if next, ok = follow(c.key, level, topic, next); !ok {
			return nil
		}
		n, pos = c, next
	}
	return n
}

// Match calls fn for each retained message whose topic matches filter, in no
// particular order, and stops early when fn returns false. filter must be a
// valid non-shared filter (the inner filter of a shared one). fn runs under
// the read lock and must not call into r: to delete an expired message,
// collect its topic and Delete after Match returns.
func (r *Retained[V]) Match(filter string, fn func(topic string, v V) bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rmatch(&r.root, filter, 0, true, fn)
}

// rmatch calls fn for the messages below n that match filter from byte pos
// on, and reports whether to go on. root is true at the top level, where
// wildcards skip names starting with '$' [MQTT-4.7.2-1]. Read lock held on
// entry.
func rmatch[V any](n *rnode[V], filter string, pos int, root bool, fn func(string, V) bool) bool {
	level, next := cut(filter, pos)
	switch level {
	case "#":
		// "#" matches the parent level too: "a/#" matches "a".
		if n.set && !fn(n.topic, n.value) {
			return false
		}
		return rall(n, root, fn)
	case "+":
		for i, c := range n.children.nodes {
			if root && isDollar(n.children.keys[i]) { // [MQTT-4.7.2-1]
				continue
			}
			if !rdescend(c, filter, next, fn) {
				return false
			}
		}
		return true
	}
	if c := n.children.get(level); c != nil { // byte-exact [MQTT-4.7.3-4]
		return rdescend(c, filter, next, fn)
	}
	return true
}

// rdescend goes on matching filter from byte next at c, whose key's first
// level has matched, through the other levels of its key. Read lock held
// on entry.
func rdescend[V any](c *rnode[V], filter string, next int, fn func(string, V) bool) bool {
	k := len(firstLevel(c.key))
	for k < len(c.key) {
		if next < 0 {
			return true // the filter ends inside the key, where nothing is stored
		}
		fl, fnext := cut(filter, next)
		kl, knext := cut(c.key, k+1)
		switch {
		case fl == "#": // all of c and below
			if c.set && !fn(c.topic, c.value) {
				return false
			}
			return rall(c, false, fn)
		case fl != "+" && fl != kl: // byte-exact [MQTT-4.7.3-4]
			return true
		}
		next = fnext
		if knext < 0 {
			k = len(c.key)
		} else {
			k = knext - 1
		}
	}
	if next < 0 {
		if c.set {
			return fn(c.topic, c.value)
		}
		return true
	}
	return rmatch(c, filter, next, false, fn)
}

// rall calls fn for every message below n. Read lock held on entry.
func rall[V any](n *rnode[V], root bool, fn func(string, V) bool) bool {
	for i, c := range n.children.nodes {
		if root && isDollar(n.children.keys[i]) { // [MQTT-4.7.2-1]
			continue
		}
		if c.set && !fn(c.topic, c.value) {
			return false
		}
		if len(c.children.nodes) > 0 && !rall(c, false, fn) {
			return false
		}
	}
	return true
}

func isDollar(level string) bool { return len(level) > 0 && level[0] == '$' }
