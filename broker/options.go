package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/topic"
)

// Options configure a Server. Start from DefaultOptions.
type Options struct {
	// ConnectTimeout is how long a new connection may take to send CONNECT.
	ConnectTimeout time.Duration
	// MaxPacketSize is the largest packet accepted from a client, in bytes.
	MaxPacketSize int
	// MaxUserProperties caps the 5.0 User Properties of one packet (0: no
	// cap); more close the connection with 0x97. Each empty one is 5 bytes
	// on the wire and 32 in memory.
	MaxUserProperties int
	// MaxInflight is how many QoS 1 and 2 messages may await
	// acknowledgement from one client; the rest wait in the session queue.
	MaxInflight int
	// MaxQueued is how many QoS 1 and 2 messages a session holds beyond
	// the inflight window (while offline, or while the window is full).
	// Further messages are dropped and counted.
	MaxQueued int
	// MaxQueuedBytes caps the bytes of the messages a session holds
	// beyond the inflight window, in memory and on disk together (each
	// counted whole, with about 128 bytes of overhead): further messages
	// are dropped and counted, as beyond MaxQueued (0: no cap). With a
	// durable store, a queue keeps at most 1,000 deliveries or 4 MiB in
	// memory and the rest on disk.
	MaxQueuedBytes int64
	// MaxRetained and MaxRetainedBytes cap the retained messages of the
	// broker, in count and in bytes (topic, payload, properties and about
	// 256 bytes of overhead each); MaxRetainedPerUser and
	// MaxRetainedBytesPerUser cap those stored by one identity (a user
	// name, a certificate identity, or all anonymous clients together).
	// A retained PUBLISH over a cap is not stored: a 5.0 QoS 1/2 publisher
	// gets 0x97 and the message goes nowhere; otherwise it is delivered to
	// current subscribers only. 0: no cap.
	MaxRetained             int
	MaxRetainedBytes        int64
	MaxRetainedPerUser      int
	MaxRetainedBytesPerUser int64
	// QueueQoS0 keeps QoS 0 messages for offline persistent sessions too.
	QueueQoS0 bool
	// MaxConnections caps concurrent connections (0: no limit).
	MaxConnections int
	// MaxTopicLength caps the length in bytes of topic names and filters
	// (0: the protocol's 65535).
	MaxTopicLength int
	// MaxTopicLevels caps the number of levels of topic names, filters
	// and will topics (0: no limit). Each level costs a trie node, so the
	// default (200, Mosquitto's limit) bounds what one byte of filter or
	// retained topic can cost.
	MaxTopicLevels int
	// MaxKeepAlive caps the keep-alive a client may ask for, in seconds
	// (0: no cap). 5.0 clients are told with Server Keep Alive.
	MaxKeepAlive uint16
	// MaxClientIDLength caps client identifiers (MQTT 3.1 allows 23).
	MaxClientIDLength int
	// WriteBufferLimit is how many bytes may wait to be written to a
	// client before QoS 0 messages for it are dropped.
	WriteBufferLimit int
	// Store keeps sessions, queues and retained messages across restarts;
	// nil means an in-memory store (store/memory).
	Store store.Store
	// SysInterval is how often the $SYS topics are published (0: never).
	SysInterval time.Duration
	// Version is the broker version reported in $SYS/broker/version.
	Version string
	// ConnectionRate caps new connections per second from one source
	// address, with ConnectionBurst allowed at once (0: no cap).
	ConnectionRate  float64
	ConnectionBurst int
	// PublishRate caps each client's PUBLISH packets per second, with
	// PublishBurst at once; PublishByteRate caps their bytes per second.
	// A client over its rate is slowed down: the broker stops reading
	// from it until its bucket refills (0: no cap).
	PublishRate     float64
	PublishBurst    int
	PublishByteRate int
	// PublishRateDisconnect disconnects a client over its publish rate
	// (5.0: DISCONNECT 0x96) instead of slowing it down.
	PublishRateDisconnect bool
	// MaxSubscriptions caps the subscriptions of one session (0: no cap).
	MaxSubscriptions int
	// WriteBufferHardLimit disconnects a client whose unwritten bytes
	// exceed it (0: 16 x WriteBufferLimit).
	WriteBufferHardLimit int
	// MemoryLimit refuses new connections (0x97, or 3 for 3.1.1) while the
	// process uses more memory than this many bytes (0: no ceiling).
	MemoryLimit int64

	// Authenticator checks the credentials of clients that give a user
	// name (nil: everyone gets in; see ListenerOptions.Anonymous).
	Authenticator auth.Authenticator
	// Authorizer decides who may publish and subscribe to what (nil:
	// everything is allowed). Deliveries re-check read access. It is called
	// with broker locks held: it must not call back into the Server.
	Authorizer auth.Authorizer
	// EnhancedAuth lists the MQTT 5.0 enhanced authentication methods
	// offered (auth.NewSCRAM for SCRAM-SHA-256); a CONNECT naming another
	// method is refused with 0x8C.
	EnhancedAuth []auth.EnhancedAuth
	// SessionOwnership decides whether a client may use the identifier of
	// a session another identity (user name or certificate) created; the
	// default refuses it (0x87).
	SessionOwnership SessionOwnership
	// PeerIdentity returns the verified TLS client certificate identity of
	// a connection (listener.PeerIdentity fits), for auth.
	PeerIdentity func(net.Conn) (string, bool)
	// Cluster joins the broker to a cluster of nodes (package cluster);
	// nil: a single node.
	Cluster Cluster
	// PeerSubject returns the full subject of the verified TLS client
	// certificate of a connection (listener.PeerSubject fits), for
	// ListenerOptions.SubjectAsUsername.
	PeerSubject func(net.Conn) (string, bool)
	// LoginLimits bound password checks and failed logins per source and
	// per user (DefaultLoginLimits).
	LoginLimits LoginLimits
	// Logger receives the broker's logs; nil means slog.Default().
	Logger *slog.Logger

	// Options a Mosquitto configuration brings (see config's translation).

	// MaxPayloadSize drops PUBLISH packets whose payload is larger (0: no
	// limit): the publisher's QoS flow is completed (5.0: with 0x83) and it
	// stays connected (Mosquitto's message_size_limit).
	MaxPayloadSize int
	// RefuseEmptyClientID refuses a CONNECT with a zero-length client
	// identifier (3.1.1 return code 2, 5.0 0x85) instead of assigning one.
	RefuseEmptyClientID bool
	// UpgradeOutgoingQoS delivers each message at the QoS of the
	// subscription, even above the QoS it was published with.
	UpgradeOutgoingQoS bool
	// CheckRetainSource re-checks, before a retained message is delivered
	// to a new subscription, that its publisher may still write its topic
	// under the current Authorizer.
	CheckRetainSource bool
	// BadCredentialsNotAuthorized answers a wrong user name or password
	// with "not authorized" (3.1.1: 5, 5.0: 0x87) instead of "bad user name
	// or password" (4, 0x86), as Mosquitto 2.0 does.
	BadCredentialsNotAuthorized bool

	// MQTT 5.0 capabilities, advertised in CONNACK and enforced.

	// MaximumQoS is the highest QoS accepted on PUBLISH and granted on
	// SUBSCRIBE (0, 1 or 2).
	MaximumQoS byte
	// RetainAvailable allows retained messages.
	RetainAvailable bool
	// WildcardSubscriptions allows '+' and '#' in filters.
	WildcardSubscriptions bool
	// SharedSubscriptions allows $share/{group}/{filter}.
	SharedSubscriptions bool
	// SubscriptionIdentifiers allows 5.0 subscription identifiers.
	SubscriptionIdentifiers bool
	// TopicAliasMaximum is how many topic aliases a 5.0 client may use
	// towards the broker (0: none).
	TopicAliasMaximum uint16
	// ReceiveMaximum is how many QoS 2 publishes a 5.0 client may have
	// unacknowledged towards the broker; a client that sends more is
	// disconnected with 0x93.
	ReceiveMaximum uint16
	// MaxSessionExpiry caps the Session Expiry Interval a 5.0 client asks
	// for, in seconds (0: no cap).
	MaxSessionExpiry uint32
	// MaxAnonymousSessionExpiry caps, in seconds, how long the session of
	// a client without a user name or certificate is kept offline: the 5.0
	// Session Expiry Interval is lowered to it (and the client told), and
	// a 3.1.1 persistent session is discarded after it (0: no cap).
	MaxAnonymousSessionExpiry uint32
	// ResponseInformation is returned to 5.0 clients that ask for it.
	ResponseInformation string
	// ServerReference, when set, is sent with every refusal and
	// disconnection so clients move to another server.
	ServerReference string
	// ShareStrategy picks the member of a shared subscription group that
	// gets each message.
	ShareStrategy topic.ShareStrategy
	// ValidatePayloadFormat refuses 5.0 PUBLISH packets that declare a
	// UTF-8 payload (Payload Format Indicator 1) which is not (0x99).
	ValidatePayloadFormat bool

	// DelayedPublish holds a PUBLISH to "$delayed/{seconds}/{topic}" for
	// that many seconds, up to MaxDelay, then publishes it to {topic}
	// (delayed.go). At most MaxDelayed messages are held at once (0: no
	// cap). Off: such a topic is an ordinary one.
	DelayedPublish bool
	MaxDelay       time.Duration
	MaxDelayed     int
	// Rewrite lists the topic rewrite rules, tried in order (rewrite.go).
	Rewrite []RewriteRule
	// TopicMetrics lists the topic filters counted separately
	// (topicmetrics.go), at most MaxTopicMetrics of them.
	TopicMetrics    []string
	MaxTopicMetrics int
	// MaxQueuedBytesTotal caps the bytes of the queued QoS 1/2 deliveries
	// all sessions hold in memory together, counted as MaxQueuedBytes
	// does (0: no cap). Beyond it a delivery is dropped and counted, or,
	// for a persistent session with a durable store, kept on disk only.
	MaxQueuedBytesTotal int64
}

