package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// TestCrashQoS2InboundExactlyOnce kills the gannet binary with SIGKILL at
// seeded moments while a raw 3.1.1 client streams QoS 2 PUBLISHes (a
// window of them in flight) to many offline persistent subscribers. After
// each restart the publisher reconnects and does what [MQTT-4.4.0-1] asks:
// it resends every PUBLISH not answered with PUBREC (DUP, same packet
// identifier) and every PUBREL not answered with PUBCOMP. Every subscriber
// must then receive each message exactly once [MQTT-4.3.3-2]: the store
// holds the deliveries of a message and its inbound identifier together or
// not at all, so a resend is either routed (nothing of it was stored) or
// answered as a duplicate (all of it was).
//
// The fan-out makes routing one message long enough that the store's log
// reaches the file in the middle of it; a kill then keeps deliveries of a
// message whose identifier is written after them unless both are one write.
//
// The short version (one round of 4 kills) runs in every test run;
// GANNET_LONG=1 runs 8 rounds, each on a fresh data directory with seeds
// following GANNET_CRASH_SEED. GANNET_CRASH_KILLS sets the kills of a round.
func TestCrashQoS2InboundExactlyOnce(t *testing.T) {
	kills, rounds := 4, 1
	if os.Getenv("GANNET_LONG") != "" {
		rounds = 8
	}
	if s := os.Getenv("GANNET_CRASH_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	seed := int64(2)
	if s := os.Getenv("GANNET_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	for r := range rounds {
		t.Run(fmt.Sprintf("seed%d", seed+int64(r)), func(t *testing.T) { crashQoS2Round(t, seed+int64(r), kills) })
	}
}

func crashQoS2Round(t *testing.T, seed int64, kills int) {
	rng := rand.New(rand.NewSource(seed))
	const (
		subscribers = 20
		window      = 64
		topicName   = "crash/inbound/q2"
	)
	addr := "127.0.0.1:" + freePort(t)
	// Every message stays queued for the offline subscribers: none is
	// dropped by the queue limit (the long run publishes more than 10,000).
	t.Setenv("GANNET_LIMITS_MAX_QUEUED", "1000000")
	b := &childBroker{t: t, addr: addr, dir: filepath.Join(t.TempDir(), "data")}
	b.start()
	defer b.kill()

	subIDs := make([]string, subscribers)
	for i := range subIDs {
		subIDs[i] = fmt.Sprintf("q2-offline-sub-%02d", i)
		c := mustDialRaw(t, addr, subIDs[i], false)
		c.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: topicName, QoS: 2}}})
		if _, err := c.expect(packet.SUBACK, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		c.send(&packet.Disconnect{})
		c.close()
	}

	pub := &rawPublisher{t: t, addr: addr, id: "q2-raw-pub", topic: topicName, window: window,
		payload: bytes.Repeat([]byte{'x'}, 16)}
	pub.connect(false) // a persistent session from the start: its state survives [MQTT-3.1.2-4]
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- pub.run(stop) }()
	for range kills {
		time.Sleep(time.Duration(60+rng.Intn(120)) * time.Millisecond)
		b.kill() // SIGKILL at a seeded moment of the stream
		b.start()
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	published := pub.next - 1
	t.Logf("seed %d: %d kills, %d QoS 2 messages published to %d subscribers, %d resent after reconnects",
		seed, kills, published, subscribers, pub.resent)
	if published == 0 {
		t.Fatal("nothing was published")
	}

	dups, missing := 0, 0
	for _, id := range subIDs {
		got := drainRaw(t, addr, id, published)
		for seq := 1; seq <= published; seq++ {
			switch n := got[seq]; {
			case n == 0:
				missing++
			case n > 1:
				dups += n - 1
				if dups <= 5 {
					t.Errorf("%s: message %d delivered %d times", id, seq, n)
				}
			}
		}
	}
	t.Logf("duplicates %d, missing %d, over %d deliveries", dups, missing, published*subscribers)
	if dups > 0 {
		t.Errorf("%d duplicate deliveries of QoS 2 messages [MQTT-4.3.3-2]", dups)
	}
	if missing > 0 {
		t.Errorf("%d deliveries of acknowledged QoS 2 messages lost", missing)
	}
}

