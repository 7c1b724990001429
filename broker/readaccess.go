package broker

import "github.com/gannet-mqtt/gannet/auth"

// Read access is checked for every delivery, at the moment the message is
// handed to a session (session.deliver: live, retained, shared
// redelivery; a QoS 0 message against the connection it is written to,
// the others under session.mu against the session's client), when a
// queued message enters the inflight window (fillLocked), and when
// unacknowledged messages are re-sent to a resumed session
// (resumeLocked): whoever the session's client is then must be allowed to
// read the topic name.

// mayRead reports whether the session's current client may read topic.
// Read under s.mu, it is the client the session belongs to from then on
// (connect sets authc under s.mu).
func (s *session) mayRead(topic string) bool {
	return s.srv.allowed(s.authc.Load(), auth.Read, topic)
}

// mayRead reports whether c's client may read topic.
func (c *conn) mayRead(topic string) bool {
	return c.srv.allowed(c.authc, auth.Read, topic)
}

// dropUnreadableLocked discards the unacknowledged PUBLISH packets the
// session's current client may not read, before they are re-sent: a
// message sent to one identity is never re-sent to another that may not
// read it. A QoS 2 message already released (PUBREL) carries no payload
// and stays. s.mu held.
func (s *session) dropUnreadableLocked() {
	if s.srv.opt().Authorizer == nil {
		return
	}
	kept := s.inflight[:0]
	for _, o := range s.inflight {
		if o.state != outReleased && o.msg != nil && !s.mayRead(o.msg.topic) {
			if o.resend {
				s.resends--
			}
			s.removeLocked(o)
			continue
		}
		kept = append(kept, o)
	}
	clear(s.inflight[len(kept):])
	s.inflight = kept
}
