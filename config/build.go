package config

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"github.com/gannet-mqtt/gannet/cluster"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/listener"
	"github.com/gannet-mqtt/gannet/webhook"
)

// Runtime is a configuration ready to run: what Build makes of a File.
type Runtime struct {
	// BrokerOptions are for broker.New. Authenticator, Authorizer and
	// EnhancedAuth are set from the auth section, PeerIdentity to
	// listener.PeerIdentity, Logger to Logger. Store is nil: the caller
	// opens the store Store describes and sets it. Version is broker's
	// default: the caller sets it.
	BrokerOptions broker.Options
	// Listeners are the listeners to open (listener.Listen(l.Config)) and
	// serve (ServeListener(ln, l.ListenerOptions)), in file order.
	Listeners []RuntimeListener
	// Store says which store to open.
	Store Store
	// Admin is the admin HTTP listener; Address "" means off.
	Admin Admin
	// Logger writes to standard error at the configured level and format.
	Logger *slog.Logger
	// Bridges are for bridge.Manager.Apply.
	Bridges []bridge.Config
	// Webhooks are for webhook.New, once the broker is made; none: off.
	Webhooks []webhook.Hook
	// Cluster, when not nil, are the options of this node's cluster
	// (cluster.New); the caller sets BrokerOptions.Cluster to it.
	Cluster *cluster.Options
}

// RuntimeListener is one listener: how to open it, and how the broker
// treats its clients. Both halves carry the same Name.
type RuntimeListener struct {
	listener.Config
	broker.ListenerOptions
}

// scramIterations is the PBKDF2 iteration count of the SCRAM credentials
// made from auth.scram.users_file (RFC 7677's minimum).
const scramIterations = 4096

// Build validates f and makes a Runtime of it. It reads the files the
// configuration names: the password, ACL and SCRAM users files (every bad
// line reported, with its file and line) and the TLS certificates, keys
// and CA bundles of the listeners, so that a bad file shows up now and not
// at the first connection. Problems are returned at once, as an Errors.
func (f *File) Build() (*Runtime, error) {
	return f.build(os.Stderr)
}

func (f *File) build(logOut io.Writer) (*Runtime, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	c := &collector{f: f}
	level, _ := parseLevel(f.Logging.Level)
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(logOut, hopts)
	if f.Logging.Format == "json" {
		h = slog.NewJSONHandler(logOut, hopts)
	}
	log := slog.New(h)

	rt := &Runtime{
		BrokerOptions: f.brokerOptions(),
		Store:         f.Store,
		Admin:         f.Admin,
		Logger:        log,
		Bridges:       f.bridgeConfigs(),
		Cluster:       f.clusterOptions(),
	}
	if rt.Cluster != nil {
		rt.Cluster.Logger = log
	}
	o := &rt.BrokerOptions
	o.Logger = log
	o.PeerIdentity = peerIdentity
	o.PeerSubject = listener.PeerSubject
	f.buildAuth(c, o)
	rt.Webhooks = f.buildWebhooks(c)

	for i := range f.Listeners {
		l := &f.Listeners[i]
		cfg, _ := l.listenerConfig()
		cfg.Logger = log
		if cfg.Type == listener.TypeTLS || cfg.Type == listener.TypeWSS {
			checkTLSFiles(c, fmt.Sprintf("listeners[%d].tls", i), cfg.TLS)
		}
		rt.Listeners = append(rt.Listeners, RuntimeListener{
			Config: cfg,
			ListenerOptions: broker.ListenerOptions{
				Name:                  cfg.Name,
				Anonymous:             anonymous(l.Anonymous),
				IdentityAsUsername:    l.IdentityAsUsername,
				SubjectAsUsername:     l.SubjectAsUsername,
				RequireAuthentication: l.RequireAuth,
				MountPoint:            l.MountPoint,
				MaxConnections:        l.MaxConnections,
			},
		})
	}
	if err := c.errs.err(); err != nil {
		return nil, err
	}
	return rt, nil
}

// peerIdentity adapts listener.PeerIdentity to broker.Options.PeerIdentity.
func peerIdentity(c net.Conn) (string, bool) {
	cn, _, ok := listener.PeerIdentity(c)
	return cn, ok
}

func anonymous(s string) broker.Anonymous {
	switch s {
	case "allow":
		return broker.AnonymousAllow
	case "deny":
		return broker.AnonymousDeny
	}
	return broker.AnonymousDefault
}