// rawMQTT is a bare 3.1.1 connection: it sends and reads packets as the
// test says, nothing more.
type rawMQTT struct {
	nc  net.Conn
	dec packet.Decoder
	buf []byte
}

func dialRaw(addr, id string, clean bool) (*rawMQTT, *packet.Connack, error) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, nil, err
	}
	c := &rawMQTT{nc: nc}
	c.dec.Version = packet.V311
	if err := c.sendErr(&packet.Connect{Version: packet.V311, CleanStart: clean, KeepAlive: 30, ClientID: id}); err != nil {
		nc.Close()
		return nil, nil, err
	}
	p, err := c.expect(packet.CONNACK, 5*time.Second)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	ack := p.(*packet.Connack)
	if ack.ReasonCode != 0 {
		nc.Close()
		return nil, nil, fmt.Errorf("CONNACK %v", ack.ReasonCode)
	}
	return c, ack, nil
}

func mustDialRaw(t *testing.T, addr, id string, clean bool) *rawMQTT {
	t.Helper()
	c, _, err := dialRaw(addr, id, clean)
	if err != nil {
		t.Fatalf("connecting %s: %v", id, err)
	}
	return c
}

func (c *rawMQTT) close() { c.nc.Close() }

func (c *rawMQTT) sendErr(ps ...packet.Packet) error {
	var out []byte
	for _, p := range ps {
		var err error
		if out, err = p.Append(out, packet.V311); err != nil {
			return err
		}
	}
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.nc.Write(out)
	return err
}

func (c *rawMQTT) send(ps ...packet.Packet) { c.sendErr(ps...) }

// read returns the next packet, waiting up to d.
func (c *rawMQTT) read(d time.Duration) (packet.Packet, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	for {
		if p, n, err := c.dec.Decode(c.buf); err != nil {
			return nil, err
		} else if p != nil {
			c.buf = c.buf[n:]
			return p, nil
		}
		var tmp [32 << 10]byte
		n, err := c.nc.Read(tmp[:])
		c.buf = append(c.buf, tmp[:n]...)
		if err != nil && n == 0 {
			return nil, err
		}
	}
}

func (c *rawMQTT) expect(t packet.Type, d time.Duration) (packet.Packet, error) {
	p, err := c.read(d)
	if err != nil {
		return nil, fmt.Errorf("waiting for %v: %w", t, err)
	}
	if p.Type() != t {
		return nil, fmt.Errorf("got %v, want %v", p.Type(), t)
	}
	return p, nil
}

// rawPublisher publishes QoS 2 messages numbered 1, 2, ... with up to
// window in flight, over a persistent session, and after a lost connection
// reconnects and resends what is unanswered [MQTT-4.4.0-1].
type rawPublisher struct {
	t       *testing.T
	addr    string
	id      string
	topic   string
	window  int
	payload []byte

	c      *rawMQTT
	next   int             // the next message number
	sent   map[uint16]int  // identifier -> message number, awaiting PUBREC
	rel    map[uint16]bool // identifiers awaiting PUBCOMP
	order  []uint16        // identifiers in the order first sent
	resent int             // PUBLISHes resent with DUP
	fresh  int             // new messages on this connection
}

// perConnection bounds the new messages on one connection, so that the
// subscribers' queues (and the time to drain them) stay bounded on a fast
// machine; a kill comes sooner on the usual one.
const perConnection = 2000

func (p *rawPublisher) publish(id uint16, n int, dup bool) *packet.Publish {
	pl := append([]byte(strconv.Itoa(n)+" "), p.payload...)
	return &packet.Publish{Dup: dup, QoS: 2, Topic: p.topic, PacketID: id, Payload: pl}
}

