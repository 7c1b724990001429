package listener

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// tlsSetup is a CA, a server certificate it signed, and a listener config
// using them.
type tlsSetup struct {
	ca     *testCA
	server leaf
	cfg    Config
}

func newTLSSetup(t *testing.T, typ Type, auth ClientAuth) *tlsSetup {
	t.Helper()
	ca := newCA(t, "Gannet Test CA")
	s := &tlsSetup{ca: ca, server: ca.issue(t, leafOpts{cn: "server-1"})}
	var bundle *testCA
	if auth != ClientAuthNone {
		bundle = ca
	}
	s.cfg = Config{Type: typ, TLS: tlsFiles(t, t.TempDir(), s.server, bundle)}
	s.cfg.TLS.ClientAuth = auth
	return s
}

// client returns a client config that trusts the setup's CA.
func (s *tlsSetup) client(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: s.ca.pool, ServerName: "localhost", Certificates: certs}
}

func TestTLSAccepted(t *testing.T) {
	s := newTLSSetup(t, TypeTLS, ClientAuthNone)
	l, _ := listen(t, s.cfg)
	a := accepting(t, l)

	c, err := dialTLS(t, l.Addr().String(), s.client(), nil)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	sc := a.next(t)
	if _, ok := sc.(*tls.Conn); !ok {
		t.Fatalf("Accept returned %T, want *tls.Conn", sc)
	}
	roundTrip(t, c, sc)
	if got, want := sc.RemoteAddr().String(), c.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want %s", got, want)
	}
	if cn, sans, ok := PeerIdentity(sc); ok {
		t.Errorf("PeerIdentity = %q %q true for a client without certificate", cn, sans)
	}
	if v := c.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Errorf("negotiated %s", tls.VersionName(v))
	}
	if l.Type() != TypeTLS || l.Name() != "tls://127.0.0.1:0" {
		t.Errorf("Type, Name = %q, %q", l.Type(), l.Name())
	}
}

