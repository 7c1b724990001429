package listener

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"
)

// Type is the kind of a listener.
type Type string

// The listener types.
const (
	TypeTCP  Type = "tcp"  // MQTT over TCP
	TypeTLS  Type = "tls"  // MQTT over TLS over TCP
	TypeWS   Type = "ws"   // MQTT over WebSocket over TCP
	TypeWSS  Type = "wss"  // MQTT over WebSocket over TLS over TCP
	TypeUnix Type = "unix" // MQTT over a Unix domain stream socket
)

// isTLS reports whether the type terminates TLS.
func (t Type) isTLS() bool { return t == TypeTLS || t == TypeWSS }

// isWS reports whether the type speaks WebSocket.
func (t Type) isWS() bool { return t == TypeWS || t == TypeWSS }

// ClientAuth says whether a TLS listener asks clients for a certificate.
type ClientAuth string

// The client authentication policies.
const (
	// ClientAuthNone asks for no client certificate (the default).
	ClientAuthNone ClientAuth = "none"
	// ClientAuthOptional verifies a client certificate against CAFile when
	// the client sends one, and accepts clients that send none.
	ClientAuthOptional ClientAuth = "optional"
	// ClientAuthRequired refuses clients without a certificate that
	// verifies against CAFile.
	ClientAuthRequired ClientAuth = "required"
)

// Defaults applied by Listen to zero fields.
const (
	DefaultPath                = "/mqtt"
	AnyPath                    = "*" // Config.Path that upgrades every path
	DefaultSocketMode          = fs.FileMode(0o660)
	DefaultHandshakeTimeout    = 10 * time.Second
	DefaultFirstByteTimeout    = 3 * time.Second
	DefaultMaxPendingPerSource = 64
	DefaultMinVersion          = "1.2"
)

// TLSConfig is the TLS part of a tls or wss listener.
type TLSConfig struct {
	// CertFile and KeyFile are the PEM server certificate (chain first
	// leaf) and its private key. Required.
	CertFile string
	KeyFile  string
	// CAFile is a PEM bundle of the CAs that client certificates must
	// chain to. Required when ClientAuth is optional or required. It also
	// completes the chain sent to clients when CertFile holds only the
	// leaf (as Mosquitto's cafile does), with any ClientAuth.
	CAFile string
	// CRLFile is a PEM bundle of certificate revocation lists, issued by
	// CAs of CAFile: a client certificate they revoke fails the handshake.
	// Re-read by Reload.
	CRLFile string
	// ClientAuth is none (""), optional or required.
	ClientAuth ClientAuth
	// MinVersion is the lowest TLS version accepted: "1.2" ("") or "1.3".
	MinVersion string
}

// Config describes one listener. The zero values of the optional fields
// take the defaults above; DefaultConfig spells them out.
type Config struct {
	// Name identifies the listener in logs; default "<type>://<address>".
	Name string
	// Type is tcp, tls, ws, wss or unix.
	Type Type
	// Address is host:port for tcp, tls, ws and wss, and a socket path for
	// unix (on Linux, "@name" is an abstract socket: no file).
	Address string

	// TLS is used by tls and wss listeners only.
	TLS TLSConfig

	// Path is the HTTP path that ws and wss listeners upgrade; default
	// "/mqtt". Other paths answer 404. AnyPath ("*") upgrades every path,
	// as Mosquitto's websockets listeners do.
	Path string
	// OriginPatterns lists the browser origins (host patterns as in
	// path.Match, for example "*.example.com") allowed to open ws and wss
	// connections besides the request's own host. Requests without an
	// Origin header (non-browser clients) are always allowed. ["*"] allows
	// every origin: do not combine that with client certificates, which a
	// browser sends on behalf of any page.
	OriginPatterns []string

	// ProxyProtocol requires a PROXY protocol header (v1 or v2) on every
	// connection from a source in ProxyFrom, and refuses a header from any
	// other source (tcp, tls, ws, wss).
	ProxyProtocol bool
	// ProxyFrom lists the trusted proxies: the sources whose PROXY headers
	// (with ProxyProtocol) and X-Forwarded-For headers (ws, wss) are
	// believed.
	ProxyFrom []netip.Prefix

	// SocketMode is the permission of a unix socket file; default 0660.
	SocketMode fs.FileMode

	// HandshakeTimeout bounds, per connection, the PROXY header and the TLS
	// handshake together, and separately the WebSocket upgrade request;
	// default 10s.
	HandshakeTimeout time.Duration

	// FirstByteTimeout bounds, on tls and wss listeners and those with
	// ProxyProtocol, the wait for a connection's first byte: a client
	// sends its PROXY header or TLS ClientHello as soon as it connects,
	// and a silent socket must not hold a handshake slot for the whole
	// HandshakeTimeout. Default 3s; never longer than HandshakeTimeout.
	FirstByteTimeout time.Duration

	// MaxPendingPerSource caps the connections from one source address
	// (an IPv6 /64) in their PROXY header or TLS handshake at once; a new
	// connection past it replaces that source's oldest pending one.
	// Trusted proxies (ProxyFrom, with ProxyProtocol) have no cap. Default
	// 64; negative: no cap.
	MaxPendingPerSource int

	// Logger receives what happens to connections that never reach Accept
	// (failed handshakes, refused PROXY headers); default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a config for a listener of the given type on addr,
// with every default written out.
func DefaultConfig(typ Type, addr string) Config {
	c := Config{Type: typ, Address: addr}
	c.setDefaults()
	return c
}

// setDefaults fills zero optional fields.
func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = string(c.Type) + "://" + c.Address
	}
	if c.Type.isWS() && c.Path == "" {
		c.Path = DefaultPath
	}
	if c.Type == TypeUnix && c.SocketMode == 0 {
		c.SocketMode = DefaultSocketMode
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.FirstByteTimeout == 0 {
		c.FirstByteTimeout = DefaultFirstByteTimeout
	}
	if c.MaxPendingPerSource == 0 {
		c.MaxPendingPerSource = DefaultMaxPendingPerSource
	}
	if c.Type.isTLS() {
		if c.TLS.ClientAuth == "" {
			c.TLS.ClientAuth = ClientAuthNone
		}
		if c.TLS.MinVersion == "" {
			c.TLS.MinVersion = DefaultMinVersion
		}
	}
}

