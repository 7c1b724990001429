package config

import (
	"fmt"
	"time"

	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/packet"
)

// Bridge is one entry of bridges: a connection to another MQTT broker
// (docs/bridges.md). The defaults are Mosquitto's.
type Bridge struct {
	Name string `yaml:"name"`
	// Addresses are host:port; the first is the primary.
	Addresses []string `yaml:"addresses"`
	// Transport is tcp, tls, ws or wss; default tcp.
	Transport string    `yaml:"transport,omitempty"`
	WSPath    string    `yaml:"ws_path,omitempty"`
	TLS       BridgeTLS `yaml:"tls,omitempty"`
	// RoundRobin moves to the next address after a lost connection;
	// otherwise the primary comes first and is returned to as soon as it
	// answers (checked every PrimaryRetry).
	RoundRobin   bool          `yaml:"round_robin,omitempty"`
	PrimaryRetry time.Duration `yaml:"primary_retry,omitempty"`
	// ProtocolVersion is 3.1, 3.1.1 or 5; default 3.1.1.
	ProtocolVersion        string        `yaml:"protocol_version,omitempty"`
	RemoteClientID         string        `yaml:"remote_clientid,omitempty"`
	LocalClientID          string        `yaml:"local_clientid,omitempty"`
	RemoteUsername         string        `yaml:"remote_username,omitempty"`
	RemotePassword         string        `yaml:"remote_password,omitempty"`
	CleanSession           bool          `yaml:"cleansession"`
	LocalCleanSession      bool          `yaml:"local_cleansession"`
	SessionExpiry          time.Duration `yaml:"session_expiry,omitempty"`
	KeepAlive              time.Duration `yaml:"keepalive"`
	RestartMin             time.Duration `yaml:"restart_min"`
	RestartMax             time.Duration `yaml:"restart_max"`
	StartType              string        `yaml:"start_type"`
	Threshold              int           `yaml:"threshold"`
	IdleTimeout            time.Duration `yaml:"idle_timeout"`
	Notifications          bool          `yaml:"notifications"`
	NotificationsLocalOnly bool          `yaml:"notifications_local_only"`
	NotificationTopic      string        `yaml:"notification_topic,omitempty"`
	TryPrivate             bool          `yaml:"try_private"`
	OutgoingRetain         bool          `yaml:"outgoing_retain"`
	AttemptUnsubscribe     bool          `yaml:"attempt_unsubscribe"`
	MaxPacketSize          int           `yaml:"max_packet_size,omitempty"`
	QueueMaxBytes          Size          `yaml:"queue_max_bytes,omitempty"`
	ReceiveMaximum         int           `yaml:"receive_maximum,omitempty"`
	MaxTopicAlias          int           `yaml:"max_topic_alias,omitempty"`
	Topics                 []BridgeTopic `yaml:"topics"`
}

// BridgeTLS is the TLS of a tls or wss bridge.
type BridgeTLS struct {
	CAFile     string   `yaml:"ca_file,omitempty"`
	CAPath     string   `yaml:"ca_path,omitempty"`
	CertFile   string   `yaml:"cert_file,omitempty"`
	KeyFile    string   `yaml:"key_file,omitempty"`
	Insecure   bool     `yaml:"insecure,omitempty"`
	MinVersion string   `yaml:"min_version,omitempty"`
	ALPN       []string `yaml:"alpn,omitempty"`
	ServerName string   `yaml:"server_name,omitempty"`
}

// BridgeTopic is one topic rule: Mosquitto's
// "topic pattern [out|in|both [qos [local-prefix remote-prefix]]]".
type BridgeTopic struct {
	Pattern      string `yaml:"pattern"`
	Direction    string `yaml:"direction"`
	QoS          int    `yaml:"qos"`
	LocalPrefix  string `yaml:"local_prefix,omitempty"`
	RemotePrefix string `yaml:"remote_prefix,omitempty"`
}

// defaultBridge is what a new bridges entry starts from: Mosquitto's
// defaults.
func defaultBridge() Bridge {
	d := bridge.DefaultConfig("")
	return Bridge{
		KeepAlive: d.KeepAlive, RestartMin: d.RestartMin, RestartMax: d.RestartMax,
		StartType: string(d.StartType), Threshold: d.Threshold, IdleTimeout: d.IdleTimeout,
		Notifications: d.Notifications, TryPrivate: d.TryPrivate, OutgoingRetain: d.OutgoingRetain,
		AttemptUnsubscribe: d.AttemptUnsubscribe,
	}
}