// brokerOptions converts the limits and MQTT settings; auth, logger and
// store are left to Build.
func (f *File) brokerOptions() broker.Options {
	o := broker.DefaultOptions()
	l, m := &f.Limits, &f.MQTT
	o.ConnectTimeout = l.ConnectTimeout
	o.MaxPacketSize = int(l.MaxPacketSize)
	o.MaxPayloadSize = int(l.MaxPayloadSize)
	o.MaxUserProperties = l.MaxUserProperties
	o.MaxInflight = l.MaxInflight
	o.MaxQueued = l.MaxQueued
	o.MaxQueuedBytes = int64(l.MaxQueuedBytes)
	o.MaxRetained, o.MaxRetainedBytes = l.MaxRetained, int64(l.MaxRetainedBytes)
	o.MaxRetainedPerUser, o.MaxRetainedBytesPerUser = l.MaxRetainedPerUser, int64(l.MaxRetainedBytesPerUser)
	o.QueueQoS0 = l.QueueQoS0
	o.MaxConnections = l.MaxConnections
	o.MaxTopicLength = l.MaxTopicLength
	o.MaxTopicLevels = l.MaxTopicLevels
	o.MaxKeepAlive = uint16(min(max(l.MaxKeepAlive/time.Second, 0), 65535))
	o.MaxClientIDLength = l.MaxClientIDLength
	o.WriteBufferLimit = int(l.WriteBufferLimit)
	o.WriteBufferHardLimit = int(l.WriteBufferHardLimit)
	o.ConnectionRate = l.ConnectionRate
	o.ConnectionBurst = l.ConnectionBurst
	o.PublishRate = l.PublishRate
	o.PublishBurst = l.PublishBurst
	o.PublishByteRate = int(l.PublishByteRate)
	o.PublishRateDisconnect = l.PublishRateDisconnect
	o.MaxSubscriptions = l.MaxSubscriptions
	o.MemoryLimit = int64(l.MemoryLimit)
	o.MaxSessionExpiry = uint32(min(max(l.MaxSessionExpiry/time.Second, 0), 1<<32-1))
	o.MaxAnonymousSessionExpiry = uint32(min(max(l.MaxAnonymousSessionExpiry/time.Second, 0), 1<<32-1))
	o.SysInterval = f.Sys.Interval

	o.MaximumQoS = byte(min(max(m.MaximumQoS, 0), 255))
	o.RetainAvailable = m.RetainAvailable
	o.WildcardSubscriptions = m.WildcardSubscriptions
	o.SharedSubscriptions = m.SharedSubscriptions
	o.SubscriptionIdentifiers = m.SubscriptionIdentifiers
	o.TopicAliasMaximum = uint16(min(max(m.TopicAliasMaximum, 0), 65535))
	o.ReceiveMaximum = uint16(min(max(m.ReceiveMaximum, 0), 65535))
	o.ResponseInformation = m.ResponseInformation
	o.ServerReference = m.ServerReference
	o.ShareStrategy, _ = parseShareStrategy(m.ShareStrategy)
	o.ValidatePayloadFormat = m.ValidatePayloadFormat
	o.RefuseEmptyClientID = !m.AllowEmptyClientID
	o.UpgradeOutgoingQoS = m.UpgradeOutgoingQoS
	o.CheckRetainSource = f.Auth.CheckRetainSource
	o.BadCredentialsNotAuthorized = f.Auth.BadCredentialsNotAuthorized
	o.DelayedPublish, o.MaxDelay, o.MaxDelayed = m.DelayedPublish.Enabled, m.DelayedPublish.MaxDelay, m.DelayedPublish.MaxMessages
	o.Rewrite = nil
	for _, r := range m.Rewrite {
		action, _ := broker.ParseRewriteAction(r.Action)
		re, _ := regexp.Compile(r.Regex) // checked by validateMQTT
		o.Rewrite = append(o.Rewrite, broker.RewriteRule{Action: action, Filter: r.Filter, Regex: re, Replace: r.Replace})
	}
	o.MaxQueuedBytesTotal = int64(l.MaxQueuedBytesTotal)
	o.TopicMetrics, o.MaxTopicMetrics = f.Metrics.Topics, f.Metrics.MaxTopics
	return o
}

