package broker_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// Too many connections from one address in a burst: 0x9F in 5.0.
func TestOverloadConnectionRatePerAddress(t *testing.T) {
	opts := testOptions()
	opts.ConnectionRate = 0.5
	opts.ConnectionBurst = 2
	b := runBroker(t, opts)
	v5ConnectOK(t, b.Addr, v5Connect("rate-1"))
	v5ConnectOK(t, b.Addr, v5Connect("rate-2"))
	v5ExpectConnackRefused(t, b.Addr, v5Connect("rate-3"), packet.ConnectionRateExceeded)
	if got := b.Stats().RefusedRate; got != 1 {
		t.Errorf("Stats().RefusedRate = %d, want 1", got)
	}
}

// The memory ceiling refuses new connections with 0x97 (3 in 3.1.1) and
// leaves existing ones alone.
func TestOverloadMemoryCeiling(t *testing.T) {
	opts := testOptions()
	opts.MemoryLimit = 1 // anything is above it
	b := runBroker(t, opts)
	eventually(t, "the memory check to run", func() bool {
		c, ack := v5ConnectRaw(t, b.Addr, v5Connect("mem"))
		c.nc.Close()
		return ack.ReasonCode == packet.QuotaExceeded
	})
	c, ack := connectRaw(t, b.Addr, connectPacket("mem-311"))
	if ack.ReasonCode != packet.ServerUnavailable { // return code 3
		t.Errorf("3.1.1 CONNACK %v, want server unavailable (3)", ack.ReasonCode)
	}
	c.expectClosed(waitFor)
	if b.Stats().RefusedMemory == 0 {
		t.Error("Stats().RefusedMemory = 0")
	}
}

// A session may hold MaxSubscriptions filters: the next gets 0x97 (5.0) or
// 0x80 (3.1.1); replacing an existing filter still works.
func TestOverloadMaxSubscriptions(t *testing.T) {
	opts := testOptions()
	opts.MaxSubscriptions = 2
	b := runBroker(t, opts)
	c5, _ := v5ConnectOK(t, b.Addr, v5Connect("subs5"))
	codes := c5.v5Subscribe(0,
		packet.Subscription{Filter: "a", QoS: 1},
		packet.Subscription{Filter: "b", QoS: 1},
		packet.Subscription{Filter: "c", QoS: 1},
		packet.Subscription{Filter: "a", QoS: 0},
	)
	want := []packet.ReasonCode{1, 1, packet.QuotaExceeded, 0}
	for i := range want {
		if codes[i] != want[i] {
			t.Errorf("SUBACK[%d] = %v, want %v", i, codes[i], want[i])
		}
	}
	c3, _ := connectOK(t, b.Addr, connectPacket("subs3"))
	codes = c3.subscribe(packet.Subscription{Filter: "a"}, packet.Subscription{Filter: "b"}, packet.Subscription{Filter: "c"})
	if codes[2] != packet.UnspecifiedError {
		t.Errorf("3.1.1 SUBACK[2] = %v, want 0x80", codes[2])
	}
}

// A client over its publish rate is slowed down, not refused.
func TestOverloadPublishRateThrottles(t *testing.T) {
	opts := testOptions()
	opts.PublishRate = 40
	opts.PublishBurst = 5
	b := runBroker(t, opts)
	pub := client(t, b, "fast")
	start := time.Now()
	for range 25 {
		pub.publish("rate/x", "m", 1, false)
	}
	// 20 messages beyond the burst at 40/s: at least ~0.5 s.
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("25 publishes took %v, want the rate to hold them back to about 0.5 s", d)
	}
	if b.Stats().Throttled == 0 {
		t.Error("Stats().Throttled = 0")
	}
}

// With PublishRateDisconnect, a publisher over its rate is disconnected
// with 0x96 (5.0).
func TestOverloadPublishRateDisconnects(t *testing.T) {
	opts := testOptions()
	opts.PublishRate = 1
	opts.PublishBurst = 1
	opts.PublishRateDisconnect = true
	b := runBroker(t, opts)
	c, _ := v5ConnectOK(t, b.Addr, v5Connect("flood"))
	var batch []packet.Packet
	for range 10 {
		batch = append(batch, &packet.Publish{Topic: "flood", Payload: []byte("x")})
	}
	c.send(batch...)
	c.v5ExpectDisconnect(packet.MessageRateTooHigh)
}

// A subscriber that stops reading is cut off once its unwritten data
// passes WriteBufferHardLimit; the publisher is not slowed down.
func TestOverloadSlowConsumerDisconnected(t *testing.T) {
	opts := testOptions()
	opts.WriteBufferLimit = 64 << 10
	opts.WriteBufferHardLimit = 256 << 10
	opts.MaxInflight = 20000 // QoS 1 copies are never dropped: only the hard limit stops them
	b := runBroker(t, opts)
	stuck := dialRaw(t, b.Addr)
	if tc, ok := stuck.nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	stuck.send(connectPacket("stuck"))
	expectPacket[*packet.Connack](stuck)
	stuck.sub("flood/#", 1)

	pub := client(t, b, "flooder")
	payload := strings.Repeat("x", 1000)
	var batch []packet.Packet
	for i := range 16000 {
		batch = append(batch, &packet.Publish{Topic: "flood/a", QoS: 1, PacketID: uint16(i%60000 + 1), Payload: []byte(payload)})
		if i%100 == 99 {
			pub.send(batch...)
			batch = batch[:0]
		}
	}

	eventually(t, "the stuck client to be disconnected", func() bool { return b.Stats().SlowClosed > 0 })
}

// A listener's own connection cap closes the extra connection.
func TestOverloadListenerMaxConnections(t *testing.T) {
	opts := testOptions()
	l := listen(t)
	srv, err := broker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeListener(l, broker.ListenerOptions{MaxConnections: 1})
	t.Cleanup(func() { srv.Close() })
	addr := l.Addr().String()
	connectOK(t, addr, connectPacket("only"))
	extra := dialRaw(t, addr)
	extra.expectClosed(waitFor)
}
