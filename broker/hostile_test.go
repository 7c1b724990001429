package broker_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// Random garbage, before or after a valid CONNECT, ends in a closed
// connection (at the latest by the connect timeout or 1.5 x keep alive), and
// the broker goes on serving.
func TestHostileGarbage(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.ConnectTimeout = 300 * time.Millisecond
	b := runBroker(t, opts)
	t.Run("group", func(t *testing.T) {
		for seed := range uint64(16) {
			for _, afterConnect := range []bool{false, true} {
				t.Run(fmt.Sprintf("seed %d after CONNECT %v", seed, afterConnect), func(t *testing.T) {
					t.Parallel()
					r := rand.New(rand.NewPCG(seed, 0x6a6e6e6574))
					junk := make([]byte, 1+r.IntN(600))
					for i := range junk {
						junk[i] = byte(r.Uint32())
					}
					var c *rawClient
					if afterConnect {
						p := connectPacket(fmt.Sprintf("junk-%d", seed))
						p.KeepAlive = 1
						c, _ = connectOK(t, b.Addr, p)
					} else {
						c = dialRaw(t, b.Addr)
					}
					c.write(junk)
					c.expectClosed(3 * time.Second)
				})
			}
		}
	})
	expectServing(t, b)
}

// Packets other than CONNECT first close the connection unanswered
// [MQTT-3.1.0-1], even when incomplete.
func TestHostileBeforeConnect(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	t.Run("group", func(t *testing.T) {
		for name, raw := range map[string]string{
			"PUBLISH QoS 0":  "30 04 00 01 61 78",
			"PUBLISH QoS 1":  "32 06 00 01 61 00 01 78",
			"SUBSCRIBE":      "82 06 00 01 00 01 23 00",
			"PINGREQ":        "c0 00",
			"DISCONNECT":     "e0 00",
			"CONNACK":        "20 02 00 00",
			"reserved 0":     "00 00",
			"partial header": "30",
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				c := dialRaw(t, b.Addr)
				c.write(hx(raw))
				c.expectClosedSilently(time.Second) // well before the 10 s connect timeout
			})
		}
	})
	expectServing(t, b)
}

// Malformed packets and protocol violations after CONNECT close the
// connection [MQTT-4.8.0-1], each with the statement it breaks.
func TestHostileMalformedPackets(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	cases := []struct{ name, raw string }{
		{"SUBSCRIBE flags 0 [MQTT-3.8.1-1]", "80 06 00 01 00 01 61 00"},
		{"UNSUBSCRIBE flags 0 [MQTT-3.10.1-1]", "a0 05 00 01 00 01 61"},
		{"PUBREL flags 0 [MQTT-3.6.1-1]", "60 02 00 01"},
		{"PINGREQ flags 1 [MQTT-2.2.2-2]", "c1 00"},
		{"DISCONNECT flags 1 [MQTT-3.14.1-1]", "e1 00"},
		{"PUBACK flags 2 [MQTT-2.2.2-2]", "42 02 00 01"},
		{"PUBLISH QoS 3 [MQTT-3.3.1-4]", "36 06 00 01 61 00 01 78"},
		{"PUBLISH DUP at QoS 0 [MQTT-3.3.1-2]", "38 04 00 01 61 78"},
		{"PUBLISH wildcard topic [MQTT-3.3.2-2]", "30 05 00 03 61 2f 23"},
		{"PUBLISH empty topic [MQTT-4.7.3-1]", "30 03 00 00 78"},
		{"PUBLISH QoS 1 id 0 [MQTT-2.3.1-1]", "32 05 00 01 61 00 00"},
		{"PUBLISH invalid UTF-8 [MQTT-1.5.3-1]", "30 05 00 02 c3 28 78"},
		{"PUBLISH U+0000 in topic [MQTT-1.5.3-2]", "30 04 00 02 61 00"},
		{"PUBLISH surrogate in topic [MQTT-1.5.3-1]", "30 05 00 03 ed a0 80"},
		{"SUBSCRIBE QoS 3 [MQTT-3.8.3-4]", "82 06 00 01 00 01 61 03"},
		{"SUBSCRIBE reserved bits [MQTT-3.8.3-4]", "82 06 00 01 00 01 61 04"},
		{"SUBSCRIBE no filter [MQTT-3.8.3-3]", "82 02 00 01"},
		{"SUBSCRIBE id 0 [MQTT-2.3.1-1]", "82 06 00 00 00 01 61 00"},
		{"SUBSCRIBE bad filter [MQTT-4.7.1-2]", "82 0a 00 01 00 05 61 2f 23 2f 62 00"},
		{"SUBSCRIBE bad plus [MQTT-4.7.1-3]", "82 07 00 01 00 02 61 2b 00"},
		{"UNSUBSCRIBE no filter [MQTT-3.10.3-2]", "a2 02 00 01"},
		{"reserved type 0 [MQTT-2.2.2-2]", "00 00"},
		{"AUTH in 3.1.1", "f0 00"},
		{"CONNACK from a client", "20 02 00 00"},
		{"SUBACK from a client", "90 03 00 01 00"},
		{"PINGRESP from a client", "d0 00"},
		{"PINGREQ with a body", "c0 01 00"},
		{"remaining length of 5 bytes", "30 ff ff ff ff 01"},
		{"string longer than the packet", "30 04 00 09 61 62"},
		{"second CONNECT [MQTT-3.1.0-2]", "10 0c 00 04 4d 51 54 54 04 02 00 3c 00 00"},
		{"PUBLISH QoS 2 id 0 [MQTT-2.3.1-1]", "34 05 00 01 61 00 00"},
		{"UNSUBSCRIBE bad filter [MQTT-4.7.1-2]", "a2 06 00 01 00 02 23 61"},
		{"SUBSCRIBE truncated options [MQTT-3.8.3-1]", "82 05 00 01 00 01 61"},
		{"PUBREC flags 1 [MQTT-2.2.2-2]", "51 02 00 01"},
		{"PUBCOMP with a trailing byte", "70 03 00 01 00"},
	}
	t.Run("group", func(t *testing.T) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				c := client(t, b, fmt.Sprintf("bad-%d", i))
				c.write(hx(tc.raw))
				c.expectClosedSilently(time.Second)
			})
		}
	})
	expectServing(t, b)
}