// The bounds of Options.MaxPacketSize. NoMaxPacketSize, the largest packet
// the protocol can express, is not announced to 5.0 clients.
const (
	MinMaxPacketSize = 20
	NoMaxPacketSize  = 268435460
)

// DefaultOptions returns the options the broker runs with when nothing is
// configured.
func DefaultOptions() Options {
	return Options{
		ConnectTimeout:    10 * time.Second,
		MaxPacketSize:     1 << 20,
		MaxUserProperties: 1024,
		MaxInflight:       64,
		MaxQueued:         10000,
		MaxQueuedBytes:    64 << 20,

		MaxRetained:             1_000_000,
		MaxRetainedBytes:        1 << 30,
		MaxRetainedPerUser:      100_000,
		MaxRetainedBytesPerUser: 256 << 20,

		MaxTopicLength:    65535,
		MaxTopicLevels:    200,
		MaxClientIDLength: 65535,
		WriteBufferLimit:  4 << 20,
		SysInterval:       10 * time.Second,
		Version:           "dev",

		MaximumQoS:              2,
		RetainAvailable:         true,
		WildcardSubscriptions:   true,
		SharedSubscriptions:     true,
		SubscriptionIdentifiers: true,
		TopicAliasMaximum:       10, // as Mosquitto: each alias pins a topic of up to MaxPacketSize
		ReceiveMaximum:          65535,
		ValidatePayloadFormat:   true,

		LoginLimits:               DefaultLoginLimits(),
		MaxAnonymousSessionExpiry: 3600,

		MaxDelay:        24 * time.Hour,
		MaxDelayed:      100_000,
		MaxTopicMetrics: 100,
	}
}

