package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// tlsConfig builds the TLS configuration of a bridge's remote connection.
func tlsConfig(t *TLS) (*tls.Config, error) {
	tc := &tls.Config{ServerName: t.ServerName, NextProtos: t.ALPN, MinVersion: tls.VersionTLS12}
	switch t.MinVersion {
	case "tlsv1.3", "1.3":
		tc.MinVersion = tls.VersionTLS13
	}
	if t.CAFile != "" || t.CAPath != "" {
		pool := x509.NewCertPool()
		files := []string{}
		if t.CAFile != "" {
			files = append(files, t.CAFile)
		}
		if t.CAPath != "" {
			m, _ := filepath.Glob(filepath.Join(t.CAPath, "*"))
			files = append(files, m...)
		}
		n := 0
		for _, f := range files {
			pem, err := os.ReadFile(f)
			if err != nil {
				if f == t.CAFile {
					return nil, fmt.Errorf("bridge: CA file: %w", err)
				}
				continue
			}
			if pool.AppendCertsFromPEM(pem) {
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("bridge: no CA certificate found in %q %q", t.CAFile, t.CAPath)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("bridge: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if t.Insecure {
		// Mosquitto's bridge_insecure: the chain is checked, the name not.
		roots := tc.RootCAs
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("bridge: the remote sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return tc, nil
}
