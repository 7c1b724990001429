package bridge

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// Direction says which way a topic rule forwards messages.
type Direction string

// The directions of a topic rule, with Mosquitto's names.
const (
	Out  Direction = "out"  // local to remote
	In   Direction = "in"   // remote to local
	Both Direction = "both" // both ways
)

// StartType says when a bridge connects, with Mosquitto's names.
type StartType string

// The start types.
const (
	// Automatic connects at start and reconnects whenever the connection
	// is lost.
	Automatic StartType = "automatic"
	// Lazy connects once Threshold messages wait for the remote, and
	// disconnects after IdleTimeout without traffic.
	Lazy StartType = "lazy"
	// Once connects at start and never again once the connection is lost.
	Once StartType = "once"
)

// Rule is one topic rule of a bridge, Mosquitto's
// "topic pattern [out|in|both [qos [local-prefix remote-prefix]]]": the
// local filter is LocalPrefix+Pattern and the remote one
// RemotePrefix+Pattern; a message forwarded one way loses one prefix and
// gains the other.
type Rule struct {
	Pattern      string    `json:"pattern" yaml:"pattern"`
	Direction    Direction `json:"direction" yaml:"direction"` // "" means out
	QoS          byte      `json:"qos" yaml:"qos"`
	LocalPrefix  string    `json:"local_prefix,omitempty" yaml:"local_prefix"`
	RemotePrefix string    `json:"remote_prefix,omitempty" yaml:"remote_prefix"`
}

func (r Rule) out() bool { return r.Direction == Out || r.Direction == Both || r.Direction == "" }
func (r Rule) in() bool  { return r.Direction == In || r.Direction == Both }

// LocalFilter is the filter the rule subscribes to on the local broker.
func (r Rule) LocalFilter() string { return r.LocalPrefix + r.Pattern }

// RemoteFilter is the filter the rule subscribes to on the remote broker.
func (r Rule) RemoteFilter() string { return r.RemotePrefix + r.Pattern }

// TLS configures the connection to the remote over TLS (or WSS).
type TLS struct {
	CAFile     string   `json:"ca_file,omitempty" yaml:"ca_file"`
	CAPath     string   `json:"ca_path,omitempty" yaml:"ca_path"`
	CertFile   string   `json:"cert_file,omitempty" yaml:"cert_file"`
	KeyFile    string   `json:"key_file,omitempty" yaml:"key_file"`
	Insecure   bool     `json:"insecure,omitempty" yaml:"insecure"` // no check of the server's name (the chain is still checked against CAFile)
	MinVersion string   `json:"min_version,omitempty" yaml:"min_version"`
	ALPN       []string `json:"alpn,omitempty" yaml:"alpn"`
	ServerName string   `json:"server_name,omitempty" yaml:"server_name"` // SNI and the name checked; the address's host by default
}

