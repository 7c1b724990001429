package broker_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/listener"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written to files as a listener reads them.
type testPKI struct {
	dir                   string
	caPool                *x509.CertPool
	serverCert, serverKey string
	caFile                string
	client                tls.Certificate
}

func newPKI(t *testing.T, clientCN string) *testPKI {
	t.Helper()
	ca := gannettest.NewPKI(t, "gannet test CA")
	pki := &testPKI{dir: ca.Dir, caPool: ca.Pool, caFile: ca.CAFile, client: ca.Client(t, clientCN)}
	pki.serverCert, pki.serverKey = ca.Write(t, "server", ca.Server(t, "127.0.0.1"))
	return pki
}

// serveOn starts a broker on a listener of the listener package.
func serveOn(t *testing.T, opts broker.Options, cfg listener.Config, lo broker.ListenerOptions) (*broker.Server, *listener.Listener) {
	t.Helper()
	l, err := listener.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := broker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeListener(l, lo)
	t.Cleanup(func() { srv.Close() })
	return srv, l
}

// Mutual TLS: the certificate's common name becomes the user name, and the
// ACL applies to it; a client without a certificate is refused.
func TestTLSClientCertificateIdentity(t *testing.T) {
	pki := newPKI(t, "alice")
	acl, err := auth.ParseACL("tls.acl", strings.NewReader("user alice\ntopic readwrite alice/#\n"))
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.Authorizer = acl
	opts.PeerIdentity = func(c net.Conn) (string, bool) {
		cn, _, ok := listener.PeerIdentity(c)
		return cn, ok
	}
	cfg := listener.DefaultConfig(listener.TypeTLS, "127.0.0.1:0")
	cfg.TLS = listener.TLSConfig{CertFile: pki.serverCert, KeyFile: pki.serverKey, CAFile: pki.caFile, ClientAuth: listener.ClientAuthRequired}
	_, l := serveOn(t, opts, cfg, broker.ListenerOptions{Name: "tls", IdentityAsUsername: true})

	tlsConf := &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.client}, MinVersion: tls.VersionTLS12}
	c := pahoClient(t, l.Addr().String(), "alice-tls", 4, func(o *mqtt.ClientOptions) {
		o.Servers = nil
		o.AddBroker("ssl://" + l.Addr().String())
		o.SetTLSConfig(tlsConf)
	})
	msgs := pahoMessages(t, c, "alice/#", 1, 4)
	wait(t, "publish", c.Publish("alice/hello", 1, false, "over tls"))
	if m := nextMessage(t, msgs); string(m.Payload()) != "over tls" {
		t.Fatalf("got %q", m.Payload())
	}
	tok := c.Subscribe("bob/#", 1, nil)
	tok.WaitTimeout(waitFor)
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		if code := st.Result()["bob/#"]; code != 0x80 {
			t.Errorf("subscribe outside the ACL granted %#x, want 0x80", code)
		}
	}

	noCert := &tls.Config{RootCAs: pki.caPool, MinVersion: tls.VersionTLS12}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: waitFor}, "tcp", l.Addr().String(), noCert)
	if err == nil {
		conn.SetDeadline(time.Now().Add(waitFor))
		_, err = conn.Read(make([]byte, 1)) // TLS 1.3 reports the refusal on first read
		conn.Close()
	}
	if err == nil {
		t.Error("a client without a certificate got through")
	}
}

// WebSocket with paho (3.1.1) on /mqtt.
func TestWebSocketPaho(t *testing.T) {
	cfg := listener.DefaultConfig(listener.TypeWS, "127.0.0.1:0")
	_, l := serveOn(t, testOptions(), cfg, broker.ListenerOptions{Name: "ws"})
	c := pahoClient(t, l.Addr().String(), "ws-paho", 4, func(o *mqtt.ClientOptions) {
		o.Servers = nil
		o.AddBroker("ws://" + l.Addr().String() + "/mqtt")
	})
	msgs := pahoMessages(t, c, "ws/#", 2, 4)
	wait(t, "publish", c.Publish("ws/a", 2, false, "over websocket"))
	if m := nextMessage(t, msgs); string(m.Payload()) != "over websocket" {
		t.Fatalf("got %q", m.Payload())
	}
}

// WebSocket with MQTT.js, the npm mqtt package, at 3.1.1 and 5.0: an
// independent client implementation over a real browser-style transport.
func TestWebSocketMQTTJS(t *testing.T) {
	node, err := exec.LookPath("node")
	script := filepath.Join("..", "testdata", "node", "roundtrip.js")
	mod := filepath.Join("..", "testdata", "node", "node_modules", "mqtt")
	if _, statErr := os.Stat(mod); err != nil || statErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node or the npm mqtt package is missing (npm install --prefix testdata/node): %v %v", err, statErr)
		}
		t.Skip("node or testdata/node/node_modules/mqtt missing; run npm install --prefix testdata/node")
	}
	cfg := listener.DefaultConfig(listener.TypeWS, "127.0.0.1:0")
	_, l := serveOn(t, testOptions(), cfg, broker.ListenerOptions{Name: "ws"})
	for _, version := range []string{"4", "5"} {
		out, err := exec.Command(node, script, "ws://"+l.Addr().String()+"/mqtt", version).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "GOT node/") || !strings.Contains(string(out), "hello from mqtt.js") {
			t.Errorf("MQTT.js protocol %s: %v\n%s", version, err, out)
		}
	}
}