func defaultBridgeTopic() BridgeTopic { return BridgeTopic{Direction: "out"} }

// protocolVersion maps the names of a protocol version to its level.
func protocolVersion(s string) (byte, bool) {
	switch s {
	case "", "3.1.1", "4", "mqttv311":
		return packet.V311, true
	case "3.1", "3", "mqttv31":
		return packet.V31, true
	case "5", "5.0", "mqttv5", "mqttv50":
		return packet.V5, true
	}
	return 0, false
}

// bridgeConfig converts an entry to the bridge package's configuration.
func (b *Bridge) bridgeConfig() (bridge.Config, error) {
	v, ok := protocolVersion(b.ProtocolVersion)
	if !ok {
		return bridge.Config{}, fmt.Errorf("protocol_version %q: use 3.1, 3.1.1 or 5", b.ProtocolVersion)
	}
	for _, n := range []struct {
		name string
		v    int
		max  int
	}{{"max_packet_size", b.MaxPacketSize, 1<<28 + 4}, {"receive_maximum", b.ReceiveMaximum, 65535}, {"max_topic_alias", b.MaxTopicAlias, 65535}} {
		if n.v < 0 || n.v > n.max {
			return bridge.Config{}, fmt.Errorf("%s must be between 0 and %d", n.name, n.max)
		}
	}
	c := bridge.Config{
		Name: b.Name, Addresses: b.Addresses, Transport: b.Transport, WebSocketPath: b.WSPath,
		TLS: bridge.TLS{CAFile: b.TLS.CAFile, CAPath: b.TLS.CAPath, CertFile: b.TLS.CertFile, KeyFile: b.TLS.KeyFile,
			Insecure: b.TLS.Insecure, MinVersion: b.TLS.MinVersion, ALPN: b.TLS.ALPN, ServerName: b.TLS.ServerName},
		RoundRobin: b.RoundRobin, PrimaryRetry: b.PrimaryRetry, Version: v,
		RemoteClientID: b.RemoteClientID, LocalClientID: b.LocalClientID,
		RemoteUsername: b.RemoteUsername, RemotePassword: b.RemotePassword,
		CleanSession: b.CleanSession, LocalCleanSession: b.LocalCleanSession, SessionExpiry: b.SessionExpiry,
		KeepAlive: b.KeepAlive, RestartMin: b.RestartMin, RestartMax: b.RestartMax,
		StartType: bridge.StartType(b.StartType), Threshold: b.Threshold, IdleTimeout: b.IdleTimeout,
		Notifications: b.Notifications, NotificationsLocalOnly: b.NotificationsLocalOnly, NotificationTopic: b.NotificationTopic,
		TryPrivate: b.TryPrivate, OutgoingRetain: b.OutgoingRetain, AttemptUnsubscribe: b.AttemptUnsubscribe,
		QueueMaxBytes: int64(b.QueueMaxBytes),
		MaxPacketSize: uint32(b.MaxPacketSize), ReceiveMaximum: uint16(b.ReceiveMaximum), MaxTopicAlias: uint16(b.MaxTopicAlias),
	}
	if len(c.TLS.ALPN) == 0 {
		c.TLS.ALPN = nil
	}
	for _, t := range b.Topics {
		if t.QoS < 0 || t.QoS > 2 {
			return c, fmt.Errorf("topic %q: qos %d: use 0, 1 or 2", t.Pattern, t.QoS)
		}
		c.Rules = append(c.Rules, bridge.Rule{Pattern: t.Pattern, Direction: bridge.Direction(t.Direction), QoS: byte(t.QoS),
			LocalPrefix: t.LocalPrefix, RemotePrefix: t.RemotePrefix})
	}
	return c, c.Validate()
}

// validateBridges checks the bridges section.
func (f *File) validateBridges(c *collector) {
	names := map[string]bool{}
	for i := range f.Bridges {
		path := fmt.Sprintf("bridges[%d]", i)
		if names[f.Bridges[i].Name] {
			c.at(path+".name", "bridge %q is defined twice", f.Bridges[i].Name)
		}
		names[f.Bridges[i].Name] = true
		if _, err := f.Bridges[i].bridgeConfig(); err != nil {
			c.wrap(path, err)
		}
	}
}

// bridgeConfigs returns the bridges for bridge.Manager.Apply; the file was
// validated.
func (f *File) bridgeConfigs() []bridge.Config {
	out := make([]bridge.Config, 0, len(f.Bridges))
	for i := range f.Bridges {
		c, _ := f.Bridges[i].bridgeConfig()
		out = append(out, c)
	}
	return out
}
