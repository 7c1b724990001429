package broker_test

// Protocol defects of issue 11, each with a test that failed before its fix.

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// wrongAckSetup connects a persistent 5.0 subscriber id on filter at qos,
// publishes one message to it and returns the subscriber and the PUBLISH
// it received.
func wrongAckSetup(t *testing.T, b *testBroker, id string, qos byte) (*rawClient, *packet.Publish) {
	t.Helper()
	sub, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 300))
	sub.v5Sub(0, packet.Subscription{Filter: "wrongack/" + id, QoS: qos})
	pub := v5Client(t, b, id+"-pub")
	pub.v5Pub("wrongack/"+id, "m", qos, false)
	got := sub.expectPublish("wrongack/"+id, "m")
	if got.QoS != qos {
		t.Fatalf("delivered at QoS %d, want %d", got.QoS, qos)
	}
	return sub, got
}

// Issue 11.1: a PUBACK does not complete an outgoing QoS 2 delivery: it is
// a protocol error (5.0 DISCONNECT 0x82), and the message stays
// unacknowledged until PUBREC, so the resumed session sends the PUBLISH
// again 5.0 [MQTT-4.3.3-3] 5.0 [MQTT-4.4.0-1].
func TestDefect11_1_PubackDoesNotCompleteQoS2(t *testing.T) {
	b := runBroker(t, testOptions())
	sub, got := wrongAckSetup(t, b, "wa-q2", 2)
	sub.send(&packet.Puback{PacketID: got.PacketID})
	sub.v5ExpectDisconnect(packet.ProtocolError)
	b.waitOffline(t, "wa-q2")

	again, ack := v5ConnectOK(t, b.Addr, v5Persistent("wa-q2", false, 300))
	if !ack.SessionPresent {
		t.Fatal("session not present after reconnect")
	}
	p := again.expectPublish("wrongack/wa-q2", "m") // the PUBLISH again [MQTT-4.3.3-3]
	if !p.Dup || p.PacketID != got.PacketID || p.QoS != 2 {
		t.Fatalf("resent %s, want DUP QoS 2 id %d", describe(p), got.PacketID)
	}
	again.ack(p)
	again.v5ExpectNothing()
}

// Issue 11.1: a PUBREC does not settle an outgoing QoS 1 delivery: no
// PUBREL answers it, and after a reconnect the PUBLISH (not a PUBREL) is
// sent again, until PUBACK [MQTT-4.3.2-3].
func TestDefect11_1_PubrecDoesNotSettleQoS1(t *testing.T) {
	b := runBroker(t, testOptions())
	sub, got := wrongAckSetup(t, b, "wa-q1", 1)
	sub.send(&packet.Pubrec{PacketID: got.PacketID})
	sub.v5ExpectDisconnect(packet.ProtocolError) // not PUBREL
	b.waitOffline(t, "wa-q1")

	again, _ := v5ConnectOK(t, b.Addr, v5Persistent("wa-q1", false, 300))
	p := again.expectPublish("wrongack/wa-q1", "m") // not PUBREL [MQTT-4.3.2-3]
	if !p.Dup || p.PacketID != got.PacketID || p.QoS != 1 {
		t.Fatalf("resent %s, want DUP QoS 1 id %d", describe(p), got.PacketID)
	}
	again.ack(p)
	again.v5ExpectNothing()
}

// Issue 11.1 for 3.1.1: the same wrong acknowledgements close the
// connection, and the resumed session sends the PUBLISH again.
func TestDefect11_1_WrongAckType311(t *testing.T) {
	b := runBroker(t, testOptions())
	for _, tc := range []struct {
		id    string
		qos   byte
		wrong func(id uint16) packet.Packet
	}{
		{"wa311-q2", 2, func(id uint16) packet.Packet { return &packet.Puback{PacketID: id} }},
		{"wa311-q1", 1, func(id uint16) packet.Packet { return &packet.Pubrec{PacketID: id} }},
	} {
		p := connectPacket(tc.id)
		p.CleanStart = false
		sub, _ := connectOK(t, b.Addr, p)
		sub.sub("wrongack/"+tc.id, tc.qos)
		pub := client(t, b, tc.id+"-pub")
		pub.publish("wrongack/"+tc.id, "m", tc.qos, false)
		got := sub.expectPublish("wrongack/"+tc.id, "m")
		sub.send(tc.wrong(got.PacketID))
		if extra := sub.expectClosed(waitFor); len(extra) > 0 {
			t.Fatalf("%s: got %s after a wrong acknowledgement, want the connection closed", tc.id, extra[0].Type())
		}
		b.waitOffline(t, tc.id)
		again, _ := connectOK(t, b.Addr, p)
		re := again.expectPublish("wrongack/"+tc.id, "m")
		if !re.Dup || re.PacketID != got.PacketID {
			t.Fatalf("%s: resent %s, want DUP id %d", tc.id, describe(re), got.PacketID)
		}
		again.ack(re)
		again.sync()
	}
}

