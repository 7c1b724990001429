package broker

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
)

// Anonymous says whether a listener admits clients without a user name.
type Anonymous uint8

const (
	// AnonymousDefault admits anonymous clients only while no
	// Options.Authenticator is configured.
	AnonymousDefault Anonymous = iota
	// AnonymousAllow admits anonymous clients, whatever else is configured.
	AnonymousAllow
	// AnonymousDeny refuses anonymous clients.
	AnonymousDeny
)

// ListenerOptions are the settings of one listener, given to ServeListener.
type ListenerOptions struct {
	// Name identifies the listener in logs and to auth (auth.Client.Listener).
	Name string
	// Anonymous decides whether clients without a user name get in.
	Anonymous Anonymous
	// IdentityAsUsername makes the verified TLS client certificate's
	// identity (see Options.PeerIdentity) the client's user name.
	IdentityAsUsername bool
	// MaxConnections caps this listener's connections (0: no cap besides
	// Options.MaxConnections).
	MaxConnections int
	// RequireAuthentication admits only clients that an authentication
	// admits: Options.Authenticator, enhanced authentication, or a
	// certificate with IdentityAsUsername or SubjectAsUsername. With none
	// configured, every client is refused (Mosquitto's allow_anonymous
	// false without a password file).
	RequireAuthentication bool
	// SubjectAsUsername makes the full subject of the verified TLS client
	// certificate (see Options.PeerSubject) the client's user name.
	SubjectAsUsername bool
	// MountPoint prefixes every topic name and filter of this listener's
	// clients (publishes, subscriptions, wills); they receive only
	// messages whose topic starts with it, with the prefix removed.
	MountPoint string
	// MaxInflight, when above 0, replaces Options.MaxInflight for this
	// listener's clients: how many QoS 1 and 2 messages may await the
	// acknowledgement of one of them (a 5.0 client's Receive Maximum still
	// bounds it, [MQTT-3.3.4-9]). The bridges' in-process listener raises
	// it, so that a bridge keeps as many messages on their way to the
	// remote as the remote's Receive Maximum allows. At most 65535.
	MaxInflight int
}

// listenerState is a served listener: its options and live count.
type listenerState struct {
	ListenerOptions
	conns atomic.Int64
}

// authTimeout bounds one authentication or authorisation decision.
const authTimeout = 10 * time.Second

// authContext bounds a decision of a by authTimeout, unless a decides in
// memory (auth.Immediate): a delivery's read check then costs no context
// and no timer.
func authContext(a auth.Authorizer) (context.Context, context.CancelFunc) {
	if auth.IsImmediate(a) {
		return context.Background(), noCancel
	}
	return context.WithTimeout(context.Background(), authTimeout)
}

func noCancel() {}

// authenticate decides whether the CONNECT's credentials get in. It returns
// Success or the CONNACK reason code to refuse with; guarded reports a
// refusal by the login limits (loginguard.go), which logged it already.
//
// enhancedUser is the user name an enhanced authentication exchange
// established, which replaces the password check.
func (s *Server) authenticate(c *conn, p *packet.Connect, id, enhancedUser string) (rc packet.ReasonCode, why string, guarded bool) {
	ac := &auth.Client{
		ClientID:    id,
		Username:    p.Username,
		Password:    p.Password,
		HasPassword: p.PasswordFlag,
		Remote:      c.nc.RemoteAddr(),
		Listener:    c.lo.Name,
		Version:     p.Version,
	}
	if s.opt().PeerIdentity != nil {
		if cn, ok := s.opt().PeerIdentity(c.nc); ok {
			ac.CertCommonName = cn
			if c.lo.IdentityAsUsername {
				ac.Username = cn
			}
		}
	}
	byCert := c.lo.IdentityAsUsername || c.lo.SubjectAsUsername
	if byCert {
		// The certificate is the credential: a client without one is
		// refused, the password file is not consulted (as Mosquitto's
		// use_identity_as_username, use_subject_as_username).
		ac.Username, ac.Password, ac.HasPassword = "", nil, false
		var name string
		ok := false
		switch {
		case c.lo.SubjectAsUsername && s.opt().PeerSubject != nil:
			name, ok = s.opt().PeerSubject(c.nc)
		case c.lo.IdentityAsUsername && ac.CertCommonName != "":
			name, ok = ac.CertCommonName, true
		}
		if !ok || name == "" {
			return packet.BadUserNameOrPassword, "no verified client certificate, which this listener takes as the user name", false
		}
		ac.Username = name
	}
	defer func() {
		ac.Password = nil
		// Kept for authorisation and introspection; an anonymous client
		// without an authoriser needs none (memory per idle connection).
		if s.opt().Authorizer != nil || ac.Username != "" || ac.CertCommonName != "" {
			c.authc = ac
		}
	}()
	anonymousOK := c.lo.Anonymous == AnonymousAllow ||
		(c.lo.Anonymous == AnonymousDefault && s.opt().Authenticator == nil)
	if enhancedUser != "" {
		ac.Username = enhancedUser
	} else if byCert {
		// authenticated by its certificate
	} else if ac.Username == "" && !s.handlesAnonymous(ac) {
		if !anonymousOK {
			return packet.NotAuthorized, "anonymous clients are not allowed on this listener", false
		}
	} else if s.opt().Authenticator == nil {
		if c.lo.RequireAuthentication {
			return packet.NotAuthorized, "this listener requires authentication and none is configured", false
		}
	} else {
		done, rc, why := s.admitLogin(ac)
		if rc != packet.Success {
			return rc, why, true
		}
		ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
		res, err := s.opt().Authenticator.Authenticate(ctx, ac)
		cancel()
		done(err == nil && res == auth.Allow)
		switch {
		case err != nil:
			s.logAuthError(id, ac.Username, err)
			return packet.ServerUnavailable, "authentication backend failed", false
		case res == auth.DenyNotAuthorized:
			return packet.NotAuthorized, "user " + ac.Username + " is not authorized", false
		case res != auth.Allow && s.opt().BadCredentialsNotAuthorized:
			return packet.NotAuthorized, "bad user name or password for user " + ac.Username, false
		case res != auth.Allow:
			return packet.BadUserNameOrPassword, "bad user name or password for user " + ac.Username, false
		}
	}
	c.disconnectAt = ac.DisconnectAt
	if p.WillFlag && len(s.opt().Rewrite) > 0 {
		p.Will.Topic = s.rewrite(RewritePublish, p.Will.Topic, false, ac) // before authorisation
	}
	if p.WillFlag && !s.allowedMsg(ac, auth.Write, p.Will.Topic, p.Will.QoS, p.Will.Retain) {
		return packet.NotAuthorized, "will topic " + p.Will.Topic + " not writable by this client", false
	}
	return packet.Success, "", false
}

