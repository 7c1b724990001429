package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/listener"
	"github.com/gannet-mqtt/gannet/packet"
)

// Idle connections parked in epoll (park_linux.go): they hold no goroutine,
// yet keep-alive, wills, deliveries, takeover and shutdown behave as before.

// waitParked waits until n of b's connections are parked.
func waitParked(t *testing.T, b *testBroker, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d parked connections", n), func() bool { return b.Parked() >= n })
}

// TestParkNoGoroutinePerIdleConnection connects 1,000 idle clients and
// expects the goroutines to fall back near where they were: an idle
// connection holds no read loop goroutine.
func TestParkNoGoroutinePerIdleConnection(t *testing.T) {
	const n = 1000
	b := runBroker(t, testOptions())
	runtime.GC()
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	connect, err := (&packet.Connect{Version: packet.V311, CleanStart: true, KeepAlive: 60}).Append(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	for i := range n {
		nc, err := net.DialTimeout("tcp", b.Addr, waitFor)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, nc)
		nc.SetDeadline(time.Now().Add(waitFor))
		if _, err := nc.Write(connect); err != nil {
			t.Fatalf("connection %d: CONNECT: %v", i, err)
		}
		if _, err := readFull(nc, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
			t.Fatalf("connection %d: no CONNACK: % x %v", i, ack, err)
		}
	}
	if got := b.ConnCount(); got != n {
		t.Fatalf("%d connections, want %d", got, n)
	}
	// At most a handful of goroutines beyond those before (the pollers),
	// not one per connection.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+50 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines with %d idle connections, %d before: one per connection", runtime.NumGoroutine(), n, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Still served: a PINGREQ on a parked connection is answered.
	for _, i := range []int{0, n / 2, n - 1} {
		conns[i].SetDeadline(time.Now().Add(waitFor))
		conns[i].Write([]byte{0xC0, 0})
		if _, err := readFull(conns[i], ack[:2]); err != nil || ack[0] != 0xD0 {
			t.Fatalf("connection %d: no PINGRESP: % x %v", i, ack[:2], err)
		}
	}
}

func readFull(nc net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := nc.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestParkKeepAlive: a parked client that sends nothing for 1.5 x Keep
// Alive is disconnected and its will published [MQTT-3.1.2-24]
// [MQTT-3.1.2-8], as one that holds a read loop.
func TestParkKeepAlive(t *testing.T) {
	b := runBroker(t, testOptions())
	sub := client(t, b, "park-ka-sub")
	sub.sub("park/ka/will", 0)
	p := connectPacket("park-ka")
	p.KeepAlive = 1
	p.WillFlag = true
	p.Will = packet.Will{Topic: "park/ka/will", Payload: []byte("gone")}
	start := time.Now()
	c, _ := connectOK(t, b.Addr, p)
	waitParked(t, b, 2)
	c.expectClosedSilently(10 * time.Second)
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("closed %v after CONNECT, before 1.5 x Keep Alive", took)
	}
	sub.expectPublish("park/ka/will", "gone")

	// 5.0: a client that pings from parked every 0.5 s stays connected
	// past the first deadline (each packet moves it), the idle one beside
	// it with a longer keep-alive is left alone, and once silent the
	// pinging one hears 0x8D Keep alive timeout.
	long := v5Connect("park-ka-long")
	long.KeepAlive = 60
	cl, _ := v5ConnectOK(t, b.Addr, long)
	v := v5Connect("park-ka5")
	v.KeepAlive = 1
	start = time.Now()
	c5, _ := v5ConnectOK(t, b.Addr, v)
	for time.Since(start) < 2*time.Second {
		time.Sleep(500 * time.Millisecond)
		c5.sync()
	}
	waitParked(t, b, 3)
	c5.v5ExpectDisconnect(packet.KeepAliveTimeout)
	cl.sync()
}

// TestParkWillOnVanish: a parked client whose socket closes without
// DISCONNECT has its will published; one that sends DISCONNECT has not.
func TestParkWillOnVanish(t *testing.T) {
	b := runBroker(t, testOptions())
	sub := client(t, b, "park-vanish-sub")
	sub.sub("park/vanish/#", 1)
	for _, clean := range []bool{false, true} {
		id := fmt.Sprintf("park-vanish-%v", clean)
		p := connectPacket(id)
		p.WillFlag = true
		p.Will = packet.Will{Topic: "park/vanish/" + id, Payload: []byte("gone"), QoS: 1}
		c, _ := connectOK(t, b.Addr, p)
		waitParked(t, b, 2)
		if clean {
			c.send(&packet.Disconnect{})
		}
		c.nc.Close()
		b.waitOffline(t, id)
	}
	got := sub.expectPublish("park/vanish/park-vanish-false", "gone")
	sub.ack(got)
	sub.sync() // and no will for the client that sent DISCONNECT [MQTT-3.1.2-10]
}

