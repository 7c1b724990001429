package broker

import (
	"errors"

	"github.com/gannet-mqtt/gannet/store"
)

// errSessionSync is the flusher's error when the session's writes could
// not be stored in time.
var errSessionSync = errors.New("session writes not stored in time")

// SessionSyncer is implemented by a store whose session writes are stored
// after they return (write-behind: a cluster's shared store, whose writes
// go to a replicated bucket). The broker then waits, per session, only
// where what it sends depends on a write:
//
//   - the flusher of a persistent session's connection, before it writes
//     a QoS 2 PUBLISH or PUBREL (the delivery's packet identifier and
//     state) or a PUBCOMP (the inbound identifier forgotten: the client
//     may reuse it) [MQTT-4.3.3-2] [MQTT-4.3.3-10];
//   - PUBREC, until the inbound QoS 2 identifier is stored: a resent
//     PUBLISH on any node is then known as a duplicate. If the wait fails
//     the PUBREC carries 0x80 (5.0) or the connection is closed (3.1.1),
//     never an acknowledgement the store does not back.
//
// QoS 1 deliveries wait for nothing: a delivery whose write is lost is
// given again by the cluster (at least once).
type SessionSyncer interface {
	// SessionSyncPending reports whether clientID has writes queued that
	// what goes out to its client depends on. It does not block.
	SessionSyncPending(clientID string) bool
	// SyncSession returns once those writes, queued before the call, are
	// stored, or an error after a bounded wait.
	SyncSession(clientID string) error
}

// sessionSyncer returns the store's SessionSyncer, or nil.
func (s *Server) sessionSyncer() SessionSyncer {
	ss, _ := store.Find[SessionSyncer](s.store)
	return ss
}

// sessSyncPending reports whether the connection's session has writes that
// its next write out must wait for. Any goroutine.
func (c *conn) sessSyncPending() bool {
	if !c.sessSync.Load() {
		return false
	}
	ss := c.srv.sessionSyncer()
	return ss != nil && ss.SessionSyncPending(c.clientID)
}

// syncSessionWrites waits for the writes the flusher's next write depends
// on; false if they could not be stored in time (the connection is then
// closed: the client resumes its session and is sent again what it
// missed). Flusher only.
func (c *conn) syncSessionWrites() bool {
	if !c.sessSync.Load() {
		return true
	}
	ss := c.srv.sessionSyncer()
	if ss == nil {
		return true
	}
	if err := ss.SyncSession(c.clientID); err != nil {
		c.srv.log.Warn("closing connection: its session's state could not be stored in time; the client may reconnect and resume", "client", c.clientID, "error", err)
		return false
	}
	return true
}

// inboundStored waits until the connection's inbound QoS 2 identifiers
// recorded so far are stored, when the store writes behind; false if they
// could not be (no PUBREC may then say the message was received).
func (c *conn) inboundStored() bool {
	ss := c.srv.sessionSyncer()
	if ss == nil || c.sess == nil {
		return true
	}
	if err := ss.SyncSession(c.clientID); err != nil {
		c.srv.log.Warn("inbound QoS 2 identifier not stored in time: the publisher is not acknowledged", "client", c.clientID, "error", err)
		return false
	}
	return true
}