func TestMutualTLSRequired(t *testing.T) {
	s := newTLSSetup(t, TypeTLS, ClientAuthRequired)
	l, sink := listen(t, s.cfg)
	a := accepting(t, l)
	addr := l.Addr().String()

	good := s.ca.issue(t, leafOpts{cn: "sensor-17", client: true, dns: []string{"sensor-17.example"},
		emails: []string{"ops@example.com"}, uris: []string{"spiffe://example/sensor/17"}})

	// accepted checks that a good client is accepted next, which also shows
	// that a refused one before it never reached Accept.
	accepted := func(t *testing.T) {
		t.Helper()
		c, err := dialTLS(t, addr, s.client(good.cert), nil)
		if err != nil {
			t.Fatalf("good client: handshake: %v", err)
		}
		sc := a.next(t)
		roundTrip(t, c, sc)
		cn, sans, ok := PeerIdentity(sc)
		if !ok || cn != "sensor-17" {
			t.Fatalf("PeerIdentity = %q, %v; want sensor-17, true", cn, ok)
		}
		want := []string{"sensor-17.example", "ops@example.com", "spiffe://example/sensor/17"}
		if !slices.Equal(sans, want) {
			t.Errorf("SANs %q, want %q", sans, want)
		}
	}
	refused := func(t *testing.T, cfg *tls.Config, logged string) {
		t.Helper()
		if c, err := dialTLS(t, addr, cfg, nil); err == nil {
			expectClosed(t, c)
		}
		sink.waitFor(t, "connection refused before MQTT", logged)
		accepted(t)
	}

	t.Run("good certificate", accepted)
	t.Run("certificate from another CA", func(t *testing.T) {
		other := newCA(t, "Other CA").issue(t, leafOpts{cn: "intruder", client: true})
		cfg := s.client()
		// Send it although the server names other CAs (crypto/tls would
		// otherwise send nothing).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &other.cert, nil }
		refused(t, cfg, "unknown authority")
	})
	t.Run("expired certificate", func(t *testing.T) {
		old := s.ca.issue(t, leafOpts{cn: "expired", client: true,
			notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
		refused(t, s.client(old.cert), "expired")
	})
	t.Run("no certificate", func(t *testing.T) {
		refused(t, s.client(), "client didn't provide a certificate")
	})
	t.Run("TLS 1.1 client", func(t *testing.T) {
		cfg := s.client(good.cert)
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		refused(t, cfg, "unsupported versions")
	})
}

func TestMutualTLSOptional(t *testing.T) {
	s := newTLSSetup(t, TypeTLS, ClientAuthOptional)
	l, _ := listen(t, s.cfg)
	a := accepting(t, l)

	c, err := dialTLS(t, l.Addr().String(), s.client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := a.next(t)
	roundTrip(t, c, sc)
	if _, _, ok := PeerIdentity(sc); ok {
		t.Error("PeerIdentity ok for a client without certificate")
	}

	cert := s.ca.issue(t, leafOpts{cn: "with-cert", client: true})
	c, err = dialTLS(t, l.Addr().String(), s.client(cert.cert), nil)
	if err != nil {
		t.Fatal(err)
	}
	sc = a.next(t)
	roundTrip(t, c, sc)
	if cn, sans, ok := PeerIdentity(sc); !ok || cn != "with-cert" || sans != nil {
		t.Errorf("PeerIdentity = %q %q %v; want with-cert [] true", cn, sans, ok)
	}
}

func TestTLSMinVersion13(t *testing.T) {
	s := newTLSSetup(t, TypeTLS, ClientAuthNone)
	s.cfg.TLS.MinVersion = "1.3"
	l, sink := listen(t, s.cfg)
	a := accepting(t, l)
	cfg := s.client()
	cfg.MaxVersion = tls.VersionTLS12
	if c, err := dialTLS(t, l.Addr().String(), cfg, nil); err == nil {
		expectClosed(t, c)
	}
	sink.waitFor(t, "unsupported versions")
	a.none(t, 50*time.Millisecond)
}

// A client that connects and says nothing holds up neither Accept nor
// other clients' handshakes, and is dropped after HandshakeTimeout.
func TestSlowHandshake(t *testing.T) {
	s := newTLSSetup(t, TypeTLS, ClientAuthNone)
	s.cfg.HandshakeTimeout = 300 * time.Millisecond
	l, sink := listen(t, s.cfg)
	a := accepting(t, l)

	silent := dial(t, "tcp", l.Addr().String())
	start := time.Now()
	c, err := dialTLS(t, l.Addr().String(), s.client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, a.next(t))
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("second client took %v: waited for the silent one?", d)
	}
	expectClosed(t, silent)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("silent client closed after %v, before HandshakeTimeout", d)
	}
	sink.waitFor(t, "connection refused before MQTT", "timeout")
}

// Close aborts connections in their handshake and ends Accept.
func TestCloseDuringHandshake(t *testing.T) {
	s := newTLSSetup(t, TypeTLS, ClientAuthNone)
	l, _ := listen(t, s.cfg)
	a := accepting(t, l)
	silent := dial(t, "tcp", l.Addr().String())
	time.Sleep(20 * time.Millisecond) // let the stage take it
	done := make(chan error, 1)
	go func() { done <- l.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Close hangs")
	}
	expectClosed(t, silent)
	select {
	case err := <-a.errc:
		if !strings.Contains(err.Error(), net.ErrClosed.Error()) {
			t.Errorf("Accept after Close: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Accept still blocked after Close")
	}
}

// PeerIdentity and RemoteAddr through a PROXY header in front of TLS.
func TestTLSBehindProxy(t *testing.T) {
	s := newTLSSetup(t, TypeTLS, ClientAuthRequired)
	s.cfg.ProxyProtocol = true
	s.cfg.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	l, _ := listen(t, s.cfg)
	a := accepting(t, l)
	cert := s.ca.issue(t, leafOpts{cn: "behind-proxy", client: true})

	c, err := dialTLS(t, l.Addr().String(), s.client(cert.cert), []byte("PROXY TCP4 198.51.100.22 203.0.113.1 35000 8883\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	sc := a.next(t)
	roundTrip(t, c, sc)
	if got := sc.RemoteAddr().String(); got != "198.51.100.22:35000" {
		t.Errorf("RemoteAddr %s, want 198.51.100.22:35000", got)
	}
	if got := sc.LocalAddr().String(); got != "203.0.113.1:8883" {
		t.Errorf("LocalAddr %s, want 203.0.113.1:8883", got)
	}
	if cn, _, ok := PeerIdentity(sc); !ok || cn != "behind-proxy" {
		t.Errorf("PeerIdentity = %q %v", cn, ok)
	}
}

// Reload: new handshakes get the new certificate, established connections
// keep working, and invalid files leave the loaded ones in place.
func TestReload(t *testing.T) {
	s := newTLSSetup(t, TypeTLS, ClientAuthRequired)
	l, sink := listen(t, s.cfg)
	a := accepting(t, l)
	addr := l.Addr().String()
	client := s.ca.issue(t, leafOpts{cn: "client", client: true})

	serverCN := func(t *testing.T, cfg *tls.Config) string {
		t.Helper()
		c, err := dialTLS(t, addr, cfg, nil)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		roundTrip(t, c, a.next(t))
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := serverCN(t, s.client(client.cert)); cn != "server-1" {
		t.Fatalf("before reload: server %q", cn)
	}
	established, err := dialTLS(t, addr, s.client(client.cert), nil)
	if err != nil {
		t.Fatal(err)
	}
	establishedServer := a.next(t)

	// A new server certificate.
	next := s.ca.issue(t, leafOpts{cn: "server-2"})
	writeFile(t, s.cfg.TLS.CertFile, next.certPEM)
	writeFile(t, s.cfg.TLS.KeyFile, next.keyPEM)
	if err := l.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if cn := serverCN(t, s.client(client.cert)); cn != "server-2" {
		t.Fatalf("after reload: server %q, want server-2", cn)
	}
	roundTrip(t, established, establishedServer)

	// Invalid files: an error, and the loaded certificate stays.
	t.Run("invalid certificate", func(t *testing.T) {
		writeFile(t, s.cfg.TLS.CertFile, []byte("not a certificate"))
		if err := l.Reload(); err == nil {
			t.Fatal("Reload of an invalid certificate: no error")
		}
		if cn := serverCN(t, s.client(client.cert)); cn != "server-2" {
			t.Fatalf("server %q, want server-2 kept", cn)
		}
	})
	t.Run("key of another certificate", func(t *testing.T) {
		writeFile(t, s.cfg.TLS.CertFile, next.certPEM)
		writeFile(t, s.cfg.TLS.KeyFile, s.server.keyPEM)
		if err := l.Reload(); err == nil {
			t.Fatal("Reload with a mismatched key: no error")
		}
		if cn := serverCN(t, s.client(client.cert)); cn != "server-2" {
			t.Fatalf("server %q, want server-2 kept", cn)
		}
		writeFile(t, s.cfg.TLS.KeyFile, next.keyPEM)
	})
	t.Run("missing CA file", func(t *testing.T) {
		ca := s.cfg.TLS.CAFile
		if err := os.Rename(ca, ca+".away"); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(ca+".away", ca)
		if err := l.Reload(); err == nil {
			t.Fatal("Reload without CA file: no error")
		}
		if cn := serverCN(t, s.client(client.cert)); cn != "server-2" {
			t.Fatalf("server %q, want server-2 kept", cn)
		}
	})

	// A new CA: clients of the old one are refused from now on.
	t.Run("new CA", func(t *testing.T) {
		ca2 := newCA(t, "Second CA")
		writeFile(t, s.cfg.TLS.CAFile, ca2.pem)
		if err := l.Reload(); err != nil {
			t.Fatal(err)
		}
		old := s.client()
		old.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &client.cert, nil }
		if c, err := dialTLS(t, addr, old, nil); err == nil {
			expectClosed(t, c)
		}
		sink.waitFor(t, "unknown authority")
		client2 := ca2.issue(t, leafOpts{cn: "client-2", client: true})
		c, err := dialTLS(t, addr, s.client(client2.cert), nil)
		if err != nil {
			t.Fatal(err)
		}
		sc := a.next(t)
		roundTrip(t, c, sc)
		if cn, _, _ := PeerIdentity(sc); cn != "client-2" {
			t.Errorf("accepted %q, want client-2", cn)
		}
	})
}

// Reload on a listener without TLS does nothing.
func TestReloadPlain(t *testing.T) {
	l, _ := listen(t, Config{Type: TypeTCP})
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
}

func TestListenBadTLSFiles(t *testing.T) {
	dir := t.TempDir()
	_, err := Listen(Config{Type: TypeTLS, Address: "127.0.0.1:0",
		TLS: TLSConfig{CertFile: dir + "/missing.crt", KeyFile: dir + "/missing.key"}})
	if err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Fatalf("Listen with missing files: %v", err)
	}
	s := newTLSSetup(t, TypeTLS, ClientAuthRequired)
	writeFile(t, s.cfg.TLS.CAFile, []byte("no PEM here"))
	s.cfg.Address = "127.0.0.1:0"
	if _, err := Listen(s.cfg); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("Listen with an empty CA bundle: %v", err)
	}
}

// certIdentity refuses an unverified chain even with peer certificates.
func TestCertIdentityNeedsVerifiedChain(t *testing.T) {
	ca := newCA(t, "CA")
	l := ca.issue(t, leafOpts{cn: "x", client: true})
	st := tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{l.cert.Leaf}}
	if _, _, ok := certIdentity(st); ok {
		t.Fatal("identity from an unverified certificate")
	}
	st.VerifiedChains = [][]*x509.Certificate{{l.cert.Leaf, ca.cert}}
	if cn, _, ok := certIdentity(st); !ok || cn != "x" {
		t.Fatalf("certIdentity = %q %v", cn, ok)
	}
}
