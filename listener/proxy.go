package listener

// The PROXY protocol, versions 1 and 2, receiver side, after the HAProxy
// specification "The PROXY protocol, Versions 1 & 2" (proxy-protocol.txt,
// revision 2020/03/05). Section numbers below are that document's.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"net/netip"
	"strings"
	"unicode/utf8"
)

var (
	// proxySigV1 starts a human-readable header (2.1); proxySigV2 a binary
	// one (2.2).
	proxySigV1 = []byte("PROXY")
	proxySigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

const (
	proxyV1MaxLine = 107            // longest v1 line, CRLF included (2.1)
	proxyV2Fixed   = 16             // signature, ver_cmd, fam, len (2.2)
	proxyV2Max     = 16 + 0xFFFF    // the address length field is 16 bits
	proxyV2Local   = 0x0            // LOCAL command (2.2)
	proxyV2Proxy   = 0x1            // PROXY command (2.2)
	proxyUnixPath  = 108            // AF_UNIX address size (2.2)
	pp2TypeCRC32C  = 0x03           // 2.2.3
	pp2TypeSSL     = 0x20           // 2.2.6
	pp2SubtypeCN   = 0x22           // 2.2.6
	pp2ClientSSL   = 0x01           // 2.2.6
	pp2ClientCert  = 0x02 | 0x04    // PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS
	proxyReadFirst = 232            // fits v1, v2 IPv6 with small TLVs, v2 unix
	errV2Prefix    = "binary (v2) " // message prefix for v2 errors
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	errProxyNeedMore = errors.New("listener: PROXY header incomplete")
	errProxyNone     = errors.New("listener: no PROXY header")
)

// proxyHeader is a parsed header. Nil addresses mean "use the connection's
// own": a v1 UNKNOWN line, a v2 LOCAL command, or a v2 family Gannet does
// not serve, which falls back to UNSPEC (2.2).
type proxyHeader struct {
	src, dst net.Addr
	tls      *proxyTLS
}

// proxyTLS is what a TLS-terminating proxy said about its client in a
// PP2_TYPE_SSL TLV (2.2.6).
type proxyTLS struct {
	client byte   // PP2_CLIENT_* bits
	verify uint32 // zero: the client certificate was verified
	cn     string // PP2_SUBTYPE_SSL_CN
}

// verifiedCN returns the client certificate's common name when the proxy
// reports a certificate that it verified.
func (t *proxyTLS) verifiedCN() (string, bool) {
	if t == nil || t.client&pp2ClientSSL == 0 || t.client&pp2ClientCert == 0 || t.verify != 0 || t.cn == "" {
		return "", false
	}
	return t.cn, true
}

func invalidProxy(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrProxyHeaderInvalid, fmt.Sprintf(format, a...))
}

// proxySignature says which header b starts with: 1 or 2, 0 for none, -1
// when b is too short to tell. It follows the version detection of 2.2,
// extended to decide on the first byte that differs, so a connection
// without a header is never held back waiting for more bytes than it sends.
func proxySignature(b []byte) int {
	switch {
	case sharesPrefix(b, proxySigV2):
		if len(b) < len(proxySigV2) {
			return -1
		}
		return 2
	case sharesPrefix(b, proxySigV1):
		if len(b) < len(proxySigV1) {
			return -1
		}
		return 1
	}
	return 0
}

// sharesPrefix reports whether b and sig agree on their common length.
func sharesPrefix(b, sig []byte) bool {
	n := min(len(b), len(sig))
	return bytes.Equal(b[:n], sig[:n])
}

// parseProxyHeader parses the header at the start of b and returns it with
// its length. It returns errProxyNeedMore when b holds a partial header,
// errProxyNone when b starts with something else, and an error wrapping
// ErrProxyHeaderInvalid for a header that breaks the specification, which
// must abort the connection (2.1: "Any sequence which does not exactly
// match the protocol must be discarded and cause the receiver to abort").
func parseProxyHeader(b []byte) (proxyHeader, int, error) {
	switch proxySignature(b) {
	case -1:
		return proxyHeader{}, 0, errProxyNeedMore
	case 1:
		return parseProxyV1(b)
	case 2:
		return parseProxyV2(b)
	}
	return proxyHeader{}, 0, errProxyNone
}

