package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// testBroker is an in-process broker on 127.0.0.1:0 whose listener counts,
// on the wire, the connections it accepts and the PUBLISH packets the
// broker writes: a count of what the broker sent that does not depend on
// the bench's own bookkeeping.
type testBroker struct {
	srv  *broker.Server
	addr string
	l    *wireListener
}

func runBroker(t testing.TB, opts broker.Options) *testBroker {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	srv, err := broker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &wireListener{Listener: nl}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return &testBroker{srv: srv, addr: nl.Addr().String(), l: l}
}

type wireListener struct {
	net.Listener
	mu        sync.Mutex
	remotes   map[string]int // connections by remote IP
	accepted  atomic.Int64
	live      atomic.Int64
	publishes atomic.Uint64 // PUBLISH packets written by the broker
}

func (l *wireListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted.Add(1)
	l.live.Add(1)
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		l.mu.Lock()
		if l.remotes == nil {
			l.remotes = make(map[string]int)
		}
		l.remotes[a.IP.String()]++
		l.mu.Unlock()
	}
	return &wireConn{Conn: nc, l: l}, nil
}

// wireConn scans what the broker writes, packet by packet.
type wireConn struct {
	net.Conn
	l      *wireListener
	mu     sync.Mutex
	hdr    []byte // fixed header bytes read so far
	skip   int    // body bytes of the current packet still to pass
	closed sync.Once
}

func (c *wireConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.scan(b[:n])
	return n, err
}

func (c *wireConn) Close() error {
	c.closed.Do(func() { c.l.live.Add(-1) })
	return c.Conn.Close()
}

func (c *wireConn) scan(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(b) > 0 {
		if c.skip > 0 {
			k := min(c.skip, len(b))
			c.skip -= k
			b = b[k:]
			continue
		}
		c.hdr = append(c.hdr, b[0])
		b = b[1:]
		total, hl, err := packet.Header(c.hdr, 0)
		if err != nil {
			panic("broker wrote a malformed fixed header: " + err.Error())
		}
		if total == 0 {
			continue
		}
		if packet.Type(c.hdr[0]>>4) == packet.PUBLISH {
			c.l.publishes.Add(1)
		}
		c.skip = total - hl
		c.hdr = c.hdr[:0]
	}
}

func testConfig(addr string) Config {
	cfg := DefaultConfig()
	cfg.Addr = addr
	cfg.Duration = 0
	cfg.Drain = 10 * time.Second
	cfg.ConnectTimeout = 5 * time.Second
	return cfg
}

func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) > 0 {
		t.Errorf("errors: %v", r.Errors)
	}
	return r
}

// TestPubSubShapes runs each shape at each QoS and protocol version with
// small counts: every message must arrive, exactly as often as the shape
// says.
func TestPubSubShapes(t *testing.T) {
	b := runBroker(t, broker.DefaultOptions())
	type shape struct {
		shape      Shape
		clients    int
		pubs, subs int
	}
	shapes := []shape{
		{Pairs, 4, 4, 4},
		{FanIn, 5, 5, 1},
		{FanOut, 5, 1, 5},
	}
	for _, s := range shapes {
		for _, qos := range []byte{0, 1, 2} {
			for _, v := range []byte{packet.V311, packet.V5} {
				if testing.Short() && (qos == 2 || v == packet.V5) {
					continue
				}
				name := fmt.Sprintf("%s/qos%d/v%d", s.shape, qos, v)
				t.Run(name, func(t *testing.T) {
					cfg := testConfig(b.addr)
					cfg.Shape, cfg.Clients, cfg.QoS, cfg.Version = s.shape, s.clients, qos, v
					cfg.Count = 200
					cfg.Window = 8
					cfg.ClientIDPrefix = name + "-"
					r := run(t, cfg)
					m := r.Messages
					fanOut := uint64(1)
					if s.shape != Pairs {
						fanOut = uint64(s.subs)
					}
					if r.Publishers != s.pubs || r.Subscribers != s.subs {
						t.Errorf("%d publishers, %d subscribers; want %d, %d", r.Publishers, r.Subscribers, s.pubs, s.subs)
					}
					if want := uint64(s.pubs * cfg.Count); m.Sent != want {
						t.Errorf("sent %d, want %d", m.Sent, want)
					}
					if m.Expected != m.Sent*fanOut || m.Received != m.Expected || m.Missing != 0 {
						t.Errorf("sent %d, expected %d, received %d, missing %d; want received = sent x %d",
							m.Sent, m.Expected, m.Received, m.Missing, fanOut)
					}
					if qos > 0 && m.Acked != m.Sent {
						t.Errorf("acked %d of %d", m.Acked, m.Sent)
					}
					if r.Latency == nil || r.Latency.Samples != m.Received || m.NoTimestamp != 0 {
						t.Errorf("latency %+v for %d messages (%d without timestamp)", r.Latency, m.Received, m.NoTimestamp)
					}
					if qos > 0 && (r.AckLatency == nil || r.AckLatency.Samples != m.Acked) {
						t.Errorf("ack latency %+v for %d acks", r.AckLatency, m.Acked)
					}
					if got := r.Connections.Established; got != s.pubs+s.subs {
						t.Errorf("%d connections, want %d", got, s.pubs+s.subs)
					}
				})
			}
		}
	}
}

