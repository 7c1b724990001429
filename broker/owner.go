package broker

import "github.com/gannet-mqtt/gannet/auth"

// SessionOwnership decides whether a client may use the identifier of a
// session that another identity created.
type SessionOwnership uint8

const (
	// SessionOwnerOnly refuses a CONNECT whose identity (user name, or
	// certificate identity) differs from that of the session already held
	// for its client identifier: CONNACK 0x87 (3.1.1: return code 5).
	// Neither the session, its queued messages nor its live connection are
	// touched. This is the default.
	SessionOwnerOnly SessionOwnership = iota
	// SessionOwnerAny lets any identity take over, resume or end any
	// session, as MQTT itself specifies (the client identifier is the only
	// key). Only for deployments where client identifiers are secrets.
	SessionOwnerAny
)

// String returns the configuration name of o.
func (o SessionOwnership) String() string {
	if o == SessionOwnerAny {
		return "any"
	}
	return "owner"
}

// Identities, as recorded as a session's owner.
const (
	ownerAnonymous = "anonymous"
	ownerUser      = "user:"
	ownerCert      = "cert:"
)

// identityOf names who a client is for session ownership: its user name
// (which is the certificate's identity with identity_as_username, or the
// user an enhanced authentication established), else the identity of its
// verified TLS certificate, else anonymous. Anonymous clients share one
// identity: among them the client identifier is the only key.
func identityOf(ac *auth.Client) string {
	switch {
	case ac == nil:
		return ownerAnonymous
	case ac.Username != "":
		return ownerUser + ac.Username
	case ac.CertCommonName != "":
		return ownerCert + ac.CertCommonName
	}
	return ownerAnonymous
}

// mayUseLocked reports whether a client of identity ident may take over,
// resume or end sess. A session with no recorded owner (stored before
// owners were recorded) goes to whoever comes first. s.mu held.
func (s *Server) mayUseLocked(sess *session, ident string) bool {
	return s.opt().SessionOwnership == SessionOwnerAny || sess.owner == "" || sess.owner == ident
}
