package broker

// Hooks into the server's internals for the end-to-end tests in package
// broker_test, for state that Server.Stats does not show: per-session drop
// counts, connections still in the handshake, whether a session is online,
// and how many bytes wait in write buffers.

import "github.com/gannet-mqtt/gannet/auth"

// SessionDropped is the per-session count of messages dropped because the
// session queue was full; ok is false when there is no such session.
func (s *Server) SessionDropped(id string) (n uint64, ok bool) {
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess == nil {
		return 0, false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.dropped, true
}

// ConnCount is the number of connections the server holds, those still in
// the CONNECT handshake included.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// SessionState reports whether a session exists for id and whether it has
// a live connection.
func (s *Server) SessionState(id string) (exists, online bool) {
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess == nil {
		return false, false
	}
	return true, sess.conn.Load() != nil
}

// MaxPendingWrite is the largest number of bytes waiting in any
// connection's write buffer (not counting the batch being written).
func (s *Server) MaxPendingWrite() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	most := 0
	for c := range s.conns {
		c.wmu.Lock()
		most = max(most, len(c.out))
		c.wmu.Unlock()
	}
	return most
}

// SetMemoryInUse replaces how the server measures the memory in use, and
// samples it at once.
func (s *Server) SetMemoryInUse(f func() uint64) {
	s.limits.memUse.Store(&f)
	s.sampleMemory()
}

// SampleMemory compares the memory in use with the ceiling now.
func (s *Server) SampleMemory() { s.sampleMemory() }

// MemInUse is the broker's measure of the memory in use.
func MemInUse() uint64 { return memInUse() }

// AllowedRead asks the authoriser for read access as a delivery does.
func (s *Server) AllowedRead(ac *auth.Client, topic string) bool {
	return s.allowed(ac, auth.Read, topic)
}
