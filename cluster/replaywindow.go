package cluster

import "time"

// A session's replay window (broker.Inbound.Replay, EndReplay): from the
// moment a node loads or adopts a session until the replay of what its
// previous node missed ends, the session takes each stream sequence once,
// whether it comes live, from the audit or replayed. Two replays may run
// to one session on one node: an adoption's, and the one of a load when
// its client, having connected elsewhere meanwhile, comes back. The window
// closed when the first ended, and the other went on giving the session
// messages it already had: a block of QoS 2 messages delivered twice (the
// crash test, seed 3, 12 kills). So the window ends with the last replay
// to the session; and a replay stops giving messages to a session once it
// is taken from this node, its skip lists being of a copy that is gone.

// replayStarts records that a replay to r's session runs (or is about to).
func (c *Cluster) replayStarts(r *replayed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.replaysOf == nil {
		c.replaysOf = make(map[string]map[*replayed]struct{})
	}
	m := c.replaysOf[r.id]
	if m == nil {
		m = make(map[*replayed]struct{})
		c.replaysOf[r.id] = m
	}
	m[r] = struct{}{}
}

// replayEnds records that r's replay ended, and ends the session's window
// if no other replay to it runs.
func (c *Cluster) replayEnds(r *replayed) {
	c.mu.Lock()
	m := c.replaysOf[r.id]
	delete(m, r)
	last := len(m) == 0
	if last {
		delete(c.replaysOf, r.id)
	}
	c.mu.Unlock()
	if last {
		c.in.EndReplay(r.id)
	}
}

// replaysGoneLocked stops the replays to session id: it is no longer this
// node's. c.mu held.
func (c *Cluster) replaysGoneLocked(id string) {
	for r := range c.replaysOf[id] {
		r.gone.Store(true)
	}
}

// windowWithoutReplay ends, after ApplyGrace, the window of a session
// loaded with nothing to replay (no previous node, or no checkpoint of
// it), unless a replay to it runs then: the broker opens the window of
// every session it loads, and only the end of a replay closed it, so the
// session recorded every sequence delivered to it for as long as it
// lived.
func (c *Cluster) windowWithoutReplay(r *replayed) {
	c.replayStarts(r)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		select {
		case <-c.stop:
			return
		case <-time.After(ApplyGrace):
		}
		c.replayEnds(r)
	}()
}
