package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// Scenario is what a run does.
type Scenario string

// Scenarios.
const (
	// Conn opens Clients connections at ConnRate and holds them for
	// Duration.
	Conn Scenario = "conn"
	// Pub publishes from Clients publishers; nothing subscribes.
	Pub Scenario = "pub"
	// Sub subscribes Clients subscribers and counts what arrives, from a
	// bench pub run elsewhere or any other publisher.
	Sub Scenario = "sub"
	// PubSub runs publishers and subscribers together in a Shape.
	PubSub Scenario = "pubsub"
	// PingPong runs one publisher and one subscriber of its topic; each
	// message goes out only once the previous one arrived and both its
	// flows are complete: the latency of a broker at rest.
	PingPong Scenario = "pingpong"
)

// Shape is how publishers and subscribers of a PubSub run are matched.
type Shape string

// Shapes.
const (
	// Pairs: publisher i publishes to Topic(i), subscriber i subscribes to
	// Filter(i), by default the same topic; each message is delivered once.
	Pairs Shape = "pairs"
	// FanIn: many publishers (Clients), one subscriber on a wildcard.
	FanIn Shape = "fan-in"
	// FanOut: one publisher, many subscribers (Clients) of its topic.
	FanOut Shape = "fan-out"
)

// Config describes a run. Start from DefaultConfig.
type Config struct {
	Scenario Scenario
	Shape    Shape // PubSub only

	// Addr is the broker's host:port.
	Addr string
	// SubAddr, when set, is where subscribers connect instead of Addr:
	// another node of a cluster, so that every message crosses nodes.
	SubAddr string
	// Transport is tcp (""), tls, ws or wss.
	Transport Transport
	// TLSConfig configures tls and wss dials; nil: the system's roots, the
	// server name from Addr.
	TLSConfig *tls.Config
	// WSPath is the HTTP path of ws and wss dials; "": /mqtt.
	WSPath string
	// Bind lists local IP addresses to dial from, used in turn: each
	// address has its own range of ephemeral ports, so several let one
	// machine open more connections than one range holds (about 28,000 on
	// Linux by default). Empty: the system chooses.
	Bind []string
	// Version is the protocol level: packet.V311 or packet.V5.
	Version byte
	// QoS of publishes and subscriptions: 0, 1 or 2.
	QoS byte

	// Clients is the number of clients: connections for Conn, publishers
	// for Pub, subscribers for Sub; for PubSub the number of pairs, the
	// publishers of a fan-in, the subscribers of a fan-out.
	Clients int
	// Publishers and Subscribers override the counts Clients and Shape
	// give a PubSub run (0: derived); pairs need them equal.
	Publishers, Subscribers int

	// Topic is the topic template publishers publish to; %i is replaced by
	// the publisher's index.
	Topic string
	// Filter is the subscription template; %i is replaced by the
	// subscriber's index. Empty: Topic for pairs, Topic with %i replaced by
	// + otherwise.
	Filter string
	// PayloadSize is the payload length in bytes. Payloads of 8 bytes or
	// more start with the send time (unix nanoseconds, big-endian), from
	// which receivers measure latency.
	PayloadSize int

	// Rate is the messages per second of each publisher; TotalRate the
	// messages per second of all of them together, shared out. At most one
	// is set; neither: as fast as possible.
	Rate, TotalRate float64
	// Count is how many messages each publisher sends (Sub: each
	// subscriber waits for); 0: until Duration.
	Count int
	// Duration bounds the run: the publishing of Pub and PubSub, the
	// listening of Sub, the holding of Conn. 0 with Count set: no bound.
	Duration time.Duration
	// Window is how many QoS 1 or 2 publishes a publisher may have
	// unacknowledged, capped by the broker's 5.0 Receive Maximum.
	Window int
	// Drain bounds the wait, after publishing stops, for the messages and
	// acknowledgements still on their way.
	Drain time.Duration

	// ConnRate is how many connections are opened per second; 0: as fast
	// as possible, ConnConcurrency at a time.
	ConnRate float64
	// ConnConcurrency caps the handshakes in progress at once.
	ConnConcurrency int
	// ConnectTimeout bounds each dial, CONNECT/CONNACK and SUBSCRIBE/SUBACK.
	ConnectTimeout time.Duration
	// Persistent connects with Clean Session 0 (5.0: Clean Start 0 and a
	// one-hour Session Expiry Interval), so a durable broker stores each
	// QoS 1/2 delivery.
	Persistent bool
	// KeepAlive is the keep-alive asked for in CONNECT, in seconds; the
	// bench pings at two thirds of it. 0: none.
	KeepAlive uint16
	// ClientIDPrefix starts every client identifier; the role (p, s or c)
	// and the index follow.
	ClientIDPrefix string
	// Reconnect (Conn only) ends the hold with a reconnect storm: every
	// connection is cut at once, without DISCONNECT, and every client
	// connects again at once; the report's Reconnect describes it.
	Reconnect bool
	// MemoryTopic (Conn only), when set, is a topic on which the broker
	// publishes its own memory in use, in bytes, as the first word of the
	// payload ("$SYS/broker/heap/current" for Gannet and Mosquitto): read
	// before connecting and while holding, it gives the memory per idle
	// connection.
	MemoryTopic string
	// Username and Password, when Username is set, go in CONNECT.
	Username, Password string
}

