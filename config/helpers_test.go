package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
)

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustLoad loads content as a file named name and fails on any error.
func mustLoad(t *testing.T, name, content string) *File {
	t.Helper()
	f, err := Parse(name, []byte(content))
	if err != nil {
		t.Fatalf("%s:\n%v", name, err)
	}
	return f
}

// errorLines loads content and returns its error, one string per problem.
func errorLines(t *testing.T, name, content string) []string {
	t.Helper()
	_, err := Parse(name, []byte(content))
	return lines(t, err)
}

func lines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T) is not an Errors", err, err)
	}
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// sameLines fails unless got and want hold the same lines, in order.
func sameLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// plain returns a copy of f without its record of sources, for comparing
// values.
func plain(f *File) File {
	c := *f
	c.src = nil
	return c
}

// equalFiles fails with the differing keys unless a and b hold the same
// values.
func equalFiles(t *testing.T, got, want *File) {
	t.Helper()
	g, w := plain(got), plain(want)
	if reflect.DeepEqual(g, w) {
		return
	}
	gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
	for _, l := range fileLeaves {
		a, b := gv.FieldByIndex(l.index).Interface(), wv.FieldByIndex(l.index).Interface()
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s = %#v, want %#v", l.path, a, b)
		}
	}
	if !reflect.DeepEqual(g.Listeners, w.Listeners) {
		t.Errorf("listeners:\n got %#v\nwant %#v", g.Listeners, w.Listeners)
	}
}

// testCert writes a self-signed certificate (usable as its own CA) and its
// key into dir.
func testCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gannet test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return certFile, keyFile
}

// testPasswordFile writes a password file with alice:wonderland, hashed
// with cheap parameters.
func testPasswordFile(t *testing.T, dir string) string {
	t.Helper()
	p := auth.Argon2Params{Memory: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h, err := p.Hash([]byte("wonderland"))
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "passwd", "alice:"+h+"\n")
}
