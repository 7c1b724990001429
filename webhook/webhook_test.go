package webhook_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/webhook"
)

// Every event kind, driven by paho clients over TCP, arrives at a receiver
// in JSON with a valid signature; a second hook filtered by event and topic
// gets only what it asked for.
func TestEventsEachKindSigned(t *testing.T) {
	all := &receiver{t: t, secret: "s3cret"}
	allSrv := httptest.NewServer(all)
	defer allSrv.Close()
	filtered := &receiver{t: t}
	filteredSrv := httptest.NewServer(filtered)
	defer filteredSrv.Close()

	h1 := hookFor(allSrv.URL)
	h1.Secret = "s3cret"
	h2 := hookFor(filteredSrv.URL)
	h2.Events = []string{"message.published"}
	h2.Topics = []string{"t/#"}
	b, eng := runBroker(t, func(o *broker.Options) { o.MaxQueued = 1 }, h1, h2)

	sub := pahoClient(t, b.Addr, "sub", nil)
	got := make(chan string, 10)
	wait(t, "subscribe", sub.Subscribe("t/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }))
	pub := pahoClient(t, b.Addr, "pub", func(o *mqtt.ClientOptions) { o.SetUsername("alice") })
	wait(t, "publish", pub.Publish("t/a", 1, false, "hello"))
	select {
	case p := <-got:
		if p != "hello" {
			t.Fatalf("subscriber got %q", p)
		}
	case <-time.After(waitFor):
		t.Fatal("subscriber got nothing")
	}
	wait(t, "publish x", pub.Publish("x", 1, false, "nobody"))
	wait(t, "unsubscribe", sub.Unsubscribe("t/#"))
	sub.Disconnect(250)

	// A persistent session offline with a queue of 1: the second message
	// is dropped as queue_full.
	off := pahoClient(t, b.Addr, "off", func(o *mqtt.ClientOptions) { o.SetCleanSession(false) })
	wait(t, "subscribe q/#", off.Subscribe("q/#", 1, nil))
	off.Disconnect(250)
	eventually(t, "off offline", func() bool {
		info, _, ok := b.Client("off")
		return ok && !info.Connected
	})
	wait(t, "publish q 1", pub.Publish("q/1", 1, false, "one"))
	wait(t, "publish q 2", pub.Publish("q/2", 1, false, "two"))

	type want struct {
		what string
		pred func(*webhook.EventJSON) bool
	}
	wants := []want{
		{"sub connected", func(e *webhook.EventJSON) bool {
			return e.Event == "client.connected" && e.ClientID == "sub" && e.Protocol == 4 && strings.HasPrefix(e.Remote, "127.0.0.1:")
		}},
		{"pub connected with user", func(e *webhook.EventJSON) bool {
			return e.Event == "client.connected" && e.ClientID == "pub" && e.Username == "alice"
		}},
		{"session created", func(e *webhook.EventJSON) bool { return e.Event == "session.created" && e.ClientID == "sub" }},
		{"subscribed", func(e *webhook.EventJSON) bool {
			return e.Event == "client.subscribed" && e.ClientID == "sub" && e.Filter == "t/#" && e.QoS != nil && *e.QoS == 1
		}},
		{"published", func(e *webhook.EventJSON) bool {
			return e.Event == "message.published" && e.ClientID == "pub" && e.Topic == "t/a" && string(e.Payload) == "hello" && *e.QoS == 1
		}},
		{"delivered", func(e *webhook.EventJSON) bool {
			return e.Event == "message.delivered" && e.ClientID == "sub" && e.Topic == "t/a" && string(e.Payload) == "hello"
		}},
		{"dropped: no subscribers", func(e *webhook.EventJSON) bool {
			return e.Event == "message.dropped" && e.Topic == "x" && e.Reason == broker.DropNoSubscribers
		}},
		{"dropped: queue full", func(e *webhook.EventJSON) bool {
			return e.Event == "message.dropped" && e.ClientID == "off" && e.Topic == "q/2" && e.Reason == broker.DropQueueFull
		}},
		{"unsubscribed", func(e *webhook.EventJSON) bool {
			return e.Event == "client.unsubscribed" && e.ClientID == "sub" && e.Filter == "t/#"
		}},
		{"disconnected normally", func(e *webhook.EventJSON) bool {
			return e.Event == "client.disconnected" && e.ClientID == "sub" && e.Reason == broker.DisconnectNormal
		}},
		{"session ended", func(e *webhook.EventJSON) bool { return e.Event == "session.ended" && e.ClientID == "sub" }},
	}
	for _, w := range wants {
		deadline := time.Now().Add(waitFor)
		for {
			if _, ok := all.find(w.pred); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no event %s among %+v", w.what, all.snapshot())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	all.mu.Lock()
	if all.badSigs != 0 || all.requests == 0 {
		t.Errorf("%d of %d requests had a bad %s", all.badSigs, all.requests, webhook.SignatureHeader)
	}
	all.mu.Unlock()

	eventually(t, "filtered hook gets t/a", func() bool {
		_, ok := filtered.find(func(e *webhook.EventJSON) bool { return e.Topic == "t/a" })
		return ok
	})
	// Flush: one more message through both, then the filtered hook has
	// seen everything it will.
	wait(t, "publish t/end", pub.Publish("t/end", 0, false, "end"))
	eventually(t, "t/end", func() bool {
		_, ok := filtered.find(func(e *webhook.EventJSON) bool { return e.Topic == "t/end" })
		return ok
	})
	for _, e := range filtered.snapshot() {
		if e.Event != "message.published" || !strings.HasPrefix(e.Topic, "t/") {
			t.Errorf("filtered hook (message.published on t/#) got %s on %q", e.Event, e.Topic)
		}
	}
	st := eng.Stats()
	if st[0].Sent == 0 || st[0].Failed != 0 || st[0].Dropped != 0 {
		t.Errorf("stats of the first hook: %+v", st[0])
	}
}

// roundTrips completes n QoS 1 publishes, each waiting for its PUBACK, and
// fails the test if they take longer than bound: a webhook endpoint must
// never hold the broker back.
func roundTrips(t *testing.T, c mqtt.Client, n int, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for i := range n {
		tok := c.Publish(fmt.Sprintf("load/%d", i%10), 1, false, "payload-payload-payload")
		if !tok.WaitTimeout(bound) {
			t.Fatalf("QoS 1 publish %d not acknowledged within %v while the webhook endpoint misbehaves", i, bound)
		}
		if err := tok.Error(); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if d := time.Since(start); d > bound {
		t.Fatalf("%d QoS 1 round trips took %v (bound %v) while the webhook endpoint misbehaves", n, d, bound)
	}
	return time.Since(start)
}

// A receiver that accepts connections and never answers: the broker goes
// on at full speed, the queue fills to its byte bound and what does not fit
// is dropped and counted, exactly.
func TestReceiverHangsBrokerServes(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)

	h := hookFor(hang.URL)
	h.Events = []string{"message.published"}
	h.QueueMaxBytes = 4096
	h.BatchMaxEvents = 1
	h.Timeout = time.Minute
	h.RetryMaxAttempts = 1
	b, eng := runBroker(t, nil, h)
	pub := pahoClient(t, b.Addr, "pub", nil)
	const n = 500
	d := roundTrips(t, pub, n, 20*time.Second)
	t.Logf("%d QoS 1 round trips in %v with a hanging endpoint", n, d)

	st := eng.Stats()[0]
	if st.Enqueued+st.Dropped != n {
		t.Errorf("enqueued %d + dropped %d, want the %d events published", st.Enqueued, st.Dropped, n)
	}
	// Each event costs at least 256 bytes: at most 16 fit in 4096 bytes,
	// the one in flight included.
	if st.Enqueued > 4096/256 || st.Dropped < n-4096/256 {
		t.Errorf("queue of 4096 bytes took %d events and dropped %d", st.Enqueued, st.Dropped)
	}
	if st.QueuedBytes > 4096 {
		t.Errorf("queued bytes %d above the 4096 bound", st.QueuedBytes)
	}
	if st.Sent != 0 {
		t.Errorf("sent %d to an endpoint that never answers", st.Sent)
	}
}

// A slow receiver (50 ms per request): events are batched, so it keeps up
// with fewer requests than events, and the broker does not wait for it.
func TestSlowReceiverBatches(t *testing.T) {
	rc := &receiver{t: t}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		rc.ServeHTTP(w, r)
	}))
	defer slow.Close()
	h := hookFor(slow.URL)
	h.Events = []string{"message.published"}
	h.BatchMaxEvents = 50
	b, eng := runBroker(t, nil, h)
	pub := pahoClient(t, b.Addr, "pub", nil)
	const n = 200
	roundTrips(t, pub, n, 20*time.Second)
	eventually(t, "all events at the slow receiver", func() bool { return eng.Stats()[0].Sent == n })
	st := eng.Stats()[0]
	if st.Requests >= n/2 {
		t.Errorf("%d requests for %d events: not batched", st.Requests, n)
	}
	if st.Sent != n || st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("stats: %+v", st)
	}
}