// Issue 11.3: a new connection for the ClientID opened within the Will
// Delay Interval cancels the pending will, whatever its Clean Start
// 5.0 [MQTT-3.1.2-8]: the will is neither published when the Clean Start
// connection ends the old session nor later, when the delay has passed.
// (This replaces TestV5WillPublishedWhenCleanStartEndsSession, which asked
// for the opposite.)
func TestDefect11_3_V5CleanStartCancelsDelayedWill_MQTT_3_1_2_8(t *testing.T) {
	b := runBroker(t, testOptions())
	watcher := v5Client(t, b, "wd-watch")
	watcher.v5Sub(0, packet.Subscription{Filter: "wills/#", QoS: 1})

	for _, live := range []bool{false, true} {
		p := v5Persistent("wd-leaver", true, 300)
		p.WillFlag = true
		p.Will = packet.Will{Topic: "wills/leaver", Payload: []byte("gone"), QoS: 1}
		p.Will.Properties.SetUint(packet.PropWillDelay, 1)
		c, _ := v5ConnectOK(t, b.Addr, p)
		if !live {
			c.nc.Close() // abnormal end: the will waits for its delay
			b.waitOffline(t, "wd-leaver")
		} // else: taken over while connected

		n, _ := v5ConnectOK(t, b.Addr, v5Persistent("wd-leaver", true, 0)) // Clean Start 1
		watcher.v5Quiet(1500 * time.Millisecond)                           // past the 1 s delay
		n.send(&packet.Disconnect{})
		b.waitOffline(t, "wd-leaver")
	}
	watcher.v5ExpectNothing()
}

// Issue 11.2: a client that sends DISCONNECT, closes its socket and
// connects again at once with the same client identifier must not have its
// will published: its DISCONNECT deleted it (3.1.1 [MQTT-3.14.4-3],
// 5.0 [MQTT-3.1.2-10]), even when the new CONNECT is handled before the old
// connection's read loop has read that DISCONNECT. Thousands of rapid
// cycles over raw sockets, half of them with goroutines spinning on every
// core. GANNET_LONG=1 runs ten times as many.
func TestDefect11_2_NoWillAfterDisconnectOnRapidReconnect(t *testing.T) {
	cycles := 1000
	if os.Getenv("GANNET_LONG") != "" {
		cycles = 10000
	}
	b := runBroker(t, testOptions())
	watcher := v5Client(t, b, "rr-watch")
	watcher.v5Sub(0, packet.Subscription{Filter: "rr/#", QoS: 0})

	for _, v5 := range []bool{false, true} {
		name := map[bool]string{false: "3.1.1 MQTT-3.14.4-3", true: "5.0 MQTT-3.1.2-10"}[v5]
		t.Run(name, func(t *testing.T) {
			id := map[bool]string{false: "rr-311", true: "rr-5"}[v5]
			p := connectPacket(id)
			if v5 {
				p = v5Persistent(id, false, 60)
			} else {
				p.CleanStart = false
			}
			p.WillFlag = true
			p.Will = packet.Will{Topic: "rr/" + id, Payload: []byte("spurious will")}
			var wire []byte
			wire, _ = p.Append(wire, p.Version)
			var disc []byte
			disc, _ = (&packet.Disconnect{}).Append(disc, p.Version)

			stop := make(chan struct{})
			var spinners sync.WaitGroup
			load := func() {
				for range max(1, runtime.NumCPU()-1) { // one P left for the network poller
					spinners.Add(1)
					go func() {
						defer spinners.Done()
						for x := 0; ; x++ {
							select {
							case <-stop:
								return
							default:
							}
							for range 20000 { // some tens of microseconds
								x ^= x << 1
							}
							runtime.Gosched() // busy, yet letting the broker run
						}
					}()
				}
			}
			defer func() { close(stop); spinners.Wait() }()

			began := time.Now()
			for i := range cycles {
				if i == cycles/2 {
					t.Logf("%d cycles in %v", i, time.Since(began))
					load() // the second half under CPU load
				}
				nc, err := net.DialTimeout("tcp", b.Addr, waitFor)
				if err != nil {
					t.Fatalf("cycle %d: dial: %v", i, err)
				}
				nc.SetDeadline(time.Now().Add(waitFor))
				if _, err := nc.Write(wire); err != nil {
					t.Fatalf("cycle %d: CONNECT: %v", i, err)
				}
				var ack [64]byte
				if n, err := nc.Read(ack[:]); err != nil || n < 4 || ack[0] != 0x20 || ack[3] != 0 {
					t.Fatalf("cycle %d: CONNACK % x: %v", i, ack[:n], err)
				}
				if _, err := nc.Write(disc); err != nil {
					t.Fatalf("cycle %d: DISCONNECT: %v", i, err)
				}
				nc.Close() // and at once the next CONNECT, same client identifier
			}
			t.Logf("%d cycles in %v", cycles, time.Since(began))
			b.waitOffline(t, id)
		})
	}
	time.Sleep(quiet) // a will goes out after the session is released
	var spurious int
	for {
		p, err := watcher.read(quiet)
		if err != nil {
			break
		}
		if pub, ok := p.(*packet.Publish); ok {
			spurious++
			if spurious == 1 {
				t.Errorf("will %s published although the client sent DISCONNECT", describe(pub))
			}
		}
	}
	if spurious > 0 {
		t.Errorf("%d spurious wills in %d cycles per version (3.1.1 [MQTT-3.14.4-3], 5.0 [MQTT-3.1.2-10])", spurious, cycles)
	}
}

