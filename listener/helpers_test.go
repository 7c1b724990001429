package listener

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// wait bounds every blocking step of the tests.
const wait = 5 * time.Second

// ---- certificates ----

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	pool *x509.CertPool
}

var serial struct {
	sync.Mutex
	n int64
}

func nextSerial() *big.Int {
	serial.Lock()
	defer serial.Unlock()
	serial.n++
	return big.NewInt(serial.n)
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pool: pool}
}

type leafOpts struct {
	cn        string
	client    bool // client auth usage, else server
	dns       []string
	emails    []string
	uris      []string
	notBefore time.Time
	notAfter  time.Time
}

type leaf struct {
	cert            tls.Certificate
	certPEM, keyPEM []byte
}

func (ca *testCA) issue(t *testing.T, o leafOpts) leaf {
	t.Helper()
	key := newKey(t)
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:   nextSerial(),
		Subject:        pkix.Name{CommonName: o.cn},
		NotBefore:      o.notBefore,
		NotAfter:       o.notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		DNSNames:       o.dns,
		EmailAddresses: o.emails,
	}
	for _, s := range o.uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	if o.client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = append(tmpl.DNSNames, "localhost")
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return leaf{cert: cert, certPEM: certPEM, keyPEM: keyPEM}
}

// tlsFiles writes a server certificate and key, and a CA bundle when ca is
// not nil, and returns the TLS settings naming them.
func tlsFiles(t *testing.T, dir string, server leaf, ca *testCA) TLSConfig {
	t.Helper()
	c := TLSConfig{CertFile: filepath.Join(dir, "server.crt"), KeyFile: filepath.Join(dir, "server.key")}
	writeFile(t, c.CertFile, server.certPEM)
	writeFile(t, c.KeyFile, server.keyPEM)
	if ca != nil {
		c.CAFile = filepath.Join(dir, "ca.crt")
		writeFile(t, c.CAFile, ca.pem)
	}
	return c
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// ---- logs ----

// logSink is a slog.Handler that keeps every record as one line of text.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	s.mu.Lock()
	s.lines = append(s.lines, b.String())
	s.mu.Unlock()
	return nil
}

// waitFor waits for a log line containing every one of parts.
func (s *logSink) waitFor(t *testing.T, parts ...string) string {
	t.Helper()
	end := time.Now().Add(wait)
	for time.Now().Before(end) {
		s.mu.Lock()
		for _, l := range s.lines {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				s.mu.Unlock()
				return l
			}
		}
		s.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Fatalf("no log line with %q; got:\n%s", parts, strings.Join(s.lines, "\n"))
	return ""
}

// ---- listeners ----

// listen opens a listener that logs into the returned sink and closes at
// the end of the test.
func listen(t *testing.T, cfg Config) (*Listener, *logSink) {
	t.Helper()
	sink := &logSink{}
	cfg.Logger = slog.New(sink)
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	l, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, sink
}

// acceptor accepts on its own goroutine, so that tests can wait for a
// connection with a timeout.
type acceptor struct {
	conns chan net.Conn
	errc  chan error
}

func accepting(t *testing.T, l net.Listener) *acceptor {
	t.Helper()
	a := &acceptor{conns: make(chan net.Conn, 16), errc: make(chan error, 1)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				a.errc <- err
				return
			}
			a.conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for {
			select {
			case c := <-a.conns:
				c.Close()
			default:
				return
			}
		}
	})
	return a
}

// next returns the next accepted connection, with deadlines of wait.
func (a *acceptor) next(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-a.conns:
		c.SetDeadline(time.Now().Add(wait))
		t.Cleanup(func() { c.Close() })
		return c
	case err := <-a.errc:
		t.Fatalf("Accept: %v", err)
	case <-time.After(wait):
		t.Fatal("Accept: nothing within", wait)
	}
	return nil
}

// none checks that nothing is accepted within d.
func (a *acceptor) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-a.conns:
		c.Close()
		t.Fatalf("Accept returned a connection from %v; want none", c.RemoteAddr())
	case <-time.After(d):
	}
}

// dial connects to addr with a deadline of wait on the connection.
func dial(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(wait))
	t.Cleanup(func() { c.Close() })
	return c
}

// dialTLS connects and runs the client handshake. The error is the
// handshake's, or, in TLS 1.3 where the server checks the client's
// certificate after the client has finished, the first read's.
func dialTLS(t *testing.T, addr string, cfg *tls.Config, prefix []byte) (*tls.Conn, error) {
	t.Helper()
	raw := dial(t, "tcp", addr)
	if len(prefix) > 0 {
		if _, err := raw.Write(prefix); err != nil {
			t.Fatal(err)
		}
	}
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return nil, err
	}
	return c, nil
}

// expectClosed checks that the server closes c without sending anything.
func expectClosed(t *testing.T, c net.Conn) error {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	var b [64]byte
	n, err := c.Read(b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not closed within %v", wait)
	}
	if err == nil {
		t.Fatalf("read %q from a connection that should be closed", b[:n])
	}
	return err
}

// roundTrip writes to one side and reads it back from the other, both ways.
func roundTrip(t *testing.T, client, server net.Conn) {
	t.Helper()
	pipe(t, client, server, []byte("\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02id"))
	pipe(t, server, client, []byte("\x20\x02\x00\x00"))
}

func pipe(t *testing.T, from, to net.Conn, msg []byte) {
	t.Helper()
	if _, err := from.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(to, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != string(msg) {
		t.Fatalf("read %q, want %q", got, msg)
	}
}
