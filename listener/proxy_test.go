package listener

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// ---- building headers ----

// v2 builds a binary header: ver_cmd 0x2<cmd>, fam, and body, with the
// length field set.
func v2(cmd, fam byte, body ...[]byte) []byte {
	b := append([]byte{}, proxySigV2...)
	b = append(b, 0x20|cmd, fam, 0, 0)
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint16(b[14:16], uint16(len(b)-16))
	return b
}

// ipv4Block is a TCP/IPv4 address block.
func ipv4Block(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sport), dport)
}

// ipv6Block is a TCP/IPv6 address block.
func ipv6Block(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sport), dport)
}

func unixBlock(src, dst string) []byte {
	b := make([]byte, 216)
	copy(b, src)
	copy(b[108:], dst)
	return b
}

func tlv(typ byte, v []byte) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{typ}, uint16(len(v))), v...)
}

// withCRC appends a PP2_TYPE_CRC32C TLV holding the header's checksum
// (2.2.3); corrupt flips it.
func withCRC(h []byte, corrupt bool) []byte {
	h = append(h, tlv(pp2TypeCRC32C, make([]byte, 4))...)
	binary.BigEndian.PutUint16(h[14:16], uint16(len(h)-16))
	sum := crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli))
	if corrupt {
		sum ^= 1
	}
	binary.BigEndian.PutUint32(h[len(h)-4:], sum)
	return h
}

// sslTLV is a PP2_TYPE_SSL TLV with a common name sub-TLV.
func sslTLV(client byte, verify uint32, cn string) []byte {
	v := binary.BigEndian.AppendUint32([]byte{client}, verify)
	v = append(v, tlv(pp2SubtypeCN, []byte(cn))...)
	return tlv(pp2TypeSSL, v)
}

var trustLocal = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// ---- parser ----

