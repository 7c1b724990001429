package topic

import (
	"math/rand/v2"
	"strings"
	"sync/atomic"
)

// sharePrefix starts every shared subscription filter [MQTT-4.8.2-1].
const sharePrefix = "$share/"

// ParseShare splits a shared subscription filter "$share/{group}/{inner}".
// ok is false when filter does not start with "$share/", when the group is
// empty [MQTT-4.8.2-1], holds '+' or '#', or is not followed by '/' and a
// non-empty filter [MQTT-4.8.2-2]. The inner filter is not otherwise checked:
// pass it to [ValidFilter].
func ParseShare(filter string) (group, inner string, ok bool) {
	if !strings.HasPrefix(filter, sharePrefix) {
		return "", "", false
	}
	rest := filter[len(sharePrefix):]
	i := strings.IndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 { // [MQTT-4.8.2-1] [MQTT-4.8.2-2]
		return "", "", false
	}
	group = rest[:i]
	if strings.ContainsAny(group, "+#") { // [MQTT-4.8.2-2]
		return "", "", false
	}
	return group, rest[i+1:], true
}

// ShareStrategy chooses which member of a shared group receives a message.
type ShareStrategy uint8

const (
	// RoundRobin takes the members in turn, per group (the default).
	RoundRobin ShareStrategy = iota
	// Random takes a member uniformly at random.
	Random
)

// String names the strategy as configuration spells it.
func (s ShareStrategy) String() string {
	switch s {
	case RoundRobin:
		return "round-robin"
	case Random:
		return "random"
	}
	return "unknown"
}

// TrieOptions configures a Trie. The zero value is ready to use.
type TrieOptions struct {
	ShareStrategy ShareStrategy
}

// shareGroup is one shared subscription group: all members subscribed with
// the same group name and inner filter, kept on the inner filter's node.
type shareGroup[S comparable] struct {
	name    string
	members subList[S]
	next    atomic.Uint64 // round-robin cursor; advanced by concurrent Matches
}

// pick chooses the member that receives one message, or nil when there is
// none. Members for which eligible returns false are passed over; when no
// member is eligible, the next one in turn is chosen anyway so the message is
// queued for it. A member with No Local never receives its own message.
// Trie read lock held on entry.
func (g *shareGroup[S]) pick(strategy ShareStrategy, publisher S, eligible func(S) bool) *Subscription[S] {
	ms := g.members.subs
	n := uint64(len(ms))
	if n == 0 {
		return nil
	}
	var start uint64
	if strategy == Random {
		start = rand.Uint64N(n)
	} else {
		start = g.next.Add(1) - 1
	}
	fallback := -1
	for k := uint64(0); k < n; k++ {
		i := (start + k) % n
		s := &ms[i]
		// No Local on a shared subscription is a Protocol Error the broker
		// rejects [MQTT-3.8.3-4] (v5); should one get here, it is still
		// never handed its own message [MQTT-3.8.3-3] (v5).
		if s.NoLocal && s.Subscriber == publisher {
			continue
		}
		if fallback < 0 {
			fallback = int(i)
		}
		if eligible == nil || eligible(s.Subscriber) {
			if k > 0 && strategy == RoundRobin {
				// Step the cursor past the members skipped, so that they
				// do not hand their turns to this one.
				g.next.Add(k)
			}
			return s
		}
	}
	if fallback < 0 {
		return nil
	}
	return &ms[fallback]
}
