package cluster

import "sync"

// HoldFrames holds this node's flusher (forwarder.go): QoS 0 messages
// routed from now on wait in their topics' frames until release is
// called (or a frame fills up).
func (c *Cluster) HoldFrames() (release func()) {
	g := make(chan struct{})
	c.fwd.gate.Store(&g)
	var once sync.Once
	return func() {
		once.Do(func() {
			c.fwd.gate.Store(nil)
			close(g)
		})
	}
}

// OpenFrameMessages returns how many messages wait in open frames.
func (c *Cluster) OpenFrameMessages() int {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	n := 0
	for _, f := range c.fwd.open {
		n += f.n
	}
	return n
}