// buildAuth loads the auth files and makes the HTTP hook.
func (f *File) buildAuth(c *collector, o *broker.Options) {
	a := &f.Auth
	o.LoginLimits = broker.LoginLimits(a.Login)
	if a.SessionOwnership == "any" {
		o.SessionOwnership = broker.SessionOwnerAny
	}
	if a.PasswordFile != "" {
		// From a mosquitto.conf, as Mosquitto: a malformed line is
		// skipped with a warning. A YAML configuration reports it as an
		// error, as for every other file it names.
		pf, skipped, err := auth.LoadPasswordFileSkipping(a.PasswordFile)
		if _, format := f.Source(); format != "mosquitto" && skipped != nil {
			err = skipped
		}
		if err != nil {
			c.wrap("auth.password_file", err)
		} else {
			for _, e := range leafErrors(skipped) {
				o.Logger.Warn("password file: line skipped: "+e.Error()+"; the user on it cannot log in until it is fixed", "file", a.PasswordFile)
			}
			o.Authenticator = pf
		}
	}
	if a.ACLFile != "" {
		acl, err := auth.LoadACLFile(a.ACLFile)
		if err != nil {
			c.wrap("auth.acl_file", err)
		} else {
			if a.ACLUserRulesFirst {
				acl = acl.UserRulesFirst()
			}
			o.Authorizer = acl
			if a.ACLReadAtDelivery {
				o.Authorizer = auth.ReadAtDelivery(acl)
			}
		}
	}
	if a.HTTP.AuthURL != "" || a.HTTP.ACLURL != "" {
		h, err := auth.NewHTTPHook(auth.HTTPHookOptions{
			AuthURL:   a.HTTP.AuthURL,
			ACLURL:    a.HTTP.ACLURL,
			Timeout:   a.HTTP.Timeout,
			CacheSize: a.HTTP.CacheSize,
			CacheTTL:  a.HTTP.CacheTTL,
		})
		switch {
		case err != nil:
			c.wrap("auth.http", err)
		default:
			if a.HTTP.AuthURL != "" {
				o.Authenticator = h
			}
			if a.HTTP.ACLURL != "" {
				o.Authorizer = h
			}
		}
	}
	if a.JWT.Enabled() {
		jo := a.JWT.options()
		jo.Next = o.Authenticator
		jo.Logger = o.Logger
		j, err := auth.NewJWT(jo)
		if err != nil {
			c.wrap("auth.jwt", err)
		} else {
			o.Authenticator = j
			if jo.ACLClaim != "" {
				o.Authorizer = &auth.JWTAuthorizer{Next: o.Authorizer}
			}
		}
	}
	if a.SCRAM.UsersFile != "" {
		s, err := loadSCRAMUsers(a.SCRAM.UsersFile)
		if err != nil {
			c.wrap("auth.scram.users_file", err)
		} else {
			o.EnhancedAuth = append(o.EnhancedAuth, s)
		}
	}
}

// options turns the file's auth.jwt section into auth.JWTOptions, without
// the chained authenticator.
func (j *JWTAuth) options() auth.JWTOptions {
	o := auth.DefaultJWTOptions()
	o.From = j.From
	o.Algorithms = j.Algorithms
	if j.Secret != "" {
		o.Secret = []byte(j.Secret)
	}
	o.PublicKeyFile = j.PublicKeyFile
	o.JWKSURL = j.JWKSURL
	o.JWKSRefresh = j.JWKSRefresh
	o.JWKSMinRefresh = j.JWKSMinRefresh
	o.ACLClaim = j.ACLClaim
	o.RequiredClaims = j.RequiredClaims
	o.DisconnectOnExpiry = j.DisconnectOnExpiry
	o.Leeway = j.Leeway
	return o
}

// loadSCRAMUsers reads "user:password" lines into a SCRAM-SHA-256 method.
// The user name runs to the first ':'; blanks around it and around the
// password are ignored, as are blank lines and lines starting with '#'.
// Every bad line is reported.
func loadSCRAMUsers(path string) (*auth.SCRAM, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	s := auth.NewSCRAM()
	var errs Errors
	seen := make(map[string]int)
	sc := bufio.NewScanner(file)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		bad := func(format string, a ...any) {
			errs = append(errs, &Error{Pos: Pos{File: path, Line: n}, Msg: fmt.Sprintf(format, a...)})
		}
		user, pw, ok := strings.Cut(line, ":")
		user, pw = strings.TrimSpace(user), strings.TrimSpace(pw)
		switch {
		case !ok:
			bad("want user:password")
			continue
		case user == "":
			bad("empty user name")
			continue
		case pw == "":
			bad("user %q: empty password", user)
			continue
		}
		if first, dup := seen[user]; dup {
			bad("user %q already defined on line %d", user, first)
			continue
		}
		seen[user] = n
		cred, err := auth.NewSCRAMCredential([]byte(pw), scramIterations)
		if err != nil {
			bad("user %q: %v", user, err)
			continue
		}
		s.SetUser(user, cred)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// checkTLSFiles loads a listener's certificate, key and CA bundle.
func checkTLSFiles(c *collector, path string, t listener.TLSConfig) {
	if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
		c.at(path+".cert_file", "%v", err)
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			c.at(path+".ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			c.at(path+".ca_file", "%s holds no PEM certificate", t.CAFile)
		}
	}
}

// parseLevel accepts debug, info, warn and error, in any case.
func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

func fsMode(m Mode) fs.FileMode { return fs.FileMode(m) }
