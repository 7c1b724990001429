package listener

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// completeChain appends to a certificate that holds only its leaf the
// intermediate CAs of caPEM it chains through, as OpenSSL (and so
// Mosquitto) builds the chain from cafile. The root is not sent. A leaf
// that does not chain to a root of caPEM is left alone.
func completeChain(cert *tls.Certificate, caPEM []byte) {
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range parseCerts(caPEM) {
		if bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil {
			roots.AddCert(c)
		} else {
			inters.AddCert(c)
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inters,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		CurrentTime:   leaf.NotBefore.Add(time.Second), // completing, not judging validity
	})
	if err != nil || len(chains) == 0 {
		return
	}
	chain := chains[0]
	for _, c := range chain[1 : len(chain)-1] { // without leaf and root
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	cert.Leaf = leaf
}

// parseCerts returns the certificates of a PEM bundle, skipping what does
// not parse.
func parseCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

// crlSet is the revocation lists of a listener.
type crlSet struct {
	revoked map[string]map[string]bool // issuer (raw subject) -> serial -> revoked
}

// loadCRLs reads PEM (or DER) revocation lists from path. Each must be
// signed by a CA of caPEM (the listener's CAFile).
func loadCRLs(path string, caPEM []byte) (*crlSet, error) {
	cas := parseCerts(caPEM)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("listener: reading CRL file: %w", err)
	}
	var ders [][]byte
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "X509 CRL" {
			ders = append(ders, b.Bytes)
		}
	}
	if len(ders) == 0 && len(bytes.TrimSpace(data)) > 0 && !bytes.Contains(data, []byte("-----BEGIN")) {
		ders = append(ders, data) // DER
	}
	if len(ders) == 0 {
		return nil, fmt.Errorf("listener: CRL file %s holds no X509 CRL", path)
	}
	set := &crlSet{revoked: make(map[string]map[string]bool)}
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("listener: CRL file %s, list %d: %w", path, i+1, err)
		}
		signed := false
		for _, ca := range cas {
			if bytes.Equal(ca.RawSubject, crl.RawIssuer) && crl.CheckSignatureFrom(ca) == nil {
				signed = true
				break
			}
		}
		if !signed {
			return nil, fmt.Errorf("listener: CRL file %s, list %d: not signed by a CA of the CA file", path, i+1)
		}
		issuer := string(crl.RawIssuer)
		m := set.revoked[issuer]
		if m == nil {
			m = make(map[string]bool)
			set.revoked[issuer] = m
		}
		for _, e := range crl.RevokedCertificateEntries {
			m[e.SerialNumber.String()] = true
		}
	}
	return set, nil
}

var errRevoked = errors.New("client certificate revoked (CRL)")

// verify refuses a verified chain whose certificates a CRL revokes. It runs
// after crypto/tls verified the chain against ClientCAs.
func (s *crlSet) verify(_ [][]byte, chains [][]*x509.Certificate) error {
	for _, chain := range chains {
		for _, c := range chain {
			if s.revoked[string(c.RawIssuer)][c.SerialNumber.String()] {
				return fmt.Errorf("%w: serial %s, subject %s", errRevoked, c.SerialNumber, c.Subject)
			}
		}
	}
	return nil
}
