package cluster

import (
	"context"
	"time"
)

// Owner returns the node instance that owns clientID in the owners
// bucket ("" when nobody does).
func (c *Cluster) Owner(clientID string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	e, err := c.owners.Get(ctx, ownerKey(clientID))
	if err != nil {
		return "", err
	}
	return string(e.Value()), nil
}

// Origin is this node's instance name, as the owners bucket holds it.
func (c *Cluster) Origin() string { return c.origin }

// LoseHeartbeats makes this node's heartbeats never reach the nodes
// bucket, the node otherwise running, until the returned func is called:
// what the others see while the bucket elects a leader, or when the node
// is too slow to write it.
func (c *Cluster) LoseHeartbeats() (resume func()) {
	lose := func() bool { return false }
	c.beatHook.Store(&lose)
	return func() { c.beatHook.Store(nil) }
}
