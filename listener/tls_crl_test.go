package listener

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"testing"
	"time"
)

// Issue 11, TLS with Mosquitto's meaning: the chain sent to clients is
// completed from CAFile when CertFile holds only the leaf (with any
// ClientAuth), and CRLFile revokes client certificates, re-read on Reload.

// newSigningCA is newCA with CRL signing, issued by parent (nil: self-signed).
func newSigningCA(t *testing.T, cn string, parent *testCA) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	issuer, signer := tmpl, any(key)
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
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

// crl returns a PEM CRL from ca revoking the given certificates.
func (ca *testCA) crl(t *testing.T, n int64, revoked ...tls.Certificate) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: leaf.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(n),
		ThisUpdate:                time.Now().Add(-time.Hour),
		NextUpdate:                time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// A server certificate file with only the leaf, signed by an intermediate
// CA: the listener sends the intermediate from CAFile, so a client that
// trusts only the root verifies the chain, as with Mosquitto (OpenSSL
// builds the chain from cafile). CAFile serves this without client
// certificates (ClientAuth none).
func TestTLSChainCompletedFromCAFile(t *testing.T) {
	root := newSigningCA(t, "Root", nil)
	inter := newSigningCA(t, "Intermediate", root)
	server := inter.issue(t, leafOpts{cn: "server"})
	dir := t.TempDir()
	cfg := Config{Type: TypeTLS, Address: "127.0.0.1:0", TLS: tlsFiles(t, dir, server, nil)}
	client := &tls.Config{RootCAs: root.pool, ServerName: "localhost"}

	// Without CAFile the chain stops at the leaf: the client cannot verify.
	l, _ := listen(t, cfg)
	accepting(t, l)
	if _, err := dialTLS(t, l.Addr().String(), client, nil); err == nil {
		t.Fatal("a leaf-only chain verified without its intermediate: the test proves nothing")
	}

	cfg.TLS.CAFile = filepath.Join(dir, "ca.pem")
	writeFile(t, cfg.TLS.CAFile, append(append([]byte{}, inter.pem...), root.pem...))
	if err := cfg.Validate(); err != nil {
		t.Fatalf("CAFile with ClientAuth none refused: %v", err)
	}
	l, _ = listen(t, cfg)
	a := accepting(t, l)
	c, err := dialTLS(t, l.Addr().String(), client, nil)
	if err != nil {
		t.Fatalf("handshake with the chain completed from CAFile: %v", err)
	}
	sc := a.next(t)
	roundTrip(t, c, sc)
	if n := len(c.ConnectionState().PeerCertificates); n != 2 {
		t.Errorf("server sent %d certificates, want leaf and intermediate", n)
	}
}

// CRLFile: a revoked client certificate fails the handshake; the CRL is
// re-read by Reload (SIGHUP), so a newly revoked one fails from then on.
func TestTLSCRLRevokesClientCertificates(t *testing.T) {
	ca := newSigningCA(t, "Clients CA", nil)
	server := ca.issue(t, leafOpts{cn: "server"})
	good := ca.issue(t, leafOpts{cn: "good", client: true})
	bad := ca.issue(t, leafOpts{cn: "bad", client: true})
	dir := t.TempDir()
	cfg := Config{Type: TypeTLS, TLS: tlsFiles(t, dir, server, ca)}
	cfg.TLS.ClientAuth = ClientAuthRequired
	cfg.TLS.CRLFile = filepath.Join(dir, "crl.pem")
	writeFile(t, cfg.TLS.CRLFile, ca.crl(t, 1, bad.cert))
	l, _ := listen(t, cfg)
	a := accepting(t, l)
	client := func(c tls.Certificate) *tls.Config {
		// TLS 1.2: the server's verdict on the client certificate ends
		// the handshake (in 1.3 it would come with the first read).
		return &tls.Config{RootCAs: ca.pool, ServerName: "localhost", Certificates: []tls.Certificate{c}, MaxVersion: tls.VersionTLS12}
	}

	c, err := dialTLS(t, l.Addr().String(), client(good.cert), nil)
	if err != nil {
		t.Fatalf("unrevoked certificate refused: %v", err)
	}
	roundTrip(t, c, a.next(t))
	if _, err := dialTLS(t, l.Addr().String(), client(bad.cert), nil); err == nil {
		t.Fatal("revoked certificate accepted")
	}

	writeFile(t, cfg.TLS.CRLFile, ca.crl(t, 2, bad.cert, good.cert))
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := dialTLS(t, l.Addr().String(), client(good.cert), nil); err == nil {
		t.Fatal("certificate revoked by the reloaded CRL accepted")
	}

	// A CRL from another CA is refused at load: it would revoke nothing.
	other := newSigningCA(t, "Other", nil)
	writeFile(t, cfg.TLS.CRLFile, other.crl(t, 3))
	if err := l.Reload(); err == nil {
		t.Error("Reload accepted a CRL not signed by a CA of the CA file")
	}
}

// PeerSubject gives the verified client certificate's full subject.
func TestPeerSubject(t *testing.T) {
	ca := newSigningCA(t, "Clients CA", nil)
	server := ca.issue(t, leafOpts{cn: "server"})
	cfg := Config{Type: TypeTLS, TLS: tlsFiles(t, t.TempDir(), server, ca)}
	cfg.TLS.ClientAuth = ClientAuthOptional
	l, _ := listen(t, cfg)
	a := accepting(t, l)
	cl := ca.issue(t, leafOpts{cn: "alice", client: true})
	c, err := dialTLS(t, l.Addr().String(), &tls.Config{RootCAs: ca.pool, ServerName: "localhost", Certificates: []tls.Certificate{cl.cert}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := a.next(t)
	roundTrip(t, c, sc)
	if s, ok := PeerSubject(sc); !ok || s != "CN=alice" {
		t.Errorf("PeerSubject = %q %v, want CN=alice", s, ok)
	}
}
