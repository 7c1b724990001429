package listener

import (
	"net/netip"
	"testing"
	"time"
)

// Issue 16 point 4: a connection that sends nothing is dropped after
// FirstByteTimeout, not after the whole HandshakeTimeout, and the drop is
// logged at debug level only (with a periodic warning that counts them);
// a client that speaks at once is readied as before.
func TestFirstByteTimeout(t *testing.T) {
	l, sink := listen(t, Config{Type: TypeTCP, ProxyProtocol: true, ProxyFrom: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		HandshakeTimeout: time.Minute, FirstByteTimeout: 300 * time.Millisecond})
	a := accepting(t, l)
	silent := dial(t, "tcp", l.Addr().String())
	start := time.Now()
	expectClosed(t, silent) // within wait, far below the minute
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("silent connection closed after %v, before the first-byte timeout", d)
	}
	sink.waitFor(t, "WARN dropping connections that stay silent", "dropped=1")
	sink.waitFor(t, "DEBUG connection refused before MQTT", "first-byte timeout")

	c := dial(t, "tcp", l.Addr().String())
	if _, err := c.Write([]byte{0x10}); err != nil {
		t.Fatal(err)
	}
	s := a.next(t)
	b := make([]byte, 1)
	if _, err := s.Read(b); err != nil || b[0] != 0x10 {
		t.Fatalf("first byte replayed as %#x, %v", b[0], err)
	}
}
