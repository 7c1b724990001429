package config

import (
	"fmt"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/listener"
)

// File is a configuration as written in gannet.yaml: each field is one key,
// named by its yaml tag. Start from Default; Load reads a file over it.
//
// Values are kept as written (enumerations as strings, sizes in bytes,
// durations) so that a File can be written back out; Validate checks them
// and Build turns them into the options of the broker and its listeners.
type File struct {
	Listeners []Listener `yaml:"listeners"`
	Store     Store      `yaml:"store"`
	Limits    Limits     `yaml:"limits"`
	MQTT      MQTT       `yaml:"mqtt"`
	Auth      Auth       `yaml:"auth"`
	Logging   Logging    `yaml:"logging"`
	Admin     Admin      `yaml:"admin"`
	Sys       Sys        `yaml:"sys"`
	// Bridges connect this broker to others (docs/bridges.md).
	Bridges  []Bridge  `yaml:"bridges,omitempty"`
	Webhooks []Webhook `yaml:"webhooks"` // webhooks.go
	Metrics  Metrics   `yaml:"metrics"`
	Cluster  Cluster   `yaml:"cluster,omitempty"`

	// src says where each value came from, for error messages; nil for a
	// File built in code.
	src *sources
}

// Listener is one entry of listeners: a socket the broker serves MQTT on.
type Listener struct {
	// Name identifies the listener in logs and to auth; default
	// "<type>://<address>".
	Name string `yaml:"name,omitempty"`
	// Type is tcp, tls, ws, wss or unix; default tcp.
	Type string `yaml:"type"`
	// Address is host:port, or a socket path for unix.
	Address string `yaml:"address"`
	// Anonymous is default (anonymous clients get in while no
	// authentication is configured), allow or deny.
	Anonymous string `yaml:"anonymous"`
	// MaxConnections caps this listener's connections (0: no cap).
	MaxConnections int `yaml:"max_connections,omitempty"`
	// IdentityAsUsername makes the verified client certificate's common
	// name the user name (tls and wss listeners with client_auth).
	IdentityAsUsername bool `yaml:"identity_as_username,omitempty"`
	// SubjectAsUsername makes the verified client certificate's full
	// subject ("CN=...,O=...") the user name.
	SubjectAsUsername bool `yaml:"subject_as_username,omitempty"`
	// RequireAuth admits only clients that an authentication admits (a
	// password file, the HTTP hook, SCRAM, or a certificate taken as user
	// name): with none configured, every client is refused.
	RequireAuth bool `yaml:"require_auth,omitempty"`
	// MountPoint prefixes every topic of this listener's clients (their
	// publishes, subscriptions and wills); they see only the topics under
	// it, without the prefix.
	MountPoint string `yaml:"mount_point,omitempty"`
	// TLS is the certificate of a tls or wss listener.
	TLS TLS `yaml:"tls,omitempty"`
	// Path is the HTTP path of a ws or wss listener; default /mqtt.
	Path string `yaml:"path,omitempty"`
	// OriginPatterns are the browser origins a ws or wss listener accepts
	// besides its own host.
	OriginPatterns []string `yaml:"origin_patterns,omitempty"`
	// ProxyProtocol requires a PROXY protocol header from the sources in
	// ProxyFrom.
	ProxyProtocol bool `yaml:"proxy_protocol,omitempty"`
	// ProxyFrom lists the trusted proxies as CIDR prefixes (or addresses).
	ProxyFrom []string `yaml:"proxy_from,omitempty"`
	// SocketMode is the permission of a unix socket file; default 0660.
	SocketMode Mode `yaml:"socket_mode,omitempty"`
	// HandshakeTimeout bounds the PROXY header and TLS handshake, and the
	// WebSocket upgrade; default 10s.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout,omitempty"`
	// FirstByteTimeout bounds the wait for a connection's first byte on
	// tls and wss listeners and those with proxy_protocol; default 3s.
	FirstByteTimeout time.Duration `yaml:"first_byte_timeout,omitempty"`
	// MaxPendingPerSource caps one source address's connections in their
	// PROXY header or TLS handshake; default 64, -1 for no cap.
	MaxPendingPerSource int `yaml:"max_pending_per_source,omitempty"`
}