// A Remaining Length far over the maximum packet size closes the
// connection as soon as the fixed header is read, without waiting for a
// body that never comes: before CONNECT and after it.
func TestHostileHugeRemainingLength(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions()) // connect timeout 10 s, no keep alive
	start := time.Now()
	pre := dialRaw(t, b.Addr)
	pre.write(hx("10 ff ff ff 7f"))
	pre.expectClosedSilently(time.Second)

	post := client(t, b, "post")
	post.write(hx("30 ff ff ff 7f"))
	post.expectClosedSilently(time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v to close", d)
	}
	expectServing(t, b)
}

// Sockets that never send CONNECT are closed by the connect timeout, while
// a real client is served meanwhile.
func TestHostileSilentSockets(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.ConnectTimeout = 300 * time.Millisecond
	b := runBroker(t, opts)
	silent := make([]*rawClient, 20)
	for i := range silent {
		silent[i] = dialRaw(t, b.Addr)
	}
	expectServing(t, b)
	for _, c := range silent {
		c.expectClosedSilently(2 * time.Second)
	}
	eventually(t, "silent connections to be released", func() bool { return b.ConnCount() == 0 })
	expectServing(t, b)
}

// A client that sends its packets one byte per write is served: the
// decoder waits for whole packets.
func TestHostileOneBytePerWrite(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub := client(t, b, "sub")
	sub.sub("slow", 1)
	c := dialRaw(t, b.Addr)
	bytes := c.encode(connectPacket("trickle"), &packet.Publish{Topic: "slow", Payload: []byte("drip"), QoS: 1, PacketID: 5})
	for _, x := range bytes {
		if err := c.write([]byte{x}); err != nil {
			t.Fatal(err)
		}
	}
	expectPacket[*packet.Connack](c)
	expectPacket[*packet.Puback](c)
	sub.ack(sub.expectPublish("slow", "drip"))
}

