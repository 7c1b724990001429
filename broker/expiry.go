package broker

import (
	"sync"
	"time"
)

// Expired messages are deleted, not only skipped [MQTT-3.3.2-5]: a
// session's queue evicts them before its limit refuses a fresh message,
// and an expired retained message goes from memory and from the store when
// a subscription or the admin API comes across it, when the store is
// restored, and by a sweep that runs when the earliest retained expiry
// passes.

// minSweepGap is the least time between two sweeps of the retained
// messages: each sweep reads them all.
const minSweepGap = time.Second

// retainedSweep schedules the sweep of expired retained messages.
type retainedSweep struct {
	mu    sync.Mutex
	timer *time.Timer // nil until a retained message with an expiry is set
	next  time.Time   // when timer fires; zero when it is not armed
	last  time.Time   // when the last sweep ran

	stopped bool           // the server closed: no sweep starts
	running sync.WaitGroup // a sweep under way; Close waits for it
}

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

// retainedExpiresAt arranges a sweep of the retained messages at t, or
// sooner if one is already due. A sweep runs at most once per minSweepGap.
func (s *Server) retainedExpiresAt(t time.Time) {
	if t.IsZero() {
		return
	}
	sw := &s.sweep
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.stopped {
		return
	}
	if !sw.next.IsZero() && !t.Before(sw.next) {
		return // a sweep is due first; it schedules the next one
	}
	if early := sw.last.Add(minSweepGap); t.Before(early) {
		t = early
	}
	sw.next = t
	d := time.Until(t)
	if sw.timer == nil {
		sw.timer = time.AfterFunc(d, s.sweepRetained)
	} else {
		sw.timer.Reset(d)
	}
}

// stopSweep stops the sweep timer, when the server closes.
func (s *Server) stopSweep() {
	s.sweep.mu.Lock()
	s.sweep.stopped = true
	if s.sweep.timer != nil {
		s.sweep.timer.Stop()
	}
	s.sweep.next = time.Time{}
	s.sweep.mu.Unlock()
}

// sweepRetained deletes the expired retained messages and arranges the
// next sweep for the earliest expiry left.
//
// It writes to the store: Close stops new sweeps and waits for one under
// way (retainedSweep.running) before it returns and the store closes.
func (s *Server) sweepRetained() {
	now := time.Now()
	s.sweep.mu.Lock()
	if s.sweep.stopped {
		s.sweep.mu.Unlock()
		return
	}
	s.sweep.running.Add(1)
	defer s.sweep.running.Done()
	s.sweep.next, s.sweep.last = time.Time{}, now
	s.sweep.mu.Unlock()
	var (
		expired  []*message
		earliest time.Time
	)
	s.retained.Range(func(_ string, m *message) bool {
		switch {
		case m.expiry.IsZero():
		case m.expired(now):
			expired = append(expired, m)
		case earliest.IsZero() || m.expiry.Before(earliest):
			earliest = m.expiry
		}
		return true
	})
	for _, m := range expired {
		s.expireRetained(m)
	}
	if len(expired) > 0 {
		s.log.Debug("deleted expired retained messages", "count", len(expired), "left", s.retained.Len())
		s.syncStore()
	}
	s.retainedExpiresAt(earliest)
}

// expireRetained deletes m, an expired retained message, from memory and
// the store, unless a newer message has replaced it meanwhile.
func (s *Server) expireRetained(m *message) {
	// Under retainMu, as publish writes retained messages: the store sees
	// the deletion and a replacing message in the order memory does.
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	s.expireRetainedLocked(m)
}

// expireRetainedLocked is expireRetained with s.retainMu held.
func (s *Server) expireRetainedLocked(m *message) {
	if s.retained.DeleteIf(m.topic, func(v *message) bool { return v == m }) {
		s.retainQuota.remove(m)
		s.storeErr("delete expired retained message", m.topic, s.store.DeleteRetained(m.topic))
	}
}