// TLS is the tls section of a listener.
type TLS struct {
	CertFile   string `yaml:"cert_file,omitempty"`
	KeyFile    string `yaml:"key_file,omitempty"`
	CAFile     string `yaml:"ca_file,omitempty"`
	ClientAuth string `yaml:"client_auth,omitempty"` // none, optional or required
	MinVersion string `yaml:"min_version,omitempty"` // "1.2" or "1.3"
	// CRLFile is a PEM certificate revocation list: a client certificate it
	// revokes fails the handshake. Re-read on reload (SIGHUP).
	CRLFile string `yaml:"crl_file,omitempty"`
}

// Store says where sessions, queues and retained messages are kept. Build
// passes it through: the caller opens the store.
type Store struct {
	// Type is pebble (on disk, in DataDir) or memory (lost on restart).
	Type string `yaml:"type"`
	// DataDir is the pebble store's directory.
	DataDir string `yaml:"data_dir"`
	// Fsync is always, interval or never (see store/pebble.Fsync).
	Fsync string `yaml:"fsync"`
	// FsyncInterval is the time between syncs with fsync interval.
	FsyncInterval time.Duration `yaml:"fsync_interval"`
}

// Limits are the limits of broker.Options, one key each.
type Limits struct {
	ConnectTimeout    time.Duration `yaml:"connect_timeout"`
	MaxPacketSize     Size          `yaml:"max_packet_size"`
	MaxPayloadSize    Size          `yaml:"max_payload_size"` // 0: no limit; larger messages are dropped
	MaxUserProperties int           `yaml:"max_user_properties"`
	MaxInflight       int           `yaml:"max_inflight"`
	MaxQueued         int           `yaml:"max_queued"`
	MaxQueuedBytes    Size          `yaml:"max_queued_bytes"`
	// MaxQueuedBytesTotal: the bytes all sessions queue in memory together.
	MaxQueuedBytesTotal Size `yaml:"max_queued_bytes_total"`
	// Retained message caps, for the broker and per identity.
	MaxRetained             int           `yaml:"max_retained"`
	MaxRetainedBytes        Size          `yaml:"max_retained_bytes"`
	MaxRetainedPerUser      int           `yaml:"max_retained_per_user"`
	MaxRetainedBytesPerUser Size          `yaml:"max_retained_bytes_per_user"`
	QueueQoS0               bool          `yaml:"queue_qos0"`
	MaxConnections          int           `yaml:"max_connections"`
	MaxTopicLength          int           `yaml:"max_topic_length"`
	MaxTopicLevels          int           `yaml:"max_topic_levels"`
	MaxKeepAlive            time.Duration `yaml:"max_keep_alive"` // whole seconds, up to 65535s
	MaxClientIDLength       int           `yaml:"max_client_id_length"`
	WriteBufferLimit        Size          `yaml:"write_buffer_limit"`
	WriteBufferHardLimit    Size          `yaml:"write_buffer_hard_limit"`
	ConnectionRate          float64       `yaml:"connection_rate"`
	ConnectionBurst         int           `yaml:"connection_burst"`
	PublishRate             float64       `yaml:"publish_rate"`
	PublishBurst            int           `yaml:"publish_burst"`
	PublishByteRate         Size          `yaml:"publish_byte_rate"` // bytes per second
	PublishRateDisconnect   bool          `yaml:"publish_rate_disconnect"`
	MaxSubscriptions        int           `yaml:"max_subscriptions"`
	MemoryLimit             Size          `yaml:"memory_limit"`
	MaxSessionExpiry        time.Duration `yaml:"max_session_expiry"` // whole seconds
	// MaxAnonymousSessionExpiry: how long an anonymous client's session is
	// kept offline, 3.1.1 persistent sessions included (whole seconds).
	MaxAnonymousSessionExpiry time.Duration `yaml:"max_anonymous_session_expiry"`
}