// DefaultConfig returns a 10-second run of 10 QoS 0 pairs with 64-byte
// payloads against 127.0.0.1:1883 over MQTT 3.1.1.
func DefaultConfig() Config {
	return Config{
		Scenario:        PubSub,
		Shape:           Pairs,
		Addr:            "127.0.0.1:1883",
		Version:         packet.V311,
		Clients:         10,
		Topic:           "bench/%i",
		PayloadSize:     64,
		Duration:        10 * time.Second,
		Window:          32,
		Drain:           5 * time.Second,
		ConnConcurrency: 256,
		ConnectTimeout:  10 * time.Second,
		KeepAlive:       60,
		ClientIDPrefix:  "gannet-bench-" + strconv.Itoa(os.Getpid()) + "-",
	}
}

// Validate reports every invalid field at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("bench: "+format, a...)) }
	switch c.Scenario {
	case Conn, Pub, Sub, PubSub, PingPong:
	default:
		bad("scenario %q: use conn, pub, sub, pubsub or pingpong", c.Scenario)
	}
	if c.Scenario == PubSub {
		switch c.Shape {
		case Pairs, FanIn, FanOut:
		default:
			bad("shape %q: use pairs, fan-in or fan-out", c.Shape)
		}
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("broker address %q: %v", c.Addr, err)
	}
	if c.SubAddr != "" {
		if _, _, err := net.SplitHostPort(c.SubAddr); err != nil {
			bad("subscribers' broker address %q: %v", c.SubAddr, err)
		}
	}
	switch c.Transport {
	case "", TCP, TLS, WS, WSS:
	default:
		bad("transport %q: use tcp, tls, ws or wss", c.Transport)
	}
	for _, b := range c.Bind {
		if net.ParseIP(b) == nil {
			bad("bind address %q is not an IP address", b)
		}
	}
	if c.Version != packet.V311 && c.Version != packet.V5 {
		bad("protocol version %d: use 4 (3.1.1) or 5", c.Version)
	}
	if c.QoS > 2 {
		bad("QoS %d: use 0, 1 or 2", c.QoS)
	}
	if c.Clients < 1 {
		bad("clients %d: at least 1", c.Clients)
	}
	if c.Publishers < 0 || c.Subscribers < 0 {
		bad("publishers and subscribers must not be negative")
	}
	if c.Scenario == PubSub && c.Shape == Pairs && c.Clients > 0 {
		if p, s := c.counts(); p != s {
			bad("pairs need as many publishers (%d) as subscribers (%d)", p, s)
		}
	}
	if c.Scenario == Pub || c.Scenario == PubSub || c.Scenario == PingPong {
		if err := validTemplate(c.Topic, false); err != nil {
			bad("topic %q: %v", c.Topic, err)
		}
	}
	if c.Scenario == Sub || c.Scenario == PubSub || c.Scenario == PingPong {
		if err := validTemplate(c.filter(), true); err != nil {
			bad("filter %q: %v", c.filter(), err)
		}
	}
	if c.PayloadSize < 0 || c.PayloadSize > 256<<20 {
		bad("payload size %d: between 0 and 256 MiB", c.PayloadSize)
	}
	if c.Rate < 0 || c.TotalRate < 0 {
		bad("rates must not be negative")
	}
	if c.Rate > 0 && c.TotalRate > 0 {
		bad("set a rate per client or a total rate, not both")
	}
	if c.Count < 0 {
		bad("count %d must not be negative", c.Count)
	}
	if c.Duration < 0 {
		bad("duration %v must not be negative", c.Duration)
	}
	if c.Duration == 0 && c.Count == 0 && c.Scenario != Conn {
		bad("set a duration or a message count")
	}
	if c.QoS > 0 && (c.Window < 1 || c.Window > 65535) {
		bad("window %d: between 1 and 65535", c.Window)
	}
	if c.Drain < 0 {
		bad("drain %v must not be negative", c.Drain)
	}
	if (c.Reconnect || c.MemoryTopic != "") && c.Scenario != Conn {
		bad("reconnect and memory topic are for the conn scenario")
	}
	if c.MemoryTopic != "" {
		if err := packet.ValidTopicFilter(c.MemoryTopic); err != nil {
			bad("memory topic %q: %v", c.MemoryTopic, err)
		}
	}
	if c.ConnRate < 0 {
		bad("connection rate must not be negative")
	}
	if c.ConnConcurrency < 1 {
		bad("connection concurrency %d: at least 1", c.ConnConcurrency)
	}
	if c.ConnectTimeout <= 0 {
		bad("connect timeout %v must be positive", c.ConnectTimeout)
	}
	return errors.Join(errs...)
}

