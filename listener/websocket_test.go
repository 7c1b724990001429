package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsClient dials a ws or wss listener with coder/websocket. It returns the
// conn, the HTTP response and the client's local address.
type wsDial struct {
	path         string
	subprotocols []string
	header       http.Header
	tls          *tls.Config
	prefix       []byte // written on the TCP connection first (PROXY header)
}

func wsConnect(t *testing.T, l *Listener, d wsDial) (*websocket.Conn, *http.Response, net.Addr, error) {
	t.Helper()
	if d.path == "" {
		d.path = "/mqtt"
	}
	if d.subprotocols == nil {
		d.subprotocols = []string{"mqtt"}
	}
	var (
		mu    sync.Mutex
		local net.Addr
	)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			local = c.LocalAddr()
			mu.Unlock()
			if len(d.prefix) > 0 {
				if _, err := c.Write(d.prefix); err != nil {
					return nil, err
				}
			}
			return c, nil
		},
		TLSClientConfig: d.tls,
	}
	t.Cleanup(tr.CloseIdleConnections)
	scheme := "ws://"
	if d.tls != nil {
		scheme = "wss://"
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, scheme+l.Addr().String()+d.path, &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: tr, Timeout: wait},
		Subprotocols: d.subprotocols,
		HTTPHeader:   d.header,
	})
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	mu.Lock()
	defer mu.Unlock()
	return c, resp, local, err
}

func ctxWait(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// MQTT packets as raw bytes.
const (
	pingreq  = "\xc0\x00"
	publish  = "\x30\x07\x00\x03a/bxy" // QoS 0, topic a/b, payload xy
	connack  = "\x20\x02\x00\x00"
	pingresp = "\xd0\x00"
)

// wsExchange sends packets from the client in frames that split and merge
// them [MQTT-6.0.0-2], and from the server in two writes, each of which is
// one binary message [MQTT-6.0.0-1].
func wsExchange(t *testing.T, c *websocket.Conn, sc net.Conn) {
	t.Helper()
	ctx := ctxWait(t)
	stream := mqttConnect + pingreq + publish
	frames := []string{
		mqttConnect[:5],                         // part of CONNECT
		mqttConnect[5:] + pingreq + publish[:3], // the rest of it, PINGREQ, part of PUBLISH
	}
	for _, f := range frames {
		if err := c.Write(ctx, websocket.MessageBinary, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	// The rest of PUBLISH as one message of two frames.
	w, err := c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(publish[3:6]))
	w.Write([]byte(publish[6:]))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(stream))
	if _, err := io.ReadFull(sc, got); err != nil {
		t.Fatalf("server read: %v", err)
	}
	if string(got) != stream {
		t.Fatalf("server read %q, want %q", got, stream)
	}

	sc.Write([]byte(connack))
	sc.Write([]byte(pingresp + connack))
	for _, want := range []string{connack, pingresp + connack} {
		typ, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("client read: %v", err)
		}
		if typ != websocket.MessageBinary || string(b) != want {
			t.Fatalf("client read %v %q, want binary %q", typ, b, want)
		}
	}
}

// wsTextCloses checks [MQTT-6.0.0-1]: a text frame closes the connection.
func wsTextCloses(t *testing.T, c *websocket.Conn, sc net.Conn) {
	t.Helper()
	ctx := ctxWait(t)
	if err := c.Write(ctx, websocket.MessageText, []byte(mqttConnect)); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		var b [16]byte
		_, err := sc.Read(b[:])
		errc <- err
	}()
	_, _, err := c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Errorf("client read after a text frame: %v, want close status 1003", err)
	}
	select {
	case err := <-errc:
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("server read after a text frame: %v, want an error", err)
		}
	case <-time.After(wait):
		t.Fatal("server read still blocked after a text frame")
	}
}

func TestWebSocket(t *testing.T) {
	l, _ := listen(t, Config{Type: TypeWS})
	a := accepting(t, l)

	c, resp, local, err := wsConnect(t, l, wsDial{})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "mqtt" || c.Subprotocol() != "mqtt" {
		t.Errorf("subprotocol %q, want mqtt [MQTT-6.0.0-4]", got)
	}
	sc := a.next(t)
	if got := sc.RemoteAddr().String(); got != local.String() {
		t.Errorf("RemoteAddr %s, want the HTTP client's %s", got, local)
	}
	if _, _, ok := PeerIdentity(sc); ok {
		t.Error("PeerIdentity ok on ws")
	}
	wsExchange(t, c, sc)
	t.Run("text frame closes", func(t *testing.T) { wsTextCloses(t, c, sc) })
}

