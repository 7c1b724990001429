package packet

import (
	"bytes"
	"testing"
)

// TestRoundTrip checks decode(encode(p)) == p for random valid packets of
// every type at every level, in both decoder modes, and that re-encoding the
// decoded packet gives the same bytes.
func TestRoundTrip(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	for _, level := range []byte{V31, V311, V5} {
		g := newGen(uint64(level))
		counts := map[Type]int{}
		for i := range n {
			p := g.packet(level)
			counts[p.Type()]++
			enc := encodeOrFail(t, p, level)
			for _, reuse := range []bool{false, true} {
				d := &Decoder{Version: level, Reuse: reuse}
				q, m, err := d.Decode(enc)
				if err != nil || q == nil || m != len(enc) {
					t.Fatalf("level %d #%d Reuse %v: decode of %s\n(% x) = %v, %d, %v", level, i, reuse, show(p), enc, q, m, err)
				}
				if !deepEqual(q, p) {
					t.Fatalf("level %d #%d Reuse %v:\n got %s\nwant %s", level, i, reuse, show(q), show(p))
				}
				if again := encodeOrFail(t, q, level); !bytes.Equal(again, enc) {
					t.Fatalf("level %d #%d: re-encoding differs:\n% x\n% x", level, i, again, enc)
				}
			}
		}
		for _, ty := range typesAt(level) {
			if counts[ty] == 0 {
				t.Errorf("level %d: no %v generated", level, ty)
			}
		}
	}
}

// TestRoundTripStream decodes a stream of packets that starts with CONNECT on
// a decoder of Version 0, which learns the level from the CONNECT.
func TestRoundTripStream(t *testing.T) {
	for _, level := range []byte{V31, V311, V5} {
		g := newGen(100 + uint64(level))
		want, stream := g.stream(level, 500)
		got, _, used, err := decodeAll(&Decoder{}, stream)
		if err != nil || used != len(stream) {
			t.Fatalf("level %d: decoded %d of %d bytes: %v", level, used, len(stream), err)
		}
		if len(got) != len(want) {
			t.Fatalf("level %d: %d packets, want %d", level, len(got), len(want))
		}
		for i := range want {
			if !deepEqual(got[i], want[i]) {
				t.Fatalf("level %d packet %d:\n got %s\nwant %s", level, i, show(got[i]), show(want[i]))
			}
		}
	}
}
