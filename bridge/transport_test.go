package bridge_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/listener"
	"github.com/gannet-mqtt/gannet/packet"
)

// testPKI writes a CA and a server certificate for names (IP addresses or
// DNS names) and returns the file names.
func testPKI(t *testing.T, names ...string) (ca, cert, key string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", der), write("server.key", "EC PRIVATE KEY", kb)
}

// serveOn serves g's broker on one more listener of type typ.
func serveOn(t *testing.T, g *gannet, typ listener.Type, tc listener.TLSConfig) string {
	t.Helper()
	l, err := listener.Listen(listener.Config{Type: typ, Address: "127.0.0.1:0", TLS: tc, Logger: testLogger()})
	if err != nil {
		t.Fatalf("listen %s: %v", typ, err)
	}
	t.Cleanup(func() { l.Close() })
	go g.Srv.Serve(l)
	return l.Addr().String()
}

// TestBridgeTransports bridges over TLS (with the CA, and with insecure
// for a certificate of another name), WebSocket and secure WebSocket.
func TestBridgeTransports(t *testing.T) {
	ca, cert, key := testPKI(t, "127.0.0.1")
	caOther, certOther, keyOther := testPKI(t, "elsewhere.example")
	tc := listener.TLSConfig{CertFile: cert, KeyFile: key}
	for _, c := range []struct {
		name      string
		typ       listener.Type
		tls       listener.TLSConfig
		transport string
		btls      bridge.TLS
	}{
		{"tls", listener.TypeTLS, tc, "tls", bridge.TLS{CAFile: ca}},
		{"tls insecure", listener.TypeTLS, listener.TLSConfig{CertFile: certOther, KeyFile: keyOther}, "tls", bridge.TLS{CAFile: caOther, Insecure: true}},
		{"tls 1.3", listener.TypeTLS, tc, "tls", bridge.TLS{CAFile: ca, MinVersion: "tlsv1.3"}},
		{"ws", listener.TypeWS, listener.TLSConfig{}, "ws", bridge.TLS{}},
		{"wss", listener.TypeWSS, tc, "wss", bridge.TLS{CAFile: ca}},
	} {
		t.Run(c.name, func(t *testing.T) {
			local, remote := startGannet(t, false), startGannet(t, false)
			addr := serveOn(t, remote, c.typ, c.tls)
			cfg := testBridge("t", packet.V5, []bridge.Rule{{Pattern: "x/#", Direction: bridge.Both, QoS: 1}}, addr)
			cfg.Transport, cfg.TLS = c.transport, c.btls
			m := local.bridges(cfg)
			waitState(t, m, "t", bridge.StateConnected)
			rsub := subscribe(t, remote.Addr, "x/#", 1)
			publish(t, local.Addr, "x/1", c.name, 1, false)
			if got := rsub.next(); got.Payload != c.name {
				t.Fatalf("got %+v", got)
			}
		})
	}
	// Without insecure, a certificate for another name is refused.
	local, remote := startGannet(t, false), startGannet(t, false)
	addr := serveOn(t, remote, listener.TypeTLS, listener.TLSConfig{CertFile: certOther, KeyFile: keyOther})
	cfg := testBridge("t", packet.V5, []bridge.Rule{{Pattern: "x/#", QoS: 1}}, addr)
	cfg.Transport, cfg.TLS = "tls", bridge.TLS{CAFile: caOther}
	m := local.bridges(cfg)
	time.Sleep(quiet)
	if in := bridgeInfo(m, "t"); in.State == bridge.StateConnected || in.Connects != 0 {
		t.Fatalf("%+v: connected to a server whose certificate names another host", in)
	}
}
