package broker

// Parked is the number of this server's connections parked without a read
// loop goroutine (park_linux.go).
func (s *Server) Parked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.park.state.Load() == readParked {
			n++
		}
	}
	return n
}
