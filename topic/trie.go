package topic

import (
	"fmt"
	"sync"
)

// Subscription is one subscription of one subscriber, as the broker granted
// it.
type Subscription[S comparable] struct {
	Subscriber        S
	Filter            string // the filter as the client sent it, including any "$share/{group}/" prefix
	Share             string // share group name; "" when not a shared subscription
	QoS               byte   // granted maximum QoS
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	ID                uint32 // subscription identifier; 0 when none
}

// Trie indexes subscriptions by filter, a node per level where filters
// branch (a chain of levels without branches is one node: see follow). It is
// safe for concurrent use: Add and Remove take the write lock, Match and
// Count the read lock, so Matches run in parallel with each other.
type Trie[S comparable] struct {
	mu       sync.RWMutex
	root     node[S]
	count    int // subscriptions, shared members included
	nodes    int // nodes below root, to check pruning
	strategy ShareStrategy
}

// node is one filter level. Literal levels are children keyed by the level
// string; the "+" and "#" levels have fields of their own, so that Match
// finds them without a lookup.
type node[S comparable] struct {
	parent   *node[S]
	key      string // level that leads here from parent
	children childSet[node[S]]
	plus     *node[S]
	hash     *node[S]
	subs     subList[S]       // non-shared subscriptions ending here
	shares   []*shareGroup[S] // shared groups whose inner filter ends here
}

func (n *node[S]) empty() bool {
	return len(n.subs.subs) == 0 && len(n.shares) == 0 &&
		len(n.children.keys) == 0 && n.plus == nil && n.hash == nil
}

// child returns the node below n for level, or nil.
func (n *node[S]) child(level string) *node[S] {
	switch level {
	case "+":
		return n.plus
	case "#":
		return n.hash
	}
	return n.children.get(level)
}

// group returns the position of the shared group called name, or -1.
func (n *node[S]) group(name string) int {
	for i, g := range n.shares {
		if g.name == name {
			return i
		}
	}
	return -1
}

// NewTrie returns an empty Trie.
func NewTrie[S comparable](opts TrieOptions) *Trie[S] {
	return &Trie[S]{strategy: opts.ShareStrategy}
}

// Add inserts sub, or replaces the subscription of the same subscriber with
// the same Filter string and reports true [MQTT-3.8.4-3]. For a shared
// subscription the caller sets Share to the group name and Filter to the full
// "$share/{group}/{filter}"; Add panics if the two disagree. Filter must be
// valid (see [ValidFilter], [ParseShare]).
func (t *Trie[S]) Add(sub Subscription[S]) (replaced bool) {
	path := sub.Filter
	if sub.Share != "" {
		group, inner, ok := ParseShare(sub.Filter)
		if !ok || group != sub.Share {
			panic(fmt.Sprintf("topic: Subscription.Share %q does not match Filter %q", sub.Share, sub.Filter))
		}
		path = inner
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	n := &t.root
	for pos := 0; pos >= 0; {
		level, next := cut(path, pos)
		c := n.child(level)
		if c == nil {
			key := level
			if next >= 0 && literal(path[pos:]) {
				// The rest of a filter that no other shares becomes one
				// node: a level costs its bytes, not a node each.
				key, next = path[pos:], -1
			}
			c = &node[S]{parent: n, key: key}
			switch level {
			case "+":
				n.plus = c
			case "#":
				n.hash = c
			default:
				n.children.add(level, c)
			}
			t.nodes++
			n, pos = c, next
			continue
		}
		if k, after := common(c.key, len(level), path, next); k < len(c.key) {
			// path leaves c's levels part way: split c there.
			mid := &node[S]{parent: n, key: c.key[:k]}
			n.children.replace(level, mid)
			c.key, c.parent = c.key[k+1:], mid
			mid.children.add(firstLevel(c.key), c)
			t.nodes++
			c, next = mid, after
		} else {
			next = after
		}
		n, pos = c, next
	}
	if sub.Share == "" {
		replaced = n.subs.put(sub)
	} else {
		i := n.group(sub.Share)
		if i < 0 {
			n.shares = append(n.shares, &shareGroup[S]{name: sub.Share})
			i = len(n.shares) - 1
		}
		replaced = n.shares[i].members.put(sub)
	}
	if !replaced {
		t.count++
	}
	return replaced
}

// Remove deletes s's subscription whose Filter is exactly filter, compared
// byte by byte with wildcards taken literally [MQTT-3.10.4-1], and reports
// whether there was one. Nodes left empty are pruned.
func (t *Trie[S]) Remove(s S, filter string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	removed := false
	// Try both readings of a "$share/" filter: as a shared subscription
	// (v5) and as literal levels (v3.1.1 has no shared subscriptions).
	if group, inner, ok := ParseShare(filter); ok {
		if n := t.find(inner); n != nil {
			if i := n.group(group); i >= 0 && n.shares[i].members.remove(s) {
				if len(n.shares[i].members.subs) == 0 {
					last := len(n.shares) - 1
					n.shares[i] = n.shares[last]
					n.shares[last] = nil
					n.shares = n.shares[:last]
					if len(n.shares) == 0 {
						n.shares = nil
					}
				}
				removed = true
				t.count--
				t.prune(n)
			}
		}
	}
	if n := t.find(filter); n != nil && n.subs.remove(s) {
		removed = true
		t.count--
		t.prune(n)
	}
	return removed
}

// find returns the node for filter, or nil. Lock held on entry.
func (t *Trie[S]) find(filter string) *node[S] {
	n := &t.root
	for pos := 0; pos >= 0; {
		level, next := cut(filter, pos)
		c := n.child(level)
		if c == nil {
			return nil
		}
		var ok bool
		if next, ok = follow(c.key, level, filter, next); !ok {
			return nil
		}
		n, pos = c, next
	}
	return n
}

// prune unlinks n and then each ancestor that is left empty. Write lock held
// on entry.
func (t *Trie[S]) prune(n *node[S]) {
	for n != &t.root && n.empty() {
		p := n.parent
		switch {
		case p.plus == n:
			p.plus = nil
		case p.hash == n:
			p.hash = nil
		default:
			p.children.remove(firstLevel(n.key))
		}
		n.parent = nil
		t.nodes--
		n = p
	}
}

// Count returns the number of subscriptions, shared group members included.
func (t *Trie[S]) Count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.count
}