// A receiver that is down (connection refused): each batch is retried
// with backoff, then counted as failed; the broker keeps serving.
func TestReceiverDownRetriesThenFails(t *testing.T) {
	// A port below the ephemeral range: nothing takes it meanwhile.
	url := fmt.Sprintf("http://127.0.0.1:%d/events", gannettest.FreePort(t))

	h := hookFor(url)
	h.Events = []string{"client.connected", "message.published"}
	h.RetryMaxAttempts = 3
	h.RetryBackoff = 20 * time.Millisecond
	h.BatchMaxEvents = 1000
	h.BatchMaxDelay = 50 * time.Millisecond
	b, eng := runBroker(t, nil, h)
	pub := pahoClient(t, b.Addr, "pub", nil)
	roundTrips(t, pub, 100, 20*time.Second)
	eventually(t, "all 101 events failed", func() bool {
		st := eng.Stats()[0]
		return st.Failed == 101
	})
	st := eng.Stats()[0]
	if st.Sent != 0 || st.Dropped != 0 {
		t.Errorf("stats: %+v", st)
	}
	// Each batch: 3 attempts, so 2 retries.
	if st.Retries != 2*(st.Requests/3) || st.Requests%3 != 0 || st.Requests == 0 {
		t.Errorf("%d requests and %d retries: want 3 attempts per batch", st.Requests, st.Retries)
	}
}

