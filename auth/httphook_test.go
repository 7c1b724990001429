package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hookServer is an httptest server that answers with decide and counts
// requests.
type hookServer struct {
	*httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	last  map[string]any
	hdr   http.Header
}

func newHookServer(t *testing.T, decide func(req map[string]any, w http.ResponseWriter)) *hookServer {
	t.Helper()
	hs := &hookServer{}
	hs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.calls.Add(1)
		var req map[string]any
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		hs.mu.Lock()
		hs.last, hs.hdr = req, r.Header.Clone()
		hs.mu.Unlock()
		decide(req, w)
	}))
	t.Cleanup(hs.Close)
	return hs
}

func (hs *hookServer) lastRequest() map[string]any {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.last
}

func answer(result string) func(map[string]any, http.ResponseWriter) {
	return func(_ map[string]any, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"result":"` + result + `"}`))
	}
}

func newTestHook(t *testing.T, url string, mod func(*HTTPHookOptions)) *HTTPHook {
	t.Helper()
	o := DefaultHTTPHookOptions()
	o.AuthURL, o.ACLURL = url+"/auth", url+"/acl"
	if mod != nil {
		mod(&o)
	}
	h, err := NewHTTPHook(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var hookClient = &Client{
	ClientID: "c1", Username: "alice", Password: []byte("pw"), HasPassword: true,
	Remote: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5555}, Listener: "tls", CertCommonName: "cn1", Version: 5,
}

func TestHTTPHookDecisions(t *testing.T) {
	tests := []struct {
		name     string
		decide   func(map[string]any, http.ResponseWriter)
		auth     Result
		authz    bool
		wantErr  bool
		cacheLen int
	}{
		{"allow", answer("allow"), Allow, true, false, 2},
		{"deny", answer("deny"), Deny, false, false, 2},
		{"not_authorized", answer("not_authorized"), DenyNotAuthorized, false, false, 2},
		{"500", func(_ map[string]any, w http.ResponseWriter) { http.Error(w, "boom", 500) }, Deny, false, true, 0},
		{"403 with allow body", func(_ map[string]any, w http.ResponseWriter) {
			w.WriteHeader(403)
			w.Write([]byte(`{"result":"allow"}`))
		}, Deny, false, true, 0},
		{"redirect", func(_ map[string]any, w http.ResponseWriter) {
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}, Deny, false, true, 0},
		{"unknown result", answer("maybe"), Deny, false, true, 0},
		{"malformed body", func(_ map[string]any, w http.ResponseWriter) { w.Write([]byte(`{"result":`)) }, Deny, false, true, 0},
		{"empty body", func(_ map[string]any, w http.ResponseWriter) {}, Deny, false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHookServer(t, tt.decide)
			h := newTestHook(t, hs.URL, nil)
			r, err := h.Authenticate(context.Background(), hookClient)
			if r != tt.auth || (err != nil) != tt.wantErr {
				t.Errorf("Authenticate = %v, %v; want %v, error %v", r, err, tt.auth, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrHook) {
				t.Errorf("error %v does not wrap ErrHook", err)
			}
			ok, err := h.Authorize(context.Background(), hookClient, Write, "a/b")
			if ok != tt.authz || (err != nil) != tt.wantErr {
				t.Errorf("Authorize = %v, %v; want %v, error %v", ok, err, tt.authz, tt.wantErr)
			}
			if n := h.cache.len(); n != tt.cacheLen {
				t.Errorf("cache holds %d decisions; want %d (errors are not cached)", n, tt.cacheLen)
			}
		})
	}
}

func TestHTTPHookRequestBody(t *testing.T) {
	hs := newHookServer(t, answer("allow"))
	h := newTestHook(t, hs.URL, func(o *HTTPHookOptions) {
		o.Header = http.Header{"Authorization": {"Bearer tok"}}
	})
	if _, err := h.Authenticate(context.Background(), hookClient); err != nil {
		t.Fatal(err)
	}
	got := hs.lastRequest()
	want := map[string]any{"action": "connect", "clientid": "c1", "username": "alice", "password": "pw",
		"remote": "192.0.2.7:5555", "listener": "tls", "cert_cn": "cn1", "protocol_version": 5.0}
	if !equalJSON(got, want) {
		t.Errorf("connect request = %v; want %v", got, want)
	}
	if a := hs.hdr.Get("Authorization"); a != "Bearer tok" {
		t.Errorf("Authorization header = %q", a)
	}

	if _, err := h.Authorize(context.Background(), hookClient, Read, "s/+/t"); err != nil {
		t.Fatal(err)
	}
	got = hs.lastRequest()
	want = map[string]any{"action": "read", "clientid": "c1", "username": "alice",
		"remote": "192.0.2.7:5555", "listener": "tls", "cert_cn": "cn1", "protocol_version": 5.0, "topic": "s/+/t"}
	if !equalJSON(got, want) {
		t.Errorf("read request = %v; want %v (no password)", got, want)
	}

	bin := &Client{ClientID: "c2", Password: []byte{0xff, 0x00, 0x01}, HasPassword: true}
	if _, err := h.Authenticate(context.Background(), bin); err != nil {
		t.Fatal(err)
	}
	got = hs.lastRequest()
	want = map[string]any{"action": "connect", "clientid": "c2", "username": "", "password_base64": base64.StdEncoding.EncodeToString(bin.Password)}
	if !equalJSON(got, want) {
		t.Errorf("anonymous binary-password request = %v; want %v", got, want)
	}

	empty := &Client{ClientID: "c3", Username: "u", Password: []byte{}, HasPassword: true}
	if _, err := h.Authenticate(context.Background(), empty); err != nil {
		t.Fatal(err)
	}
	if pw, ok := hs.lastRequest()["password"]; !ok || pw != "" {
		t.Errorf("empty password sent as %v, %v; want \"\"", pw, ok)
	}
}

func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestHTTPHookTimeout(t *testing.T) {
	release := make(chan struct{})
	hs := newHookServer(t, func(_ map[string]any, w http.ResponseWriter) {
		<-release
		answer("allow")(nil, w)
	})
	defer close(release) // before hs.Close, which waits for handlers
	h := newTestHook(t, hs.URL, func(o *HTTPHookOptions) { o.Timeout = 50 * time.Millisecond })
	start := time.Now()
	r, err := h.Authenticate(context.Background(), hookClient)
	if r != Deny || !errors.Is(err, ErrHook) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Authenticate = %v, %v; want Deny and a deadline error", r, err)
	}
	ok, err := h.Authorize(context.Background(), hookClient, Read, "a")
	if ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Authorize = %v, %v; want false and a deadline error", ok, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("two timed-out calls took %v", d)
	}
}

func TestHTTPHookUnreachable(t *testing.T) {
	hs := newHookServer(t, answer("allow"))
	url := hs.URL
	hs.Close()
	h := newTestHook(t, url, nil)
	if r, err := h.Authenticate(context.Background(), hookClient); r != Deny || !errors.Is(err, ErrHook) {
		t.Errorf("Authenticate = %v, %v; want Deny, ErrHook", r, err)
	}
}

func TestHTTPHookCache(t *testing.T) {
	hs := newHookServer(t, answer("allow"))
	h := newTestHook(t, hs.URL, nil)
	ctx := context.Background()
	for range 5 {
		if r, err := h.Authenticate(ctx, hookClient); r != Allow || err != nil {
			t.Fatalf("Authenticate = %v, %v", r, err)
		}
		if ok, err := h.Authorize(ctx, hookClient, Read, "a/b"); !ok || err != nil {
			t.Fatalf("Authorize = %v, %v", ok, err)
		}
	}
	if n := hs.calls.Load(); n != 2 {
		t.Fatalf("server called %d times; want 2 (one per distinct request)", n)
	}
	// Another port of the same host is the same decision.
	c := *hookClient
	c.Remote = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 6000}
	h.Authenticate(ctx, &c)
	if n := hs.calls.Load(); n != 2 {
		t.Errorf("new remote port missed the cache: %d calls", n)
	}
	// Anything else that is sent is part of the key.
	for _, mod := range []func(*Client){
		func(c *Client) { c.Password = []byte("other") },
		func(c *Client) { c.HasPassword, c.Password = false, nil },
		func(c *Client) { c.Username = "bob" },
		func(c *Client) { c.ClientID = "c9" },
		func(c *Client) { c.Remote = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 8), Port: 5555} },
		func(c *Client) { c.Listener = "ws" },
		func(c *Client) { c.CertCommonName = "" },
		func(c *Client) { c.Version = 4 },
	} {
		before := hs.calls.Load()
		c := *hookClient
		mod(&c)
		h.Authenticate(ctx, &c)
		if hs.calls.Load() != before+1 {
			t.Errorf("changed client %+v hit the cache", c)
		}
	}
	before := hs.calls.Load()
	h.Authorize(ctx, hookClient, Write, "a/b")
	h.Authorize(ctx, hookClient, Read, "a/c")
	if hs.calls.Load() != before+2 {
		t.Error("another access or topic hit the cache")
	}
}

func TestHTTPHookCacheBound(t *testing.T) {
	hs := newHookServer(t, answer("deny"))
	h := newTestHook(t, hs.URL, func(o *HTTPHookOptions) { o.CacheSize = 2 })
	ctx := context.Background()
	ask := func(topic string) {
		t.Helper()
		if ok, err := h.Authorize(ctx, hookClient, Read, topic); ok || err != nil {
			t.Fatalf("Authorize(%q) = %v, %v", topic, ok, err)
		}
	}
	ask("t/1")
	ask("t/2")
	ask("t/1") // hit; t/2 is now least recently used
	if n := hs.calls.Load(); n != 2 {
		t.Fatalf("calls = %d; want 2", n)
	}
	ask("t/3") // evicts t/2
	if h.cache.len() != 2 {
		t.Fatalf("cache holds %d; want 2", h.cache.len())
	}
	ask("t/1") // still cached
	if n := hs.calls.Load(); n != 3 {
		t.Fatalf("calls = %d; want 3 (t/1 should have stayed)", n)
	}
	ask("t/2") // was evicted
	if n := hs.calls.Load(); n != 4 {
		t.Fatalf("calls = %d; want 4 (t/2 should have been evicted)", n)
	}
}

func TestHTTPHookCacheTTL(t *testing.T) {
	hs := newHookServer(t, answer("allow"))
	h := newTestHook(t, hs.URL, func(o *HTTPHookOptions) { o.CacheTTL = time.Minute })
	now := time.Unix(1000, 0)
	h.cache.now = func() time.Time { return now }
	ctx := context.Background()
	h.Authorize(ctx, hookClient, Read, "a")
	now = now.Add(59 * time.Second)
	h.Authorize(ctx, hookClient, Read, "a")
	if n := hs.calls.Load(); n != 1 {
		t.Fatalf("calls = %d; want 1 within the TTL", n)
	}
	now = now.Add(time.Second)
	h.Authorize(ctx, hookClient, Read, "a")
	if n := hs.calls.Load(); n != 2 {
		t.Fatalf("calls = %d; want 2 after the TTL", n)
	}
}

func TestHTTPHookNoCache(t *testing.T) {
	hs := newHookServer(t, answer("allow"))
	h := newTestHook(t, hs.URL, func(o *HTTPHookOptions) { o.CacheSize = 0 })
	for range 3 {
		h.Authorize(context.Background(), hookClient, Read, "a")
	}
	if n := hs.calls.Load(); n != 3 {
		t.Fatalf("calls = %d; want 3 with the cache off", n)
	}
}

func TestHTTPHookConcurrent(t *testing.T) {
	hs := newHookServer(t, func(req map[string]any, w http.ResponseWriter) {
		if strings.HasSuffix(req["topic"].(string), "/ok") {
			answer("allow")(req, w)
		} else {
			answer("deny")(req, w)
		}
	})
	h := newTestHook(t, hs.URL, func(o *HTTPHookOptions) { o.CacheSize = 8 })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				topic := "t/" + string(rune('a'+(g+i)%12))
				want := i%2 == 0
				if want {
					topic += "/ok"
				}
				ok, err := h.Authorize(context.Background(), hookClient, Read, topic)
				if err != nil || ok != want {
					t.Errorf("Authorize(%q) = %v, %v; want %v", topic, ok, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := h.cache.len(); n > 8 {
		t.Errorf("cache grew to %d past its bound 8", n)
	}
}

func TestHTTPHookOptionsValidate(t *testing.T) {
	if err := (HTTPHookOptions{}).Validate(); err == nil {
		t.Fatal("zero options validated")
	}
	bad := HTTPHookOptions{AuthURL: "ftp://x", ACLURL: "/relative", Timeout: -1, CacheSize: -1, CacheTTL: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad options validated")
	}
	for _, want := range []string{"AuthURL", "ACLURL", "Timeout", "CacheSize", "CacheTTL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := NewHTTPHook(bad); err == nil {
		t.Error("NewHTTPHook accepted bad options")
	}
	// One URL is enough; the other side then fails closed.
	o := DefaultHTTPHookOptions()
	o.ACLURL = "http://127.0.0.1:1/acl"
	h, err := NewHTTPHook(o)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := h.Authenticate(context.Background(), hookClient); r != Deny || !errors.Is(err, ErrHook) {
		t.Errorf("Authenticate without AuthURL = %v, %v", r, err)
	}
	o = DefaultHTTPHookOptions()
	o.AuthURL = "http://127.0.0.1:1/auth"
	h, _ = NewHTTPHook(o)
	if ok, err := h.Authorize(context.Background(), hookClient, Read, "a"); ok || !errors.Is(err, ErrHook) {
		t.Errorf("Authorize without ACLURL = %v, %v", ok, err)
	}
}
