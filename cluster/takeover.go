package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// Taking a session over from another node.
//
// The node that wins a client identifier (Claim) asks the previous owner
// to take its connection over; the previous owner drops the session,
// stores what it had queued for it (writer.go, StoreTimeout at most), and
// answers with where the new owner's replay must start: its applied
// sequence as it was when it dropped the session, bounded by its writes
// (durableBoundFor) and running replays. The checkpoint it writes every
// second would not do: one written after the drop may cover messages that
// reached it once the session was gone, which the new owner, loading the
// session later (seconds, while JetStream elects a leader), would then
// never replay. A previous owner that does not answer (dead, partitioned)
// gives its checkpoint as read before the request: what it covers was
// applied while that node still had the session.
//
// A node may win the owners entry and fail to read the session (JetStream
// slow while it elects a leader: the CONNECT is refused). The entry then
// names a node that never had the session, and its applied sequence says
// nothing about it: the replay start it inherited stays (prevCheckpoint)
// until the session is loaded, and is passed on in its takeover reply;
// meanwhile its own checkpoint stays at or below it.

// The takeover replies: where to replay from, or the node whose
// checkpoint that is.
const (
	takeoverReply = "checkpoint "
	takeoverFrom  = "from "
)

// takeOver drops clientID's session on this node, another node having
// claimed it, and returns the reply: where the new owner replays from.
// Control subscription goroutine.
func (c *Cluster) takeOver(id string) []byte {
	cp := c.applied.Load() // before the drop: what the session got
	c.mu.Lock()
	delete(c.owned, id)
	if at, ok := c.droppedAt[id]; ok {
		// Dropped already, when this node saw the claim (ownerwatch.go):
		// what it had applied then.
		cp = at
		delete(c.droppedAt, id)
	}
	// Only this session's replays and inherited start matter: another
	// session's replay says nothing about this one.
	cp = min(cp, c.heldFor(id))
	c.replaysGoneLocked(id)
	_, inherited := c.prevCheckpoint[id]
	prev := c.prevOwner[id]
	delete(c.prevOwner, id)
	delete(c.prevCheckpoint, id)
	c.mu.Unlock()
	c.in.TakeOver(id)
	if prev != "" && !inherited {
		// Claimed here but never loaded, from a node whose checkpoint
		// could not be read: the new owner reads it.
		return []byte(takeoverFrom + prev)
	}
	if c.shared != nil {
		// The new owner reads the session once answered: what was
		// queued for it is stored first (else dropped, and held below
		// the checkpoint returned).
		c.shared.w.flushSession(id, StoreTimeout)
		cp = min(cp, c.shared.w.durableBoundFor(id))
	}
	return []byte(takeoverReply + strconv.FormatUint(cp, 10))
}

// dropClaimed drops the session id, which another node claimed without
// asking this one (ownerwatch.go), remembering where its replay must
// start for a takeover request that may follow. Its queued writes are
// dropped: the new owner read the session without them.
func (c *Cluster) dropClaimed(id string) {
	cp := c.applied.Load()
	c.mu.Lock()
	cp = min(cp, c.heldFor(id))
	c.replaysGoneLocked(id)
	c.mu.Unlock()
	c.in.TakeOver(id)
	if c.shared != nil {
		c.shared.w.flushSession(id, 0)
		cp = min(cp, c.shared.w.durableBoundFor(id))
	}
	c.mu.Lock()
	c.droppedAt[id] = cp
	c.mu.Unlock()
}

// takeFrom asks prev, the previous owner of clientID, to take its
// connection over, and records where the session's replay starts.
func (c *Cluster) takeFrom(clientID, prev string) {
	// As read before the claim (holdBeforeClaim).
	c.mu.Lock()
	from, ok := c.prevCheckpoint[clientID]
	c.mu.Unlock()
	// The previous owner may take StoreTimeout to store the session.
	ctx, cancel := context.WithTimeout(context.Background(), 2*StoreTimeout)
	defer cancel()
	// The old owner ends its connection; a dead one has no responders
	// and is skipped at once.
	r, err := c.nc.RequestWithContext(ctx, c.prefix+"ctl."+prev, []byte("takeover "+clientID))
	switch {
	case err == nil:
		if v, found := strings.CutPrefix(string(r.Data), takeoverReply); found {
			if n, perr := strconv.ParseUint(v, 10, 64); perr == nil {
				from, ok = n, true
			}
		} else if v, found := strings.CutPrefix(string(r.Data), takeoverFrom); found && v != "" {
			prev = v
			from, ok = c.checkpointOf(prev, clientID)
		}
	case !errors.Is(err, nats.ErrNoResponders):
		c.log.Warn("cluster: the previous owner did not confirm the takeover", "client", clientID, "previous", prev, "error", err)
	}
	c.mu.Lock()
	c.prevOwner[clientID] = prev
	if ok {
		c.prevCheckpoint[clientID] = from
	}
	c.mu.Unlock()
}

// holdBeforeClaim records, before this node claims clientID from prev,
// where the session's replay must start (prev's checkpoint for it), and
// writes this node's checkpoint record with that hold: were this node to
// die between the claim and loading the session, the node after it would
// otherwise take this node's checkpoint, which says nothing about a
// session it never had (a replay from there lost what the session missed
// since prev). An unreadable checkpoint refuses the claim, tried again by
// the client.
func (c *Cluster) holdBeforeClaim(ctx context.Context, clientID, prev string) error {
	from, ok := c.holdCheckpointOf(prev, clientID) // claimread.go
	if !ok {
		return fmt.Errorf("no checkpoint of node %s, which holds the session, readable now", prev)
	}
	c.mu.Lock()
	c.prevOwner[clientID] = prev
	if old, had := c.prevCheckpoint[clientID]; !had || from < old {
		c.prevCheckpoint[clientID] = from
	}
	c.mu.Unlock()
	return c.writeCheckpoint(ctx)
}