// MQTT are the MQTT 5.0 capabilities of broker.Options.
type MQTT struct {
	MaximumQoS              int    `yaml:"maximum_qos"`
	RetainAvailable         bool   `yaml:"retain_available"`
	WildcardSubscriptions   bool   `yaml:"wildcard_subscriptions"`
	SharedSubscriptions     bool   `yaml:"shared_subscriptions"`
	SubscriptionIdentifiers bool   `yaml:"subscription_identifiers"`
	TopicAliasMaximum       int    `yaml:"topic_alias_maximum"`
	ReceiveMaximum          int    `yaml:"receive_maximum"`
	ResponseInformation     string `yaml:"response_information"`
	ServerReference         string `yaml:"server_reference"`
	ShareStrategy           string `yaml:"share_strategy"` // round_robin or random
	ValidatePayloadFormat   bool   `yaml:"validate_payload_format"`
	AllowEmptyClientID      bool   `yaml:"allow_empty_client_id"`
	UpgradeOutgoingQoS      bool   `yaml:"upgrade_outgoing_qos"`
	// DelayedPublish holds PUBLISH packets to $delayed/{seconds}/{topic}.
	DelayedPublish DelayedPublish `yaml:"delayed_publish"`
	// Rewrite lists topic rewrite rules, tried in order.
	Rewrite []Rewrite `yaml:"rewrite,omitempty"`
}

// DelayedPublish is mqtt.delayed_publish (docs/delayed-publish.md).
type DelayedPublish struct {
	Enabled  bool          `yaml:"enabled"`
	MaxDelay time.Duration `yaml:"max_delay"`
	// MaxMessages caps the messages held at once (0: no cap).
	MaxMessages int `yaml:"max_messages"`
}

// Rewrite is one rule of mqtt.rewrite (docs/rewrite.md).
type Rewrite struct {
	Action  string `yaml:"action"` // publish, subscribe or all
	Filter  string `yaml:"filter"`
	Regex   string `yaml:"regex"`
	Replace string `yaml:"replace"`
}

// Metrics configures what is counted beyond the broker's own counters.
type Metrics struct {
	// Topics are topic filters counted separately (docs/topic-metrics.md).
	Topics []string `yaml:"topics,omitempty"`
	// MaxTopics bounds how many there may be.
	MaxTopics int `yaml:"max_topics"`
}

// Auth names the files and services that authenticate and authorise
// clients. Empty: everyone gets in (see Listener.Anonymous) and may do
// everything.
type Auth struct {
	PasswordFile string    `yaml:"password_file"`
	ACLFile      string    `yaml:"acl_file"`
	HTTP         HTTPAuth  `yaml:"http"`
	SCRAM        SCRAMAuth `yaml:"scram"`
	JWT          JWTAuth   `yaml:"jwt"`
	// ACLReadAtDelivery makes the ACL file refuse no subscription and
	// decide read access for each message by its topic name, as
	// Mosquitto's acl_file does. Off: a subscription is refused unless the
	// ACL grants read on everything its filter covers.
	ACLReadAtDelivery bool `yaml:"acl_read_at_delivery"`
	// ACLUserRulesFirst decides with the client's own ACL section first
	// (its denies, then its grants) and the patterns after, as Mosquitto
	// 2.0 does: a user's grant wins over a deny pattern. Off: every deny
	// rule is checked before any grant.
	ACLUserRulesFirst bool `yaml:"acl_user_rules_first"`
	// CheckRetainSource re-checks, before a retained message is delivered,
	// that its publisher may still write its topic.
	CheckRetainSource bool `yaml:"check_retain_source"`
	// BadCredentialsNotAuthorized answers a wrong user name or password
	// with not authorized (3.1.1: 5, 5.0: 0x87), as Mosquitto 2.0 does,
	// instead of bad user name or password (4, 0x86).
	BadCredentialsNotAuthorized bool  `yaml:"bad_credentials_not_authorized"`
	Login                       Login `yaml:"login"`
	// SessionOwnership is owner (a session is used only by the identity
	// that created it) or any (the client identifier alone decides).
	SessionOwnership string `yaml:"session_ownership"`
}

// Login bounds password checks and failed logins (broker.LoginLimits).
// Counts of 0 mean no cap; rates of 0 turn the limit off.
type Login struct {
	MaxChecks          int     `yaml:"max_checks"`
	MaxChecksPerSource int     `yaml:"max_checks_per_source"`
	SourceFailureRate  float64 `yaml:"source_failure_rate"`
	SourceFailureBurst int     `yaml:"source_failure_burst"`
	UserFailureRate    float64 `yaml:"user_failure_rate"`
	UserFailureBurst   int     `yaml:"user_failure_burst"`
}