// A receiver answering 500 twice, then 200: the same signed body is sent
// again after a backoff that grows, and the events arrive once.
func TestReceiverFailingRetriesWithBackoff(t *testing.T) {
	rc := &receiver{t: t, secret: "k", status: func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	h := hookFor(srv.URL)
	h.Secret = "k"
	h.Events = []string{"client.connected"}
	h.RetryBackoff = 100 * time.Millisecond
	h.RetryMaxBackoff = time.Second
	b, eng := runBroker(t, nil, h)
	pahoClient(t, b.Addr, "one", nil)
	eventually(t, "the event after two 500s", func() bool { return len(rc.snapshot()) == 1 })
	// The receiver records the request before the engine has read the
	// 200: wait for the engine to count it sent.
	eventually(t, "the engine counts it sent", func() bool { return eng.Stats()[0].Sent == 1 })

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.requests != 3 || rc.badSigs != 0 {
		t.Fatalf("%d requests, %d bad signatures; want 3 signed requests", rc.requests, rc.badSigs)
	}
	if string(rc.bodies[0]) != string(rc.bodies[2]) {
		t.Errorf("the retry sent another body:\n%s\n%s", rc.bodies[0], rc.bodies[2])
	}
	// Backoff 100ms, then 200ms, with 20% jitter: lower bounds only.
	g1, g2 := rc.times[1].Sub(rc.times[0]), rc.times[2].Sub(rc.times[1])
	if g1 < 80*time.Millisecond || g2 < 160*time.Millisecond {
		t.Errorf("retries after %v and %v; want at least 80ms and 160ms (backoff 100ms doubling)", g1, g2)
	}
	st := eng.Stats()[0]
	if st.Retries != 2 || st.Sent != 1 || st.Failed != 0 {
		t.Errorf("stats: %+v", st)
	}
	if e := rc.events[0]; e.Event != "client.connected" || e.ClientID != "one" {
		t.Errorf("event %+v", e)
	}
}

// A 400 is not retried: the endpoint refused the events.
func TestReceiverRefusesNoRetry(t *testing.T) {
	rc := &receiver{t: t, status: func(int) int { return http.StatusBadRequest }}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	h := hookFor(srv.URL)
	h.Events = []string{"client.connected"}
	b, eng := runBroker(t, nil, h)
	pahoClient(t, b.Addr, "one", nil)
	eventually(t, "the event failed", func() bool { return eng.Stats()[0].Failed == 1 })
	if st := eng.Stats()[0]; st.Requests != 1 || st.Retries != 0 {
		t.Errorf("stats: %+v", st)
	}
}

func TestHookValidate(t *testing.T) {
	h := webhook.DefaultHook()
	h.URL = "ftp://x"
	h.Events = []string{"client.connected", "client.conected"}
	h.Topics = []string{"a/#/b"}
	h.QueueMaxBytes = 10
	h.CertFile = "x.pem"
	err := h.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"ftp://x", `"client.conected"`, `"a/#/b"`, "queue.max_bytes", "cert_file and key_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if !slices.Contains(webhook.EventNames(), "session.ended") || slices.Contains(webhook.EventNames(), "packet.in") {
		t.Errorf("EventNames: %v", webhook.EventNames())
	}
}

