package cluster

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Sessions orphaned before this node started. The nodes that run when a
// node dies adopt its sessions once its heartbeat is DeadAfter old
// (willLoop, adopt.go); a node that starts later never hears that
// heartbeat, and a survivor that could not adopt (no quorum then: the
// death left it alone until another node started) does not know to look
// again. So each node, once it has heard the heartbeats for DeadAfter
// after it starts, reads the owners bucket: every node instance named
// there that sends no heartbeat is dead, and this node adopts its sessions
// as a survivor would. Each session goes to the one node that wins its
// owners entry by compare-and-set, so it is adopted once cluster-wide,
// whichever nodes look.

// orphanRetry is how long adoptOrphans waits before it reads the owners
// bucket again after a failure (no quorum yet).
const orphanRetry = DeadAfter

// adoptOrphans adopts the sessions of the node instances that own client
// identifiers and are not live: not this node, and not in live (the
// instances whose heartbeat this node has heard within DeadAfter).
func (c *Cluster) adoptOrphans(live map[string]bool) {
	defer c.wg.Done()
	for {
		owners, err := c.ownerOrigins()
		if err == nil {
			for origin := range owners {
				if origin != c.origin && !live[origin] {
					c.log.Info("cluster: a node that is not running owns sessions: adopting them", "node", origin)
					c.adoptDead(origin)
				}
			}
			return
		}
		c.log.Debug("cluster: cannot read the owners bucket yet to find sessions of dead nodes; retrying", "error", err)
		select {
		case <-c.stop:
			return
		case <-time.After(orphanRetry):
		}
	}
}

// ownerOrigins returns the node instances the owners bucket names.
func (c *Cluster) ownerOrigins() (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(c.base, 2*StoreTimeout)
	defer cancel()
	w, err := c.owners.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	origins := make(map[string]bool)
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, context.Canceled
			}
			if e == nil { // every current entry has come
				return origins, nil
			}
			origins[string(e.Value())] = true
		}
	}
}
