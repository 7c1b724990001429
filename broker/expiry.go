package broker

import "time"

// queueFullLocked reports whether the session's queue is at its limit
// (Options.MaxQueued) once the deliveries whose message has expired are
// evicted: expired entries do not crowd out fresh messages. sess.mu held.
func (s *session) queueFullLocked() bool {
	limit := s.srv.opt().MaxQueued
	if s.queue.len()+s.spilled < limit {
		return false
	}
	now := time.Now()
	if !s.queue.mayHaveExpired(now) {
		return true
	}
	s.queue.evictExpired(now, s.removeLocked) // [MQTT-3.3.2-5]
	return s.queue.len()+s.spilled >= limit
}
