package cluster

// Discard stops the node's NATS server and closes its connection to it,
// so that a Close that follows has nothing to wait for: a test's cleanup
// after a partition or a death need not hand over leaderships, tell the
// other nodes or wait out their timeouts, as a graceful close does.
func (c *Cluster) Discard() {
	if c.ns != nil {
		c.ns.Shutdown()
	}
	if c.nc != nil {
		c.nc.Close()
	}
}

// StreamHigh returns the last messages stream sequence this node knows.
func (c *Cluster) StreamHigh() uint64 { return c.streamHigh.Load() }
