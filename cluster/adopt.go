package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gannet-mqtt/gannet/store"
)

// Checkpoints and the adoption of a dead node's sessions (see sessions.go).

// checkpointLoop writes this node's checkpoint to the sessions bucket
// every HeartbeatEvery: the audit's (applied, audit.go), below the
// messages this node stored and has not delivered yet, and, while a
// replay runs, no later than where the replay started.
func (c *Cluster) checkpointLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(HeartbeatEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(c.base, HeartbeatEvery)
		if err := c.writeCheckpoint(ctx); err != nil {
			c.log.Debug("cluster: checkpoint not written", "error", err)
		}
		cancel()
	}
}

// writeCheckpoint writes this node's checkpoint record to the sessions
// bucket (checkpoint.go). One at a time: a checkpoint computed before a
// replay or a claim began never overwrites one that holds it back.
func (c *Cluster) writeCheckpoint(ctx context.Context) error {
	c.cpMu.Lock()
	defer c.cpMu.Unlock()
	global, holds := c.checkpointNow()
	_, err := c.sessions.Put(ctx, checkpointKey(c.origin), encodeCheckpoint(global, holds))
	return err
}

// replayHold is a running replay: how far it has given the stored
// messages to its sessions, and the sessions it replays to (nil: any, an
// adoption).
type replayHold struct {
	from uint64
	ids  map[string]bool
}

// replayFrom holds this node's checkpoint at or below from, for the
// sessions ids (none: any session), while a replay runs; the returned func
// ends that. It writes the checkpoint at once, before this node takes the
// sessions replayed: a node that takes one of them from this node before
// the replay ends replays from there too.
func (c *Cluster) replayFrom(from uint64, ids ...string) func() {
	done, _ := c.replayHoldFrom(from, ids...)
	return done
}

// replayHoldFrom is replayFrom that also returns the function that raises
// the hold as the replay goes: the messages up to where it is are in the
// sessions, their writes queued (which their own holds cover).
func (c *Cluster) replayHoldFrom(from uint64, ids ...string) (done func(), advance func(uint64)) {
	h := &replayHold{from: from}
	if len(ids) > 0 {
		h.ids = make(map[string]bool, len(ids))
		for _, id := range ids {
			h.ids[id] = true
		}
	}
	c.mu.Lock()
	c.replayN++
	n := c.replayN
	c.replays[n] = h
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.base, StoreTimeout)
	if err := c.writeCheckpoint(ctx); err != nil {
		c.log.Warn("cluster: checkpoint not written before a replay: a session taken from this node before the replay ends may miss messages", "error", err)
	}
	cancel()
	return func() {
			c.mu.Lock()
			delete(c.replays, n)
			c.mu.Unlock()
		}, func(seq uint64) {
			c.mu.Lock()
			h.from = max(h.from, seq)
			c.mu.Unlock()
		}
}

// heldFor returns where the running replays to session id, and the replay
// it inherited, start (math.MaxUint64: none). c.mu held.
func (c *Cluster) heldFor(id string) uint64 {
	held := uint64(math.MaxUint64)
	for _, h := range c.replays {
		if h.ids == nil || h.ids[id] {
			held = min(held, h.from)
		}
	}
	if from, ok := c.prevCheckpoint[id]; ok {
		held = min(held, from)
	}
	return held
}

// adopt makes the persistent sessions that a dead node instance owned this
// node's (each goes to the one survivor that wins its owners entry by
// compare-and-set), then replays what the dead node had not applied.
func (c *Cluster) adopt(dead string) {
	defer c.wg.Done()
	if c.shared == nil {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(c.base, time.Minute)
	defer cancel()
	cpr, haveFrom := c.checkpointRecordOf(dead)
	from := cpr.C
	for _, h := range cpr.H {
		from = min(from, h) // the stream is read once, from the earliest
	}
	keys, err := c.listKeys(ctx, c.sessions, "s.>")
	if err != nil {
		c.log.Warn("cluster: cannot list the sessions of a dead node yet (no quorum?): looking again at the next check", "node", dead, "error", err)
		c.mu.Lock()
		delete(c.adopting, dead)
		c.mu.Unlock()
		return
	}
	var rs []*replayed
	again := false // a claim failed other than by losing the race
	defer func() {
		if again {
			c.mu.Lock()
			delete(c.adopting, dead) // the next check adopts the rest
			c.mu.Unlock()
		}
	}()
	advance := func(uint64) {}
	if haveFrom {
		var done func()
		done, advance = c.replayHoldFrom(from)
		defer done()
	}
	for _, k := range keys {
		tok := strings.TrimPrefix(k, "s.")
		oe, err := c.owners.Get(ctx, tok)
		if err != nil || string(oe.Value()) != dead {
			continue
		}
		v, err := c.sessions.Get(ctx, k)
		if err != nil {
			continue
		}
		var ks kvSession
		if json.Unmarshal(v.Value(), &ks) != nil {
			continue
		}
		rev, err := c.owners.Update(ctx, tok, []byte(c.origin), oe.Revision())
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				again = true // not written (no leader yet?): look again
			}
			continue // another survivor, or the client on a node, was first
		}
		rec, entries, r, err := c.shared.loadSession(ks.ClientID)
		if err != nil {
			// Owned here without being loaded: whoever loads it replays
			// from the dead node's checkpoint (takeover.go).
			c.mu.Lock()
			c.prevOwner[ks.ClientID] = dead
			if haveFrom {
				c.prevCheckpoint[ks.ClientID] = cpr.of(ks.ClientID)
			}
			c.mu.Unlock()
			c.log.Warn("cluster: cannot read a session of a dead node: it resumes when its client reconnects", "client", ks.ClientID, "node", dead, "error", err)
			continue
		}
		c.mu.Lock()
		c.owned[rec.ClientID] = rev
		c.mu.Unlock()
		if !c.in.Adopt(rec, entries) {
			continue
		}
		if !c.Owns(rec.ClientID) {
			// Its client connected to another node meanwhile, whose
			// takeover request found nothing here yet.
			c.in.TakeOver(rec.ClientID)
			continue
		}
		if err := c.shared.SaveSession(rec); err != nil { // with the time it went offline
			c.log.Debug("cluster: adopted session not saved", "client", rec.ClientID, "error", err)
		}
		r.from = cpr.of(rec.ClientID)
		c.replayStarts(r)
		rs = append(rs, r)
	}
	c.lastAdoption.Store(int64(time.Since(start)))
	c.adopted.Add(uint64(len(rs)))
	if len(rs) > 0 {
		c.log.Info("cluster: adopted the persistent sessions of a dead node", "node", dead, "sessions", len(rs), "took", time.Since(start))
	}
	if len(rs) == 0 {
		return
	}
	if !haveFrom {
		for _, r := range rs {
			c.replayEnds(r)
		}
		if len(rs) > 0 {
			c.log.Warn("cluster: no checkpoint of a dead node: messages it missed are not replayed", "node", dead)
		}
		return
	}
	c.replay(from, rs, advance)
}

