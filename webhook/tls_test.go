package webhook_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/gannet-mqtt/gannet/internal/gannettest"
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
	ca := gannettest.NewPKI(t, "test CA")
	p := &testPKI{pool: ca.Pool, caFile: ca.CAFile, serverCert: ca.Server(t, "server")}
	p.clientCert, p.clientKey = ca.Write(t, "client", ca.Client(t, "gannet-client"))
	return p
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
