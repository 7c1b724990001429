package broker

// A byte cap on one session's outgoing messages, set by an embedder for a
// client identifier (the bridges use it for the queue of each bridge).

// SetSessionByteCap caps the bytes of the QoS 1/2 messages the session of
// clientID holds for its client, in flight and queued (in memory and on
// disk) together, each counted as its topic and payload plus about 128
// bytes. A message that would take the session over the cap is dropped
// (the newest goes, the queue keeps its order) and counted in the
// session's dropped count and the broker's dropped messages, as beyond
// Options.MaxQueuedBytes, which still applies. 0 removes the cap.
func (s *Server) SetSessionByteCap(clientID string, maxBytes int64) {
	if maxBytes <= 0 {
		if _, had := s.sessionCaps.LoadAndDelete(clientID); had {
			s.sessionCapCount.Add(-1)
		}
		return
	}
	if _, had := s.sessionCaps.Swap(clientID, maxBytes); !had {
		s.sessionCapCount.Add(1)
	}
}

// overSessionCapLocked reports whether holding o would take the session
// over its SetSessionByteCap cap. sess.mu held.
func (sess *session) overSessionCapLocked(o *outbound) bool {
	if sess.srv.sessionCapCount.Load() == 0 {
		return false // no cap anywhere: no lookup on the delivery path
	}
	v, ok := sess.srv.sessionCaps.Load(sess.id)
	if !ok {
		return false
	}
	held := sess.queue.bytes + sess.spilledBytes + outCost(o)
	for _, f := range sess.inflight {
		held += outCost(f)
	}
	return held > v.(int64)
}