// connect (re)connects until it succeeds, and resends what is unanswered,
// in the order first sent.
func (p *rawPublisher) connect(clean bool) {
	if p.sent == nil {
		p.sent, p.rel, p.next = map[uint16]int{}, map[uint16]bool{}, 1
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, _, err := dialRaw(p.addr, p.id, clean)
		if err == nil {
			p.c, p.fresh = c, 0
			break
		}
		if time.Now().After(deadline) {
			p.t.Errorf("publisher could not reconnect: %v", err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	var resend []packet.Packet
	for _, id := range p.order {
		if n, ok := p.sent[id]; ok {
			resend = append(resend, p.publish(id, n, true))
			p.resent++
		} else if p.rel[id] {
			resend = append(resend, &packet.Pubrel{PacketID: id})
		}
	}
	if len(resend) > 0 {
		p.c.send(resend...)
	}
}

// run publishes until stop, then until every message is complete.
func (p *rawPublisher) run(stop chan struct{}) error {
	stopping := false
	lastID := uint16(0)
	for {
		if !stopping {
			select {
			case <-stop:
				stopping = true
			default:
			}
		}
		if stopping && len(p.sent) == 0 && len(p.rel) == 0 {
			p.c.send(&packet.Disconnect{})
			p.c.close()
			return nil
		}
		for !stopping && len(p.sent)+len(p.rel) < p.window && p.fresh < perConnection {
			p.fresh++
			lastID++
			if lastID == 0 {
				lastID = 1
			}
			p.sent[lastID] = p.next
			p.order = append(p.order, lastID)
			p.c.send(p.publish(lastID, p.next, false))
			p.next++
		}
		// Idle at the bound until the kill or the stop: read briefly, to
		// see the connection end.
		idle := p.fresh >= perConnection && len(p.sent)+len(p.rel) == 0 && !stopping
		wait := 10 * time.Second
		if idle {
			wait = 20 * time.Millisecond
		}
		pk, err := p.c.read(wait)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && idle {
				continue
			}
			if errors.As(err, &ne) && ne.Timeout() && !stopping {
				return fmt.Errorf("publisher: no answer for 10 s: %w", err)
			}
			p.c.close()
			p.connect(false)
			if p.c == nil {
				return errors.New("publisher: could not reconnect")
			}
			continue
		}
		switch a := pk.(type) {
		case *packet.Pubrec:
			if _, ok := p.sent[a.PacketID]; ok {
				delete(p.sent, a.PacketID)
				p.rel[a.PacketID] = true
			}
			p.c.send(&packet.Pubrel{PacketID: a.PacketID})
		case *packet.Pubcomp:
			delete(p.rel, a.PacketID)
			p.compact()
		}
	}
}

// compact drops completed identifiers from order.
func (p *rawPublisher) compact() {
	n := 0
	for _, id := range p.order {
		if _, ok := p.sent[id]; ok || p.rel[id] {
			p.order[n] = id
			n++
		}
	}
	p.order = p.order[:n]
}

// drainRaw connects the persistent session id and receives its queued
// QoS 2 messages, answering PUBREC and PUBCOMP; a PUBLISH whose identifier
// awaits PUBREL is a resend, not counted [MQTT-4.3.3-10]. It returns how
// often each message number arrived.
func drainRaw(t *testing.T, addr, id string, want int) map[int]int {
	t.Helper()
	c := mustDialRaw(t, addr, id, false)
	defer c.close()
	got := map[int]int{}
	awaiting := map[uint16]bool{}
	distinct := 0
	for {
		wait := 3 * time.Second
		if distinct >= want {
			wait = 100 * time.Millisecond // all there: make sure nothing follows
		}
		pk, err := c.read(wait)
		if err != nil {
			return got
		}
		switch p := pk.(type) {
		case *packet.Publish:
			if !awaiting[p.PacketID] {
				awaiting[p.PacketID] = true
				num, _, _ := bytes.Cut(p.Payload, []byte(" "))
				n, _ := strconv.Atoi(string(num))
				if got[n] == 0 {
					distinct++
				}
				got[n]++
			}
			c.send(&packet.Pubrec{PacketID: p.PacketID})
		case *packet.Pubrel:
			delete(awaiting, p.PacketID)
			c.send(&packet.Pubcomp{PacketID: p.PacketID})
		}
	}
}
