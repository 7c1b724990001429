package listener

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sync/atomic"
)

// tlsStore holds the TLS configuration of a listener. Every handshake takes
// the current one through tls.Config.GetConfigForClient, so Reload changes
// what later handshakes use without touching established connections.
type tlsStore struct {
	cfg     TLSConfig
	alpn    []string    // "http/1.1" for wss: coder/websocket upgrades HTTP/1.1 only
	server  *tls.Config // handed to tls.Server; points at current
	current atomic.Pointer[tls.Config]
}

func newTLSStore(cfg TLSConfig, alpn []string) (*tlsStore, error) {
	s := &tlsStore{cfg: cfg, alpn: alpn}
	c, err := s.load()
	if err != nil {
		return nil, err
	}
	s.current.Store(c)
	s.server = &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.current.Load(), nil
		},
	}
	return s, nil
}

// reload re-reads the files; on error the current configuration stays.
func (s *tlsStore) reload() error {
	c, err := s.load()
	if err != nil {
		return err
	}
	s.current.Store(c)
	return nil
}

// load reads the certificate, key and CA files into a new tls.Config.
func (s *tlsStore) load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("listener: loading certificate %s and key %s: %w", s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	minVersion, err := tlsVersion(s.cfg.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("listener: TLS minimum version: %w", err)
	}
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   minVersion,
		NextProtos:   s.alpn,
	}
	switch s.cfg.ClientAuth {
	case ClientAuthOptional:
		c.ClientAuth = tls.VerifyClientCertIfGiven
	case ClientAuthRequired:
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	var caPEM []byte
	if s.cfg.CAFile != "" {
		pem, err := os.ReadFile(s.cfg.CAFile)
		caPEM = pem
		if err != nil {
			return nil, fmt.Errorf("listener: reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("listener: CA file %s holds no PEM certificate", s.cfg.CAFile)
		}
		c.ClientCAs = pool
		if len(cert.Certificate) == 1 {
			completeChain(&cert, pem)
			c.Certificates[0] = cert
		}
	}
	if s.cfg.CRLFile != "" {
		crls, err := loadCRLs(s.cfg.CRLFile, caPEM)
		if err != nil {
			return nil, err
		}
		c.VerifyPeerCertificate = crls.verify
	}
	// Fresh session ticket keys per load, so that no session issued under
	// the old certificate or CA is resumed after a reload (resumption
	// restores the client certificate from the ticket instead of verifying
	// it again). Keys set this way are not rotated by crypto/tls; they
	// change at each Reload.
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("listener: session ticket key: %w", err)
	}
	c.SetSessionTicketKeys([][32]byte{key})
	return c, nil
}

// PeerIdentity returns the subject common name and subject alternative
// names (DNS names, email addresses, URIs, IP addresses, in that order) of
// the client certificate of c, when c carries one that was verified against
// the listener's CAFile. ok is false for plain connections, for clients
// without a certificate (ClientAuth none or optional) and for connections
// that have not finished their handshake (never the case for conns from
// Accept).
//
// It sees through the conns this package returns: tls (*tls.Conn), wss,
// and PROXY-wrapped ones. For a tcp or ws listener behind a TLS-terminating
// proxy, it returns the common name a trusted proxy reported in a PROXY v2
// PP2_TYPE_SSL TLV when the proxy says it verified the certificate (sans is
// then nil). A caller that wraps conns itself should give its wrapper a
// NetConn() net.Conn method, as *tls.Conn has, for PeerIdentity to follow.
func PeerIdentity(c net.Conn) (commonName string, sans []string, ok bool) {
	for range 16 { // layers are few; the bound guards against a cycle
		switch v := c.(type) {
		case *tls.Conn:
			return certIdentity(v.ConnectionState())
		case *proxyConn:
			if cn, ok := v.tls.verifiedCN(); ok {
				return cn, nil, true
			}
			c = v.Conn
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return "", nil, false
		}
		if c == nil {
			break
		}
	}
	return "", nil, false
}

// PeerSubject returns the full subject of the verified client certificate
// of c, in RFC 2253 form ("CN=alice,O=Example,C=NL"), as Mosquitto's
// use_subject_as_username does. ok is false where PeerIdentity's is.
func PeerSubject(c net.Conn) (string, bool) {
	for range 16 {
		switch v := c.(type) {
		case *tls.Conn:
			st := v.ConnectionState()
			if !st.HandshakeComplete || len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
				return "", false
			}
			return st.PeerCertificates[0].Subject.String(), true
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return "", false
		}
		if c == nil {
			break
		}
	}
	return "", false
}

// certIdentity returns the identity of a verified client certificate.
func certIdentity(st tls.ConnectionState) (string, []string, bool) {
	if !st.HandshakeComplete || len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return "", nil, false
	}
	leaf := st.PeerCertificates[0]
	n := len(leaf.DNSNames) + len(leaf.EmailAddresses) + len(leaf.URIs) + len(leaf.IPAddresses)
	var sans []string
	if n > 0 {
		sans = make([]string, 0, n)
		sans = append(sans, leaf.DNSNames...)
		sans = append(sans, leaf.EmailAddresses...)
		for _, u := range leaf.URIs {
			sans = append(sans, u.String())
		}
		for _, ip := range leaf.IPAddresses {
			sans = append(sans, ip.String())
		}
	}
	return leaf.Subject.CommonName, sans, true
}
