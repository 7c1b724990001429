package webhook_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/webhook"
)

const waitFor = 10 * time.Second

func testLogger() *slog.Logger { return gannettest.Logger() }

type testBroker struct {
	*broker.Server
	Addr string
}

// runBroker starts a broker on 127.0.0.1:0 with webhooks, both stopped
// when the test ends (the broker first).
func runBroker(t testing.TB, mod func(*broker.Options), hooks ...webhook.Hook) (*testBroker, *webhook.Engine) {
	t.Helper()
	opts := gannettest.Options()
	if mod != nil {
		mod(&opts)
	}
	srv, err := broker.New(opts)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	var eng *webhook.Engine
	if len(hooks) > 0 {
		eng, err = webhook.New(srv, webhook.Options{Hooks: hooks, Logger: testLogger()})
		if err != nil {
			srv.Close()
			t.Fatalf("webhook.New: %v", err)
		}
		t.Cleanup(func() { eng.Close() }) // runs after the broker's cleanup
	}
	b := gannettest.Serve(t, srv, gannettest.Listen(t))
	return &testBroker{Server: b.Server, Addr: b.Addr}, eng
}

func pahoClient(t testing.TB, addr, id string, configure func(*mqtt.ClientOptions)) mqtt.Client {
	t.Helper()
	return gannettest.Paho(t, addr, id, 4, configure)
}

func wait(t testing.TB, what string, tok mqtt.Token) { t.Helper(); gannettest.Wait(t, what, tok) }

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	gannettest.EventuallyWithin(t, waitFor, what, cond)
}

// receiver records the events posted to it, checking each request's
// signature when secret is set.
type receiver struct {
	t      testing.TB
	secret string

	mu       sync.Mutex
	events   []webhook.EventJSON
	requests int
	badSigs  int
	bodies   [][]byte
	times    []time.Time
	certCN   string
	// status, when set, answers each request (before recording it).
	status func(n int) int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("receiver: read body: %v", err)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	rc.bodies = append(rc.bodies, body)
	rc.times = append(rc.times, time.Now())
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		rc.certCN = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("receiver: %s with Content-Type %q, want POST application/json", r.Method, r.Header.Get("Content-Type"))
	}
	if rc.secret != "" && !webhook.Verify(rc.secret, body, r.Header.Get(webhook.SignatureHeader)) {
		rc.badSigs++
	}
	if rc.status != nil {
		if st := rc.status(rc.requests); st != http.StatusOK {
			w.WriteHeader(st)
			return
		}
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		rc.t.Errorf("receiver: body is not a JSON payload: %v: %s", err, body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.events = append(rc.events, p.Events...)
}

func (rc *receiver) snapshot() []webhook.EventJSON {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhook.EventJSON(nil), rc.events...)
}

// find returns the first event matching pred.
func (rc *receiver) find(pred func(*webhook.EventJSON) bool) (webhook.EventJSON, bool) {
	for _, e := range rc.snapshot() {
		if pred(&e) {
			return e, true
		}
	}
	return webhook.EventJSON{}, false
}

// hookFor returns a hook posting everything to url quickly.
func hookFor(url string) webhook.Hook {
	h := webhook.DefaultHook()
	h.URL = url
	h.BatchMaxDelay = 5 * time.Millisecond
	h.RetryBackoff = 10 * time.Millisecond
	h.RetryMaxBackoff = 100 * time.Millisecond
	return h
}
