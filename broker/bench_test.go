package broker

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// End-to-end benchmarks: a broker in-process on 127.0.0.1:0 (or, with
// GANNET_BENCH_ADDR set, any broker, e.g. mosquitto, for a same-run
// comparison) driven by raw clients that write pre-encoded packets and count
// what arrives. Each reports messages delivered per second.

func benchAddr(b *testing.B) string {
	if addr := os.Getenv("GANNET_BENCH_ADDR"); addr != "" {
		return addr
	}
	opts := DefaultOptions()
	opts.Logger = discardLogger()
	opts.MaxQueued = 1 << 20
	opts.WriteBufferLimit = 1 << 30 // measure throughput, not the slow-consumer policy
	srv, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// rawClient is a minimal MQTT 3.1.1 client for benchmarks.
type rawClient struct {
	nc net.Conn
	r  *bufio.Reader
}

var benchClientSeq atomic.Int64

func dialRaw(tb testing.TB, addr string) *rawClient {
	tb.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	c := &rawClient{nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	id := fmt.Sprintf("bench-%d", benchClientSeq.Add(1))
	c.write(tb, &packet.Connect{Version: packet.V311, CleanStart: true, ClientID: id})
	if p := c.read(tb); p.Type() != packet.CONNACK {
		tb.Fatalf("expected CONNACK, got %v", p.Type())
	}
	return c
}

func (c *rawClient) write(tb testing.TB, p packet.Packet) {
	tb.Helper()
	b, err := p.Append(nil, packet.V311)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.nc.Write(b); err != nil {
		tb.Fatal(err)
	}
}

func (c *rawClient) read(tb testing.TB) packet.Packet {
	tb.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.nc.SetReadDeadline(time.Time{})
	p, err := readPacket(c.r, packet.V311)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// readPacket reads one whole packet from r.
func readPacket(r *bufio.Reader, version byte) (packet.Packet, error) {
	d := packet.Decoder{Version: version}
	var buf []byte
	for {
		p, n, err := d.Decode(buf)
		if err != nil || p != nil {
			return p, err
		}
		need := n - len(buf)
		if n == 0 {
			need = 1
		}
		chunk := make([]byte, need)
		if _, err := io.ReadFull(r, chunk); err != nil {
			return nil, err
		}
		buf = append(buf, chunk...)
	}
}

func (c *rawClient) subscribe(tb testing.TB, filter string, qos byte) {
	tb.Helper()
	c.write(tb, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}})
	if p := c.read(tb); p.Type() != packet.SUBACK {
		tb.Fatalf("expected SUBACK, got %v", p.Type())
	}
}

// countPublishes reads until want PUBLISH packets have arrived, acking
// QoS 1 ones, and signals done.
func (c *rawClient) countPublishes(want int64, done *sync.WaitGroup, got *atomic.Int64) {
	defer done.Done()
	var buf [64 << 10]byte
	var acks []byte
	have, off := 0, 0
	mine := int64(0)
	for mine < want {
		n, err := c.nc.Read(buf[have:])
		if err != nil {
			return
		}
		have += n
		off = 0
		for have-off >= 2 {
			total, _, err := packet.Header(buf[off:have], 0)
			if err != nil {
				return
			}
			if total == 0 || off+total > have {
				break
			}
			if buf[off]>>4 == byte(packet.PUBLISH) {
				got.Add(1)
				mine++
				if qos := buf[off] >> 1 & 3; qos == 1 {
					_, hl, _ := packet.Header(buf[off:have], 0)
					tl := int(buf[off+hl])<<8 | int(buf[off+hl+1])
					at := off + hl + 2 + tl
					acks = append(acks, byte(packet.PUBACK)<<4, 2, buf[at], buf[at+1])
				}
			}
			off += total
		}
		copy(buf[:], buf[off:have])
		have -= off
		if len(acks) > 0 {
			c.nc.Write(acks)
			acks = acks[:0]
		}
	}
}

// drain discards whatever the broker sends (PUBACKs to a publisher).
func (c *rawClient) drain() {
	io.Copy(io.Discard, c.nc)
}

type relayShape struct {
	pubs, subs int
	qos        byte
	payload    int
	topic      func(pub int) string
	filter     func(sub int) string
	perMsg     func() int // deliveries each published message causes
}

func benchRelay(b *testing.B, s relayShape) {
	addr := benchAddr(b)
	subs := make([]*rawClient, s.subs)
	for i := range subs {
		subs[i] = dialRaw(b, addr)
		subs[i].subscribe(b, s.filter(i), s.qos)
	}
	pubs := make([]*rawClient, s.pubs)
	for i := range pubs {
		pubs[i] = dialRaw(b, addr)
		go pubs[i].drain()
	}
	// b.N counts deliveries: a fan-out of 1,000 publishes b.N/1,000 messages.
	perPub := max(1, b.N/(s.pubs*s.perMsg()))
	batches := make([][]byte, s.pubs)
	payload := make([]byte, s.payload)
	for i := range pubs {
		var buf []byte
		for j := 0; j < perPub; j++ {
			p := &packet.Publish{QoS: s.qos, Topic: s.topic(i), Payload: payload}
			if s.qos > 0 {
				p.PacketID = uint16(j%65535 + 1)
			}
			buf, _ = p.Append(buf, packet.V311)
		}
		batches[i] = buf
	}
	total := int64(perPub * s.pubs * s.perMsg())
	var got atomic.Int64
	var done sync.WaitGroup
	for _, c := range subs {
		done.Add(1)
		go c.countPublishes(total/int64(s.subs), &done, &got)
	}
	b.SetBytes(int64(s.payload))
	b.ResetTimer()
	start := time.Now()
	var pw sync.WaitGroup
	for i, c := range pubs {
		pw.Add(1)
		go func() {
			defer pw.Done()
			c.nc.Write(batches[i])
		}()
	}
	pw.Wait()
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		b.Fatalf("only %d of %d messages delivered", got.Load(), total)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "msgs/s")
	for _, c := range append(subs, pubs...) {
		c.nc.Close()
	}
}