// counts returns the number of publishers and subscribers of the run.
func (c *Config) counts() (pubs, subs int) {
	switch c.Scenario {
	case Pub:
		return c.Clients, 0
	case Sub:
		return 0, c.Clients
	case PingPong:
		return 1, 1
	case PubSub:
		switch c.Shape {
		case Pairs:
			pubs, subs = c.Clients, c.Clients
		case FanIn:
			pubs, subs = c.Clients, 1
		case FanOut:
			pubs, subs = 1, c.Clients
		}
		if c.Publishers > 0 {
			pubs = c.Publishers
		}
		if c.Subscribers > 0 {
			subs = c.Subscribers
		}
		return pubs, subs
	}
	return 0, 0
}

// filter returns the subscription template.
func (c *Config) filter() string {
	if c.Filter != "" {
		return c.Filter
	}
	if (c.Scenario == PubSub && c.Shape == Pairs) || c.Scenario == PingPong {
		return c.Topic
	}
	return strings.ReplaceAll(c.Topic, "%i", "+")
}

// perClientRate returns each publisher's messages per second (0: no limit).
func (c *Config) perClientRate() float64 {
	if c.TotalRate > 0 {
		pubs, _ := c.counts()
		return c.TotalRate / float64(max(pubs, 1))
	}
	return c.Rate
}

// expand returns template with %i replaced by i.
func expand(template string, i int) string {
	if !strings.Contains(template, "%i") {
		return template
	}
	return strings.ReplaceAll(template, "%i", strconv.Itoa(i))
}

func validTemplate(t string, filter bool) error {
	s := expand(t, 0)
	if filter {
		return packet.ValidTopicFilter(s)
	}
	return packet.ValidTopicName(s)
}

// ParseVersion reads a protocol version as mosquitto's clients write it
// (mqttv311, mqttv5) or as a number (3.1.1, 311, 4, 5, 5.0).
func ParseVersion(s string) (byte, error) {
	switch strings.ToLower(s) {
	case "3.1.1", "311", "4", "mqttv311", "v311":
		return packet.V311, nil
	case "5", "5.0", "mqttv5", "v5":
		return packet.V5, nil
	}
	return 0, fmt.Errorf("bench: protocol version %q: use 3.1.1 or 5", s)
}

func versionName(v byte) string {
	if v == packet.V5 {
		return "5.0"
	}
	return "3.1.1"
}
