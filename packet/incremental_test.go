package packet

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// headerLen returns the fixed header length of the encoded packet b.
func headerLen(b []byte) int {
	n := 2
	for b[n-1]&0x80 != 0 {
		n++
	}
	return n
}

// testStreams returns, per level, packets and their concatenated encoding:
// the valid table's rows of that level after a CONNECT, then random packets.
func testStreams() map[byte]testStream {
	out := map[byte]testStream{}
	for _, level := range []byte{V31, V311, V5} {
		var s testStream
		s.pkts, s.raw = newGen(200+uint64(level)).stream(level, 150)
		for _, p := range s.pkts {
			s.lens = append(s.lens, p.Size(level))
		}
		for _, tc := range validCases {
			if tc.level == level && tc.pkt.Type() != CONNECT {
				s.pkts = append(s.pkts, tc.pkt)
				s.raw = append(s.raw, tc.raw...)
				s.lens = append(s.lens, len(tc.raw))
			}
		}
		out[level] = s
	}
	return out
}

// testStream is a sequence of packets, their encoding one after the other,
// and the length of each.
type testStream struct {
	pkts []Packet
	raw  []byte
	lens []int
}

// TestDecodeEveryPrefix feeds the decoder every prefix of every packet of a
// stream: while the fixed header is incomplete it answers (nil, 0, nil), once
// it is complete (nil, total, nil), and the whole packet once it is there. It
// never modifies the input [MQTT-6.0.0-2].
func TestDecodeEveryPrefix(t *testing.T) {
	for level, s := range testStreams() {
		orig := bytes.Clone(s.raw)
		for _, reuse := range []bool{false, true} {
			d := &Decoder{Reuse: reuse} // Version 0: learnt from the CONNECT
			off := 0
			for i, want := range s.pkts {
				total, hdr := s.lens[i], headerLen(s.raw[off:])
				for k := 0; k < total; k++ {
					p, n, err := d.Decode(s.raw[off : off+k : off+k])
					wantN := total
					if k < hdr {
						wantN = 0
					}
					if p != nil || err != nil || n != wantN {
						t.Fatalf("level %d packet %d prefix %d/%d: Decode = %s, %d, %v; want nil, %d, nil",
							level, i, k, total, show(p), n, err, wantN)
					}
				}
				p, n, err := d.Decode(s.raw[off:])
				if err != nil || n != total || !deepEqual(p, want) {
					t.Fatalf("level %d packet %d: Decode = %s, %d, %v; want %s, %d", level, i, show(p), n, err, show(want), total)
				}
				off += n
			}
			if off != len(s.raw) {
				t.Fatalf("level %d: used %d of %d bytes", level, off, len(s.raw))
			}
			if !bytes.Equal(s.raw, orig) {
				t.Fatalf("level %d: the decoder modified its input", level)
			}
		}
	}
}

// TestDecodeChunks feeds a stream in chunks of random (seeded) sizes, the
// way a socket delivers it, and checks every packet comes out whole and equal
// [MQTT-6.0.0-2].
func TestDecodeChunks(t *testing.T) {
	for level, s := range testStreams() {
		for seed := range uint64(20) {
			r := rand.New(rand.NewPCG(seed, uint64(level)))
			maxChunk := 1 + r.IntN(64)
			for _, reuse := range []bool{false, true} {
				d := &Decoder{Reuse: reuse}
				var buf []byte
				got := 0
				for in := s.raw; len(in) > 0; {
					c := min(1+r.IntN(maxChunk), len(in))
					buf, in = append(buf, in[:c]...), in[c:]
					for {
						p, n, err := d.Decode(buf)
						if err != nil {
							t.Fatalf("level %d seed %d: packet %d: %v", level, seed, got, err)
						}
						if p == nil {
							break
						}
						if !deepEqual(p, s.pkts[got]) {
							t.Fatalf("level %d seed %d packet %d:\n got %s\nwant %s", level, seed, got, show(p), show(s.pkts[got]))
						}
						got++
						// Drop the packet the way a connection's read buffer does,
						// overwriting the bytes a Reuse packet aliased.
						buf = append(buf[:0], buf[n:]...)
					}
				}
				if got != len(s.pkts) || len(buf) != 0 {
					t.Fatalf("level %d seed %d: %d of %d packets, %d bytes left", level, seed, got, len(s.pkts), len(buf))
				}
			}
		}
	}
}