// parseProxyV1 parses a human-readable header (2.1):
//
//	"PROXY" SP ( "TCP4" | "TCP6" ) SP src SP dst SP sport SP dport CRLF
//	"PROXY" SP "UNKNOWN" [anything] CRLF
func parseProxyV1(b []byte) (proxyHeader, int, error) {
	// The CRLF must come within the first 107 bytes, and a lone CR or LF
	// is not a line end.
	end := -1
	for i := 0; i < len(b) && i < proxyV1MaxLine; i++ {
		if b[i] == '\n' {
			return proxyHeader{}, 0, invalidProxy("text (v1) line has LF without CR at byte %d", i)
		}
		if b[i] != '\r' {
			continue
		}
		if i+1 == len(b) {
			break // the LF may still come
		}
		if b[i+1] != '\n' || i+1 >= proxyV1MaxLine {
			return proxyHeader{}, 0, invalidProxy("text (v1) line has CR without LF at byte %d", i)
		}
		end = i
		break
	}
	if end < 0 {
		if len(b) >= proxyV1MaxLine {
			return proxyHeader{}, 0, invalidProxy("text (v1) line has no CRLF in its first %d bytes", proxyV1MaxLine)
		}
		return proxyHeader{}, 0, errProxyNeedMore
	}
	n := end + 2
	// Fields are separated by exactly one space: an empty field is a
	// doubled, leading or trailing space.
	f := strings.Split(string(b[:end]), " ")
	if f[0] != "PROXY" || len(f) < 2 {
		return proxyHeader{}, 0, invalidProxy("text (v1) line %q does not start with \"PROXY \"", b[:end])
	}
	switch f[1] {
	case "UNKNOWN":
		// The receiver ignores the rest of the line and uses the real
		// connection's addresses.
		return proxyHeader{}, n, nil
	case "TCP4", "TCP6":
	default:
		return proxyHeader{}, 0, invalidProxy("text (v1) protocol %q is not TCP4, TCP6 or UNKNOWN", f[1])
	}
	if len(f) != 6 {
		return proxyHeader{}, 0, invalidProxy("text (v1) %s line has %d fields, want 6 separated by single spaces", f[1], len(f))
	}
	v4 := f[1] == "TCP4"
	src, err := parseV1Addr(f[2], v4)
	if err != nil {
		return proxyHeader{}, 0, invalidProxy("text (v1) source address: %v", err)
	}
	dst, err := parseV1Addr(f[3], v4)
	if err != nil {
		return proxyHeader{}, 0, invalidProxy("text (v1) destination address: %v", err)
	}
	sport, err := parseV1Port(f[4])
	if err != nil {
		return proxyHeader{}, 0, invalidProxy("text (v1) source port: %v", err)
	}
	dport, err := parseV1Port(f[5])
	if err != nil {
		return proxyHeader{}, 0, invalidProxy("text (v1) destination port: %v", err)
	}
	return proxyHeader{
		src: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, sport)),
		dst: net.TCPAddrFromAddrPort(netip.AddrPortFrom(dst, dport)),
	}, n, nil
}

// parseV1Addr parses an address of the announced family. netip refuses
// IPv4 numbers with leading zeros, as 2.1 asks.
func parseV1Addr(s string, v4 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, err
	case v4 && !a.Is4():
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
	case !v4 && (!a.Is6() || a.Zone() != ""):
		return netip.Addr{}, fmt.Errorf("%q is not an IPv6 address without zone", s)
	}
	return a.Unmap(), nil
}

// parseV1Port parses a decimal port from 0 to 65535 without leading zeros.
func parseV1Port(s string) (uint16, error) {
	if s == "" || len(s) > 5 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q is not a port number without leading zeros", s)
	}
	v := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal port number", s)
		}
		v = v*10 + int(s[i]-'0')
	}
	if v > 0xFFFF {
		return 0, fmt.Errorf("%q is above 65535", s)
	}
	return uint16(v), nil
}