// BenchmarkPairs: 8 publisher/subscriber pairs, 64-byte QoS 0 messages.
func BenchmarkPairs(b *testing.B) {
	benchRelay(b, relayShape{pubs: 8, subs: 8, payload: 64,
		topic:  func(i int) string { return fmt.Sprintf("bench/pair/%d", i) },
		filter: func(i int) string { return fmt.Sprintf("bench/pair/%d", i) },
		perMsg: func() int { return 1 }})
}

// BenchmarkPairsQoS1: 8 pairs, 64-byte QoS 1 messages, acknowledged both ways.
func BenchmarkPairsQoS1(b *testing.B) {
	benchRelay(b, relayShape{pubs: 8, subs: 8, payload: 64, qos: 1,
		topic:  func(i int) string { return fmt.Sprintf("bench/pair/%d", i) },
		filter: func(i int) string { return fmt.Sprintf("bench/pair/%d", i) },
		perMsg: func() int { return 1 }})
}

// BenchmarkFanOut: 1 publisher to 1,000 subscribers of one topic.
func BenchmarkFanOut(b *testing.B) {
	benchRelay(b, relayShape{pubs: 1, subs: 1000, payload: 64,
		topic:  func(int) string { return "bench/fanout" },
		filter: func(int) string { return "bench/fanout" },
		perMsg: func() int { return 1000 }})
}

// BenchmarkFanIn: 1,000 publishers to 1 subscriber on a wildcard.
func BenchmarkFanIn(b *testing.B) {
	benchRelay(b, relayShape{pubs: 1000, subs: 1, payload: 64,
		topic:  func(i int) string { return fmt.Sprintf("bench/fanin/%d", i) },
		filter: func(int) string { return "bench/fanin/+" },
		perMsg: func() int { return 1 }})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
