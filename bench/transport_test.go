package bench

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
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/listener"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// to dir and returns their paths and the certificate as a root pool.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// A conn run dials over TLS, WebSocket and WebSocket over TLS, and reports
// the broker's memory per connection over each; the report names the
// transport. A plain TCP run against the TLS listener and a TLS run that
// does not trust the certificate connect nothing.
func TestConnTransports(t *testing.T) {
	certFile, keyFile, roots := selfSigned(t, t.TempDir())
	opts := broker.DefaultOptions()
	opts.SysInterval = 100 * time.Millisecond
	opts.Logger = slog.New(slog.DiscardHandler)
	srv, err := broker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	addrs := map[listener.Type]string{}
	for _, typ := range []listener.Type{listener.TypeTLS, listener.TypeWS, listener.TypeWSS} {
		lc := listener.DefaultConfig(typ, "127.0.0.1:0")
		if typ != listener.TypeWS {
			lc.TLS.CertFile, lc.TLS.KeyFile = certFile, keyFile
		}
		lc.Logger = opts.Logger
		l, err := listener.Listen(lc)
		if err != nil {
			t.Fatal(err)
		}
		go srv.ServeListener(l, broker.ListenerOptions{})
		addrs[typ] = l.Addr().String()
	}

	for _, tc := range []struct {
		transport Transport
		addr      string
	}{
		{TLS, addrs[listener.TypeTLS]},
		{WS, addrs[listener.TypeWS]},
		{WSS, addrs[listener.TypeWSS]},
	} {
		t.Run(string(tc.transport), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Scenario, cfg.Addr, cfg.Clients, cfg.Duration = Conn, tc.addr, 30, 300*time.Millisecond
			cfg.Transport = tc.transport
			cfg.TLSConfig = &tls.Config{RootCAs: roots}
			cfg.MemoryTopic = "$SYS/broker/heap/current"
			cfg.ClientIDPrefix = "tr-" + string(tc.transport) + "-"
			r, err := Run(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Connections.Established != 30 || r.Connections.Failed != 0 || len(r.Errors) > 0 {
				t.Fatalf("connections %+v, errors %v", r.Connections, r.Errors)
			}
			if r.Memory == nil || r.Memory.Before == 0 || r.Memory.After == 0 {
				t.Fatalf("memory %+v", r.Memory)
			}
			want := string(tc.transport) + "://" + tc.addr
			if !strings.HasPrefix(r.Broker, want) {
				t.Fatalf("report names the broker %q, want %q...", r.Broker, want)
			}
			var text strings.Builder
			if err := r.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), want) || !strings.Contains(text.String(), "per connection") {
				t.Fatalf("text report:\n%s", text.String())
			}
		})
	}

	// Plain TCP to the TLS listener, and TLS without trusting the
	// certificate, establish nothing.
	for name, cfg := range map[string]Config{
		"tcp to tls": {Transport: TCP},
		"untrusted":  {Transport: TLS, TLSConfig: &tls.Config{}},
	} {
		c := DefaultConfig()
		c.Scenario, c.Addr, c.Clients, c.Duration = Conn, addrs[listener.TypeTLS], 2, 50*time.Millisecond
		c.ConnectTimeout = 2 * time.Second
		c.Transport, c.TLSConfig = cfg.Transport, cfg.TLSConfig
		r, err := Run(context.Background(), c, nil)
		if !errors.Is(err, ErrNoConnection) || r == nil || r.Connections.Established != 0 {
			t.Fatalf("%s: err %v, report %+v", name, err, r)
		}
	}
}

func TestValidateTransport(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Transport = "quic"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "transport") {
		t.Fatalf("Validate: %v", err)
	}
}