// parseProxyV2 parses a binary header (2.2): 12 signature bytes, ver_cmd,
// fam, a 16-bit big-endian length, then that many bytes of addresses and
// TLVs.
func parseProxyV2(b []byte) (proxyHeader, int, error) {
	if len(b) < proxyV2Fixed {
		return proxyHeader{}, 0, errProxyNeedMore
	}
	if v := b[12] >> 4; v != 2 {
		// "it must always be sent as \x2 and the receiver must only accept this value"
		return proxyHeader{}, 0, invalidProxy(errV2Prefix+"version %d, want 2", v)
	}
	cmd := b[12] & 0x0F
	if cmd != proxyV2Local && cmd != proxyV2Proxy {
		// "Receivers must drop connections presenting unexpected values here."
		return proxyHeader{}, 0, invalidProxy(errV2Prefix+"command %#x is neither LOCAL nor PROXY", cmd)
	}
	if fam, proto := b[13]>>4, b[13]&0x0F; fam > 3 || proto > 2 {
		// Unspecified families and protocols "must be rejected as invalid".
		return proxyHeader{}, 0, invalidProxy(errV2Prefix+"address family and protocol %#02x", b[13])
	}
	n := proxyV2Fixed + int(binary.BigEndian.Uint16(b[14:16]))
	if len(b) < n {
		// "The receiver must not start to parse an address before the
		// whole address block is received."
		return proxyHeader{}, 0, errProxyNeedMore
	}
	if cmd == proxyV2Local {
		// LOCAL: a health check by the proxy itself; "use the real
		// connection endpoints and discard the protocol block including
		// the family". The length is still honoured.
		return proxyHeader{}, n, nil
	}
	var h proxyHeader
	body := b[proxyV2Fixed:n]
	var used int
	switch b[13] {
	case 0x11: // TCP over IPv4: 2*4 + 2*2 bytes
		used = 12
		if len(body) < used {
			return proxyHeader{}, 0, invalidProxy(errV2Prefix+"TCP/IPv4 address block of %d bytes, want at least 12", len(body))
		}
		src := netip.AddrFrom4([4]byte(body[0:4]))
		dst := netip.AddrFrom4([4]byte(body[4:8]))
		h.src = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10])))
		h.dst = net.TCPAddrFromAddrPort(netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12])))
	case 0x21: // TCP over IPv6: 2*16 + 2*2 bytes
		used = 36
		if len(body) < used {
			return proxyHeader{}, 0, invalidProxy(errV2Prefix+"TCP/IPv6 address block of %d bytes, want at least 36", len(body))
		}
		src := netip.AddrFrom16([16]byte(body[0:16])).Unmap()
		dst := netip.AddrFrom16([16]byte(body[16:32])).Unmap()
		h.src = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34])))
		h.dst = net.TCPAddrFromAddrPort(netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36])))
	case 0x31: // UNIX stream: 2*108 bytes of NUL-padded paths
		used = 2 * proxyUnixPath
		if len(body) < used {
			return proxyHeader{}, 0, invalidProxy(errV2Prefix+"UNIX address block of %d bytes, want at least 216", len(body))
		}
		h.src = &net.UnixAddr{Name: cString(body[:proxyUnixPath]), Net: "unix"}
		h.dst = &net.UnixAddr{Name: cString(body[proxyUnixPath:used]), Net: "unix"}
	default:
		// UNSPEC, and the datagram families a stream listener cannot
		// have been relayed: "falls back to the UNSPEC mode", which uses
		// the real endpoints and ignores the address block.
		return proxyHeader{}, n, nil
	}
	if err := parseProxyTLVs(b[:n], proxyV2Fixed+used, &h); err != nil {
		return proxyHeader{}, 0, err
	}
	return h, n, nil
}

// parseProxyTLVs walks the TLVs of header hdr from off (2.2). It checks a
// PP2_TYPE_CRC32C checksum (2.2.3: a receiver that supports it MUST verify
// it) and keeps what a PP2_TYPE_SSL TLV says about the client certificate
// (2.2.6); other types are skipped, as the specification allows.
func parseProxyTLVs(hdr []byte, off int, h *proxyHeader) error {
	for off < len(hdr) {
		if len(hdr)-off < 3 {
			return invalidProxy(errV2Prefix+"TLV at byte %d is truncated", off)
		}
		typ := hdr[off]
		start := off + 3
		end := start + int(binary.BigEndian.Uint16(hdr[off+1:start]))
		if end > len(hdr) {
			return invalidProxy(errV2Prefix+"TLV type %#02x at byte %d runs %d bytes past the header", typ, off, end-len(hdr))
		}
		v := hdr[start:end]
		switch typ {
		case pp2TypeCRC32C:
			if len(v) != 4 {
				return invalidProxy(errV2Prefix+"CRC32C TLV of %d bytes, want 4", len(v))
			}
			// Checksum of the whole header with the checksum field zeroed.
			want := binary.BigEndian.Uint32(v)
			zeroed := make([]byte, len(hdr))
			copy(zeroed, hdr)
			clear(zeroed[start:end])
			if got := crc32.Checksum(zeroed, castagnoli); got != want {
				return invalidProxy(errV2Prefix+"CRC32C %#08x does not match the header's %#08x", want, got)
			}
		case pp2TypeSSL:
			t, err := parseProxySSL(v)
			if err != nil {
				return err
			}
			h.tls = t
		}
		off = end
	}
	return nil
}