// Validate reports every invalid option at once.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("broker: "+format, a...)) }
	if o.ConnectTimeout <= 0 {
		bad("connect timeout %v must be positive", o.ConnectTimeout)
	}
	if o.MaxPacketSize < MinMaxPacketSize || o.MaxPacketSize > NoMaxPacketSize {
		bad("max packet size %d must be between %d and %d bytes", o.MaxPacketSize, MinMaxPacketSize, NoMaxPacketSize)
	}
	if o.MaxPayloadSize < 0 {
		bad("max payload size %d must not be negative", o.MaxPayloadSize)
	}
	if o.MaxUserProperties < 0 {
		bad("max user properties %d must not be negative", o.MaxUserProperties)
	}
	if o.MaxInflight < 1 || o.MaxInflight > 65535 {
		bad("max inflight %d must be between 1 and 65535", o.MaxInflight)
	}
	if o.MaxQueued < 0 {
		bad("max queued %d must not be negative", o.MaxQueued)
	}
	if o.MaxRetained < 0 || o.MaxRetainedBytes < 0 || o.MaxRetainedPerUser < 0 || o.MaxRetainedBytesPerUser < 0 {
		bad("retained message caps must not be negative")
	}
	if o.MaxQueuedBytes < 0 {
		bad("max queued bytes %d must not be negative", o.MaxQueuedBytes)
	}
	if o.MaxConnections < 0 {
		bad("max connections %d must not be negative", o.MaxConnections)
	}
	if o.MaxTopicLength < 0 || o.MaxTopicLength > 65535 {
		bad("max topic length %d must be between 0 and 65535", o.MaxTopicLength)
	}
	if o.MaxTopicLevels < 0 {
		bad("max topic levels %d must not be negative", o.MaxTopicLevels)
	}
	if o.MaxClientIDLength < 23 {
		bad("max client identifier length %d must be at least 23 [MQTT-3.1.3-5]", o.MaxClientIDLength)
	}
	if o.WriteBufferLimit < 1024 {
		bad("write buffer limit %d must be at least 1024 bytes", o.WriteBufferLimit)
	}
	if o.MaximumQoS > 2 {
		bad("maximum QoS %d must be 0, 1 or 2", o.MaximumQoS)
	}
	if o.ReceiveMaximum == 0 {
		bad("receive maximum must be at least 1")
	}
	if ll := o.LoginLimits; ll.SourceFailureRate < 0 || ll.UserFailureRate < 0 {
		bad("login failure rates %v (source), %v (user) must not be negative", ll.SourceFailureRate, ll.UserFailureRate)
	}
	if o.DelayedPublish && o.MaxDelay < time.Second {
		bad("delayed publish max delay %v must be at least 1s", o.MaxDelay)
	}
	if o.MaxDelayed < 0 {
		bad("max delayed messages %d must not be negative", o.MaxDelayed)
	}
	if o.MaxQueuedBytesTotal < 0 {
		bad("max queued bytes total %d must not be negative", o.MaxQueuedBytesTotal)
	}
	for i, r := range o.Rewrite {
		if err := r.validate(); err != nil {
			bad("rewrite rule %d: %v", i+1, err)
		}
	}
	if o.MaxTopicMetrics < 0 {
		bad("max topic metrics %d must not be negative", o.MaxTopicMetrics)
	}
	if len(o.TopicMetrics) > o.MaxTopicMetrics {
		bad("%d topic metric filters configured, more than the maximum of %d", len(o.TopicMetrics), o.MaxTopicMetrics)
	}
	for _, f := range o.TopicMetrics {
		if !topic.ValidFilter(f) {
			bad("topic metric filter %q is not a valid topic filter", f)
		}
	}
	return errors.Join(errs...)
}