// TestAgainstBrokerCounters checks what the bench says it received against
// what the broker wrote. The broker exports no counters yet, so the
// broker's side is counted on the wire by the test listener; and received
// must equal published times the fan-out.
func TestAgainstBrokerCounters(t *testing.T) {
	for _, qos := range []byte{0, 1} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			b := runBroker(t, broker.DefaultOptions())
			cfg := testConfig(b.addr)
			cfg.Shape, cfg.Clients, cfg.Publishers, cfg.QoS = FanOut, 6, 2, qos
			cfg.Count = 500
			r := run(t, cfg)
			m := r.Messages
			// The broker's flusher counts a write when it returns, which
			// may be after the bench has read it.
			wire := b.l.publishes.Load()
			for deadline := time.Now().Add(2 * time.Second); wire < m.Received && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
				wire = b.l.publishes.Load()
			}
			if m.Received != wire {
				t.Errorf("bench received %d, broker wrote %d PUBLISH packets", m.Received, wire)
			}
			// And the broker's own counters (broker.Stats) agree.
			st := b.srv.Stats()
			if st.Sent != m.Received || st.Received != m.Sent || st.SentByQoS[qos] != m.Received {
				t.Errorf("broker Stats: received %d, sent %d (QoS %d: %d); bench sent %d, received %d",
					st.Received, st.Sent, qos, st.SentByQoS[qos], m.Sent, m.Received)
			}
			if want := uint64(cfg.Publishers*cfg.Count) * uint64(cfg.Clients); m.Received != want || m.Sent*6 != want {
				t.Errorf("sent %d, received %d; want received = %d published x 6 subscribers = %d",
					m.Sent, m.Received, cfg.Publishers*cfg.Count, want)
			}
		})
	}
}

