package webhook_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/webhook"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	pool                  *x509.CertPool
	caFile                string
	serverCert            tls.Certificate
	clientCert, clientKey string
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)

	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ip net.IP) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
		}
		if ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	sDER, sKey := issue(2, "server", x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	p.serverCert = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey}
	cDER, cKey := issue(3, "gannet-client", x509.ExtKeyUsageClientAuth, nil)
	p.clientCert = writePEM(t, dir, "client.pem", "CERTIFICATE", cDER)
	kDER, _ := x509.MarshalECPrivateKey(cKey)
	p.clientKey = writePEM(t, dir, "client.key", "EC PRIVATE KEY", kDER)
	return p
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// An https receiver that requires a client certificate from its CA gets
// the events from a hook configured with the CA and the client
// certificate; a hook without the certificate is refused and counts the
// events as failed.
func TestTLSReceiverWithClientCertificate(t *testing.T) {
	pki := newPKI(t)
	rc := &receiver{t: t}
	srv := httptest.NewUnstartedServer(rc)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pki.serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.pool,
	}
	srv.StartTLS()
	defer srv.Close()

	good := hookFor(srv.URL)
	good.Name = "good"
	good.Events = []string{"client.connected"}
	good.CAFile, good.CertFile, good.KeyFile = pki.caFile, pki.clientCert, pki.clientKey
	nocert := hookFor(srv.URL)
	nocert.Name = "nocert"
	nocert.Events = []string{"client.connected"}
	nocert.CAFile = pki.caFile
	nocert.RetryMaxAttempts = 2

	b, eng := runBroker(t, nil, good, nocert)
	pahoClient(t, b.Addr, "tls-one", nil)
	eventually(t, "the event over mutual TLS", func() bool { return len(rc.snapshot()) == 1 })
	rc.mu.Lock()
	cn := rc.certCN
	rc.mu.Unlock()
	if cn != "gannet-client" {
		t.Errorf("receiver saw client certificate %q, want gannet-client", cn)
	}
	eventually(t, "the hook without a client certificate fails", func() bool { return eng.Stats()[1].Failed == 1 })
	if st := eng.Stats(); st[0].Sent != 1 || st[1].Sent != 0 {
		t.Errorf("stats: %+v", st)
	}
}

func TestTLSConfigBadFiles(t *testing.T) {
	h := webhook.DefaultHook()
	h.URL = "https://127.0.0.1:1/"
	h.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := h.TLSConfig(); err == nil {
		t.Error("a missing CA file was accepted")
	}
}