// Authenticator returns the authenticator in force (nil: none), for
// metrics: a *auth.JWT reports its counters by reason.
func (s *Server) Authenticator() auth.Authenticator { return s.opt().Authenticator }

// handlesAnonymous reports whether the authenticator decides about ac,
// which has no user name, itself (a token in the password).
func (s *Server) handlesAnonymous(ac *auth.Client) bool {
	h, ok := s.opt().Authenticator.(auth.AnonymousHandler)
	return ok && h.HandlesAnonymous(ac)
}

// allowedMsg is allowed for a PUBLISH, a will or a SUBSCRIBE, whose QoS
// and retain flag an auth.MessageAuthorizer may judge too.
func (s *Server) allowedMsg(ac *auth.Client, a auth.Access, topic string, qos byte, retain bool) bool {
	ma, ok := s.opt().Authorizer.(auth.MessageAuthorizer)
	if !ok || ac == nil || (a == auth.Write && strings.HasPrefix(topic, "$SYS")) {
		return s.allowed(ac, a, topic)
	}
	ctx, cancel := authContext(ma)
	ok, err := ma.AuthorizeMessage(ctx, ac, a, topic, qos, retain)
	cancel()
	if err != nil {
		s.log.Error("authorisation failed to decide; refusing", "client", ac.ClientID, "user", ac.Username, "access", a.String(), "topic", topic, "error", err)
		return false
	}
	return ok
}

// startExpiry closes c at c.disconnectAt, the end of its credentials'
// validity (a JWT's "exp" with disconnect_on_expiry). Called once CONNECT
// is accepted.
func (c *conn) startExpiry() {
	if c.disconnectAt.IsZero() {
		return
	}
	c.expiryTimer = time.AfterFunc(time.Until(c.disconnectAt), func() {
		if c.closed.Load() {
			return
		}
		c.srv.log.Info("disconnecting client: its credentials expired", "client", c.clientID, "remote", c.nc.RemoteAddr(), "expired", c.disconnectAt)
		if c.version >= packet.V5 {
			// After CONNACK [MQTT-3.14.0-1]; 0xA0 is in the table [MQTT-3.14.2-1].
			c.closeWith(&packet.Disconnect{ReasonCode: packet.MaximumConnectTime})
		} else {
			c.closeWith(nil)
		}
	})
}

// allowed asks the authoriser, if there is one. Clients never publish to
// $SYS topics, which are the broker's own.
func (s *Server) allowed(ac *auth.Client, a auth.Access, topic string) bool {
	if a == auth.Write && strings.HasPrefix(topic, "$SYS") {
		return false
	}
	if s.opt().Authorizer == nil || ac == nil {
		return true
	}
	az := s.opt().Authorizer
	ctx, cancel := authContext(az)
	ok, err := az.Authorize(ctx, ac, a, topic)
	cancel()
	if err != nil {
		s.log.Error("authorisation failed to decide; refusing", "client", ac.ClientID, "user", ac.Username, "access", a.String(), "topic", topic, "error", err)
		return false
	}
	return ok
}

// allowedSubscribe decides whether a SUBSCRIBE to filter (the inner filter
// of a $share subscription) at the requested maximum QoS is granted: by
// the authoriser's AuthorizeMessage (Read, with the QoS) if it has one, else
// its AuthorizeSubscribe, else by Read access to the filter.
func (s *Server) allowedSubscribe(ac *auth.Client, filter string, qos byte) bool {
	if _, ok := s.opt().Authorizer.(auth.MessageAuthorizer); ok && ac != nil {
		return s.allowedMsg(ac, auth.Read, filter, qos, false)
	}
	sa, ok := s.opt().Authorizer.(auth.SubscribeAuthorizer)
	if !ok || ac == nil {
		return s.allowed(ac, auth.Read, filter)
	}
	ctx, cancel := authContext(s.opt().Authorizer)
	ok, err := sa.AuthorizeSubscribe(ctx, ac, filter)
	cancel()
	if err != nil {
		s.log.Error("authorisation failed to decide; refusing the subscription", "client", ac.ClientID, "user", ac.Username, "filter", filter, "error", err)
		return false
	}
	return ok
}
