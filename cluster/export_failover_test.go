package cluster

import "context"

// StepDownStreams hands the leadership of every stream and bucket of the
// cluster that this node leads to another replica, and returns how many
// it led.
func (c *Cluster) StepDownStreams() int {
	if c.ns == nil {
		return 0
	}
	acc := c.ns.GlobalAccount().Name
	ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
	defer cancel()
	n := 0
	for name := range c.js.StreamNames(ctx).Name() {
		if c.ownStream(name) && c.ns.JetStreamIsStreamLeader(acc, name) {
			c.ns.JetStreamStepdownStream(acc, name)
			n++
		}
	}
	return n
}

// LeadsStreams reports whether this node leads any stream or bucket of
// the cluster.
func (c *Cluster) LeadsStreams() bool {
	if c.ns == nil {
		return false
	}
	acc := c.ns.GlobalAccount().Name
	ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
	defer cancel()
	for name := range c.js.StreamNames(ctx).Name() {
		if c.ownStream(name) && c.ns.JetStreamIsStreamLeader(acc, name) {
			return true
		}
	}
	return false
}

// IsMetaLeader reports whether this node's NATS server leads the
// JetStream meta group.
func (c *Cluster) IsMetaLeader() bool { return c.ns != nil && c.ns.JetStreamIsLeader() }

// LeadAll asks the leader of every stream and bucket of the cluster that
// this node does not lead to hand it to this node.
func (c *Cluster) LeadAll() {
	ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
	defer cancel()
	acc := c.ns.GlobalAccount().Name
	req := []byte(`{"placement":{"preferred":"` + c.opt.Node + `"}}`)
	for name := range c.js.StreamNames(ctx).Name() {
		if c.ownStream(name) && !c.ns.JetStreamIsStreamLeader(acc, name) {
			c.nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+name, req)
		}
	}
}

// LeadsAll reports whether this node leads every stream and bucket of the
// cluster.
func (c *Cluster) LeadsAll() bool {
	ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
	defer cancel()
	acc := c.ns.GlobalAccount().Name
	for name := range c.js.StreamNames(ctx).Name() {
		if c.ownStream(name) && !c.ns.JetStreamIsStreamLeader(acc, name) {
			return false
		}
	}
	return true
}

// StreamsLed returns the streams and buckets of the cluster whose leader
// this node's NATS server is.
func (c *Cluster) StreamsLed() []string {
	ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
	defer cancel()
	acc := c.ns.GlobalAccount().Name
	var led []string
	for name := range c.js.StreamNames(ctx).Name() {
		if c.ownStream(name) && c.ns.JetStreamIsStreamLeader(acc, name) {
			led = append(led, name)
		}
	}
	return led
}

// StreamsCurrent reports whether this node's replica of every stream and
// bucket of the cluster is current: it hears from a leader and has
// applied all it committed, so that its leader can count it towards a
// quorum at once.
func (c *Cluster) StreamsCurrent() bool {
	ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
	defer cancel()
	acc := c.ns.GlobalAccount().Name
	n := 0
	for name := range c.js.StreamNames(ctx).Name() {
		if c.ownStream(name) {
			n++
			if !c.ns.JetStreamIsStreamCurrent(acc, name) {
				return false
			}
		}
	}
	return n > 0
}

// StreamCount returns how many streams and buckets the cluster has.
func (c *Cluster) StreamCount() int {
	ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
	defer cancel()
	n := 0
	for name := range c.js.StreamNames(ctx).Name() {
		if c.ownStream(name) {
			n++
		}
	}
	return n
}