// HTTPAuth is the HTTP hook (auth.HTTPHook).
type HTTPAuth struct {
	AuthURL   string        `yaml:"auth_url"`
	ACLURL    string        `yaml:"acl_url"`
	Timeout   time.Duration `yaml:"timeout"`
	CacheSize int           `yaml:"cache_size"`
	CacheTTL  time.Duration `yaml:"cache_ttl"`
}

// JWTAuth authenticates clients by a JSON Web Token (auth.JWT). It is on
// when secret, public_key_file or jwks_url is set.
type JWTAuth struct {
	From               string            `yaml:"from"`       // password or username
	Algorithms         []string          `yaml:"algorithms"` // accepted, e.g. [HS256] or [RS256, ES256]
	Secret             string            `yaml:"secret"`     // HMAC key for HS*
	PublicKeyFile      string            `yaml:"public_key_file"`
	JWKSURL            string            `yaml:"jwks_url"`
	JWKSRefresh        time.Duration     `yaml:"jwks_refresh"`     // periodic JWKS fetch
	JWKSMinRefresh     time.Duration     `yaml:"jwks_min_refresh"` // at most one fetch per this on an unknown kid
	ACLClaim           string            `yaml:"acl_claim"`        // "" ignores ACL claims
	RequiredClaims     map[string]string `yaml:"required_claims"`  // %u, %c substituted
	DisconnectOnExpiry bool              `yaml:"disconnect_on_expiry"`
	Leeway             time.Duration     `yaml:"leeway"` // clock skew allowed on exp, nbf, iat
}

// Enabled reports whether JWT authentication is configured.
func (j *JWTAuth) Enabled() bool {
	return j.Secret != "" || j.PublicKeyFile != "" || j.JWKSURL != ""
}

// SCRAMAuth offers MQTT 5.0 SCRAM-SHA-256 enhanced authentication.
type SCRAMAuth struct {
	// UsersFile holds "user:password" lines, turned into SCRAM
	// credentials when the configuration is built.
	UsersFile string `yaml:"users_file"`
}

// Logging configures the logger.
type Logging struct {
	Level  string `yaml:"level"`  // debug, info, warn or error
	Format string `yaml:"format"` // text or json
}

// Admin is the admin HTTP listener. Build passes it through.
type Admin struct {
	// Address is host:port; empty turns the admin listener off.
	Address string `yaml:"address"`
	// Token, when set, is required as "Authorization: Bearer TOKEN".
	Token string `yaml:"token"`
	// AllowedHosts are the host names, besides IP addresses and
	// localhost, that requests may give as Host when Token is empty.
	AllowedHosts []string `yaml:"allowed_hosts,omitempty"`
	// InsecureNoToken lets the admin listener run without a token on an
	// address that is not loopback.
	InsecureNoToken bool `yaml:"insecure_no_token"`
}

// Sys configures the $SYS topics.
type Sys struct {
	// Interval is how often $SYS topics are published (0: never).
	Interval time.Duration `yaml:"interval"`
}

// The defaults that are not broker.DefaultOptions'.
const (
	DefaultAddress = "127.0.0.1:1883"
	DefaultDataDir = "./data"
)