// A subscriber that stops reading while a publisher floods QoS 0 messages
// neither slows the publisher nor another subscriber, and the broker holds
// at most about Options.WriteBufferLimit bytes for it: the excess QoS 0
// messages are dropped and counted. The publisher sends in batches and
// waits for the fast subscriber to get each batch, so a broker that
// blocked on the slow subscriber would stall the test at its deadline.
func TestHostileSlowSubscriber(t *testing.T) {
	opts := testOptions()
	opts.WriteBufferLimit = 64 << 10
	// Fixed, small socket send buffers on the broker's side, so that the
	// kernel does not absorb the flood and the broker's own limit is what
	// the test sees.
	b := runBrokerOn(t, opts, smallSendBuffers{listen(t)})

	slow := client(t, b, "slow")
	slow.sub("flood", 0)
	fast := client(t, b, "fast")
	fast.sub("flood", 0)
	var received atomic.Int64
	fastErr := make(chan error, 1)
	go func() {
		for {
			p, err := fast.read(20 * time.Second)
			if err != nil {
				fastErr <- err
				return
			}
			if p, ok := p.(*packet.Publish); ok && p.Topic == "flood" {
				received.Add(1)
			}
		}
	}()

	pub := client(t, b, "pub")
	const batches, perBatch = 160, 25 // a batch fits in the write buffer limit
	payload := []byte(strings.Repeat("p", 1000))
	batch := pub.encode()
	for range perBatch {
		batch = append(batch, pub.encode(&packet.Publish{Topic: "flood", Payload: payload})...)
	}
	start := time.Now()
	for i := range batches {
		if err := pub.write(batch); err != nil {
			t.Fatalf("publisher write: %v", err)
		}
		want := int64((i + 1) * perBatch)
		deadline := time.Now().Add(waitFor)
		for received.Load() < want {
			select {
			case err := <-fastErr:
				t.Fatalf("fast subscriber: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("batch %d: fast subscriber has %d of %d messages after %v", i, received.Load(), want, waitFor)
			}
			time.Sleep(time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	pub.sync()
	t.Logf("%d messages of %d bytes to the fast subscriber in %v; %d dropped for the slow one",
		batches*perBatch, len(payload), elapsed, b.Stats().DroppedSlow)
	if elapsed > 15*time.Second {
		t.Errorf("flood took %v", elapsed)
	}
	if b.Stats().DroppedSlow == 0 {
		t.Errorf("no QoS 0 message dropped for the subscriber that does not read")
	}
	if n := b.MaxPendingWrite(); n > opts.WriteBufferLimit+2*len(batch)/perBatch {
		t.Errorf("broker holds %d bytes for a client, limit %d", n, opts.WriteBufferLimit)
	}

	// The slow subscriber's stream is intact: once it reads again it
	// decodes whole packets and gets new messages.
	got := make(chan error, 1)
	go func() {
		for {
			p, err := slow.read(waitFor)
			if err != nil {
				got <- err
				return
			}
			if p, ok := p.(*packet.Publish); ok && p.Topic == "flood" && string(p.Payload) == "end" {
				got <- nil
				return
			}
		}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * waitFor)
	for {
		pub.send(&packet.Publish{Topic: "flood", Payload: []byte("end")})
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("slow subscriber after the flood: %v", err)
			}
			return
		case <-deadline:
			t.Fatalf("slow subscriber got no new message within %v of reading again", 2*waitFor)
		case <-tick.C:
		}
	}
}

// smallSendBuffers is a listener whose connections have a fixed 16 KiB
// socket send buffer (Linux doubles it), instead of one that grows to
// megabytes.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

// A fixed header that announces a large packet (within Options.
// MaxPacketSize) costs the broker memory only as the body actually
// arrives: 40 connections each announcing a 1 MiB CONNECT or PUBLISH and
// sending no more must not make the broker allocate 40 MiB.
func TestHostileAnnouncedSizeNotPreallocated(t *testing.T) {
	// Not parallel: it measures the heap.
	b := runBroker(t, testOptions()) // MaxPacketSize 1 MiB
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const conns = 40
	for i := range conns {
		var c *rawClient
		if i%2 == 0 {
			c = dialRaw(t, b.Addr)
			c.write(hx("10 f9 ff 3f")) // CONNECT of 1048573 bytes
		} else {
			c = client(t, b, fmt.Sprint("big-", i))
			c.write(hx("30 f9 ff 3f")) // PUBLISH of 1048573 bytes
		}
	}
	time.Sleep(quiet) // let the broker read the headers
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d KiB for %d connections", grown>>10, conns)
	if grown > 10<<20 {
		t.Errorf("heap grew by %d MiB for %d connections that announced 1 MiB packets and sent 4 bytes", grown>>20, conns)
	}
	expectServing(t, b)
}

// trackedListener records when the broker closes each connection, by the
// client's address.
type trackedListener struct {
	net.Listener
	mu     sync.Mutex
	closed map[string]*atomic.Bool
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed == nil {
		l.closed = make(map[string]*atomic.Bool)
	}
	tc := &trackedConn{Conn: c, closed: new(atomic.Bool)}
	l.closed[c.RemoteAddr().String()] = tc.closed
	return tc, nil
}

// isClosed reports whether the broker has closed the connection of the
// client whose local address is addr.
func (l *trackedListener) isClosed(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.closed[addr]
	return c != nil && c.Load()
}

type trackedConn struct {
	net.Conn
	closed *atomic.Bool
}

func (c *trackedConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

// A client that does not read, whose socket is full, is still cut off
// promptly when the broker closes its connection (takeover, shutdown): the
// final flush does not hold the socket and its goroutine for the 30 s
// write timeout.
func TestHostileStuckClientClosedPromptly(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"takeover", "server close"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			opts := testOptions()
			opts.WriteBufferLimit = 16 << 10
			l := &trackedListener{Listener: smallSendBuffers{listen(t)}}
			b := runBrokerOn(t, opts, l)
			stuck := client(t, b, "stuck")
			stuck.sub("flood", 0)
			pub := client(t, b, "pub")
			flood := pub.encode(&packet.Publish{Topic: "flood", Payload: make([]byte, 1000)})
			// Flood until the kernel's buffers are full and the broker
			// has been dropping for a while: its flusher is blocked.
			for b.Stats().DroppedSlow < 300 {
				pub.write(flood)
				pub.sync()
			}
			start := time.Now()
			switch how {
			case "takeover":
				client(t, b, "stuck")
			case "server close":
				b.Close()
			}
			eventually(t, "the stuck connection to be closed", func() bool { return l.isClosed(stuck.nc.LocalAddr().String()) })
			t.Logf("closed after %v", time.Since(start))
			if d := time.Since(start); d > 2500*time.Millisecond { // two writes of closeTimeout at most
				t.Errorf("closed after %v", d)
			}
		})
	}
}