func TestParseProxyHeader(t *testing.T) {
	tests := []struct {
		name       string
		in         []byte
		src, dst   string // "" for the connection's own
		n          int    // header length; 0: len(in)
		cn         string // verified CN from an SSL TLV
		wantErr    error
		errContain string
	}{
		{name: "v1 TCP4", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 56324 1883\r\n"), src: "192.0.2.1:56324", dst: "192.0.2.2:1883"},
		{name: "v1 TCP6", in: []byte("PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n"), src: "[2001:db8::1]:65535", dst: "[2001:db8::2]:0"},
		{name: "v1 followed by data", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n\x10\x0e"), src: "192.0.2.1:1", dst: "192.0.2.2:2", n: 36},
		{name: "v1 UNKNOWN short", in: []byte("PROXY UNKNOWN\r\n")},
		{name: "v1 UNKNOWN long", in: []byte("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n")},
		{name: "v1 longest TCP6 line", in: []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
			src: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", dst: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"},
		{name: "v1 partial", in: []byte("PROXY TCP4 192.0.2.1"), wantErr: errProxyNeedMore},
		{name: "v1 partial signature", in: []byte("PRO"), wantErr: errProxyNeedMore},
		{name: "v1 CR at end", in: []byte("PROXY UNKNOWN\r"), wantErr: errProxyNeedMore},
		{name: "no header: MQTT", in: []byte("\x10\x0e\x00\x04MQTT"), wantErr: errProxyNone},
		{name: "no header: TLS", in: []byte("\x16\x03\x01\x02\x00"), wantErr: errProxyNone},
		{name: "no header: HTTP", in: []byte("GET /mqtt HTTP/1.1\r\n"), wantErr: errProxyNone},
		{name: "no header: POST", in: []byte("POST / HTTP/1.1\r\n"), wantErr: errProxyNone},
		{name: "v1 no CRLF in 107 bytes", in: append([]byte("PROXY UNKNOWN "), bytes.Repeat([]byte("a"), 100)...), errContain: "no CRLF"},
		{name: "v1 LF alone", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n"), errContain: "LF without CR"},
		{name: "v1 CR alone", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rX"), errContain: "CR without LF"},
		{name: "v1 double space", in: []byte("PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n"), errContain: "fields"},
		{name: "v1 trailing space", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n"), errContain: "fields"},
		{name: "v1 missing port", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n"), errContain: "fields"},
		{name: "v1 lower case", in: []byte("PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n"), errContain: "protocol"},
		{name: "v1 PROXYX", in: []byte("PROXYX TCP4 192.0.2.1 192.0.2.2 1 2\r\n"), errContain: "does not start"},
		{name: "v1 TCP4 with IPv6", in: []byte("PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n"), errContain: "not an IPv4"},
		{name: "v1 TCP6 with IPv4", in: []byte("PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n"), errContain: "not an IPv6"},
		{name: "v1 leading zero address", in: []byte("PROXY TCP4 192.0.2.01 192.0.2.2 1 2\r\n"), errContain: "source address"},
		{name: "v1 leading zero port", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n"), errContain: "leading zeros"},
		{name: "v1 port above 65535", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n"), errContain: "above 65535"},
		{name: "v1 port sign", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n"), errContain: "decimal"},
		{name: "v1 zone", in: []byte("PROXY TCP6 fe80::1%eth0 2001:db8::2 1 2\r\n"), errContain: "zone"},

		{name: "v2 TCP4", in: v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 40000, 1883)), src: "198.51.100.7:40000", dst: "203.0.113.9:1883"},
		{name: "v2 TCP6", in: v2(1, 0x21, ipv6Block("2001:db8::7", "2001:db8::9", 40000, 8883)), src: "[2001:db8::7]:40000", dst: "[2001:db8::9]:8883"},
		{name: "v2 TCP6 mapped IPv4", in: v2(1, 0x21, ipv6Block("::ffff:198.51.100.7", "::ffff:203.0.113.9", 1, 2)), src: "198.51.100.7:1", dst: "203.0.113.9:2"},
		{name: "v2 unix", in: v2(1, 0x31, unixBlock("/run/client.sock", "/run/gannet.sock")), src: "/run/client.sock", dst: "/run/gannet.sock"},
		{name: "v2 LOCAL", in: v2(0, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2))},
		{name: "v2 LOCAL with anything", in: v2(0, 0x00, []byte("ignored"))},
		{name: "v2 UNSPEC", in: v2(1, 0x00)},
		{name: "v2 UDP falls back to UNSPEC", in: v2(1, 0x12, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2))},
		{name: "v2 TLVs skipped", in: v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2), tlv(0x04, []byte{0, 0, 0}), tlv(0x05, []byte("id-1"))), src: "198.51.100.7:1", dst: "203.0.113.9:2"},
		{name: "v2 CRC32C", in: withCRC(v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2), tlv(0x02, []byte("mqtt.example"))), false), src: "198.51.100.7:1", dst: "203.0.113.9:2"},
		{name: "v2 SSL verified CN", in: v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2), sslTLV(0x07, 0, "device-9")), src: "198.51.100.7:1", dst: "203.0.113.9:2", cn: "device-9"},
		{name: "v2 SSL unverified CN", in: v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2), sslTLV(0x07, 1, "device-9")), src: "198.51.100.7:1", dst: "203.0.113.9:2"},
		{name: "v2 SSL without certificate", in: v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2), sslTLV(0x01, 0, "device-9")), src: "198.51.100.7:1", dst: "203.0.113.9:2"},
		{name: "v2 followed by data", in: append(v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2)), 0x10, 0x0e), src: "198.51.100.7:1", dst: "203.0.113.9:2", n: 28},
		{name: "v2 partial signature", in: proxySigV2[:7], wantErr: errProxyNeedMore},
		{name: "v2 partial fixed part", in: v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2))[:15], wantErr: errProxyNeedMore},
		{name: "v2 partial address block", in: v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2))[:20], wantErr: errProxyNeedMore},
		{name: "v2 version 1", in: append(append([]byte{}, proxySigV2...), 0x11, 0x11, 0, 0), errContain: "version 1"},
		{name: "v2 command 2", in: v2(2, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2)), errContain: "command"},
		{name: "v2 family 4", in: v2(1, 0x41, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2)), errContain: "family"},
		{name: "v2 protocol 3", in: v2(1, 0x13, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2)), errContain: "family"},
		{name: "v2 short IPv4 block", in: v2(1, 0x11, make([]byte, 11)), errContain: "want at least 12"},
		{name: "v2 short IPv6 block", in: v2(1, 0x21, make([]byte, 12)), errContain: "want at least 36"},
		{name: "v2 short unix block", in: v2(1, 0x31, make([]byte, 108)), errContain: "want at least 216"},
		{name: "v2 truncated TLV", in: v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2), []byte{0x04, 0}), errContain: "truncated"},
		{name: "v2 TLV past the end", in: v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2), []byte{0x04, 0, 9, 1}), errContain: "past the header"},
		{name: "v2 bad CRC32C", in: withCRC(v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2)), true), errContain: "CRC32C"},
		{name: "v2 CRC32C of 3 bytes", in: v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2), tlv(pp2TypeCRC32C, []byte{1, 2, 3})), errContain: "CRC32C TLV"},
		{name: "v2 short SSL TLV", in: v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2), tlv(pp2TypeSSL, []byte{1, 0, 0})), errContain: "SSL TLV"},
		{name: "v2 CN not UTF-8", in: v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2), sslTLV(0x07, 0, "\xff")), errContain: "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := parseProxyHeader(tt.in)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			case tt.errContain != "":
				if !errors.Is(err, ErrProxyHeaderInvalid) || !strings.Contains(err.Error(), tt.errContain) {
					t.Fatalf("err %v, want ErrProxyHeaderInvalid with %q", err, tt.errContain)
				}
				return
			case err != nil:
				t.Fatalf("err %v", err)
			}
			want := tt.n
			if want == 0 {
				want = len(tt.in)
			}
			if n != want {
				t.Errorf("n = %d, want %d", n, want)
			}
			if got := addrString(h.src); got != tt.src {
				t.Errorf("src %q, want %q", got, tt.src)
			}
			if got := addrString(h.dst); got != tt.dst {
				t.Errorf("dst %q, want %q", got, tt.dst)
			}
			cn, ok := h.tls.verifiedCN()
			if cn != tt.cn || ok != (tt.cn != "") {
				t.Errorf("verified CN %q %v, want %q", cn, ok, tt.cn)
			}
		})
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// FuzzParseProxyHeader checks that the parser never panics, that a header
// is never longer than its input, and that every shorter prefix of a valid
// header asks for more bytes, so that reading it in chunks gives the same
// result as reading it at once.
func FuzzParseProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 192.0.2.2 56324 1883\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\nxyz"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 40000, 1883)))
	f.Add(v2(1, 0x21, ipv6Block("2001:db8::7", "2001:db8::9", 1, 2), sslTLV(7, 0, "cn")))
	f.Add(withCRC(v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 1, 2)), false))
	f.Add(v2(0, 0x00))
	f.Add(v2(1, 0x31, unixBlock("/a", "/b")))
	f.Add([]byte("\x10\x0e\x00\x04MQTT"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parseProxyHeader(b)
		if err != nil {
			if !errors.Is(err, errProxyNeedMore) && !errors.Is(err, errProxyNone) && !errors.Is(err, ErrProxyHeaderInvalid) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("n = %d for %d bytes", n, len(b))
		}
		for i := range n {
			if _, _, err := parseProxyHeader(b[:i]); !errors.Is(err, errProxyNeedMore) {
				t.Fatalf("prefix of %d of a %d-byte header: %v, want need more", i, n, err)
			}
		}
		h2, n2, err := parseProxyHeader(b[:n])
		if err != nil || n2 != n || addrString(h2.src) != addrString(h.src) || addrString(h2.dst) != addrString(h.dst) {
			t.Fatalf("header alone parses to %v %d %v, with the rest to %v %d", h2, n2, err, h, n)
		}
	})
}

