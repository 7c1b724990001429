package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca := gannettest.NewPKI(t, "gannet test")
	return ca.Server(t, "gannet test"), ca.Pool
}

// serveBroker runs a default broker on l until the test ends.
func serveBroker(t testing.TB, l net.Listener) {
	t.Helper()
	o := broker.DefaultOptions()
	o.Logger = testLogger()
	gannettest.RunBrokerOn(t, o, l)
}

// roundTrip subscribes and publishes through c.
func roundTrip(t *testing.T, c *client.Client) {
	t.Helper()
	in := newInbox()
	subscribe(t, c, in, "rt", 2)
	for qos := byte(0); qos <= 2; qos++ {
		publish(t, c, "rt", strings.Repeat("x", 70000), client.PublishOptions{QoS: qos}) // several frames and reads
		if m := in.next(t); len(m.Payload) != 70000 {
			t.Fatalf("payload of %d bytes", len(m.Payload))
		}
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveBroker(t, tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}}))
	for _, scheme := range []string{"mqtts", "ssl", "tls"} {
		o := options(scheme+"://"+l.Addr().String(), packet.V5)
		o.TLSConfig = &tls.Config{RootCAs: pool}
		roundTrip(t, dial(t, o))
	}
	// Without the root the handshake fails, and says why.
	_, err = client.Dial(testCtx(t), options("mqtts://"+l.Addr().String(), packet.V5))
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("err = %v, want an unknown authority", err)
	}
}

// wsListener is a net.Listener fed by an HTTP handler that accepts
// WebSocket connections with the "mqtt" subprotocol.
type wsListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func (l *wsListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		return
	}
	if ws.Subprotocol() != "mqtt" {
		ws.Close(websocket.StatusPolicyViolation, "mqtt subprotocol required")
		return
	}
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	select {
	case l.conns <- nc:
	case <-l.done:
		nc.Close()
	}
}

func (l *wsListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.conns:
		return nc, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *wsListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *wsListener) Addr() net.Addr { return l.addr }

// wsBroker serves a broker over WebSocket on an httptest server, with TLS
// when secure is set; it returns the server.
func wsBroker(t *testing.T, secure bool) *httptest.Server {
	t.Helper()
	wl := &wsListener{conns: make(chan net.Conn), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("/mqtt", wl)
	var hs *httptest.Server
	if secure {
		hs = httptest.NewTLSServer(mux)
	} else {
		hs = httptest.NewServer(mux)
	}
	wl.addr = hs.Listener.Addr()
	serveBroker(t, wl)
	t.Cleanup(hs.Close)
	return hs
}

func TestWebSocket(t *testing.T) {
	t.Parallel()
	hs := wsBroker(t, false)
	for _, v := range versions {
		o := options("ws://"+hs.Listener.Addr().String(), v.v) // default path /mqtt
		roundTrip(t, dial(t, o))
	}
	// A wrong path is refused by the HTTP server.
	_, err := client.Dial(testCtx(t), options("ws://"+hs.Listener.Addr().String()+"/other", packet.V5))
	if err == nil {
		t.Fatal("dial to a path without WebSocket succeeded")
	}
}

func TestWebSocketTLS(t *testing.T) {
	t.Parallel()
	hs := wsBroker(t, true)
	o := options("wss://"+hs.Listener.Addr().String()+"/mqtt", packet.V311)
	o.TLSConfig = hs.Client().Transport.(*http.Transport).TLSClientConfig
	roundTrip(t, dial(t, o))
}

// TestWebSocketSubprotocol: a server that does not choose "mqtt" is
// refused [MQTT-6.0.0-4].
func TestWebSocketSubprotocol(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ws.Read(r.Context())
		ws.CloseNow()
	}))
	defer hs.Close()
	_, err := client.Dial(testCtx(t), options("ws://"+hs.Listener.Addr().String(), packet.V5))
	if err == nil || !strings.Contains(err.Error(), "subprotocol") {
		t.Fatalf("err = %v, want a subprotocol refusal", err)
	}
}

// TestURLCredentials: user information in the server URL authenticates.
func TestURLCredentials(t *testing.T) {
	fs := newFakeServer(t)
	o := options("mqtt://alice:s3cret@"+strings.TrimPrefix(fs.url(), "mqtt://"), packet.V311)
	c := dialFake(t, fs, o, &packet.Connack{})
	if !c.connect.UsernameFlag || c.connect.Username != "alice" || string(c.connect.Password) != "s3cret" {
		t.Fatalf("CONNECT user %q password %q", c.connect.Username, c.connect.Password)
	}
}
