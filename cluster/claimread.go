package cluster

import (
	"github.com/nats-io/nats-server/v2/server"
)

// Reading the previous owner's checkpoint for a claim without a meta
// leader.
//
// holdBeforeClaim reads the previous owner's checkpoint record before the
// claim's compare-and-set. Through a consumer that read waits a second when
// no consumer can be made (the JetStream meta leader, which makes them, is
// cut off or dead, until NATS elects another 4 to 9 s later), and the
// session's read that follows waits another: a CONNECT without a meta
// leader took 2 to 3 s. Where this node's NATS server has no route to the
// meta leader it knows (a cut or a kill closes the route at once) no
// consumer can be made: the record is read at once by the direct get that
// readKeys would fall back to after that second (this node's replica, only
// if current). A record a moment stale is an older one: its replay start
// is earlier, never later, but for a per-session hold written in that
// moment; a live previous owner's answer to the takeover replaces it
// anyway (takeFrom).

// metaLeaderUnreachable reports whether this node's NATS server knows no
// JetStream meta leader, or has no route to the one it knows. False with
// an external NATS (Options.NATSURL): it cannot tell.
func (c *Cluster) metaLeaderUnreachable() bool {
	if c.ns == nil {
		return false
	}
	jsz, err := c.ns.Jsz(&server.JSzOptions{})
	if err != nil || jsz.Meta == nil {
		return false
	}
	leader := jsz.Meta.Leader
	if leader == "" {
		return true
	}
	if leader == c.ns.Name() {
		return false
	}
	rz, err := c.ns.Routez(&server.RoutezOptions{})
	if err != nil {
		return false
	}
	for _, r := range rz.Routes {
		if r.RemoteName == leader {
			return false
		}
	}
	return true
}

// holdCheckpointOf is checkpointOf for holdBeforeClaim: by a direct get
// first when the meta leader is unreachable.
func (c *Cluster) holdCheckpointOf(origin, id string) (uint64, bool) {
	if c.metaLeaderUnreachable() {
		ctx, cancel := opCtx()
		es, err := c.directLast(ctx, c.sessions, checkpointKey(origin))
		cancel()
		if err == nil && len(es) > 0 {
			if r, ok := decodeCheckpoint(es[len(es)-1].Value()); ok {
				return r.of(id), true
			}
		}
		c.log.Debug("cluster: no meta leader reachable and this node's replica cannot answer for a checkpoint; reading it through a consumer", "node", origin, "error", err)
	}
	return c.checkpointOf(origin, id)
}