// TestParkDeliverQoS: a parked subscriber (paho) receives messages at QoS
// 0, 1 and 2, and its acknowledgements complete the flows, each time from
// parked.
func TestParkDeliverQoS(t *testing.T) {
	b := runBroker(t, testOptions())
	sub := pahoClient(t, b.Addr, "park-deliver-sub", 4, nil)
	ch := pahoMessages(t, sub, "park/deliver/#", 2, 16)
	pub := client(t, b, "park-deliver-pub")
	for round := range 2 {
		for qos := byte(0); qos <= 2; qos++ {
			waitParked(t, b, 2)
			topicName := fmt.Sprintf("park/deliver/%d", qos)
			payload := fmt.Sprintf("m%d-%d", round, qos)
			pub.publish(topicName, payload, qos, false)
			m := nextMessage(t, ch)
			if m.Topic() != topicName || string(m.Payload()) != payload || m.Qos() != qos {
				t.Fatalf("got %q %q QoS %d, want %q %q QoS %d", m.Topic(), m.Payload(), m.Qos(), topicName, payload, qos)
			}
		}
	}
	// Every flow completed: the session holds nothing in flight.
	eventually(t, "the subscriber's flows to complete", func() bool {
		info, _, ok := b.Client("park-deliver-sub")
		return ok && info.Inflight == 0
	})
}

// TestParkTakeover: a new connection with the client identifier of a
// parked one takes the session over at once [MQTT-3.1.4-3], and the
// session's subscriptions carry over.
func TestParkTakeover(t *testing.T) {
	o := testOptions()
	logs := &warnings{}
	o.Logger = slog.New(logs)
	b := runBroker(t, o)
	p := connectPacket("park-takeover")
	p.CleanStart = false
	old, _ := connectOK(t, b.Addr, p)
	old.sub("park/takeover", 1)
	waitParked(t, b, 1)
	c, ack := connectOK(t, b.Addr, p)
	if logs.has("before its old connection finished") {
		t.Error("the takeover of a parked connection waited for it in vain")
	}
	if !ack.SessionPresent {
		t.Error("session not present after takeover")
	}
	old.expectClosedSilently(waitFor)
	waitParked(t, b, 1)
	pub := client(t, b, "park-takeover-pub")
	pub.publish("park/takeover", "to the new connection", 1, false)
	c.ack(c.expectPublish("park/takeover", "to the new connection"))
}

// TestParkClose: Server.Close with many parked connections returns and
// every client sees its connection end.
func TestParkClose(t *testing.T) {
	const n = 200
	o := testOptions()
	logs := &warnings{}
	o.Logger = slog.New(logs)
	b := runBroker(t, o)
	clients := make([]*rawClient, n)
	for i := range n {
		clients[i] = client(t, b, fmt.Sprintf("park-close-%d", i))
	}
	waitParked(t, b, n)
	b.Close()
	if logs.has("did not end") {
		t.Errorf("Close waited in vain for %d parked connections", n)
	}
	for _, c := range clients {
		c.expectClosed(waitFor)
	}
	if got := b.ConnCount(); got != 0 {
		t.Errorf("%d connections left after Close", got)
	}
}

// TestParkAdminDisconnect: a parked connection the broker closes (the
// admin API's Disconnect) ends with its will published.
func TestParkAdminDisconnect(t *testing.T) {
	b := runBroker(t, testOptions())
	sub := client(t, b, "park-kick-sub")
	sub.sub("park/kick", 0)
	p := connectPacket("park-kick")
	p.WillFlag = true
	p.Will = packet.Will{Topic: "park/kick", Payload: []byte("kicked")}
	c, _ := connectOK(t, b.Addr, p)
	waitParked(t, b, 2)
	if !b.Disconnect("park-kick", false) {
		t.Fatal("DisconnectClient found no client")
	}
	c.expectClosed(waitFor)
	b.waitOffline(t, "park-kick")
	sub.expectPublish("park/kick", "kicked")
}

// warnings records the messages of warnings and errors logged.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (h *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *warnings) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *warnings) WithGroup(string) slog.Handler                { return h }
func (h *warnings) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}

func (h *warnings) has(sub string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

// TestParkProxyProtocol: a connection behind a PROXY protocol header is
// parked once what was read past the header is consumed, is served from
// parked, and has its will published when it vanishes.
func TestParkProxyProtocol(t *testing.T) {
	cfg := listener.DefaultConfig(listener.TypeTCP, "127.0.0.1:0")
	cfg.ProxyProtocol = true
	cfg.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	srv, l := serveOn(t, testOptions(), cfg, broker.ListenerOptions{Name: "proxied"})
	b := &testBroker{Server: srv, Addr: l.Addr().String()}
	sub := dialRaw(t, b.Addr)
	sub.write([]byte("PROXY TCP4 192.0.2.1 192.0.2.2 40000 1883\r\n"))
	sub.send(connectPacket("park-proxy-sub"))
	expectPacket[*packet.Connack](sub)
	sub.sub("park/proxy", 0)

	c := dialRaw(t, b.Addr)
	p := connectPacket("park-proxy")
	p.WillFlag = true
	p.Will = packet.Will{Topic: "park/proxy", Payload: []byte("gone")}
	// Header and CONNECT in one write: the bytes past the header are
	// served first, then the connection is parked.
	c.write(append([]byte("PROXY TCP4 192.0.2.3 192.0.2.2 40001 1883\r\n"), c.encode(p)...))
	expectPacket[*packet.Connack](c)
	waitParked(t, b, 2)
	c.sync()
	sub.sync()
	waitParked(t, b, 2)
	c.nc.Close()
	sub.expectPublish("park/proxy", "gone")
}

// TestParkKeepAliveZero: a client without keep-alive is served after
// each park and resume, and never cut off (the past deadline that ended
// its wait to park it does not stay).
func TestParkKeepAliveZero(t *testing.T) {
	b := runBroker(t, testOptions())
	p := connectPacket("park-ka0")
	p.KeepAlive = 0
	c, _ := connectOK(t, b.Addr, p)
	for range 3 {
		waitParked(t, b, 1)
		c.sync()
	}
}
