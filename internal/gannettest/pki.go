package gannettest

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
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// PKI is a test certificate authority (ECDSA P-256, valid for an hour
// either side of now) whose certificate is in Pool and, as PEM, in CAFile.
type PKI struct {
	Dir    string // a temporary directory for the PEM files, removed with the test
	CA     *x509.Certificate
	Pool   *x509.CertPool
	CAFile string
	key    *ecdsa.PrivateKey
	serial atomic.Int64
}

// NewPKI creates a CA named cn.
func NewPKI(t testing.TB, cn string) *PKI {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse CA certificate: %v", err)
	}
	p := &PKI{Dir: t.TempDir(), CA: ca, Pool: x509.NewCertPool(), key: key}
	p.serial.Store(1)
	p.Pool.AddCert(ca)
	p.CAFile = WritePEM(t, p.Dir, "ca.pem", "CERTIFICATE", der)
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

// Server issues a server certificate named cn for the address 127.0.0.1.
func (p *PKI) Server(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	return p.issue(t, cn, x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
}

// Client issues a client certificate named cn.
func (p *PKI) Client(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	return p.issue(t, cn, x509.ExtKeyUsageClientAuth, nil)
}

func (p *PKI) issue(t testing.TB, cn string, usage x509.ExtKeyUsage, ip net.IP) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, &key.PublicKey, p.key)
	if err != nil {
		t.Fatalf("issue certificate %q: %v", cn, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Write writes c's certificate and key as PEM files name.pem and name.key
// in p.Dir, as a listener's configuration names them.
func (p *PKI) Write(t testing.TB, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	key, ok := c.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("write %s: the key is a %T, not one this PKI issued", name, c.PrivateKey)
	}
	kDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	return WritePEM(t, p.Dir, name+".pem", "CERTIFICATE", c.Certificate[0]),
		WritePEM(t, p.Dir, name+".key", "EC PRIVATE KEY", kDER)
}

// WritePEM writes der as one PEM block of type typ to dir/name.
func WritePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
