package broker

// Lingering reports how many connections are being closed gracefully:
// final packet sent, input read and discarded for a moment (linger.go).
func (s *Server) Lingering() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lingering)
}

// MaxLingering is how many connections may linger at once.
const MaxLingering = maxLingering