func BenchmarkParseProxyV2(b *testing.B) {
	h := v2(1, 0x11, ipv4Block("198.51.100.7", "203.0.113.9", 40000, 1883))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseProxyHeader(h); err != nil {
			b.Fatal(err)
		}
	}
}

// ---- over the network ----

// proxyListener is a tcp listener with ProxyProtocol, trusting from.
func proxyListener(t *testing.T, from string) (*Listener, *logSink, *acceptor) {
	t.Helper()
	l, sink := listen(t, Config{Type: TypeTCP, ProxyProtocol: true, ProxyFrom: []netip.Prefix{netip.MustParsePrefix(from)},
		HandshakeTimeout: time.Second})
	return l, sink, accepting(t, l)
}

const mqttConnect = "\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02id"

func TestProxyHeaderSetsRemoteAddr(t *testing.T) {
	l, _, a := proxyListener(t, "127.0.0.1/32")
	tests := []struct {
		name       string
		header     []byte
		remote     string // "" for the connection's own
		local      string
		byteByByte bool
	}{
		{name: "v1 TCP4", header: []byte("PROXY TCP4 198.51.100.22 203.0.113.1 35000 1883\r\n"), remote: "198.51.100.22:35000", local: "203.0.113.1:1883"},
		{name: "v1 TCP6", header: []byte("PROXY TCP6 2001:db8::22 2001:db8::1 35000 1883\r\n"), remote: "[2001:db8::22]:35000", local: "[2001:db8::1]:1883"},
		{name: "v1 UNKNOWN", header: []byte("PROXY UNKNOWN\r\n")},
		{name: "v1 byte by byte", header: []byte("PROXY TCP4 198.51.100.22 203.0.113.1 35000 1883\r\n"), remote: "198.51.100.22:35000", local: "203.0.113.1:1883", byteByByte: true},
		{name: "v2 TCP4", header: v2(1, 0x11, ipv4Block("198.51.100.23", "203.0.113.1", 35001, 1883)), remote: "198.51.100.23:35001", local: "203.0.113.1:1883"},
		{name: "v2 TCP6", header: v2(1, 0x21, ipv6Block("2001:db8::23", "2001:db8::1", 35001, 1883)), remote: "[2001:db8::23]:35001", local: "[2001:db8::1]:1883"},
		{name: "v2 with CRC32C", header: withCRC(v2(1, 0x11, ipv4Block("198.51.100.24", "203.0.113.1", 35002, 1883)), false), remote: "198.51.100.24:35002", local: "203.0.113.1:1883"},
		{name: "v2 LOCAL", header: v2(0, 0x11, ipv4Block("198.51.100.25", "203.0.113.1", 35003, 1883))},
		{name: "v2 byte by byte", header: v2(1, 0x11, ipv4Block("198.51.100.23", "203.0.113.1", 35001, 1883)), remote: "198.51.100.23:35001", local: "203.0.113.1:1883", byteByByte: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, "tcp", l.Addr().String())
			if tt.byteByByte {
				for i := range tt.header {
					if _, err := c.Write(tt.header[i : i+1]); err != nil {
						t.Fatal(err)
					}
					time.Sleep(time.Millisecond)
				}
				c.Write([]byte(mqttConnect))
			} else {
				c.Write(append(append([]byte{}, tt.header...), mqttConnect...)) // one segment
			}
			sc := a.next(t)
			remote, local := tt.remote, tt.local
			if remote == "" {
				remote, local = c.LocalAddr().String(), c.RemoteAddr().String()
			}
			if got := sc.RemoteAddr().String(); got != remote {
				t.Errorf("RemoteAddr %s, want %s", got, remote)
			}
			if got := sc.LocalAddr().String(); got != local {
				t.Errorf("LocalAddr %s, want %s", got, local)
			}
			got := make([]byte, len(mqttConnect))
			if _, err := readFull(sc, got); err != nil || string(got) != mqttConnect {
				t.Fatalf("after the header: %q %v, want the CONNECT", got, err)
			}
			pipe(t, sc, c, []byte("\x20\x02\x00\x00"))
		})
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Refused connections are closed and never reach Accept: a good
// connection after each one is the next accepted.
func TestProxyHeaderRefused(t *testing.T) {
	l, sink, a := proxyListener(t, "127.0.0.1/32")
	tests := []struct {
		name string
		send []byte
		log  string
	}{
		{"no header from a trusted proxy", []byte(mqttConnect), "no PROXY protocol header from a trusted proxy"},
		{"v1 without CRLF", []byte("PROXY TCP4 198.51.100.22 203.0.113.1 35000 1883\n"), "LF without CR"},
		{"v1 bad address", []byte("PROXY TCP4 198.51.100.256 203.0.113.1 35000 1883\r\n"), "source address"},
		{"v1 bad protocol", []byte("PROXY UDP4 198.51.100.2 203.0.113.1 35000 1883\r\n"), "protocol \"UDP4\""},
		{"v1 too long", append([]byte("PROXY TCP4 "), bytes.Repeat([]byte("1"), 120)...), "no CRLF in its first 107"},
		{"v2 bad version", append(append([]byte{}, proxySigV2...), 0x31, 0x11, 0, 0), "version 3"},
		{"v2 bad command", v2(0xF, 0x11, ipv4Block("198.51.100.23", "203.0.113.1", 1, 2)), "command"},
		{"v2 bad CRC", withCRC(v2(1, 0x11, ipv4Block("198.51.100.23", "203.0.113.1", 1, 2)), true), "CRC32C"},
		{"truncated header, then EOF", []byte("PROXY TCP4 198.51.100.22"), "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, "tcp", l.Addr().String())
			c.Write(tt.send)
			if tt.log == "EOF" {
				c.(*net.TCPConn).CloseWrite()
			}
			expectClosed(t, c)
			sink.waitFor(t, "connection refused before MQTT", "remote="+c.LocalAddr().String(), tt.log)

			good := dial(t, "tcp", l.Addr().String())
			good.Write([]byte("PROXY TCP4 198.51.100.99 203.0.113.1 1 2\r\n"))
			if got := a.next(t).RemoteAddr().String(); got != "198.51.100.99:1" {
				t.Fatalf("next accepted %s, want the good connection", got)
			}
		})
	}
}

