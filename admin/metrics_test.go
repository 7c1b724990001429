package admin_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store/memory"
)

// scrape is one /metrics answer, parsed.
type scrape map[string]*dto.MetricFamily

func (s *adminServer) scrape() scrape {
	s.t.Helper()
	r := s.request("GET", "/metrics", nil)
	if r.Status != http.StatusOK {
		s.t.Fatalf("GET /metrics: %d %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		s.t.Fatalf("GET /metrics: Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		s.t.Fatalf("parse /metrics: %v\n%s", err, r.Body)
	}
	return fams
}

// value returns the value of the sample of name whose labels are the
// name=value pairs given; ok is false when there is none.
func (sc scrape) value(name string, labels ...string) (float64, bool) {
	f := sc[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.Label {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// check compares a sample with its expected value.
func (sc scrape) check(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := sc.value(name, labels...)
	if !ok {
		t.Errorf("%s%v: missing", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func TestMetricsMatchTraffic(t *testing.T) {
	b := runBroker(t, func(o *broker.Options) { o.Store = admin.MeteredStore(memory.New()) })
	s := runAdmin(t, b.Server, admin.Options{Token: "scrape"})

	const qos0, qos1 = 7, 5
	// A persistent subscriber: its session and QoS 1 queue go to the store.
	sub := dialMQTT(t, b.Addr, &packet.Connect{CleanStart: false, ClientID: "sub", KeepAlive: 60})
	sub.subscribe("m/#", 1)
	pub := connect(t, b.Addr, "pub")
	for i := range qos0 {
		pub.publish("m/a", fmt.Sprint("zero ", i), 0, false)
	}
	for i := range qos1 {
		pub.publish("m/b", fmt.Sprint("one ", i), 1, false)
	}
	pub.publish("m/r", "retained", 0, true)
	pub.ping()
	for range qos0 + qos1 + 1 {
		sub.receive() // acknowledges the QoS 1 ones
	}
	sub.ping()

	sc := s.scrape()
	sc.check(t, qos0+1, "gannet_messages_received_total", "qos", "0")
	sc.check(t, qos1, "gannet_messages_received_total", "qos", "1")
	sc.check(t, 0, "gannet_messages_received_total", "qos", "2")
	sc.check(t, qos0+1, "gannet_messages_sent_total", "qos", "0")
	sc.check(t, qos1, "gannet_messages_sent_total", "qos", "1")
	sc.check(t, 0, "gannet_messages_sent_total", "qos", "2")
	sc.check(t, 2, "gannet_connections")
	sc.check(t, 2, "gannet_connections_max")
	sc.check(t, 2, "gannet_connections_accepted_total")
	sc.check(t, 0, "gannet_connections_refused_total", "reason", "rate")
	sc.check(t, 0, "gannet_connections_refused_total", "reason", "memory")
	sc.check(t, 2, "gannet_sessions")
	sc.check(t, 1, "gannet_subscriptions")
	sc.check(t, 1, "gannet_retained_messages")
	sc.check(t, 0, "gannet_queued_messages")
	sc.check(t, 0, "gannet_inflight_messages")
	for _, reason := range []string{"queue_full", "slow_consumer", "too_large"} {
		sc.check(t, 0, "gannet_messages_dropped_total", "reason", reason)
	}
	sc.check(t, 0, "gannet_publishes_throttled_total")
	sc.check(t, 0, "gannet_slow_clients_disconnected_total")
	if up, _ := sc.value("gannet_uptime_seconds"); up <= 0 {
		t.Errorf("gannet_uptime_seconds = %v", up)
	}

	// Bytes: everything the clients wrote (the broker leaves CONNECT
	// packets out for now, so either count is right), and everything they
	// read. The broker adds a write's bytes once the write returns, which
	// may be after the client has read them: poll.
	wantIn := float64(sub.written() + pub.written())
	withConnect := wantIn + float64(sub.connect+pub.connect)
	wantOut := float64(sub.read() + pub.read())
	var in, out float64
	deadline := time.Now().Add(waitFor)
	for {
		sc := s.scrape()
		in, _ = sc.value("gannet_bytes_received_total")
		out, _ = sc.value("gannet_bytes_sent_total")
		if (in == wantIn || in == withConnect) && out == wantOut {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gannet_bytes_received_total = %v, want %v (or %v with CONNECT); gannet_bytes_sent_total = %v, want %v",
				in, wantIn, withConnect, out, wantOut)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Types are right, and the runtime and process collectors are there.
	for name, typ := range map[string]dto.MetricType{
		"gannet_messages_received_total":   dto.MetricType_COUNTER,
		"gannet_connections":               dto.MetricType_GAUGE,
		"gannet_store_operation_seconds":   dto.MetricType_HISTOGRAM,
		"go_goroutines":                    dto.MetricType_GAUGE,
		"process_cpu_seconds_total":        dto.MetricType_COUNTER,
		"gannet_connections_refused_total": dto.MetricType_COUNTER,
	} {
		if f := sc[name]; f == nil || f.GetType() != typ {
			t.Errorf("%s: family %v, want type %v", name, f.GetType(), typ)
		}
	}

	// The store calls were timed. The histograms are process-wide, so
	// other tests may have added to them: at least.
	for op, least := range map[string]float64{"save_session": 1, "append": qos1, "remove": qos1, "set_retained": 1, "load_sessions": 1} {
		if n, ok := sc.value("gannet_store_operation_seconds", "op", op); !ok || n < least {
			t.Errorf("gannet_store_operation_seconds{op=%q} count %v, want at least %v", op, n, least)
		}
	}

	// No double counting: with no traffic, a second scrape reads the same.
	again := s.scrape()
	for _, name := range []string{"gannet_messages_received_total", "gannet_messages_sent_total", "gannet_connections_accepted_total", "gannet_bytes_received_total"} {
		if a, b := sum(sc[name]), sum(again[name]); a != b {
			t.Errorf("%s went from %v to %v between two scrapes with no traffic", name, a, b)
		}
	}
	st := b.Stats()
	if got := sum(again["gannet_messages_received_total"]); got != float64(st.Received) {
		t.Errorf("sum of gannet_messages_received_total %v, Stats().Received %d", got, st.Received)
	}
}

func sum(f *dto.MetricFamily) float64 {
	var total float64
	for _, m := range f.GetMetric() {
		total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return total
}

func TestMetricsQueueDepth(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{})
	// An offline persistent session piles up QoS 1 messages.
	sub := dialMQTT(t, b.Addr, &packet.Connect{CleanStart: false, ClientID: "away", KeepAlive: 60})
	sub.subscribe("q/#", 1)
	sub.nc.Close()
	eventually(t, "away offline", func() bool { ci, _, ok := b.Client("away"); return ok && !ci.Connected })
	for range 4 {
		if err := b.Publish("q/x", []byte("m"), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	sc := s.scrape()
	sc.check(t, 4, "gannet_queued_messages")
	sc.check(t, 0, "gannet_connections")
	sc.check(t, 1, "gannet_sessions")
}

func TestMetricNames(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{})
	var names []string
	for name := range s.scrape() {
		if strings.HasPrefix(name, "gannet_") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if !model.LegacyValidation.IsValidMetricName(name) {
			t.Errorf("metric name %q is not a classic Prometheus name", name)
		}
	}
	want := []string{
		"gannet_bytes_received_total", "gannet_bytes_sent_total", "gannet_connections",
		"gannet_connections_accepted_total", "gannet_connections_max", "gannet_connections_refused_total",
		"gannet_inflight_messages", "gannet_messages_dropped_total", "gannet_messages_received_total",
		"gannet_messages_sent_total", "gannet_publishes_throttled_total", "gannet_queued_messages",
		"gannet_retained_messages", "gannet_sessions", "gannet_slow_clients_disconnected_total",
		"gannet_subscriptions", "gannet_uptime_seconds",
	}
	have := strings.Join(names, " ")
	for _, w := range want {
		if !strings.Contains(" "+have+" ", " "+w+" ") {
			t.Errorf("metric %s missing; have %s", w, have)
		}
	}
}