// writesAfterError writes n small QoS 0 PUBLISH packets, 10 ms apart, as
// a client would that has not yet noticed its error, and returns the first
// write error.
func writesAfterError(c *rawClient, n int) error {
	pub := c.encode(&packet.Publish{Topic: "still/sending", Payload: make([]byte, 200)})
	for i := range n {
		if err := c.write(pub); err != nil {
			return fmt.Errorf("write %d after the error: %w", i+1, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// Issue 11.4: after its final packet (here DISCONNECT 0x93, the client
// having exceeded the Receive Maximum with QoS 2 publishes) the broker
// shuts down its write side and reads and discards input for a while, so
// that a client still sending does not get a reset: its writes succeed and
// it reads the reason code [MQTT-3.14.4-1] [MQTT-4.13.1-1] (5.0 4.9).
func TestDefect11_4_ReasonCodeNotLostInReset(t *testing.T) {
	o := testOptions()
	o.ReceiveMaximum = 2
	b := runBroker(t, o)
	c, _ := v5ConnectOK(t, b.Addr, v5Connect("linger-rm"))
	var qos2 []packet.Packet
	for id := uint16(1); id <= 3; id++ { // PUBREL never sent: the 3rd exceeds
		qos2 = append(qos2, &packet.Publish{Topic: "lg", Payload: []byte("x"), QoS: 2, PacketID: id})
	}
	c.send(qos2...)
	b.waitOffline(t, "linger-rm") // the broker has ended the connection
	if err := writesAfterError(c, 10); err != nil {
		t.Fatalf("%v: the broker closed without reading, so a client gets a reset instead of its reason code", err)
	}
	got := c.expectClosed(waitFor)
	if len(got) != 3 || got[2].Type() != packet.DISCONNECT || got[2].(*packet.Disconnect).ReasonCode != packet.ReceiveMaximumExceeded {
		t.Fatalf("got %d packets, want PUBREC, PUBREC, DISCONNECT 0x93", len(got))
	}
}

// Issue 11.4 for a CONNACK refusal: a client that sends on after a refused
// CONNECT still reads the refusal [MQTT-3.2.2-5].
func TestDefect11_4_ConnackRefusalNotLostInReset(t *testing.T) {
	b := runBroker(t, testOptions())
	base := b.ConnCount()
	for _, v5 := range []bool{false, true} {
		var c *rawClient
		p := connectPacket("")
		p.CleanStart = false // 3.1.1: refused with 0x02 [MQTT-3.1.3-8]
		if v5 {
			c = v5Dial(t, b.Addr)
			p = v5Connect("linger-auth")
			p.Properties.SetString(packet.PropAuthMethod, "no-such-method") // 0x8C [MQTT-4.12.0-1]
		} else {
			c = dialRaw(t, b.Addr)
		}
		c.send(p)
		eventually(t, "the refused connection to end", func() bool { return b.ConnCount() == base })
		if err := writesAfterError(c, 10); err != nil {
			t.Fatalf("v5 %v: %v: a client gets a reset instead of its CONNACK", v5, err)
		}
		ack := expectPacket[*packet.Connack](c)
		if ack.ReasonCode == packet.Success {
			t.Fatal("CONNECT accepted")
		}
		c.expectClosed(waitFor)
	}
}

// Issue 11.4, bounded: many connections ending in an error at once each
// linger at most about a second on the goroutine they already had, never
// more than MaxLingering of them, and all are gone afterwards.
func TestDefect11_4_LingerBounded(t *testing.T) {
	o := testOptions()
	o.ReceiveMaximum = 1
	b := runBroker(t, o)
	before := runtime.NumGoroutine()
	const n = 200
	var clients []*rawClient
	for i := range n {
		c, _ := v5ConnectOK(t, b.Addr, v5Connect(fmt.Sprintf("lb-%d", i)))
		c.send(&packet.Publish{Topic: "lb", QoS: 2, PacketID: 1}, &packet.Publish{Topic: "lb", QoS: 2, PacketID: 2})
		clients = append(clients, c) // kept open and silent: the linger runs its full second
	}
	eventually(t, "the connections to end", func() bool { return b.ConnCount() == 0 })
	if l := b.Lingering(); l > broker.MaxLingering || l == 0 {
		t.Errorf("%d connections lingering, want between 1 and %d", l, broker.MaxLingering)
	}
	deadline := time.Now().Add(3 * time.Second) // 1 s of linger, with room for a loaded machine
	for b.Lingering() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still lingering after 3 s", b.Lingering())
		}
		time.Sleep(10 * time.Millisecond)
	}
	eventually(t, "goroutines back to where they were", func() bool { return runtime.NumGoroutine() <= before+5 })
	for _, c := range clients {
		got := c.expectClosed(waitFor)
		if len(got) == 0 || got[len(got)-1].Type() != packet.DISCONNECT {
			t.Fatal("a client did not read its DISCONNECT")
		}
	}
}