// Config is one bridge. Start from DefaultConfig.
type Config struct {
	// Name identifies the bridge (Mosquitto's connection name).
	Name string `json:"name" yaml:"name"`
	// Addresses are "host:port" of the remote; the first is the primary.
	Addresses []string `json:"addresses" yaml:"addresses"`
	// Transport is tcp, tls, ws or wss.
	Transport string `json:"transport" yaml:"transport"`
	// WebSocketPath is the endpoint for ws and wss ("/mqtt" when empty).
	WebSocketPath string `json:"ws_path,omitempty" yaml:"ws_path"`
	TLS           TLS    `json:"tls,omitzero" yaml:"tls"`
	// RoundRobin: after a lost connection, try the next address; otherwise
	// (primary first) always try the first address first, and while
	// connected elsewhere go back to it as soon as it answers, checked
	// every PrimaryRetry.
	RoundRobin   bool          `json:"round_robin,omitempty" yaml:"round_robin"`
	PrimaryRetry time.Duration `json:"primary_retry,omitempty" yaml:"primary_retry"`
	// Version is the protocol to the remote: 3 (3.1), 4 (3.1.1) or 5.
	Version byte `json:"protocol_version" yaml:"protocol_version"`
	// RemoteClientID is the client identifier on the remote, and
	// LocalClientID the one of the bridge's session on the local broker.
	RemoteClientID string `json:"remote_clientid" yaml:"remote_clientid"`
	LocalClientID  string `json:"local_clientid" yaml:"local_clientid"`
	RemoteUsername string `json:"remote_username,omitempty" yaml:"remote_username"`
	RemotePassword string `json:"-" yaml:"remote_password"`
	// CleanSession starts a new remote session on each connection; with
	// false the remote keeps the bridge's subscriptions and queue
	// (5.0: for SessionExpiry).
	CleanSession bool `json:"cleansession" yaml:"cleansession"`
	// LocalCleanSession does the same on the local broker. With false
	// (the default) the messages bound for the remote wait, QoS 1 and 2,
	// in the bridge's durable local session while the remote is away.
	LocalCleanSession bool          `json:"local_cleansession" yaml:"local_cleansession"`
	SessionExpiry     time.Duration `json:"session_expiry,omitempty" yaml:"session_expiry"`
	KeepAlive         time.Duration `json:"keepalive" yaml:"keepalive"`
	// RestartTimeout bounds the reconnect backoff: from RestartMin up to
	// RestartMax, each wait drawn at random in the upper half.
	RestartMin time.Duration `json:"restart_min" yaml:"restart_min"`
	RestartMax time.Duration `json:"restart_max" yaml:"restart_max"`
	StartType  StartType     `json:"start_type" yaml:"start_type"`
	// Threshold (lazy) is how many messages must wait before the bridge
	// connects; IdleTimeout how long without traffic before it leaves.
	Threshold   int           `json:"threshold,omitempty" yaml:"threshold"`
	IdleTimeout time.Duration `json:"idle_timeout,omitempty" yaml:"idle_timeout"`
	// Notifications publishes the bridge's state, retained, on
	// NotificationTopic: "1" connected, "0" not (Mosquitto's topic and
	// payloads); on the remote too unless NotificationsLocalOnly.
	Notifications          bool   `json:"notifications" yaml:"notifications"`
	NotificationsLocalOnly bool   `json:"notifications_local_only,omitempty" yaml:"notifications_local_only"`
	NotificationTopic      string `json:"notification_topic,omitempty" yaml:"notification_topic"`
	// TryPrivate tells a Mosquitto remote (3.1, 3.1.1) that this is a
	// bridge, with the high bit of the protocol level.
	TryPrivate bool `json:"try_private" yaml:"try_private"`
	// OutgoingRetain keeps the retain flag of messages sent to the remote.
	OutgoingRetain bool `json:"outgoing_retain" yaml:"outgoing_retain"`
	// AttemptUnsubscribe unsubscribes on the remote from the out-only
	// patterns, in case an earlier configuration subscribed to them.
	AttemptUnsubscribe bool `json:"attempt_unsubscribe" yaml:"attempt_unsubscribe"`
	// MaxPacketSize caps the packets exchanged with the remote (0: the
	// protocol's limit); a bigger message is dropped and counted.
	MaxPacketSize uint32 `json:"max_packet_size,omitempty" yaml:"max_packet_size"`
	// QueueMaxBytes caps the bytes of the QoS 1/2 messages waiting for the
	// remote (in flight to the bridge and queued in its local session,
	// each counted as topic and payload plus 128 bytes); 0: no cap but the
	// broker's limits.max_queued_bytes. When full, the newest message is
	// dropped and counted in the bridge's dropped.
	QueueMaxBytes int64 `json:"queue_max_bytes,omitempty" yaml:"queue_max_bytes"`
	// ReceiveMaximum and MaxTopicAlias are announced to a 5.0 remote.
	ReceiveMaximum uint16 `json:"receive_maximum,omitempty" yaml:"receive_maximum"`
	MaxTopicAlias  uint16 `json:"max_topic_alias,omitempty" yaml:"max_topic_alias"`
	Rules          []Rule `json:"topics" yaml:"topics"`
}

