package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is what a run measured. WriteText prints it for people,
// WriteJSON for machines; durations are in nanoseconds in JSON.
type Report struct {
	Scenario    Scenario `json:"scenario"`
	Shape       Shape    `json:"shape,omitempty"`
	Broker      string   `json:"broker"`
	Protocol    string   `json:"protocol"` // "3.1.1" or "5.0"
	QoS         byte     `json:"qos"`
	PayloadSize int      `json:"payload_bytes"`
	Publishers  int      `json:"publishers"`
	Subscribers int      `json:"subscribers"`
	// Rate is the configured messages per second of each publisher
	// (0: as fast as possible).
	Rate float64 `json:"rate_per_publisher"`
	// Duration is how long publishers published (Pub, PubSub),
	// subscribers listened (Sub) or connections were held (Conn).
	Duration time.Duration `json:"duration_ns"`

	Connections Connections `json:"connections"`
	// Reconnect is a Conn run's reconnect storm (Config.Reconnect).
	Reconnect *Connections `json:"reconnect,omitempty"`
	// Memory is the broker's own memory figure (Config.MemoryTopic).
	Memory   *Memory   `json:"memory,omitempty"`
	Messages *Messages `json:"messages,omitempty"` // all but Conn
	// Latency is end to end, from the timestamp a publisher put in the
	// payload to the subscriber's read; AckLatency from a QoS 1 or 2
	// PUBLISH to its PUBACK or PUBCOMP.
	Latency    *Latency `json:"latency,omitempty"`
	AckLatency *Latency `json:"ack_latency,omitempty"`
	// Errors counts errors by kind.
	Errors map[string]uint64 `json:"errors"`
	// Elapsed is the whole run, connections to teardown; BenchCPU the CPU
	// time the bench itself used meanwhile (0 where not measured). A
	// BenchCPU near Elapsed times the cores the bench may use means the
	// bench, not the broker, set the pace.
	Elapsed  time.Duration `json:"elapsed_ns"`
	BenchCPU time.Duration `json:"bench_cpu_ns"`
}

// Connections describes the connection phase and what became of the
// connections.
type Connections struct {
	Attempted   int `json:"attempted"`
	Established int `json:"established"` // CONNACK (and, for subscribers, SUBACK) received
	Failed      int `json:"failed"`
	Lost        int `json:"lost"`        // ended before the run did
	OpenAtEnd   int `json:"open_at_end"` // established and not lost
	// Setup is the time from the first dial to the last handshake's end;
	// PerSecond is Established over Setup.
	Setup     time.Duration `json:"setup_ns"`
	PerSecond float64       `json:"per_second"`
	Latency   *Latency      `json:"latency,omitempty"` // dial to CONNACK
	// SessionPresent counts CONNACKs that found a session kept.
	SessionPresent int `json:"session_present"`
}

// Messages counts the messages of a run.
type Messages struct {
	Sent          uint64  `json:"sent"`
	SentPerSecond float64 `json:"sent_per_second"`
	Acked         uint64  `json:"acked"` // QoS 1 and 2: PUBACK or PUBCOMP received
	Received      uint64  `json:"received"`
	// ReceivedPerSecond is Received over the time from the start of
	// publishing (Sub: the first message) to the last message received.
	ReceivedPerSecond float64 `json:"received_per_second"`
	// Expected is, for PubSub, what the subscribers should receive: each
	// message sent times the subscribers it matches. Missing is how many
	// of those did not arrive.
	Expected uint64 `json:"expected"`
	Missing  uint64 `json:"missing"`
	// NoTimestamp counts messages received whose payload did not start
	// with a plausible send time, so without a latency.
	NoTimestamp uint64 `json:"no_timestamp"`
	// Stale counts, for PubSub, messages stamped before the run began (an
	// earlier run's, delivered late): they are not in Received.
	Stale uint64 `json:"stale"`
}

// Latency summarises a histogram of latencies.
type Latency struct {
	Samples uint64        `json:"samples"`
	Min     time.Duration `json:"min_ns"`
	Mean    time.Duration `json:"mean_ns"`
	P50     time.Duration `json:"p50_ns"`
	P90     time.Duration `json:"p90_ns"`
	P99     time.Duration `json:"p99_ns"`
	P999    time.Duration `json:"p99_9_ns"`
	Max     time.Duration `json:"max_ns"`
}

