package broker_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/listener"
	"github.com/gannet-mqtt/gannet/packet"
)

// acceptRecorder is a listener that hands the test every connection the
// broker accepts, so that the test can read its socket's options.
type acceptRecorder struct {
	net.Listener
	conns chan net.Conn
}

func (l *acceptRecorder) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.conns <- c:
		default:
		}
	}
	return c, err
}

// tcpSocket finds the *net.TCPConn under the wrappers of the listener
// package (TLS, PROXY protocol), as the broker does.
func tcpSocket(t *testing.T, nc net.Conn) *net.TCPConn {
	t.Helper()
	for range 4 {
		switch c := nc.(type) {
		case *net.TCPConn:
			return c
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			t.Fatalf("no TCP socket under %T", nc)
		}
	}
	t.Fatalf("no TCP socket under %T", nc)
	return nil
}

// TCP keep-alive is off on accepted sockets (it costs four setsockopt calls
// per accept) and turned on after CONNECT only for clients with Keep Alive
// 0, which have no MQTT keep-alive (3.1.1 [MQTT-3.1.2-24], 5.0
// [MQTT-3.1.2-22]) to find them dead.
func TestTCPKeepAliveOnlyForKeepAliveZero(t *testing.T) {
	pki := newPKI(t, "alice")
	type setup struct {
		name   string
		listen func(t *testing.T) net.Listener
		dial   func(t *testing.T, addr string) net.Conn
	}
	plainDial := func(t *testing.T, addr string) net.Conn {
		nc, err := net.DialTimeout("tcp", addr, waitFor)
		if err != nil {
			t.Fatal(err)
		}
		return nc
	}
	listen := func(cfg listener.Config) func(t *testing.T) net.Listener {
		return func(t *testing.T) net.Listener {
			l, err := listener.Listen(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
	}
	proxyCfg := listener.DefaultConfig(listener.TypeTCP, "127.0.0.1:0")
	proxyCfg.ProxyProtocol = true
	proxyCfg.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	tlsCfg := listener.DefaultConfig(listener.TypeTLS, "127.0.0.1:0")
	tlsCfg.TLS = listener.TLSConfig{CertFile: pki.serverCert, KeyFile: pki.serverKey}
	setups := []setup{
		{"tcp listener", listen(listener.DefaultConfig(listener.TypeTCP, "127.0.0.1:0")), plainDial},
		{"embedder's listener without keep-alive", func(t *testing.T) net.Listener {
			lc := net.ListenConfig{KeepAlive: -1}
			l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			return l
		}, plainDial},
		{"tcp listener with PROXY protocol", listen(proxyCfg), func(t *testing.T, addr string) net.Conn {
			nc := plainDial(t, addr)
			if _, err := nc.Write([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 40000 1883\r\n")); err != nil {
				t.Fatal(err)
			}
			return nc
		}},
		{"tls listener", listen(tlsCfg), func(t *testing.T, addr string) net.Conn {
			nc, err := tls.DialWithDialer(&net.Dialer{Timeout: waitFor}, "tcp", addr,
				&tls.Config{RootCAs: pki.caPool, MinVersion: tls.VersionTLS12})
			if err != nil {
				t.Fatal(err)
			}
			return nc
		}},
	}
	for _, s := range setups {
		for _, v := range []byte{packet.V311, packet.V5} {
			for _, keepAlive := range []uint16{60, 0} {
				t.Run(fmt.Sprintf("%s/v%d/keepalive %d", s.name, v, keepAlive), func(t *testing.T) {
					rec := &acceptRecorder{Listener: s.listen(t), conns: make(chan net.Conn, 1)}
					srv, err := broker.New(testOptions())
					if err != nil {
						t.Fatal(err)
					}
					go srv.Serve(rec)
					t.Cleanup(func() { srv.Close() })

					c := gannettest.NewConn(t, s.dial(t, rec.Addr().String()), v)
					c.Timeout = waitFor
					p := gannettest.Connect311("ka")
					p.Version = v
					p.KeepAlive = keepAlive
					c.Send(p)
					if got := c.Expect(); !isAccepted(got) {
						t.Fatalf("CONNECT refused: %s", describe(got))
					}
					c.Sync() // the broker is past CONNECT
					var nc net.Conn
					select {
					case nc = <-rec.conns:
					case <-time.After(waitFor):
						t.Fatal("the broker accepted no connection")
					}
					on := soKeepAlive(t, tcpSocket(t, nc))
					if want := keepAlive == 0; on != want {
						t.Errorf("SO_KEEPALIVE on the broker's socket is %v with Keep Alive %d, want %v", on, keepAlive, want)
					}
				})
			}
		}
	}
}

func isAccepted(p packet.Packet) bool {
	ack, ok := p.(*packet.Connack)
	return ok && ack.ReasonCode == packet.Success
}
