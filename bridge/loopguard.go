package bridge

import (
	"hash/maphash"
	"sync"
	"time"
)

// loopGuard stops the echo of our own messages from a 3.1 or 3.1.1 remote,
// which has no No Local: each message sent to the remote is remembered
// (topic and payload, hashed) for loopTTL, and the first message from the
// remote with the same topic and payload is taken for its echo and
// dropped. A 5.0 remote needs none: the bridge subscribes with No Local.
type loopGuard struct {
	mu   sync.Mutex
	seed maphash.Seed
	seen map[uint64]*echo
}

type echo struct {
	n    int
	last time.Time
}

const (
	loopTTL     = 30 * time.Second
	loopMaxKeys = 100_000
)

func newLoopGuard() *loopGuard {
	return &loopGuard{seed: maphash.MakeSeed(), seen: make(map[uint64]*echo)}
}

func (g *loopGuard) key(t string, p []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(g.seed)
	h.WriteString(t)
	h.WriteByte(0)
	h.Write(p)
	return h.Sum64()
}

// sent records a message sent to the remote.
func (g *loopGuard) sent(t string, p []byte) {
	k := g.key(t, p)
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.seen) >= loopMaxKeys {
		for k, e := range g.seen {
			if now.Sub(e.last) > loopTTL {
				delete(g.seen, k)
			}
		}
		if len(g.seen) >= loopMaxKeys {
			clear(g.seen) // better an echo than unbounded memory
		}
	}
	e := g.seen[k]
	if e == nil {
		e = &echo{}
		g.seen[k] = e
	}
	e.n++
	e.last = now
}

// echo reports whether a message from the remote is the echo of one sent.
func (g *loopGuard) echo(t string, p []byte) bool {
	k := g.key(t, p)
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.seen[k]
	if e == nil {
		return false
	}
	if time.Since(e.last) > loopTTL {
		delete(g.seen, k)
		return false
	}
	e.n--
	if e.n <= 0 {
		delete(g.seen, k)
	}
	return true
}
