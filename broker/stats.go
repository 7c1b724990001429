package broker

import "time"

// Stats is a snapshot of the broker's counters.
type Stats struct {
	Uptime           time.Duration
	Connections      int64     // clients connected now
	Accepted         uint64    // connections accepted since start
	Sessions         int       // sessions held, connected or not
	Subscriptions    int       // subscriptions in the trie
	Retained         int       // retained messages
	Received         uint64    // PUBLISH packets received from clients
	Sent             uint64    // PUBLISH packets sent to clients
	ReceivedByQoS    [3]uint64 // Received, by QoS 0, 1, 2
	SentByQoS        [3]uint64 // Sent, by QoS 0, 1, 2
	DroppedQueue     uint64    // QoS 1/2 messages dropped: a session queue was full
	DroppedSlow      uint64    // QoS 0 messages dropped: a client was not reading
	DroppedTooLarge  uint64    // messages dropped: over a client's Maximum Packet Size
	DroppedRetained  uint64    // retained messages not stored: over a retained message cap
	BytesReceived    uint64    // bytes read from clients
	BytesSent        uint64    // bytes written to clients
	MaxConnections   int64     // most clients connected at once since start
	RefusedRate      uint64    // connections refused: too many from one address
	RefusedMemory    uint64    // connections refused: memory above the ceiling
	RefusedOwner     uint64    // connections refused: the session belongs to another identity
	RefusedMemoryOps uint64    // PUBLISH and SUBSCRIBE packets refused: memory above the ceiling
	Throttled        uint64    // publishes held back by the publish rate
	SlowClosed       uint64    // clients disconnected for not reading
	DelayedHeld      int       // delayed messages held now
	DelayedReleased  uint64    // delayed messages published when due
	DelayedRefused   uint64    // delayed PUBLISH packets refused: malformed, over the maximum delay, no room
	DroppedBudget    uint64    // QoS 1/2 deliveries dropped: over the memory budget of all queues (also in DroppedQueue)
	QueuedBytes      int64     // bytes of the QoS 1/2 deliveries queued in memory, all sessions together
}

// Stats returns the broker's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	sessions := len(s.sessions)
	s.mu.Unlock()
	st := Stats{
		Uptime:           time.Since(s.started),
		Connections:      s.stats.connections.Load(),
		Accepted:         s.stats.accepted.Load(),
		Sessions:         sessions,
		Subscriptions:    s.subs.Count(),
		Retained:         s.retained.Len(),
		Received:         s.stats.received.Load(),
		Sent:             s.stats.sent.Load(),
		DroppedQueue:     s.stats.dropped.Load(),
		DroppedSlow:      s.stats.slowDropped.Load(),
		DroppedTooLarge:  s.stats.tooLarge.Load(),
		DroppedRetained:  s.stats.retainRefused.Load(),
		BytesReceived:    s.stats.bytesIn.Load(),
		BytesSent:        s.stats.bytesOut.Load(),
		MaxConnections:   s.stats.maxConns.Load(),
		RefusedRate:      s.limits.refusedRate.Load(),
		RefusedMemory:    s.limits.refusedMemory.Load(),
		RefusedOwner:     s.limits.refusedOwner.Load(),
		RefusedMemoryOps: s.limits.refusedMemOps.Load(),
		Throttled:        s.limits.throttled.Load(),
		SlowClosed:       s.limits.slowClosed.Load(),
		DelayedReleased:  s.stats.delayedReleased.Load(),
		DelayedRefused:   s.stats.delayedRefused.Load(),
		QueuedBytes:      s.queuedBytes.Load(),
		DroppedBudget:    s.stats.droppedBudget.Load(),
	}
	s.delayed.mu.Lock()
	st.DelayedHeld = len(s.delayed.heap)
	s.delayed.mu.Unlock()
	for q := range 3 {
		st.ReceivedByQoS[q] = s.stats.receivedQoS[q].Load()
		st.SentByQoS[q] = s.stats.sentQoS[q].Load()
	}
	return st
}

// PublishLimits are the limits a client's PUBLISH is held to.
type PublishLimits struct {
	MaxPacketSize  int // Options.MaxPacketSize
	MaxTopicLength int // Options.MaxTopicLength (0: none)
	MaxTopicLevels int // Options.MaxTopicLevels (0: none)
}

// PublishLimits returns the current limits on a client's PUBLISH, for
// callers of Publish that accept messages from elsewhere (the admin API)
// and hold them to the same.
func (s *Server) PublishLimits() PublishLimits {
	o := s.opt()
	return PublishLimits{MaxPacketSize: o.MaxPacketSize, MaxTopicLength: o.MaxTopicLength, MaxTopicLevels: o.MaxTopicLevels}
}