// adoptable reports whether this node should look for the sessions of a
// dead node instance (once per instance). willLoop goroutine.
func (c *Cluster) adoptDead(dead string) {
	c.mu.Lock()
	if c.adopting[dead] || c.closed {
		c.mu.Unlock()
		return
	}
	c.adopting[dead] = true
	c.wg.Add(1)
	c.mu.Unlock()
	go c.adoptIfGone(dead)
}

// adoptIfGone adopts the sessions of the node instance dead, and gives
// the messages it held for shared subscriptions to other members, if it
// is gone; else it lets the next check look again. One decision for
// both: two checks made apart could differ (a heartbeat expiring between
// them, a check that cannot tell), and the one not made again would be
// lost (the shared messages of TestSessionOfDeadNode).
func (c *Cluster) adoptIfGone(dead string) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.base, 2*aliveTimeout)
	// This node's view of the heartbeats may lag (a node that has just
	// started catches up): its heartbeat, if still in the bucket (entries
	// expire after DeadAfter), says the node lives; so does its answer
	// on NATS.
	gone := !c.alive(ctx, dead) && !c.reachable(ctx, dead)
	cancel()
	c.mu.Lock()
	if !gone || c.closed {
		delete(c.adopting, dead) // look again at the next check
		c.mu.Unlock()
		return
	}
	c.wg.Add(2)
	c.mu.Unlock()
	go c.adopt(dead)
	go c.redeliverShared(dead)
}

var _ store.Store = (*sharedStore)(nil)

// aliveTimeout bounds alive.
const aliveTimeout = 2 * time.Second

// alive reports whether origin's heartbeat is in the nodes bucket (its
// entries expire after DeadAfter), or this node cannot tell. It reads
// through a consumer, served by the bucket's leader: a direct get may be
// answered by this node's own replica, which lags behind (or is empty)
// while the node catches up after a restart.
func (c *Cluster) alive(ctx context.Context, origin string) bool {
	// Not longer than aliveTimeout: without a meta leader no consumer can
	// be made until one is elected, and the caller looks again.
	ctx, cancel := context.WithTimeout(ctx, aliveTimeout)
	defer cancel()
	w, err := c.nodes.Watch(ctx, origin, jetstream.IgnoreDeletes())
	if err != nil {
		return true
	}
	defer w.Stop()
	select {
	case e, ok := <-w.Updates():
		return !ok || e != nil
	case <-ctx.Done():
		return true
	}
}

// reachable reports whether the node instance origin is still on NATS:
// its control subscription answers a ping, or NATS cannot tell (no answer
// in time, this node's own connection down). A stale heartbeat alone does
// not make a node dead: while the nodes bucket elects a leader, or a node
// under load cannot write it within a second, a live node's heartbeat
// stops arriving, and adopting its sessions then takes them from a node
// that goes on serving them (an acknowledged QoS 2 message lost between
// the two). A node that died or is cut off by a partition has no
// subscription left: NATS answers "no responders" at once, as soon as its
// routes closed.
func (c *Cluster) reachable(ctx context.Context, origin string) bool {
	ctx, cancel := context.WithTimeout(ctx, aliveTimeout)
	defer cancel()
	_, err := c.nc.RequestWithContext(ctx, c.prefix+"ctl."+origin, []byte("ping"))
	switch {
	case err == nil:
		c.log.Debug("cluster: a node whose heartbeat is late still answers on NATS: its sessions stay its own", "node", origin)
		return true
	case errors.Is(err, nats.ErrNoResponders):
		return false
	default:
		c.log.Debug("cluster: cannot tell whether a node whose heartbeat is late is gone: looking again later", "node", origin, "error", err)
		return true
	}
}