// Default returns the configuration Gannet runs with when nothing is
// configured: broker.DefaultOptions, one tcp listener on 127.0.0.1:1883
// that admits anonymous clients while no authentication is configured, and
// a pebble store in ./data.
func Default() *File {
	o := broker.DefaultOptions()
	h := auth.DefaultHTTPHookOptions()
	j := auth.DefaultJWTOptions()
	return &File{
		Listeners: []Listener{{Type: string(listener.TypeTCP), Address: DefaultAddress, Anonymous: "default"}},
		Store:     Store{Type: "pebble", DataDir: DefaultDataDir, Fsync: "always", FsyncInterval: time.Second},
		Limits: Limits{
			ConnectTimeout:    o.ConnectTimeout,
			MaxPacketSize:     Size(o.MaxPacketSize),
			MaxPayloadSize:    Size(o.MaxPayloadSize),
			MaxUserProperties: o.MaxUserProperties,
			MaxInflight:       o.MaxInflight,
			MaxQueued:         o.MaxQueued,
			MaxQueuedBytes:    Size(o.MaxQueuedBytes),

			MaxQueuedBytesTotal: Size(o.MaxQueuedBytesTotal),

			MaxRetained:             o.MaxRetained,
			MaxRetainedBytes:        Size(o.MaxRetainedBytes),
			MaxRetainedPerUser:      o.MaxRetainedPerUser,
			MaxRetainedBytesPerUser: Size(o.MaxRetainedBytesPerUser),

			QueueQoS0:             o.QueueQoS0,
			MaxConnections:        o.MaxConnections,
			MaxTopicLength:        o.MaxTopicLength,
			MaxTopicLevels:        o.MaxTopicLevels,
			MaxKeepAlive:          time.Duration(o.MaxKeepAlive) * time.Second,
			MaxClientIDLength:     o.MaxClientIDLength,
			WriteBufferLimit:      Size(o.WriteBufferLimit),
			WriteBufferHardLimit:  Size(o.WriteBufferHardLimit),
			ConnectionRate:        o.ConnectionRate,
			ConnectionBurst:       o.ConnectionBurst,
			PublishRate:           o.PublishRate,
			PublishBurst:          o.PublishBurst,
			PublishByteRate:       Size(o.PublishByteRate),
			PublishRateDisconnect: o.PublishRateDisconnect,
			MaxSubscriptions:      o.MaxSubscriptions,
			MemoryLimit:           Size(o.MemoryLimit),
			MaxSessionExpiry:      time.Duration(o.MaxSessionExpiry) * time.Second,

			MaxAnonymousSessionExpiry: time.Duration(o.MaxAnonymousSessionExpiry) * time.Second,
		},
		MQTT: MQTT{
			MaximumQoS:              int(o.MaximumQoS),
			RetainAvailable:         o.RetainAvailable,
			WildcardSubscriptions:   o.WildcardSubscriptions,
			SharedSubscriptions:     o.SharedSubscriptions,
			SubscriptionIdentifiers: o.SubscriptionIdentifiers,
			TopicAliasMaximum:       int(o.TopicAliasMaximum),
			ReceiveMaximum:          int(o.ReceiveMaximum),
			ResponseInformation:     o.ResponseInformation,
			ServerReference:         o.ServerReference,
			ShareStrategy:           shareStrategyName(o.ShareStrategy),
			ValidatePayloadFormat:   o.ValidatePayloadFormat,
			AllowEmptyClientID:      !o.RefuseEmptyClientID,
			UpgradeOutgoingQoS:      o.UpgradeOutgoingQoS,
			DelayedPublish:          DelayedPublish{Enabled: o.DelayedPublish, MaxDelay: o.MaxDelay, MaxMessages: o.MaxDelayed},
		},
		Metrics: Metrics{MaxTopics: o.MaxTopicMetrics},
		Auth: Auth{
			HTTP:  HTTPAuth{Timeout: h.Timeout, CacheSize: h.CacheSize, CacheTTL: h.CacheTTL},
			Login: Login(o.LoginLimits),
			JWT: JWTAuth{From: j.From, Algorithms: j.Algorithms, JWKSRefresh: j.JWKSRefresh, JWKSMinRefresh: j.JWKSMinRefresh,
				ACLClaim: j.ACLClaim, DisconnectOnExpiry: true, Leeway: j.Leeway},
			SessionOwnership: o.SessionOwnership.String(),
		},
		Logging: Logging{Level: "info", Format: "text"},
		Sys:     Sys{Interval: o.SysInterval},
	}
}

// defaultListener is what a new entry of listeners starts from.
func defaultListener() Listener {
	return Listener{Type: string(listener.TypeTCP), Anonymous: "default"}
}

// YAML writes f as a YAML configuration file (without comments): for a
// translated mosquitto.conf, the Gannet configuration it became.
func (f *File) YAML() ([]byte, error) {
	b, err := yaml.MarshalWithOptions(f, yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return b, nil
}