func TestWebSocketSubprotocols(t *testing.T) {
	l, _ := listen(t, Config{Type: TypeWS})
	a := accepting(t, l)
	for _, tt := range []struct {
		offer []string
		want  string
	}{
		{[]string{"mqttv3.1", "mqtt"}, "mqtt"}, // [MQTT-6.0.0-4]
		{[]string{"mqtt", "mqttv3.1"}, "mqtt"},
		{[]string{"mqttv3.1"}, "mqttv3.1"},
		{[]string{"other", "mqtt"}, "mqtt"},
	} {
		c, _, _, err := wsConnect(t, l, wsDial{subprotocols: tt.offer})
		if err != nil {
			t.Fatalf("offer %q: %v", tt.offer, err)
		}
		a.next(t)
		if c.Subprotocol() != tt.want {
			t.Errorf("offer %q: selected %q, want %q", tt.offer, c.Subprotocol(), tt.want)
		}
	}
	for _, offer := range [][]string{{}, {"chat"}} {
		_, resp, _, err := wsConnect(t, l, wsDial{subprotocols: offer})
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("offer %q: %v, want 400", offer, err)
		}
	}
	_, resp, _, err := wsConnect(t, l, wsDial{path: "/other"})
	if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("other path: %v, want 404", err)
	}
	a.none(t, 20*time.Millisecond)
}

func TestWebSocketCustomPath(t *testing.T) {
	l, _ := listen(t, Config{Type: TypeWS, Path: "/ws/mqtt"})
	a := accepting(t, l)
	c, _, _, err := wsConnect(t, l, wsDial{path: "/ws/mqtt"})
	if err != nil {
		t.Fatal(err)
	}
	wsExchange(t, c, a.next(t))
}

// A read deadline that passes returns a timeout and leaves the
// connection working, as on TCP; the broker relies on it.
func TestWebSocketReadDeadline(t *testing.T) {
	l, _ := listen(t, Config{Type: TypeWS})
	a := accepting(t, l)
	c, _, _, err := wsConnect(t, l, wsDial{})
	if err != nil {
		t.Fatal(err)
	}
	sc := a.next(t)
	var b [64]byte
	var ne net.Error

	sc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := sc.Read(b[:]); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past deadline: %v, want a timeout", err)
	}

	// A deadline set to now wakes a blocked Read.
	sc.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := sc.Read(b[:])
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	sc.SetReadDeadline(time.Now())
	select {
	case err := <-errc:
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("blocked read: %v, want a timeout", err)
		}
	case <-time.After(wait):
		t.Fatal("SetReadDeadline(now) did not wake Read")
	}

	// Still usable both ways.
	sc.SetReadDeadline(time.Now().Add(wait))
	wsExchange(t, c, sc)
}

// Close returns at once and the client sees a normal closure.
func TestWebSocketClose(t *testing.T) {
	l, _ := listen(t, Config{Type: TypeWS})
	a := accepting(t, l)
	c, _, _, err := wsConnect(t, l, wsDial{})
	if err != nil {
		t.Fatal(err)
	}
	sc := a.next(t)
	start := time.Now()
	if err := sc.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Close took %v", d)
	}
	if _, _, err := c.Read(ctxWait(t)); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("client read after Close: %v, want status 1000", err)
	}
	if _, err := sc.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
}

// The listener's Close leaves accepted WebSockets open.
func TestWebSocketListenerClose(t *testing.T) {
	l, _ := listen(t, Config{Type: TypeWS})
	a := accepting(t, l)
	c, _, _, err := wsConnect(t, l, wsDial{})
	if err != nil {
		t.Fatal(err)
	}
	sc := a.next(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-a.errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Accept still blocked after Close")
	}
	wsExchange(t, c, sc)
}

