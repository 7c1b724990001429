package bench

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// replayConn serves the same chunk of bytes to reads times, then EOF, and
// swallows writes.
type replayConn struct {
	net.Conn // nil: only the methods below are used
	chunk    []byte
	reads    int
	written  int
}

func (c *replayConn) Read(b []byte) (int, error) {
	if c.reads == 0 {
		return 0, io.EOF
	}
	c.reads--
	return copy(b, c.chunk), nil
}

func (c *replayConn) Write(b []byte) (int, error)      { c.written += len(b); return len(b), nil }
func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

// publishChunk returns n QoS qos PUBLISH packets with timestamped payloads.
func publishChunk(t testing.TB, n int, qos, version byte) []byte {
	var chunk []byte
	payload := make([]byte, 64)
	for i := range n {
		ts := time.Now().UnixNano()
		for j := range 8 {
			payload[j] = byte(ts >> (56 - 8*j))
		}
		p := &packet.Publish{QoS: qos, Topic: "bench/7", Payload: payload}
		if qos > 0 {
			p.PacketID = uint16(i + 1)
		}
		if version >= packet.V5 {
			p.Properties.SetUint(packet.PropPayloadFormat, 0)
		}
		var err error
		if chunk, err = p.Append(chunk, version); err != nil {
			t.Fatal(err)
		}
	}
	return chunk
}

func subscriberOn(nc net.Conn, version byte) *client {
	cfg := DefaultConfig()
	cfg.Version = version
	e := &engine{cfg: cfg}
	return &client{e: e, role: roleSub, nc: nc, rbuf: make([]byte, bigReadBuf)}
}

// TestReadLoopAllocs: the read loop allocates nothing per read once warm,
// at QoS 0 and with acknowledgements to write.
func TestReadLoopAllocs(t *testing.T) {
	for _, tc := range []struct {
		qos, version byte
	}{{0, packet.V311}, {1, packet.V311}, {2, packet.V5}} {
		chunk := publishChunk(t, 400, tc.qos, tc.version)
		allocs := func(reads int) float64 {
			return testing.AllocsPerRun(5, func() {
				c := subscriberOn(&replayConn{chunk: chunk, reads: reads}, tc.version)
				c.readLoop()
				if got := c.received.Load(); got != uint64(400*reads) {
					t.Fatalf("received %d, want %d", got, 400*reads)
				}
			})
		}
		few, many := allocs(2), allocs(200)
		if many-few > 2 {
			t.Errorf("QoS %d, version %d: %.0f allocations for 2 reads, %.0f for 200", tc.qos, tc.version, few, many)
		}
	}
}

func TestPublishFields(t *testing.T) {
	for _, v := range []byte{packet.V311, packet.V5} {
		p := &packet.Publish{QoS: 1, Topic: "a/b", PacketID: 513, Payload: []byte("hello")}
		if v == packet.V5 {
			p.Properties.SetString(packet.PropContentType, "text/plain")
			p.Properties.SetUint(packet.PropMessageExpiry, 60)
		}
		b, _ := p.Append(nil, v)
		_, hl, _ := packet.Header(b, 0)
		qos, id, payload, ok := publishFields(b[0], b[hl:], v == packet.V5)
		if !ok || qos != 1 || id != 513 || string(payload) != "hello" {
			t.Errorf("v%d: %d %d %q %v", v, qos, id, payload, ok)
		}
		for cut := hl; cut < len(b)-len("hello"); cut++ {
			if _, _, _, ok := publishFields(b[0], b[hl:cut], v == packet.V5); ok {
				t.Errorf("v%d: accepted a body cut at %d", v, cut)
			}
		}
	}
}

// BenchmarkReadLoop measures the subscriber's cost per message received.
func BenchmarkReadLoop(b *testing.B) {
	for _, qos := range []byte{0, 1} {
		b.Run("qos"+string('0'+qos), func(b *testing.B) {
			const perRead = 800
			chunk := publishChunk(b, perRead, qos, packet.V311)
			b.ReportAllocs()
			b.SetBytes(int64(len(chunk) / perRead))
			reads := b.N/perRead + 1
			c := subscriberOn(&replayConn{chunk: chunk, reads: reads}, packet.V311)
			b.ResetTimer()
			c.readLoop()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(reads*perRead), "ns/msg")
		})
	}
}