func (e *engine) report() *Report {
	cfg := &e.cfg
	pubs, subs := cfg.counts()
	r := &Report{
		Scenario:    cfg.Scenario,
		Broker:      cfg.brokerName(),
		Protocol:    versionName(cfg.Version),
		QoS:         cfg.QoS,
		PayloadSize: cfg.PayloadSize,
		Publishers:  pubs,
		Subscribers: subs,
		Rate:        cfg.perClientRate(),
		Duration:    e.pubEnd.Sub(e.start),
		Errors:      e.errs.snapshot(),
		Elapsed:     e.end.Sub(e.setupStart),
		BenchCPU:    e.cpuEnd - e.cpuStart,
	}
	if cfg.Scenario == PubSub {
		r.Shape = cfg.Shape
	}
	if cfg.Scenario == Conn {
		r.QoS, r.PayloadSize = 0, 0
	}
	r.Connections = e.connSummary()
	r.Connections.OpenAtEnd = int(e.openAtEnd)
	if e.initial != nil {
		storm := r.Connections
		r.Reconnect = &storm
		r.Connections = *e.initial
	}
	r.Memory = e.memory
	if cfg.Scenario == Conn {
		return r
	}
	m := e.messages()
	r.Messages = &Messages{
		Sent:        m.Sent,
		Acked:       m.Acked,
		Received:    m.Received,
		Expected:    m.Expected,
		NoTimestamp: m.NoTimestamp,
		Stale:       m.Stale,
	}
	if m.Expected > m.Received {
		r.Messages.Missing = m.Expected - m.Received
	}
	if r.Duration > 0 {
		r.Messages.SentPerSecond = float64(m.Sent) / r.Duration.Seconds()
	}
	var last int64
	for _, c := range e.subs {
		last = max(last, c.lastRecv.Load())
	}
	from := e.start.UnixNano()
	if cfg.Scenario == Sub {
		from = e.firstRecv.Load()
	}
	if span := last - from; m.Received > 0 && span > 0 {
		r.Messages.ReceivedPerSecond = float64(m.Received) / time.Duration(span).Seconds()
	}
	r.Latency = e.latency.merged().Summary()
	r.AckLatency = e.ackLatency.merged().Summary()
	return r
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes r for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	line := func(label, format string, a ...any) {
		fmt.Fprintf(&b, "%-12s %s\n", label, fmt.Sprintf(format, a...))
	}
	what := string(r.Scenario)
	if r.Shape != "" {
		what += " " + string(r.Shape)
	}
	switch r.Scenario {
	case Conn:
		fmt.Fprintf(&b, "gannet bench %s: %s connections, MQTT %s, broker %s\n",
			what, count(uint64(r.Connections.Attempted)), r.Protocol, r.Broker)
	default:
		rate := "as fast as possible"
		if r.Rate > 0 {
			rate = num(r.Rate) + " msg/s per publisher"
		}
		fmt.Fprintf(&b, "gannet bench %s: %s, %s, MQTT %s, QoS %d, %d-byte payloads, %s, broker %s\n",
			what, plural(r.Publishers, "publisher"), plural(r.Subscribers, "subscriber"), r.Protocol, r.QoS, r.PayloadSize, rate, r.Broker)
	}
	cs := &r.Connections
	conn := fmt.Sprintf("%s of %s in %s (%s/s), %d failed, %d lost",
		count(uint64(cs.Established)), count(uint64(cs.Attempted)), dur(cs.Setup), num(cs.PerSecond), cs.Failed, cs.Lost)
	if r.Scenario == Conn {
		conn += fmt.Sprintf(", %s held for %s", count(uint64(cs.OpenAtEnd)), dur(r.Duration))
	}
	line("connections", "%s", conn)
	if cs.Latency != nil {
		line("connect", "%s", cs.Latency.text())
	}
	if rc := r.Reconnect; rc != nil {
		line("reconnect", "%s of %s in %s (%s/s), %d failed, %d found their session",
			count(uint64(rc.Established)), count(uint64(rc.Attempted)), dur(rc.Setup), num(rc.PerSecond), rc.Failed, rc.SessionPresent)
		if rc.Latency != nil {
			line("", "%s", rc.Latency.text())
		}
	}
	if m := r.Memory; m != nil {
		line("memory", "%s: %s bytes before, %s held, %s bytes per connection",
			m.Topic, count(m.Before), count(m.After), num(m.PerConnection))
	}
	if m := r.Messages; m != nil {
		if r.Scenario != Sub {
			s := fmt.Sprintf("%s in %s = %s msg/s", count(m.Sent), dur(r.Duration), num(m.SentPerSecond))
			if r.QoS > 0 {
				s += fmt.Sprintf(", %s acknowledged", count(m.Acked))
			}
			line("sent", "%s", s)
		}
		if r.Scenario != Pub {
			s := fmt.Sprintf("%s = %s msg/s", count(m.Received), num(m.ReceivedPerSecond))
			if r.Scenario == PubSub {
				s += fmt.Sprintf(", of %s expected (%s missing)", count(m.Expected), count(m.Missing))
			}
			if m.NoTimestamp > 0 {
				s += fmt.Sprintf(", %s without timestamp", count(m.NoTimestamp))
			}
			if m.Stale > 0 {
				s += fmt.Sprintf(", %s stale (sent before the run) ignored", count(m.Stale))
			}
			line("received", "%s", s)
		}
		if r.Latency != nil {
			line("latency", "%s", r.Latency.text())
		}
		if r.AckLatency != nil {
			line("ack latency", "%s", r.AckLatency.text())
		}
	}
	if r.BenchCPU > 0 && r.Elapsed > 0 {
		line("bench cpu", "%s in %s (%.0f%% of one core)", dur(r.BenchCPU), dur(r.Elapsed), 100*r.BenchCPU.Seconds()/r.Elapsed.Seconds())
	}
	if len(r.Errors) == 0 {
		line("errors", "none")
	}
	keys := slices.Sorted(maps.Keys(r.Errors))
	for i, k := range keys {
		label := ""
		if i == 0 {
			label = "errors"
		}
		line(label, "%s  %s", count(r.Errors[k]), k)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (l *Latency) text() string {
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (%s samples)",
		dur(l.P50), dur(l.P90), dur(l.P99), dur(l.P999), dur(l.Max), count(l.Samples))
}

// dur prints d with three significant digits.
func dur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		return sig3(float64(d)/1e3) + "µs"
	case d < time.Second:
		return sig3(float64(d)/1e6) + "ms"
	}
	return sig3(d.Seconds()) + "s"
}

func sig3(f float64) string {
	switch {
	case f >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case f >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

// count prints n with thousands separators.
func count(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// num prints a rate rounded to a whole number, with separators.
func num(f float64) string {
	if f > 0 && f < 10 {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return count(uint64(f + 0.5))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return count(uint64(n)) + " " + noun + "s"
}