// DefaultConfig returns Mosquitto's defaults for a bridge named name.
func DefaultConfig(name string) Config {
	return Config{
		Name:               name,
		Transport:          "tcp",
		Version:            packet.V311,
		KeepAlive:          60 * time.Second,
		RestartMin:         5 * time.Second,
		RestartMax:         30 * time.Second,
		PrimaryRetry:       20 * time.Second,
		StartType:          Automatic,
		Threshold:          10,
		IdleTimeout:        60 * time.Second,
		Notifications:      true,
		TryPrivate:         true,
		OutgoingRetain:     true,
		AttemptUnsubscribe: true,
	}
}

// withDefaults fills in the identifiers and topic Mosquitto derives from
// the name.
func (c Config) withDefaults() Config {
	if c.RemoteClientID == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "gannet"
		}
		c.RemoteClientID = host + "." + c.Name
	}
	if c.LocalClientID == "" {
		c.LocalClientID = "local." + c.RemoteClientID
	}
	if c.NotificationTopic == "" {
		c.NotificationTopic = "$SYS/broker/connection/" + c.RemoteClientID + "/state"
	}
	if c.Transport == "" {
		c.Transport = "tcp"
	}
	if c.StartType == "" {
		c.StartType = Automatic
	}
	if c.RestartMin <= 0 {
		c.RestartMin = 5 * time.Second
	}
	if c.RestartMax < c.RestartMin {
		c.RestartMax = max(c.RestartMin, 30*time.Second)
	}
	if c.PrimaryRetry <= 0 {
		c.PrimaryRetry = 20 * time.Second
	}
	if c.Threshold <= 0 {
		c.Threshold = 10
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.Version == 0 {
		c.Version = packet.V311
	}
	for i := range c.Rules {
		if c.Rules[i].Direction == "" {
			c.Rules[i].Direction = Out
		}
	}
	return c
}

// Validate reports every error of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("bridge %q: "+format, append([]any{c.Name}, a...)...))
	}
	if c.Name == "" {
		errs = append(errs, errors.New("bridge: a bridge needs a name"))
	}
	if len(c.Addresses) == 0 {
		bad("no address: give at least one host:port")
	}
	for _, a := range c.Addresses {
		if a == "" || strings.Contains(a, "/") {
			bad("address %q is not host:port", a)
		}
	}
	switch c.Transport {
	case "", "tcp", "tls", "ws", "wss":
	default:
		bad("transport %q: use tcp, tls, ws or wss", c.Transport)
	}
	switch c.Version {
	case 0, packet.V31, packet.V311, packet.V5:
	default:
		bad("protocol version %d: use 3 (3.1), 4 (3.1.1) or 5", c.Version)
	}
	switch c.StartType {
	case "", Automatic, Lazy, Once:
	default:
		bad("start_type %q: use automatic, lazy or once", c.StartType)
	}
	switch c.TLS.MinVersion {
	case "", "tlsv1.2", "tlsv1.3", "1.2", "1.3":
	default:
		bad("tls min_version %q: use tlsv1.2 or tlsv1.3", c.TLS.MinVersion)
	}
	if c.QueueMaxBytes < 0 {
		bad("queue_max_bytes %d must not be negative", c.QueueMaxBytes)
	}
	if len(c.Rules) == 0 {
		bad("no topic rule: add at least one (pattern, direction, qos)")
	}
	for i, r := range c.Rules {
		switch r.Direction {
		case "", Out, In, Both:
		default:
			bad("topic %d %q: direction %q: use out, in or both", i+1, r.Pattern, r.Direction)
		}
		if r.QoS > 2 {
			bad("topic %d %q: QoS %d above 2", i+1, r.Pattern, r.QoS)
		}
		if r.Pattern == "" && r.LocalPrefix == "" && r.RemotePrefix == "" {
			bad("topic %d: empty pattern", i+1)
			continue
		}
		for _, f := range []string{r.LocalFilter(), r.RemoteFilter()} {
			if err := packet.ValidTopicFilter(f); err != nil {
				bad("topic %d: filter %q: %v", i+1, f, err)
			}
		}
		if r.Pattern == "" {
			// Mosquitto: an empty pattern means the prefix is the whole topic.
			for _, p := range []string{r.LocalPrefix, r.RemotePrefix} {
				if err := packet.ValidTopicName(p); p != "" && err != nil {
					bad("topic %d: prefix %q: %v", i+1, p, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
