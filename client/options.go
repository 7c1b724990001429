package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

// Options configure a Client. Start from DefaultOptions; the zero value
// works too, with the defaults noted on each field.
type Options struct {
	// Server is the broker's URL. The scheme picks the transport:
	// mqtt:// or tcp:// (plain TCP, port 1883 by default), mqtts://,
	// ssl:// or tls:// (TLS, 8883), ws:// (WebSocket, 80) and wss://
	// (WebSocket over TLS, 443). A WebSocket URL's path is the endpoint
	// ("/mqtt" when empty). User information in the URL is used when
	// Username is empty.
	Server string

	// Version is the protocol level: packet.V31, packet.V311 or packet.V5;
	// 0 means packet.V5.
	Version byte
	// ClientID identifies the session. Empty lets a 3.1.1 server (with a
	// clean session) or a 5.0 server assign one; the assigned identifier
	// is reused on reconnect.
	ClientID string
	// Username and Password authenticate the client; Password is sent
	// when it is not nil.
	Username string
	Password []byte
	// ResumeSession connects with Clean Session (3.1.1) / Clean Start
	// (5.0) set to 0, on the first connection and on every reconnect, so
	// that the server keeps subscriptions and queued messages. With 5.0
	// the session outlives the connection only if Properties carries a
	// Session Expiry Interval above 0.
	ResumeSession bool
	// KeepAlive is the longest the client stays silent: when nothing was
	// sent for that long it sends PINGREQ. 0 disables keep-alive, and with
	// it the detection of a dead server. A 5.0 server may impose its own
	// (Server Keep Alive). It is sent in whole seconds.
	KeepAlive time.Duration
	// PingTimeout is how long the client waits for PINGRESP before it
	// declares the connection dead (ErrPingTimeout); 0 means KeepAlive.
	PingTimeout time.Duration
	// ConnectTimeout bounds dialling and the wait for CONNACK, for the
	// first connection (together with Connect's context) and for each
	// reconnect; 0 means 30 s.
	ConnectTimeout time.Duration
	// WriteTimeout bounds each write to the network; 0 means 30 s.
	WriteTimeout time.Duration

	// TLSConfig is used by the TLS schemes (mqtts, ssl, tls, wss); nil
	// means the system roots and the host name from Server.
	TLSConfig *tls.Config
	// WebSocketHeader holds extra HTTP headers for the WebSocket
	// handshake.
	WebSocketHeader http.Header

	// Will is published by the server when the connection ends without
	// DISCONNECT (or with 5.0 reason 0x04). nil: no will.
	Will *Will

	// Properties are extra 5.0 CONNECT properties: Session Expiry
	// Interval, User Properties, Request Problem Information and so on.
	// The three limits below override their counterparts here.
	Properties packet.Properties
	// ReceiveMaximum is how many QoS 1 and 2 messages the server may have
	// unacknowledged towards this client (5.0); 0 means 65535.
	ReceiveMaximum uint16
	// TopicAliasMaximum is how many topic aliases the server may use
	// towards this client (5.0); 0 means none.
	TopicAliasMaximum uint16
	// MaxPacketSize is the largest packet the client accepts; 0 means the
	// protocol's limit. With 5.0 it is announced to the server.
	MaxPacketSize uint32
	// TopicAliases makes the client replace repeated topic names of its
	// PUBLISH packets with topic aliases, up to the server's Topic Alias
	// Maximum (5.0). Aliases are per connection: the first PUBLISH to a
	// topic after a (re)connect carries the full name.
	TopicAliases bool

	// AutoReconnect, off by default, keeps the client alive across
	// network failures: after a connection is lost it reconnects with
	// exponential backoff and jitter, resubscribes when the server has no
	// session, and resends unfinished QoS 1 and 2 messages. Without it, a
	// lost connection ends the client (see Client.Done). The first
	// connection (Connect, Dial) is never retried.
	AutoReconnect bool
	// ReconnectMin and ReconnectMax bound the delay between reconnect
	// attempts: it starts at ReconnectMin, doubles after each failure up
	// to ReconnectMax, and each wait is drawn at random from the upper
	// half of the current delay. 0 means 1 s and 30 s.
	ReconnectMin, ReconnectMax time.Duration

	// OnMessage receives the messages that match no subscription with a
	// handler or channel of its own (messages of a resumed session, for
	// instance). nil drops them, acknowledging them all the same.
	OnMessage func(*Message)
	// ManualAck leaves the acknowledgement of QoS 1 and 2 messages to the
	// application (Message.Ack) instead of sending it when the handlers
	// return: a bridge acknowledges a message once it is safe elsewhere.
	// Messages not acknowledged count against Options.ReceiveMaximum.
	ManualAck bool
	// OnRelease, when set, receives each PUBREL from the server instead of
	// the client answering it with PUBCOMP at once, for identifiers the
	// client knows and for those it does not (a session resumed by a new
	// run of the program): a relay passes the release on and calls
	// complete, which sends PUBCOMP, once the other side completed it. It
	// runs on the read loop and must not block. Until complete, the
	// identifier stays in use at the server.
	OnRelease func(packetID uint16, complete func())
	// OnConnect is called after every successful connection, the first
	// included, once the session is restored (resubscriptions and resent
	// messages are queued for sending). It runs on the goroutine that
	// connected and must not block for long.
	OnConnect func(ack *packet.Connack)
	// OnConnectionLost is called when an established connection ends
	// other than by Disconnect or Close, before any reconnect.
	OnConnectionLost func(err error)

	// Dialer, when set, opens the transport instead of Server's scheme and
	// address (which still names the server in errors): a bridge uses it to
	// choose among several addresses, or to reach an in-process broker.
	// DialServer dials a URL as the client would.
	Dialer func(ctx context.Context) (net.Conn, error)
	// TryPrivate sets the high bit of the protocol level in CONNECT
	// (0x83, 0x84), which Mosquitto takes to mean "this client is a
	// bridge": it then does not send a bridge's own messages back to it.
	// 3.1 and 3.1.1 only; other servers may refuse the connection.
	TryPrivate bool

	// Logger receives the client's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Will is the message a server publishes for the client when its
// connection ends without a normal DISCONNECT.
type Will struct {
	Topic      string
	Payload    []byte
	QoS        byte
	Retain     bool
	Properties packet.Properties // 5.0 will properties
}

// Default values of the duration options.
const (
	DefaultKeepAlive      = 60 * time.Second
	DefaultConnectTimeout = 30 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultReconnectMin   = time.Second
	DefaultReconnectMax   = 30 * time.Second
)

// DefaultOptions returns options for MQTT 5.0 to mqtt://127.0.0.1:1883 with
// a 60 s keep-alive and automatic reconnect off.
func DefaultOptions() Options {
	return Options{
		Server:         "mqtt://127.0.0.1:1883",
		Version:        packet.V5,
		KeepAlive:      DefaultKeepAlive,
		ConnectTimeout: DefaultConnectTimeout,
		WriteTimeout:   DefaultWriteTimeout,
		ReconnectMin:   DefaultReconnectMin,
		ReconnectMax:   DefaultReconnectMax,
	}
}

// Validate reports every invalid option at once.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("client: "+format, a...)) }
	if _, err := parseServer(o.Server); err != nil {
		errs = append(errs, err)
	}
	switch o.Version {
	case 0, packet.V31, packet.V311, packet.V5:
	default:
		bad("protocol version %d: use 3 (3.1), 4 (3.1.1) or 5 (5.0)", o.Version)
	}
	v := o.version()
	if o.Password != nil && o.Username == "" && v < packet.V5 {
		bad("a password needs a user name before MQTT 5.0 [MQTT-3.1.2-22]")
	}
	if o.KeepAlive < 0 || o.KeepAlive > 65535*time.Second {
		bad("keep alive %v must be between 0 and 65535 s", o.KeepAlive)
	} else if o.KeepAlive > 0 && o.KeepAlive < time.Second {
		bad("keep alive %v is below the protocol's unit of 1 s", o.KeepAlive)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ping timeout", o.PingTimeout}, {"connect timeout", o.ConnectTimeout}, {"write timeout", o.WriteTimeout},
		{"reconnect min", o.ReconnectMin}, {"reconnect max", o.ReconnectMax}} {
		if d.v < 0 {
			bad("%s %v must not be negative", d.name, d.v)
		}
	}
	if o.ReconnectMin > 0 && o.ReconnectMax > 0 && o.ReconnectMin > o.ReconnectMax {
		bad("reconnect min %v is above reconnect max %v", o.ReconnectMin, o.ReconnectMax)
	}
	if w := o.Will; w != nil {
		if !topic.ValidName(w.Topic) {
			bad("will topic %q is not a valid topic name", w.Topic)
		}
		if w.QoS > 2 {
			bad("will QoS %d is above 2", w.QoS)
		}
		if len(w.Payload) > 65535 {
			bad("will payload of %d bytes is over 65535", len(w.Payload))
		}
	}
	if v < packet.V5 {
		if !o.Properties.Empty() {
			bad("CONNECT properties need MQTT 5.0")
		}
		if o.Will != nil && !o.Will.Properties.Empty() {
			bad("will properties need MQTT 5.0")
		}
	}
	if o.MaxPacketSize != 0 && o.MaxPacketSize < 16 {
		bad("max packet size %d is too small to be useful", o.MaxPacketSize)
	}
	return errors.Join(errs...)
}

func (o *Options) version() byte {
	if o.Version == 0 {
		return packet.V5
	}
	return o.Version
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// parseServer checks a server URL and fills in the default port.
func parseServer(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("client: no server URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("client: server URL: %w", err)
	}
	var port string
	switch u.Scheme {
	case "mqtt", "tcp":
		port = "1883"
	case "mqtts", "ssl", "tls":
		port = "8883"
	case "ws":
		port = "80"
	case "wss":
		port = "443"
	default:
		return nil, fmt.Errorf("client: server URL %q: scheme must be mqtt, tcp, mqtts, ssl, tls, ws or wss", s)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("client: server URL %q has no host", s)
	}
	if u.Port() == "" {
		u.Host = joinHostPort(u.Hostname(), port)
	}
	return u, nil
}
