package broker

// A takeover waits until the old connection's read loop has handed the
// session and the will over (takeover.go). The channel it waits on is made
// only then: most connections are never taken over, and a channel made at
// every connect cost about 5% of the broker's CPU in a connect storm
// (issue 14).

// handedOverChan returns a channel closed once the read loop has handed
// the session and the will over; already closed if it has.
func (c *conn) handedOverChan() <-chan struct{} {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.handedOver.Load() {
			close(c.done)
		}
	}
	return c.done
}

// handOver records that the read loop has handed the session and the will
// over, and wakes a takeover waiting for it. Read loop only, once.
func (c *conn) handOver() {
	c.wmu.Lock()
	c.handedOver.Store(true)
	if c.done != nil {
		close(c.done)
	}
	c.wmu.Unlock()
}