// parseProxySSL parses the value of a PP2_TYPE_SSL TLV: client (1 byte),
// verify (4 bytes), then sub-TLVs (2.2.6).
func parseProxySSL(v []byte) (*proxyTLS, error) {
	if len(v) < 5 {
		return nil, invalidProxy(errV2Prefix+"SSL TLV of %d bytes, want at least 5", len(v))
	}
	t := &proxyTLS{client: v[0], verify: binary.BigEndian.Uint32(v[1:5])}
	for off := 5; off < len(v); {
		if len(v)-off < 3 {
			return nil, invalidProxy(errV2Prefix + "SSL sub-TLV is truncated")
		}
		start := off + 3
		end := start + int(binary.BigEndian.Uint16(v[off+1:start]))
		if end > len(v) {
			return nil, invalidProxy(errV2Prefix+"SSL sub-TLV type %#02x runs past its TLV", v[off])
		}
		if v[off] == pp2SubtypeCN {
			if !utf8.Valid(v[start:end]) {
				return nil, invalidProxy(errV2Prefix + "SSL common name is not UTF-8")
			}
			t.cn = string(v[start:end])
		}
		off = end
	}
	return t, nil
}

// cString returns b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// readProxyHeader reads what starts connection c, which the caller has put
// under a deadline, and returns the connection to hand on.
//
// From a trusted source (ProxyFrom) a header is required: the protocol
// "MUST not try to guess whether the protocol header is present" (2), and
// a missing one is ErrProxyHeaderMissing. From any other source a header is
// refused (ErrProxyUntrusted): accepting it would let any client spoof its
// address (5). Such a source may connect without a header; its first bytes
// are read until they differ from both signatures (one byte for MQTT, TLS
// or HTTP) and are replayed to the next reader.
func readProxyHeader(c net.Conn, trusted bool) (net.Conn, error) {
	buf := make([]byte, 0, proxyReadFirst)
	var rerr error
	for {
		if !trusted {
			switch proxySignature(buf) {
			case 0:
				return &proxyConn{Conn: c, rest: buf}, nil
			case 1, 2:
				return nil, ErrProxyUntrusted
			}
		} else {
			h, n, err := parseProxyHeader(buf)
			switch {
			case err == nil:
				pc := &proxyConn{Conn: c, remote: h.src, local: h.dst, tls: h.tls}
				if n < len(buf) {
					pc.rest = buf[n:]
				}
				return pc, nil
			case errors.Is(err, errProxyNone):
				return nil, ErrProxyHeaderMissing
			case !errors.Is(err, errProxyNeedMore):
				return nil, err
			}
		}
		if rerr != nil {
			return nil, fmt.Errorf("listener: reading PROXY header (%d bytes so far): %w", len(buf), rerr)
		}
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*cap(buf), proxyV2Max))
			copy(grown, buf)
			buf = grown
		}
		var n int
		n, rerr = c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
	}
}

// proxyConn is a connection that arrived through a PROXY header, or whose
// first bytes were read to look for one.
type proxyConn struct {
	net.Conn
	rest          []byte   // read past the header; served first
	remote, local net.Addr // from the header; nil: the connection's own
	tls           *proxyTLS
}

func (c *proxyConn) Read(p []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		if len(c.rest) == 0 {
			c.rest = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// RemoteAddr is the client's address from the header.
func (c *proxyConn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// LocalAddr is the address the client connected to, from the header.
func (c *proxyConn) LocalAddr() net.Addr {
	if c.local != nil {
		return c.local
	}
	return c.Conn.LocalAddr()
}

// NetConn returns the connection from the proxy.
func (c *proxyConn) NetConn() net.Conn { return c.Conn }

// Buffered is the number of bytes read past the header that the next Read
// serves before it reads the socket: a reader may wait for the socket to
// be readable (a broker parking an idle connection) only when it is 0.
// Not safe to call concurrently with Read.
func (c *proxyConn) Buffered() int { return len(c.rest) }

// CloseWrite shuts down the sending side of the socket, as the socket's own
// CloseWrite does: embedding net.Conn hides it, and a broker closing
// gracefully (TLS close_notify, then FIN) must reach it.
func (c *proxyConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// trusted reports whether addr, the transport peer, is in prefixes.
func trusted(addr net.Addr, prefixes []netip.Prefix) bool {
	a, ok := addrIP(addr)
	return ok && trustedIP(a, prefixes)
}

// addrIP returns the IP of a TCP address, IPv4-mapped addresses unmapped.
func addrIP(addr net.Addr) (netip.Addr, bool) {
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case interface{ AddrPort() netip.AddrPort }:
		ap := a.AddrPort()
		return ap.Addr().Unmap(), ap.IsValid()
	}
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
