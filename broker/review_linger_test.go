package broker_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/listener"
	"github.com/gannet-mqtt/gannet/packet"
)

// Issue 11.4, over TLS: a connection closed gracefully after a reason
// code gets close_notify and then FIN at once, while the broker still
// reads and discards what the client sends (linger.go). Every connection
// of a TLS listener reaches the broker through the listener's wrapper of
// the socket (it replays the first byte), which hid the socket's
// CloseWrite: no FIN was sent, and the client saw the end of the stream
// only when the linger closed the socket, a second later.
func TestLingerTLSSendsFIN(t *testing.T) {
	pki := newPKI(t, "unused")
	cfg := listener.DefaultConfig(listener.TypeTLS, "127.0.0.1:0")
	cfg.TLS = listener.TLSConfig{CertFile: pki.serverCert, KeyFile: pki.serverKey}
	srv, l := serveOn(t, testOptions(), cfg, broker.ListenerOptions{Name: "tls"})

	raw, err := net.DialTimeout("tcp", l.Addr().String(), waitFor)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(waitFor))
	tc := tls.Client(raw, &tls.Config{RootCAs: pki.caPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	p := v5Connect("linger-tls")
	p.Properties.SetString(packet.PropAuthMethod, "no-such-method") // refused with 0x8C [MQTT-4.12.0-1]
	b, _ := p.Append(nil, packet.V5)
	if _, err := tc.Write(b); err != nil {
		t.Fatal(err)
	}
	// The CONNACK, then close_notify: the TLS stream ends.
	got, err := io.ReadAll(tc)
	if err != nil {
		t.Fatalf("reading the TLS stream: %v (after %d bytes)", err, len(got))
	}
	if len(got) < 4 || got[0] != 0x20 || got[3] == 0 {
		t.Fatalf("got % x, want a refusing CONNACK", got)
	}
	// Then FIN on the socket, at once, while the broker lingers. Without
	// FIN the socket ends when the linger closes it, a full second
	// (lingerTime) after close_notify: 750 ms leaves room for a loaded
	// machine between two segments sent back to back.
	start := time.Now()
	var one [1]byte
	n, err := raw.Read(one[:])
	took := time.Since(start)
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("socket read after close_notify: %d bytes, %v; want the end of the stream (FIN)", n, err)
	}
	if l := srv.Lingering(); l != 1 || took >= 750*time.Millisecond {
		t.Errorf("the socket ended %v after close_notify, with %d connections lingering; want FIN at once, while the broker lingers (1)", took, l)
	}
}