// Closing the engine while the endpoint hangs and many batches wait takes
// about one timeout, not one per batch, and accounts for every event.
func TestCloseWithHangingEndpointIsBounded(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	h := hookFor(hang.URL)
	h.Events = []string{"message.published"}
	h.BatchMaxEvents = 1
	h.Timeout = 300 * time.Millisecond
	h.RetryMaxAttempts = 1
	b, eng := runBroker(t, nil, h)
	pub := pahoClient(t, b.Addr, "pub", nil)
	roundTrips(t, pub, 200, 20*time.Second)
	start := time.Now()
	eng.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v with 200 batches for a hanging endpoint (timeout 300ms)", d)
	}
	st := eng.Stats()[0]
	if st.Enqueued != 200 || st.Sent+st.Failed != 200 || st.QueuedBytes != 0 {
		t.Errorf("after Close: %+v", st)
	}
}

// The collector exports each hook's counters; a takeover is reported as
// the old connection's disconnection with reason takenover.
func TestMetricsAndTakeoverReason(t *testing.T) {
	rc := &receiver{t: t}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	h := hookFor(srv.URL)
	h.Name = "audit"
	h.Events = []string{"client.disconnected"}
	b, eng := runBroker(t, nil, h)
	pahoClient(t, b.Addr, "twin", nil)
	pahoClient(t, b.Addr, "twin", nil) // takes the session over
	eventually(t, "the takeover", func() bool {
		_, ok := rc.find(func(e *webhook.EventJSON) bool {
			return e.ClientID == "twin" && e.Reason == broker.DisconnectTakeover
		})
		return ok
	})
	eventually(t, "sent counted", func() bool { return eng.Stats()[0].Sent >= 1 })

	reg := prometheus.NewRegistry()
	reg.MustRegister(eng.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() != "audit" {
				t.Errorf("%s labelled %v", mf.GetName(), m.GetLabel())
			}
			got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for _, name := range []string{"gannet_webhook_events_sent_total", "gannet_webhook_events_failed_total",
		"gannet_webhook_events_dropped_total", "gannet_webhook_retries_total", "gannet_webhook_requests_total", "gannet_webhook_queued_bytes"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no metric %s in %v", name, got)
		}
	}
	if got["gannet_webhook_events_sent_total"] < 1 || got["gannet_webhook_requests_total"] < 1 {
		t.Errorf("metrics: %v", got)
	}
}