// A trusted proxy that opens a connection and sends nothing is dropped
// after HandshakeTimeout.
func TestProxyHeaderTimeout(t *testing.T) {
	l, sink, a := proxyListener(t, "127.0.0.1/32")
	c := dial(t, "tcp", l.Addr().String())
	c.Write([]byte("PROXY TCP4 "))
	start := time.Now()
	expectClosed(t, c)
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("closed after %v, before the 1s HandshakeTimeout", d)
	}
	sink.waitFor(t, "reading PROXY header", "timeout")
	a.none(t, 10*time.Millisecond)
}

// From a source outside ProxyFrom a header is refused, and a connection
// without one is an ordinary client.
func TestProxyUntrustedSource(t *testing.T) {
	l, sink, a := proxyListener(t, "10.0.0.0/8")

	for name, h := range map[string][]byte{
		"v1": []byte("PROXY TCP4 198.51.100.22 203.0.113.1 35000 1883\r\n"),
		"v2": v2(1, 0x11, ipv4Block("198.51.100.23", "203.0.113.1", 1, 2)),
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, "tcp", l.Addr().String())
			c.Write(append(h, mqttConnect...))
			expectClosed(t, c)
			sink.waitFor(t, "from a source outside ProxyFrom", "remote="+c.LocalAddr().String())
		})
	}
	t.Run("no header", func(t *testing.T) {
		c := dial(t, "tcp", l.Addr().String())
		c.Write([]byte(mqttConnect)) // the first byte tells it is not a header
		sc := a.next(t)
		got := make([]byte, len(mqttConnect))
		if _, err := readFull(sc, got); err != nil || string(got) != mqttConnect {
			t.Fatalf("read %q %v", got, err)
		}
		if sc.RemoteAddr().String() != c.LocalAddr().String() {
			t.Errorf("RemoteAddr %s, want %s", sc.RemoteAddr(), c.LocalAddr())
		}
	})
}

// A tcp listener behind a TLS-terminating proxy: PeerIdentity returns the
// common name the proxy verified.
func TestPeerIdentityFromProxySSL(t *testing.T) {
	l, _, a := proxyListener(t, "127.0.0.1/32")
	c := dial(t, "tcp", l.Addr().String())
	c.Write(v2(1, 0x11, ipv4Block("198.51.100.23", "203.0.113.1", 1, 2), sslTLV(0x03, 0, "lb-verified")))
	sc := a.next(t)
	if cn, sans, ok := PeerIdentity(sc); !ok || cn != "lb-verified" || sans != nil {
		t.Fatalf("PeerIdentity = %q %q %v", cn, sans, ok)
	}
	c2 := dial(t, "tcp", l.Addr().String())
	c2.Write(v2(1, 0x11, ipv4Block("198.51.100.23", "203.0.113.1", 1, 2)))
	if _, _, ok := PeerIdentity(a.next(t)); ok {
		t.Fatal("PeerIdentity ok without SSL TLV")
	}
}