func TestWebSocketOrigin(t *testing.T) {
	l, _ := listen(t, Config{Type: TypeWS, OriginPatterns: []string{"app.example.com"}})
	a := accepting(t, l)
	h := http.Header{"Origin": {"https://evil.example"}}
	if _, resp, _, err := wsConnect(t, l, wsDial{header: h}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: %v, want 403", err)
	}
	h = http.Header{"Origin": {"https://app.example.com"}}
	if _, _, _, err := wsConnect(t, l, wsDial{header: h}); err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	a.next(t)
}

func TestWebSocketForwardedFor(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name string
		from []netip.Prefix
		xff  []string
		want string // "" for the HTTP client's address
	}{
		{"trusted peer", trusted, []string{"203.0.113.7"}, "203.0.113.7:0"},
		{"chain of trusted proxies", trusted, []string{"203.0.113.7, 10.1.2.3"}, "203.0.113.7:0"},
		{"spoofed entry left of the client", trusted, []string{"198.51.100.1, 203.0.113.7", "10.1.2.3"}, "203.0.113.7:0"},
		{"entry with port", trusted, []string{"[2001:db8::7]:4711"}, "[2001:db8::7]:0"},
		{"garbage", trusted, []string{"not-an-ip"}, ""},
		{"untrusted peer", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, []string{"203.0.113.7"}, ""},
		{"no ProxyFrom", nil, []string{"203.0.113.7"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := listen(t, Config{Type: TypeWS, ProxyFrom: tt.from})
			a := accepting(t, l)
			_, _, local, err := wsConnect(t, l, wsDial{header: http.Header{"X-Forwarded-For": tt.xff}})
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = local.String()
			}
			if got := a.next(t).RemoteAddr().String(); got != want {
				t.Errorf("RemoteAddr %s, want %s", got, want)
			}
		})
	}
}

func TestWebSocketBehindProxyProtocol(t *testing.T) {
	l, _ := listen(t, Config{Type: TypeWS, ProxyProtocol: true, ProxyFrom: trustLocal})
	a := accepting(t, l)
	c, _, _, err := wsConnect(t, l, wsDial{prefix: []byte("PROXY TCP4 198.51.100.30 203.0.113.1 4000 80\r\n")})
	if err != nil {
		t.Fatal(err)
	}
	sc := a.next(t)
	if got := sc.RemoteAddr().String(); got != "198.51.100.30:4000" {
		t.Errorf("RemoteAddr %s, want 198.51.100.30:4000", got)
	}
	wsExchange(t, c, sc)
}

func TestWSS(t *testing.T) {
	s := newTLSSetup(t, TypeWSS, ClientAuthRequired)
	l, sink := listen(t, s.cfg)
	a := accepting(t, l)
	cert := s.ca.issue(t, leafOpts{cn: "browser-1", client: true, dns: []string{"browser-1.example"}})

	c, resp, local, err := wsConnect(t, l, wsDial{tls: s.client(cert.cert)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "mqtt" {
		t.Errorf("subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	sc := a.next(t)
	if got := sc.RemoteAddr().String(); got != local.String() {
		t.Errorf("RemoteAddr %s, want %s", got, local)
	}
	cn, sans, ok := PeerIdentity(sc)
	if !ok || cn != "browser-1" || len(sans) != 1 || sans[0] != "browser-1.example" {
		t.Errorf("PeerIdentity = %q %q %v", cn, sans, ok)
	}
	wsExchange(t, c, sc)
	t.Run("text frame closes", func(t *testing.T) { wsTextCloses(t, c, sc) })

	t.Run("client without certificate", func(t *testing.T) {
		if _, _, _, err := wsConnect(t, l, wsDial{tls: s.client()}); err == nil {
			t.Fatal("wss without client certificate accepted")
		}
		sink.waitFor(t, "connection refused before MQTT", "certificate")
		a.none(t, 20*time.Millisecond)
	})
}

func TestWSSServerOnly(t *testing.T) {
	s := newTLSSetup(t, TypeWSS, ClientAuthNone)
	l, _ := listen(t, s.cfg)
	a := accepting(t, l)
	c, _, _, err := wsConnect(t, l, wsDial{tls: s.client()})
	if err != nil {
		t.Fatal(err)
	}
	sc := a.next(t)
	if _, _, ok := PeerIdentity(sc); ok {
		t.Error("PeerIdentity ok without client certificate")
	}
	wsExchange(t, c, sc)
}
