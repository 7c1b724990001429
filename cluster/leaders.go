package cluster

import (
	"context"
	"encoding/json"
	"time"
)

// Where the leaders are.
//
// A client's CONNECT writes the owners bucket (its claim), the sessions
// bucket and, with a will, the wills bucket; its QoS 1/2 messages are
// stored in the messages stream; every node writes its heartbeat to the
// nodes bucket. Each is a raft group with its own leader, and when the
// node that leads one is killed, NATS elects a new leader only after its
// election timeout (Options.ElectionTimeout, 1.5 to 2.25 s after the last
// heartbeat by default; nats-server's own 4 to 9 s otherwise: election.go):
// until then that group refuses writes. Spread over three nodes, these
// groups put one of them on nearly any node a kill can hit; kept on one
// node (the messages stream's leader), only a kill of that node waits for
// elections (all of them at once), and a kill of any other node does not.

// leadersEvery is how often a node looks at the groups it leads.
const leadersEvery = 5 * time.Second

// colocated are the buckets whose leaders follow the messages stream's.
func (c *Cluster) colocated() []string {
	b := "KV_gannet_" + c.opt.Name + "_"
	return []string{b + "owners", b + "sessions", b + "wills", b + "nodes"}
}

// leaderLoop hands the leadership of the colocated buckets this node
// leads to the messages stream's leader, every leadersEvery.
func (c *Cluster) leaderLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(leadersEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		if c.ops.draining.Load() {
			continue // stepDown hands everything over
		}
		ctx, cancel := context.WithTimeout(c.base, leadersEvery)
		c.colocate(ctx)
		cancel()
	}
}

// colocate hands each colocated bucket this node leads to the node that
// leads the messages stream, where that node's replica of the bucket is
// current (a transfer to a replica that lags would leave the bucket
// without a leader until an election).
func (c *Cluster) colocate(ctx context.Context) {
	st, err := c.js.Stream(ctx, c.messageStream())
	if err != nil {
		return
	}
	ci := st.CachedInfo().Cluster
	if ci == nil || ci.Leader == "" || ci.Leader == c.opt.Node {
		return
	}
	anchor := ci.Leader
	for _, name := range c.colocated() {
		kv, err := c.js.Stream(ctx, name)
		if err != nil {
			continue
		}
		ki := kv.CachedInfo().Cluster
		if ki == nil || ki.Leader != c.opt.Node {
			continue
		}
		current := false
		for _, r := range ki.Replicas {
			if r.Name == anchor && r.Current && !r.Offline && r.Lag == 0 {
				current = true
			}
		}
		if !current {
			continue
		}
		req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": anchor}})
		if _, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+name, req); err != nil {
			c.log.Debug("cluster: a bucket's leadership was not moved to the messages stream's leader", "bucket", name, "to", anchor, "error", err)
			continue
		}
		c.log.Debug("cluster: moved a bucket's leadership to the messages stream's leader", "bucket", name, "to", anchor)
	}
}