// TestMaxSizeHostileLength: a fixed header announcing the largest Remaining
// Length is refused as soon as its 5 bytes are there, with no allocation and
// without waiting for the body.
func TestMaxSizeHostileLength(t *testing.T) {
	hostile := hx("30 ff ff ff 7f")
	for _, reuse := range []bool{false, true} {
		d := &Decoder{Version: V5, MaxSize: 1024, Reuse: reuse}
		for k := range len(hostile) {
			if p, n, err := d.Decode(hostile[:k]); p != nil || n != 0 || err != nil {
				t.Fatalf("prefix %d: Decode = %v, %d, %v; want nil, 0, nil", k, p, n, err)
			}
		}
		p, n, err := d.Decode(hostile)
		if p != nil || n != 0 || !errors.Is(err, ErrPacketTooLarge) || errCode(err) != PacketTooLarge {
			t.Fatalf("Decode = %v, %d, %v; want ErrPacketTooLarge (0x95)", p, n, err)
		}
		if allocs := testing.AllocsPerRun(100, func() { d.Decode(hostile) }); allocs != 0 {
			t.Errorf("Reuse %v: refusing the hostile length allocates %v times", reuse, allocs)
		}
	}
	if total, hdr, err := Header(hostile, 1024); total != 0 || hdr != 0 || !errors.Is(err, ErrPacketTooLarge) {
		t.Errorf("Header = %d, %d, %v", total, hdr, err)
	}
	// Without MaxSize the same header is only a packet still to come.
	if p, n, err := (&Decoder{Version: V5}).Decode(hostile); p != nil || err != nil || n != 5+MaxRemainingLength {
		t.Errorf("no MaxSize: Decode = %v, %d, %v; want nil, %d, nil", p, n, err, 5+MaxRemainingLength)
	}
}

// TestMaxSizeBoundary: MaxSize counts the whole packet, fixed header included.
func TestMaxSizeBoundary(t *testing.T) {
	raw := hx("30 0a 00 03 61 2f 62 68 65 6c 6c 6f") // 12 bytes
	if p, n, err := (&Decoder{Version: V311, MaxSize: 12}).Decode(raw); p == nil || n != 12 || err != nil {
		t.Errorf("MaxSize 12: Decode = %v, %d, %v", p, n, err)
	}
	if _, _, err := (&Decoder{Version: V311, MaxSize: 11}).Decode(raw); !errors.Is(err, ErrPacketTooLarge) {
		t.Errorf("MaxSize 11: err = %v, want ErrPacketTooLarge", err)
	}
	// The refusal comes from the header alone: the body need not be there.
	if _, _, err := (&Decoder{Version: V311, MaxSize: 11}).Decode(raw[:2]); !errors.Is(err, ErrPacketTooLarge) {
		t.Errorf("MaxSize 11, header only: err = %v, want ErrPacketTooLarge", err)
	}
}

// TestVarintExamples: the Remaining Length boundaries of 5.0 section 1.5.5
// (3.1.1 section 2.2.3), decoded by Header and encoded by appendVarint.
func TestVarintExamples(t *testing.T) {
	for _, tc := range []struct {
		v   int
		enc []byte
	}{
		{0, hx("00")}, {127, hx("7f")}, {128, hx("80 01")}, {16383, hx("ff 7f")},
		{16384, hx("80 80 01")}, {2097151, hx("ff ff 7f")}, {2097152, hx("80 80 80 01")},
		{268435455, hx("ff ff ff 7f")},
	} {
		if got := appendVarint(nil, tc.v); !bytes.Equal(got, tc.enc) || varintLen(tc.v) != len(tc.enc) {
			t.Errorf("%d: appendVarint = % x (len %d), want % x", tc.v, got, varintLen(tc.v), tc.enc)
		}
		total, hdr, err := Header(cat([]byte{0x30}, tc.enc), 0)
		if err != nil || hdr != 1+len(tc.enc) || total != hdr+tc.v {
			t.Errorf("%d: Header = %d, %d, %v", tc.v, total, hdr, err)
		}
	}
}
