package auth

import (
	"context"
	"net"
	"strconv"
	"time"
)

// Client describes who is asking. The broker fills it in from the CONNECT
// packet and the connection, and passes the same value to every later
// authorisation call for that connection.
//
// An empty Username means an anonymous client: MQTT lets a client send a
// zero-length user name, and Gannet treats it as no user name at all.
type Client struct {
	ClientID       string
	Username       string
	Password       []byte
	HasPassword    bool
	Remote         net.Addr
	Listener       string // name of the listener the client came in on
	CertCommonName string // CN of a verified TLS client certificate, if any
	Version        byte   // protocol level from CONNECT: 3, 4 or 5

	// DisconnectAt, when set by an Authenticator (a JWT's "exp" with
	// disconnect_on_expiry), is when the broker closes the connection
	// (5.0: DISCONNECT 0xA0 Maximum connect time).
	DisconnectAt time.Time

	jwtACL *jwtACL // rules from a JWT's ACL claim, for JWTAuthorizer
}

// Anonymous reports whether c gave no user name.
func (c *Client) Anonymous() bool { return c.Username == "" }

// Result is the outcome of an authentication.
//
// The zero value is Deny, so a Result that was never set refuses.
type Result uint8

const (
	// Deny refuses the client for bad credentials: an unknown user or a
	// wrong or missing password. The broker answers CONNACK 0x86 (v5) or
	// return code 4 (v3.1, v3.1.1).
	Deny Result = iota
	// DenyNotAuthorized refuses a client whose credentials may be fine but
	// who may not connect, such as an anonymous client where anonymous
	// access is off. The broker answers CONNACK 0x87 (v5) or return code 5.
	DenyNotAuthorized
	// Allow admits the client.
	Allow
)

// String returns "deny", "not_authorized" or "allow".
func (r Result) String() string {
	switch r {
	case Deny:
		return "deny"
	case DenyNotAuthorized:
		return "not_authorized"
	case Allow:
		return "allow"
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// Authenticator decides whether a client may connect.
//
// Authenticate returns Allow, Deny or DenyNotAuthorized. A non-nil error
// means the decision could not be made (a file could not be read, a hook did
// not answer); the result is then Deny and the broker must refuse the client:
// every authenticator in this package fails closed.
//
// Implementations must be safe for concurrent use.
type Authenticator interface {
	Authenticate(ctx context.Context, c *Client) (Result, error)
}

// Access is what a client wants to do with a topic.
type Access uint8

const (
	// Read is checked on the filter of a SUBSCRIBE, and again on the topic
	// name of each message before it is delivered.
	Read Access = 1 << iota
	// Write is checked on the topic name of a PUBLISH (and of a will).
	Write
	// ReadWrite asks for both; it is granted only where both are.
	ReadWrite = Read | Write
)

// String returns "read", "write", "readwrite" or "none".
func (a Access) String() string {
	switch a {
	case 0:
		return "none"
	case Read:
		return "read"
	case Write:
		return "write"
	case ReadWrite:
		return "readwrite"
	}
	return "Access(" + strconv.Itoa(int(a)) + ")"
}

// Authorizer decides whether a client may read or write a topic.
//
// topic is a topic filter for a SUBSCRIBE (the inner filter of a $share
// subscription) and a topic name otherwise. A non-nil error means the
// decision could not be made; the answer is then false and the broker must
// refuse.
//
// Implementations must be safe for concurrent use. Authorize runs for every
// message delivered, so it should not allocate on its common path.
type Authorizer interface {
	Authorize(ctx context.Context, c *Client, a Access, topic string) (bool, error)
}

// AllowAnonymous returns an Authenticator that admits every client without a
// user name and hands every other client to next. A PasswordFile refuses
// anonymous clients by itself (an HTTPHook asks its server, which sees an
// empty user name), so anonymous access is off as soon as a password file is
// configured, unless it is wrapped in AllowAnonymous.
//
// A nil next admits every client, with or without a user name: it is the
// "no authentication configured" case.
func AllowAnonymous(next Authenticator) Authenticator {
	return allowAnonymous{next: next}
}

type allowAnonymous struct{ next Authenticator }

func (a allowAnonymous) Authenticate(ctx context.Context, c *Client) (Result, error) {
	if c.Anonymous() || a.next == nil {
		return Allow, nil
	}
	return a.next.Authenticate(ctx, c)
}

// AnonymousHandler is implemented by an Authenticator that also decides
// about some clients without a user name, such as a JWT authenticator for a
// client whose token is in the password (MQTT 5.0 allows a password without
// a user name). The broker asks Authenticate about such a client instead of
// treating it as anonymous when HandlesAnonymous reports true.
type AnonymousHandler interface {
	HandlesAnonymous(c *Client) bool
}

// MessageAuthorizer is an Authorizer that can also judge the QoS and the
// retain flag of a PUBLISH or a will (Write) or a SUBSCRIBE (Read, the
// requested maximum QoS, retain false). The broker calls AuthorizeMessage
// instead of Authorize (and AuthorizeSubscribe) where it knows them;
// deliveries are still checked with Authorize.
type MessageAuthorizer interface {
	Authorizer
	AuthorizeMessage(ctx context.Context, c *Client, a Access, topic string, qos byte, retain bool) (bool, error)
}

var (
	_ Authenticator     = (*JWT)(nil)
	_ AnonymousHandler  = (*JWT)(nil)
	_ MessageAuthorizer = (*JWTAuthorizer)(nil)
	_ Authenticator     = (*PasswordFile)(nil)
	_ Authenticator     = (*HTTPHook)(nil)
	_ Authorizer        = (*ACL)(nil)
	_ Authorizer        = (*HTTPHook)(nil)
)

// Immediate is an optional interface of an Authorizer that decides in
// memory, without I/O, so that a caller need not bound its time: the broker
// then arms no timeout for it (a context and a timer on every delivery).
type Immediate interface {
	Immediate() bool
}

// IsImmediate reports whether a decides without I/O.
func IsImmediate(a Authorizer) bool {
	i, ok := a.(Immediate)
	return ok && i.Immediate()
}

// SubscribeAuthorizer is an optional interface of an Authorizer that
// decides SUBSCRIBE itself. Without it, the broker asks Authorize for Read
// on the filter.
type SubscribeAuthorizer interface {
	AuthorizeSubscribe(ctx context.Context, c *Client, filter string) (bool, error)
}

// ReadAtDelivery wraps a so that it never refuses a subscription: read
// access is decided for each message when it is delivered, by its topic
// name. This is what a Mosquitto acl_file means: a client subscribed to "#"
// with "topic read sensors/a/#" receives the messages on sensors/a/# and
// nothing else, and an ACL without rules refuses no subscription (and
// delivers nothing).
func ReadAtDelivery(a Authorizer) Authorizer { return readAtDelivery{a} }

type readAtDelivery struct{ Authorizer }

func (readAtDelivery) AuthorizeSubscribe(context.Context, *Client, string) (bool, error) {
	return true, nil
}

// Unwrap returns the wrapped Authorizer.
func (r readAtDelivery) Unwrap() Authorizer { return r.Authorizer }

// Immediate reports whether the wrapped Authorizer decides without I/O.
func (r readAtDelivery) Immediate() bool { return IsImmediate(r.Authorizer) }