// TestConnHolds opens connections at a rate and checks, at the broker's
// listener, that all of them are open during the hold and closed after.
func TestConnHolds(t *testing.T) {
	b := runBroker(t, broker.DefaultOptions())
	const n = 60
	cfg := testConfig(b.addr)
	cfg.Scenario, cfg.Clients = Conn, n
	cfg.ConnRate = 600 // 100ms to open them all
	cfg.Duration = 400 * time.Millisecond
	cfg.KeepAlive = 1 // pings every 666ms: none fall due; checks a short keep-alive is kept
	var during atomic.Int64
	done := make(chan *Report)
	go func() {
		r, err := Run(context.Background(), cfg, nil)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	deadline := time.Now().Add(5 * time.Second)
	for b.l.live.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	during.Store(b.l.live.Load())
	r := <-done
	if r == nil {
		return
	}
	if got := during.Load(); got != n {
		t.Errorf("broker saw %d live connections during the hold, want %d", got, n)
	}
	c := r.Connections
	if c.Attempted != n || c.Established != n || c.Failed != 0 || c.Lost != 0 || c.OpenAtEnd != n {
		t.Errorf("connections %+v; want %d attempted, established and open at end", c, n)
	}
	if c.Setup < 80*time.Millisecond {
		t.Errorf("opened %d connections in %v at 600/s", n, c.Setup)
	}
	if r.Duration < cfg.Duration {
		t.Errorf("held for %v, want %v", r.Duration, cfg.Duration)
	}
	if c.Latency == nil || c.Latency.Samples != n {
		t.Errorf("connect latency %+v", c.Latency)
	}
	if len(r.Errors) > 0 {
		t.Errorf("errors: %v", r.Errors)
	}
	deadline = time.Now().Add(5 * time.Second)
	for b.l.live.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if live := b.l.live.Load(); live != 0 {
		t.Errorf("%d connections still open after the run", live)
	}
}

// TestBind dials from several local addresses in turn.
func TestBind(t *testing.T) {
	b := runBroker(t, broker.DefaultOptions())
	cfg := testConfig(b.addr)
	cfg.Scenario, cfg.Clients = Conn, 9
	cfg.Bind = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	r := run(t, cfg)
	if r.Connections.Established != 9 {
		t.Fatalf("connections %+v", r.Connections)
	}
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	for _, ip := range cfg.Bind {
		if b.l.remotes[ip] != 3 {
			t.Errorf("connections by source address: %v; want 3 from each of %v", b.l.remotes, cfg.Bind)
			break
		}
	}
}

// TestConnKeepAlive holds connections past the broker's keep-alive timeout
// (1.5 x 1s): only the bench's pings keep them.
func TestConnKeepAlive(t *testing.T) {
	if testing.Short() {
		t.Skip("holds for 2s")
	}
	b := runBroker(t, broker.DefaultOptions())
	cfg := testConfig(b.addr)
	cfg.Scenario, cfg.Clients, cfg.KeepAlive = Conn, 5, 1
	cfg.Duration = 2 * time.Second
	r := run(t, cfg)
	if c := r.Connections; c.Lost != 0 || c.OpenAtEnd != 5 {
		t.Errorf("connections %+v: keep-alive not kept", c)
	}
}

// TestPubThenSub runs the sub scenario against the pub scenario, as two
// processes would.
func TestPubThenSub(t *testing.T) {
	b := runBroker(t, broker.DefaultOptions())
	sub := testConfig(b.addr)
	sub.Scenario, sub.Clients, sub.Count, sub.QoS = Sub, 2, 300, 1
	sub.Topic = "split/%i"
	sub.Duration = 20 * time.Second
	sub.ClientIDPrefix = "sub-"
	got := make(chan *Report, 1)
	go func() {
		r, err := Run(context.Background(), sub, nil)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	// Publish in rounds until the subscribers, whose subscriptions may not
	// be in place for the first round, have their count.
	for {
		pub := testConfig(b.addr)
		pub.Scenario, pub.Clients, pub.Count, pub.QoS = Pub, 3, 50, 1
		pub.Topic = "split/%i"
		pub.ClientIDPrefix = "pub-"
		r := run(t, pub)
		if r.Messages.Sent != 150 || r.Messages.Acked != 150 || r.Messages.Received != 0 {
			t.Fatalf("pub: %+v", r.Messages)
		}
		select {
		case r := <-got:
			if r == nil {
				return
			}
			if r.Messages.Received < 600 || r.Latency == nil {
				t.Errorf("sub received %d messages (latency %v), want at least 2 x 300", r.Messages.Received, r.Latency)
			}
			if r.Messages.ReceivedPerSecond <= 0 {
				t.Errorf("sub rate %v", r.Messages.ReceivedPerSecond)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestRate checks that a rate per publisher is kept.
func TestRate(t *testing.T) {
	b := runBroker(t, broker.DefaultOptions())
	cfg := testConfig(b.addr)
	cfg.Clients, cfg.TotalRate, cfg.Duration = 2, 400, time.Second
	r := run(t, cfg)
	if s := r.Messages.Sent; s < 360 || s > 440 {
		t.Errorf("sent %d messages in %v at 400/s", s, r.Duration)
	}
	if r.Rate != 200 {
		t.Errorf("rate per publisher %v, want 200", r.Rate)
	}
	if r.Messages.Received != r.Messages.Sent {
		t.Errorf("received %d of %d", r.Messages.Received, r.Messages.Sent)
	}
}

// TestReceiveMaximum: a 5.0 broker's Receive Maximum caps the window.
func TestReceiveMaximum(t *testing.T) {
	opts := broker.DefaultOptions()
	opts.ReceiveMaximum = 2 // the broker disconnects a client with more QoS 2 publishes in flight
	b := runBroker(t, opts)
	cfg := testConfig(b.addr)
	cfg.Clients, cfg.QoS, cfg.Version, cfg.Window, cfg.Count = 2, 2, packet.V5, 50, 300
	r := run(t, cfg)
	if m := r.Messages; m.Received != 600 || m.Acked != 600 {
		t.Errorf("messages %+v", m)
	}
}

// TestJSONReport checks the JSON form parses back, with the field names
// machines rely on.
func TestJSONReport(t *testing.T) {
	b := runBroker(t, broker.DefaultOptions())
	cfg := testConfig(b.addr)
	cfg.Clients, cfg.QoS, cfg.Count = 2, 1, 100
	r := run(t, cfg)
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	if back.Messages == nil || back.Messages.Received != 200 || back.Latency == nil || back.Latency.P99 == 0 {
		t.Errorf("round trip lost data:\n%s", buf.Bytes())
	}
	var raw map[string]any
	json.Unmarshal(buf.Bytes(), &raw)
	for _, k := range []string{"scenario", "shape", "protocol", "qos", "connections", "messages", "latency", "ack_latency", "errors"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	lat := raw["latency"].(map[string]any)
	for _, k := range []string{"p50_ns", "p90_ns", "p99_ns", "p99_9_ns"} {
		if _, ok := lat[k].(float64); !ok {
			t.Errorf("latency lacks %q: %v", k, lat)
		}
	}
	var text bytes.Buffer
	r.WriteText(&text)
	for _, want := range []string{"received", "200", "p99.9", "errors       none"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

// TestErrors: a broker that is not there gives a report of dial errors
// and an error.
func TestErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := testConfig(addr)
	cfg.Clients, cfg.Count = 2, 10
	r, err := Run(context.Background(), cfg, nil)
	if !errors.Is(err, ErrNoConnection) || r == nil {
		t.Fatalf("report %v, error %v; want both", r, err)
	}
	if r.Errors["dial: connection refused"] != 4 || r.Connections.Failed != 4 {
		t.Errorf("errors %v, connections %+v", r.Errors, r.Connections)
	}
}

// TestProgress checks the progress line's form.
func TestProgress(t *testing.T) {
	b := runBroker(t, broker.DefaultOptions())
	cfg := testConfig(b.addr)
	cfg.Clients, cfg.Duration, cfg.Rate = 1, 1500*time.Millisecond, 100
	var buf syncBuffer
	if _, err := Run(context.Background(), cfg, &buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "\r") || !strings.Contains(out, "conns 2/2") || !strings.Contains(out, "received") ||
		!strings.HasSuffix(out, "\r\x1b[K") {
		t.Errorf("progress output %q", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Scenario, cfg.QoS, cfg.Rate, cfg.TotalRate, cfg.Topic = PubSub, 3, 1, 1, "a/#"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"QoS 3", "not both", "topic"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	cfg = DefaultConfig()
	cfg.Publishers = 3
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "pairs") {
		t.Errorf("unequal pairs: %v", err)
	}
	cfg = DefaultConfig()
	cfg.Shape, cfg.Filter = FanIn, ""
	if f := cfg.filter(); f != "bench/+" {
		t.Errorf("fan-in filter %q", f)
	}
}

// TestStale: a message stamped before the run (here a retained one, as an
// overloaded broker may also deliver an earlier run's messages late) is
// not counted as received.
func TestStale(t *testing.T) {
	b := runBroker(t, broker.DefaultOptions())
	old := make([]byte, 64)
	binary.BigEndian.PutUint64(old, uint64(time.Now().Add(-time.Second).UnixNano()))
	if err := b.srv.Publish("bench/0", old, 0, true); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(b.addr)
	cfg.Clients, cfg.Count = 2, 50
	r := run(t, cfg)
	if m := r.Messages; m.Received != 100 || m.Stale != 1 || m.Missing != 0 {
		t.Errorf("messages %+v; want 100 received and 1 stale", m)
	}
}

// TestCancel: cancelling the context ends a run early, with a report.
func TestCancel(t *testing.T) {
	b := runBroker(t, broker.DefaultOptions())
	cfg := testConfig(b.addr)
	cfg.Clients, cfg.Rate, cfg.Duration = 2, 1000, time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Cancel once messages flow (a fixed delay may end the run before a
	// loaded machine has connected the clients: nothing sent, CI failed).
	var cancelled atomic.Int64
	go func() {
		for ctx.Err() == nil && b.srv.Stats().Sent < 50 {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // the bench clients read some
		cancelled.Store(time.Now().UnixNano())
		cancel()
	}()
	r, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(time.Unix(0, cancelled.Load())); took > 10*time.Second {
		t.Errorf("run took %v after cancel", took)
	}
	// A cancelled run does not wait for messages in flight.
	if r.Messages.Sent == 0 || r.Messages.Received == 0 || r.Messages.Received > r.Messages.Sent || len(r.Errors) > 0 {
		t.Errorf("messages %+v, errors %v", r.Messages, r.Errors)
	}
}
