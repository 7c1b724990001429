package cluster

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/gannet-mqtt/gannet/packet"
)

// testFrame builds a live frame as the forwarder sends it.
func testFrame(t testing.TB, origin string, seq uint64, streamSeqs []uint64, ps ...*packet.Publish) []byte {
	t.Helper()
	var fw forwarder
	fw.init(origin)
	buf := make([]byte, fw.room)
	for i, p := range ps {
		buf = binary.AppendUvarint(buf, streamSeqs[i])
		var err error
		if buf, err = appendRouted(buf, p); err != nil {
			t.Fatal(err)
		}
	}
	return buf[fw.putHead(buf, seq):]
}

// A frame reads back as its origin, its number and its messages in order,
// each with its stream sequence and 5.0 properties.
func TestFrameRoundTrip(t *testing.T) {
	p1 := &packet.Publish{Topic: "a/b", Payload: []byte("one")}
	p2 := &packet.Publish{Topic: "a/b", Payload: []byte("two"), QoS: 1}
	p2.Properties.User = []packet.UserProperty{{Key: "k", Value: "v"}}
	p3 := &packet.Publish{Topic: "a/b", Payload: bytes.Repeat([]byte{'x'}, 300), Retain: true}
	b := testFrame(t, "n1-origin", 1<<40, []uint64{0, 77, 0}, p1, p2, p3)
	origin, seq, rest, ok, err := frameHead(b)
	if !ok || err != nil || string(origin) != "n1-origin" || seq != 1<<40 {
		t.Fatalf("frameHead = %q, %d, %v, %v", origin, seq, ok, err)
	}
	d := &packet.Decoder{Version: packet.V5, Reuse: true}
	for i, want := range []struct {
		payload string
		stream  uint64
		qos     byte
		retain  bool
		user    int
	}{{"one", 0, 0, false, 0}, {"two", 77, 1, false, 1}, {string(p3.Payload), 0, 0, true, 0}} {
		p, s, next, done, err := nextPacket(d, rest)
		if done || err != nil {
			t.Fatalf("message %d: done %v, error %v", i, done, err)
		}
		if p.Topic != "a/b" || string(p.Payload) != want.payload || s != want.stream || p.QoS != want.qos || p.Retain != want.retain || len(p.Properties.User) != want.user {
			t.Fatalf("message %d: %q %q QoS %d retain %v user %v, stream %d", i, p.Topic, p.Payload, p.QoS, p.Retain, p.Properties.User, s)
		}
		rest = next
	}
	if _, _, _, done, err := nextPacket(d, rest); !done || err != nil {
		t.Fatalf("after the last message: done %v, error %v", done, err)
	}
	// A routed message without frame (shared.go) is not a frame.
	plain, err := encode(p1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok, err := frameHead(plain); ok || err != nil {
		t.Fatalf("a bare PUBLISH read as a frame: %v, %v", ok, err)
	}
}

// Whatever another node sends, reading it ends without a panic and
// always moves on.
func FuzzFrame(f *testing.F) {
	f.Add(testFrame(f, "n1-x", 3, []uint64{0, 9}, &packet.Publish{Topic: "t", Payload: []byte("p")}, &packet.Publish{Topic: "t", QoS: 2}))
	f.Add([]byte{frameMark})
	f.Add([]byte{frameMark, 200, 1})
	f.Add([]byte{frameMark, 0, 1, 0, 0x30, 0x02, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, rest, ok, err := frameHead(b)
		if !ok || err != nil {
			return
		}
		d := &packet.Decoder{Version: packet.V5, Reuse: true}
		for {
			_, _, next, done, err := nextPacket(d, rest)
			if done || err != nil {
				return
			}
			if len(next) >= len(rest) {
				t.Fatalf("no progress at % x", rest)
			}
			rest = next
		}
	})
}

// recordBatch is an InboundBatch that records what it is given.
type recordBatch struct{ got []string }

func (r *recordBatch) Deliver(p *packet.Publish, share, filter string) {
	r.got = append(r.got, string(p.Payload))
}

func (r *recordBatch) DeliverSeq(p *packet.Publish, share, filter string, seq uint64) {
	r.got = append(r.got, string(p.Payload))
}

func (r *recordBatch) Flush() {}

// A node whose dispatch queue holds more messages than it has places
// drops the QoS 0 messages of the frames it takes, and keeps the QoS 1/2
// ones; a node that keeps up delivers them all, in order.
func TestFrameShedsQoS0WhenBehind(t *testing.T) {
	ps := []*packet.Publish{
		{Topic: "s", Payload: []byte("a")},
		{Topic: "s", Payload: []byte("b"), QoS: 1},
		{Topic: "s", Payload: []byte("c")},
	}
	frame := testFrame(t, "n2-x", 1, []uint64{0, 5, 0}, ps...)
	_, _, rest, _, _ := frameHead(frame)
	c := &Cluster{log: slog.New(slog.DiscardHandler), msgs: make(chan *nats.Msg, 4)}
	dec := &packet.Decoder{Version: packet.V5, Reuse: true}

	var keeps recordBatch
	c.dispatchFrame("gannet.t.m.s", rest, "g", "$share/g/s", dec, newLedger(0), &keeps)
	if got := strings.Join(keeps.got, ","); got != "a,b,c" {
		t.Fatalf("keeping up: delivered %q, want a,b,c", got)
	}
	for range cap(c.msgs) {
		c.msgs <- &nats.Msg{}
	}
	c.fwd.inAvg = 16 * 100 // frames of 100 messages: 400 waiting for 4 places
	var behind recordBatch
	c.dispatchFrame("gannet.t.m.s", rest, "g", "$share/g/s", dec, newLedger(0), &behind)
	if got := strings.Join(behind.got, ","); got != "b" || c.fwd.shed.Load() != 2 {
		t.Fatalf("behind: delivered %q and dropped %d, want b and 2 QoS 0 ones dropped", got, c.fwd.shed.Load())
	}
}

// A message that would make its topic's frame larger than the NATS
// server's largest message goes out alone, after the frame before it,
// rather than failing with it.
func TestFrameSplitsAtMaxPayload(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, MaxPayload: 2048, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.SetLoggerV2(natsLogger{slog.New(slog.DiscardHandler)}, false, false, false)
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got := make(chan *nats.Msg, 10)
	if _, err := nc.ChanSubscribe("gannet.t.m.>", got); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{log: slog.New(slog.DiscardHandler), nc: nc, prefix: "gannet.t.", origin: "n1-x"}
	c.fwd.init(c.origin)
	c.fwd.maxPayload = nc.MaxPayload()
	for i := range 10 { // about 1,000 bytes: one frame, waiting for the flusher
		if err := c.forward(&packet.Publish{Topic: "big", Payload: bytes.Repeat([]byte{byte('0' + i)}, 90)}, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.forward(&packet.Publish{Topic: "big", Payload: bytes.Repeat([]byte{'L'}, 1500)}, nil, 0); err != nil {
		t.Fatalf("a message that does not fit its frame: %v", err)
	}
	c.pubMu.Lock()
	err = c.flushLocked()
	c.pubMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	var payloads []string
	for range 2 {
		select {
		case m := <-got:
			_, _, rest, _, _ := frameHead(m.Data)
			d := &packet.Decoder{Version: packet.V5}
			var in []string
			for {
				p, _, next, done, err := nextPacket(d, rest)
				if done || err != nil {
					break
				}
				in = append(in, string(p.Payload[:1]))
				rest = next
			}
			payloads = append(payloads, strings.Join(in, ""))
		case <-time.After(5 * time.Second):
			t.Fatalf("frames received: %q, want 2", payloads)
		}
	}
	if payloads[0] != "0123456789" || payloads[1] != "L" {
		t.Fatalf("frames %q, want the ten small messages, then the large one alone", payloads)
	}
}
