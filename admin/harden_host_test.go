package admin_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gannet-mqtt/gannet/admin"
)

// hostRequest sends GET path to s with the given Host header.
func (s *adminServer) hostRequest(method, path, host string, body any) *response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req, err = http.NewRequest(method, s.URL+path, strings.NewReader(body.(string)))
		if err != nil {
			s.t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
	}
	req.Host = host
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	return s.do(req)
}

// Issue 16 point 6: without a token, the admin answers only requests that
// name it by an IP address, localhost or a configured name: a page on
// another site reaching it through DNS rebinding sends its own name.
func TestNoTokenForgedHostRefused(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{AllowedHosts: []string{"Broker.LAN"}})
	port := s.URL[strings.LastIndex(s.URL, ":"):]
	for _, host := range []string{"rebind.example" + port, "rebind.example", "localhost.evil.example" + port, "127.0.0.1.nip.io" + port} {
		for _, path := range []string{"/", "/api/v1/clients", "/api/v1/retained", "/metrics"} {
			expect(t, s.hostRequest("GET", path, host, nil), http.StatusForbidden, "GET "+path+" Host "+host)
		}
		r := s.hostRequest("POST", "/api/v1/publish", host, `{"topic":"t","payload":"x"}`)
		expect(t, r, http.StatusForbidden, "publish with Host "+host)
		if r := s.hostRequest("GET", "/healthz", host, nil); r.Status != http.StatusOK {
			t.Errorf("healthz with Host %s: %d", host, r.Status)
		}
	}
	for _, host := range []string{"127.0.0.1" + port, "localhost" + port, "LOCALHOST.", "app.localhost" + port, "[::1]" + port, "10.1.2.3" + port, "broker.lan" + port} {
		expect(t, s.hostRequest("GET", "/api/v1/stats", host, nil), http.StatusOK, "GET stats with Host "+host)
	}
	// With a token the token is the protection: any Host.
	st := runAdmin(t, b.Server, admin.Options{Token: "tok"})
	expect(t, st.hostRequest("GET", "/api/v1/stats", "rebind.example", nil), http.StatusOK, "with token, forged Host")
}

// fakeListener is a net.Listener that claims an address: Serve must refuse
// it before accepting anything.
type fakeListener struct {
	addr   net.Addr
	closed chan struct{}
	once   *sync.Once
}

func newFakeListener(addr net.Addr) fakeListener {
	return fakeListener{addr: addr, closed: make(chan struct{}), once: new(sync.Once)}
}

func (f fakeListener) Accept() (net.Conn, error) { <-f.closed; return nil, net.ErrClosed }
func (f fakeListener) Close() error              { f.once.Do(func() { close(f.closed) }); return nil }
func (f fakeListener) Addr() net.Addr            { return f.addr }

// Issue 16 point 6: a tokenless admin does not serve a non-loopback address
// unless InsecureNoToken says so.
func TestNoTokenServeRefusesPublicAddress(t *testing.T) {
	b := runBroker(t, nil)
	addr := &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 8080}
	public := newFakeListener(addr)
	a, err := admin.New(b.Server, admin.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := a.Serve(ctx, public); err == nil || !strings.Contains(err.Error(), "without a token") {
		t.Fatalf("Serve on %s without a token: %v, want a refusal", public.addr, err)
	}
	for _, opts := range []admin.Options{{Token: "t"}, {InsecureNoToken: true}} {
		opts.Logger = testLogger()
		a, err := admin.New(b.Server, opts)
		if err != nil {
			t.Fatal(err)
		}
		sctx, scancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err = a.Serve(sctx, newFakeListener(addr))
		scancel()
		if err != nil {
			t.Errorf("Serve on %s with %+v: %v", public.addr, opts, err)
		}
	}
	if _, err := admin.New(b.Server, admin.Options{AllowedHosts: []string{"host:80"}}); err == nil {
		t.Error("allowed host with a port accepted")
	}
}

// Issue 16 point 6 in a real browser: a page whose origin is a name that
// resolves to the admin listener (what DNS rebinding achieves) cannot
// read or publish through the tokenless API; the same page by IP can.
func TestDashboardDNSRebindingRefused(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{})
	ctx := newBrowser(t, chromedp.Flag("host-resolver-rules", "MAP rebind.test 127.0.0.1"))
	connect(t, b.Addr, "victim-sensor")
	port := s.URL[strings.LastIndex(s.URL, ":")+1:]

	fetchStatus := func(origin string) (list, publish int) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/healthz")); err != nil {
			t.Fatalf("navigate %s: %v", origin, err)
		}
		list, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/api/v1/clients").then(r => r.status)`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("fetch clients from %s: %v", origin, err)
		}
		publish, err = chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/api/v1/publish", {method: "POST", headers: {"Content-Type": "application/json"},
			body: JSON.stringify({topic: "rebind/owned", payload: "x", retain: true})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("fetch publish from %s: %v", origin, err)
		}
		return list, publish
	}
	if list, pub := fetchStatus("http://rebind.test:" + port); list != http.StatusForbidden || pub != http.StatusForbidden {
		t.Errorf("page on rebind.test: clients %d, publish %d; want 403 and 403", list, pub)
	}
	if m, _ := b.Retained("rebind/owned"); len(m) != 0 {
		t.Error("the rebinding page published a retained message")
	}
	if list, pub := fetchStatus("http://127.0.0.1:" + port); list != http.StatusOK || pub != http.StatusOK {
		t.Errorf("page on 127.0.0.1: clients %d, publish %d; want 200 and 200", list, pub)
	}
}