// Match finds every subscription matching the topic name and appends the
// resulting deliveries to out: one per subscriber for its non-shared
// subscriptions, then one per matching shared group. publisher is the
// subscriber handle of the publishing session, for No Local (pass the zero
// value for a message with no publishing session). eligible, which may be
// nil, tells whether a shared group member can take a message now (online,
// window not full); when it is false for every member of a group, the next
// member in turn is chosen anyway so that the message is queued for it.
// eligible is called under the trie's read lock and must not call into the
// Trie.
//
// Match does not allocate once out has grown to the size of the result.
// out is normally Reset by the caller first; deliveries already in out are
// left as they are and are not merged with the new ones.
func (t *Trie[S]) Match(topic string, publisher S, eligible func(S) bool, out *Matches[S]) {
	out.begin()
	t.match(topic, publisher, eligible, out)
	out.finish()
}

// match is Match under the read lock; the deferred unlock keeps a panic in
// eligible from leaving the trie locked.
func (t *Trie[S]) match(topic string, publisher S, eligible func(S) bool, out *Matches[S]) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	root := &t.root
	level, next := cut(topic, 0)
	// Filters starting with a wildcard never match names starting
	// with '$' [MQTT-4.7.2-1].
	if len(topic) == 0 || topic[0] != '$' {
		if root.hash != nil {
			out.collect(root.hash, publisher)
		}
		if root.plus != nil {
			matchNode(root.plus, topic, next, publisher, out)
		}
	}
	if c := root.children.get(level); c != nil { // byte-exact [MQTT-4.7.3-4]
		if next, ok := follow(c.key, level, topic, next); ok {
			matchNode(c, topic, next, publisher, out)
		}
	}
	for _, g := range out.groups {
		out.addShared(g, g.pick(t.strategy, publisher, eligible))
	}
}

// matchNode collects the subscriptions at and below n, the node reached by the
// levels of topic before pos; pos < 0 when all levels are consumed. Trie
// read lock held on entry.
func matchNode[S comparable](n *node[S], topic string, pos int, publisher S, out *Matches[S]) {
	for {
		// "#" matches the parent level and every level below it, so
		// "a/#" matches "a" as well as "a/b/c".
		if n.hash != nil {
			out.collect(n.hash, publisher)
		}
		if pos < 0 {
			out.collect(n, publisher)
			return
		}
		var level string
		level, pos = cut(topic, pos)
		if n.plus != nil { // "+" matches one level, empty included
			if c := n.children.get(level); c != nil {
				if next, ok := follow(c.key, level, topic, pos); ok {
					matchNode(c, topic, next, publisher, out)
				}
			}
			n = n.plus
			continue
		}
		c := n.children.get(level) // byte-exact [MQTT-4.7.3-4]
		if c == nil {
			return
		}
		var ok bool
		if pos, ok = follow(c.key, level, topic, pos); !ok {
			return
		}
		n = c
	}
}

// A node's key is one level or, where nothing branches off, several: a
// literal chain "a/b/c" below which all the levels are on one node, with no
// subscriptions, wildcard children or other children at "a" and "a/b".
// The parent indexes the node by the key's first level.

// firstLevel returns the first level of key.
func firstLevel(key string) string {
	level, _ := cut(key, 0)
	return level
}

// literal reports whether s has no wildcard character.
func literal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '+' || s[i] == '#' {
			return false
		}
	}
	return true
}

// follow matches the levels of key after its first one, level, byte by
// byte against s from byte next on (next as cut returns it). It returns
// where s goes on after them, and false when s does not go through key.
func follow(key, level, s string, next int) (int, bool) {
	if len(key) == len(level) {
		return next, true
	}
	rest := key[len(level)+1:]
	if next < 0 || len(s)-next < len(rest) || s[next:next+len(rest)] != rest {
		return 0, false
	}
	switch e := next + len(rest); {
	case e == len(s):
		return -1, true
	case s[e] == '/':
		return e + 1, true
	}
	return 0, false
}

// common returns how much of key s goes through, as levels compared byte
// by byte: k is len(key) when s follows all of key, else the index of the
// '/' after the last level they share. The first k0 bytes of key (its
// first level) are known to match; s goes on at next. after is where s
// goes on after the shared levels.
func common(key string, k0 int, s string, next int) (k, after int) {
	k = k0
	for k < len(key) && next >= 0 {
		kl, kn := cut(key, k+1)
		sl, sn := cut(s, next)
		if kl != sl {
			break
		}
		if kn < 0 {
			k = len(key)
		} else {
			k = kn - 1
		}
		next = sn
	}
	return k, next
}

// cut returns the level of s starting at byte pos and the start of the level
// after it, or -1 when the level is the last one.
func cut(s string, pos int) (level string, next int) {
	for i := pos; i < len(s); i++ {
		if s[i] == '/' {
			return s[pos:i], i + 1
		}
	}
	return s[pos:], -1
}