// FieldError is one invalid field of a Config. Validate joins them with
// errors.Join; the config package can walk them (Unwrap() []error) to point
// at the line each field came from.
type FieldError struct {
	Listener string // Config.Name, or "<type>://<address>"
	Field    string // Go field path, for example "TLS.CertFile"
	Msg      string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("listener %q: %s: %s", e.Listener, e.Field, e.Msg)
}

// Validate reports every invalid field at once. It does not touch the
// file system: Listen reports unreadable certificate files.
func (c Config) Validate() error {
	name := c.Name
	if name == "" {
		name = string(c.Type) + "://" + c.Address
	}
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Listener: name, Field: field, Msg: fmt.Sprintf(format, a...)})
	}

	switch c.Type {
	case TypeTCP, TypeTLS, TypeWS, TypeWSS:
		if c.Address == "" {
			bad("Address", "empty; want host:port")
		} else if _, port, err := net.SplitHostPort(c.Address); err != nil {
			bad("Address", "%q is not host:port: %v", c.Address, err)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			bad("Address", "port %q is not a number from 0 to 65535", port)
		}
	case TypeUnix:
		if c.Address == "" {
			bad("Address", "empty; want a socket path")
		} else if len(c.Address) > 107 {
			bad("Address", "socket path of %d bytes is longer than 107", len(c.Address))
		}
	case "":
		bad("Type", "empty; want tcp, tls, ws, wss or unix")
	default:
		bad("Type", "%q is not tcp, tls, ws, wss or unix", c.Type)
	}

	t := c.TLS
	if c.Type.isTLS() {
		if t.CertFile == "" {
			bad("TLS.CertFile", "empty; a %s listener needs a certificate", c.Type)
		}
		if t.KeyFile == "" {
			bad("TLS.KeyFile", "empty; a %s listener needs a private key", c.Type)
		}
		switch t.ClientAuth {
		case "", ClientAuthNone:
			if t.CRLFile != "" {
				bad("TLS.CRLFile", "set, but ClientAuth is none: no client certificate is asked for")
			}
		case ClientAuthOptional, ClientAuthRequired:
			if t.CAFile == "" {
				bad("TLS.CAFile", "empty; ClientAuth %s needs the CAs that sign client certificates", t.ClientAuth)
			}
		default:
			bad("TLS.ClientAuth", "%q is not none, optional or required", t.ClientAuth)
		}
		if _, err := tlsVersion(t.MinVersion); err != nil {
			bad("TLS.MinVersion", "%v", err)
		}
	} else if t != (TLSConfig{}) && c.Type != "" {
		bad("TLS", "set on a %s listener, which does not use TLS", c.Type)
	}

	if c.Type.isWS() {
		if c.Path != "" && c.Path != AnyPath && !strings.HasPrefix(c.Path, "/") {
			bad("Path", "%q does not start with /", c.Path)
		}
		for _, p := range c.OriginPatterns {
			if _, err := path.Match(p, ""); err != nil {
				bad("OriginPatterns", "%q: %v", p, err)
			}
		}
	} else if c.Type != "" {
		if c.Path != "" {
			bad("Path", "set on a %s listener; only ws and wss listeners have a path", c.Type)
		}
		if len(c.OriginPatterns) > 0 {
			bad("OriginPatterns", "set on a %s listener; only ws and wss listeners check origins", c.Type)
		}
	}

	for i, p := range c.ProxyFrom {
		if !p.IsValid() {
			bad(fmt.Sprintf("ProxyFrom[%d]", i), "invalid prefix")
		} else if p.Addr().Zone() != "" {
			bad(fmt.Sprintf("ProxyFrom[%d]", i), "%s has a zone", p)
		}
	}
	switch {
	case c.Type == TypeUnix && c.ProxyProtocol:
		bad("ProxyProtocol", "not available on unix listeners")
	case c.Type == TypeUnix && len(c.ProxyFrom) > 0:
		bad("ProxyFrom", "not available on unix listeners")
	case c.ProxyProtocol && len(c.ProxyFrom) == 0:
		bad("ProxyFrom", "empty; ProxyProtocol needs the addresses of the trusted proxies")
	case !c.ProxyProtocol && len(c.ProxyFrom) > 0 && (c.Type == TypeTCP || c.Type == TypeTLS):
		bad("ProxyFrom", "set without ProxyProtocol; on a %s listener it has no effect", c.Type)
	}

	if c.Type == TypeUnix {
		if c.SocketMode&^fs.ModePerm != 0 {
			bad("SocketMode", "%v has bits beyond the permission bits 0777", c.SocketMode)
		}
	} else if c.SocketMode != 0 && c.Type != "" {
		bad("SocketMode", "set on a %s listener; only unix listeners have a socket file", c.Type)
	}
	if c.HandshakeTimeout < 0 {
		bad("HandshakeTimeout", "%v is negative", c.HandshakeTimeout)
	}
	if c.FirstByteTimeout < 0 {
		bad("FirstByteTimeout", "%v is negative", c.FirstByteTimeout)
	}
	return errors.Join(errs...)
}

// tlsVersion maps a MinVersion string to its crypto/tls constant.
func tlsVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%q is not 1.2 or 1.3", s)
}
