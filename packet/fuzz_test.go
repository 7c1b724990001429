package packet

import (
	"bytes"
	"testing"
)

// The first byte of a fuzz input picks the decoder's Version (bits 0-1:
// 0, 3, 4, 5) and its MaxSize (bits 2-3: none, none, 64, 512); the rest is
// the bytes received.
var (
	fuzzLevels = [4]byte{0, V31, V311, V5}
	fuzzMax    = [4]int{0, 0, 64, 512}
)

func fuzzSetup(data []byte) (level byte, max int, in []byte) {
	if len(data) == 0 {
		return 0, 0, nil
	}
	return fuzzLevels[data[0]&3], fuzzMax[data[0]>>2&3], data[1:]
}

// fuzzSel returns the first byte that selects level, without MaxSize.
func fuzzSel(level byte) byte {
	for i, l := range fuzzLevels {
		if l == level {
			return byte(i)
		}
	}
	panic("fuzzSel")
}

// addSeeds seeds a fuzz corpus with every table row, a few concatenations
// and generated streams; add receives the level selector byte and the input.
func addSeeds(add func(sel byte, in []byte)) {
	var all [4][]byte
	for _, tc := range validCases {
		add(fuzzSel(tc.level), tc.raw)
		if tc.pkt.Type() == CONNECT {
			add(fuzzSel(0), tc.raw)
		}
		all[fuzzSel(tc.level)] = append(all[fuzzSel(tc.level)], tc.raw...)
	}
	for _, tc := range badCases {
		sel := fuzzSel(tc.level)
		switch tc.max {
		case 64:
			sel |= 2 << 2
		case 512:
			sel |= 3 << 2
		}
		add(sel, tc.raw)
	}
	for sel, b := range all {
		if len(b) > 0 {
			add(byte(sel), b)
		}
	}
	for _, level := range []byte{V31, V311, V5} {
		_, s := newGen(300+uint64(level)).stream(level, 8)
		add(fuzzSel(0), s) // learns the level from the CONNECT
		add(fuzzSel(level)|3<<2, s)
	}
}

// FuzzDecode decodes arbitrary bytes at each level. It must never panic; the
// Reuse and non-Reuse decoders must agree; no slice may outgrow the packet;
// and every packet decoded must re-encode (with Size exact) to bytes that
// decode back to an equal packet and re-encode to the same bytes.
func FuzzDecode(f *testing.F) {
	addSeeds(func(sel byte, in []byte) { f.Add(append([]byte{sel}, in...)) })
	f.Fuzz(func(t *testing.T, data []byte) {
		level, max, in := fuzzSetup(data)
		orig := bytes.Clone(in)
		plain := &Decoder{Version: level, MaxSize: max}
		reuse := &Decoder{Version: level, MaxSize: max, Reuse: true}
		for off := 0; off < len(in); {
			ver := plain.Version
			p, n, err := plain.Decode(in[off:])
			q, m, err2 := reuse.Decode(in[off:])
			if n != m || err != err2 || (p == nil) != (q == nil) || plain.Version != reuse.Version {
				t.Fatalf("Reuse disagrees: %s, %d, %v (level %d) and %s, %d, %v (level %d)",
					show(p), n, err, plain.Version, show(q), m, err2, reuse.Version)
			}
			if p != nil && !deepEqual(p, q) {
				t.Fatalf("Reuse disagrees:\n%s\n%s", show(p), show(q))
			}
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("error %v is not an *Error", err)
				}
				break
			}
			if p == nil {
				if n != 0 && n <= len(in)-off {
					t.Fatalf("incomplete packet of %d bytes with %d available", n, len(in)-off)
				}
				break
			}
			if n < 2 || n > len(in)-off || (max > 0 && n > max) {
				t.Fatalf("packet of %d bytes, %d available, MaxSize %d", n, len(in)-off, max)
			}
			checkSliceBounds(t, p, n)

			v := effectiveVersion(p, ver)
			enc, err := p.Append(nil, v)
			if err != nil {
				t.Fatalf("re-encode of %s at level %d: %v", show(p), v, err)
			}
			if s := p.Size(v); s != len(enc) {
				t.Fatalf("Size %d, encoded %d bytes: %s", s, len(enc), show(p))
			}
			back, k, err := (&Decoder{Version: v}).Decode(enc)
			if err != nil || k != len(enc) || !deepEqual(back, p) {
				t.Fatalf("decode of the re-encoding (% x) = %s, %d, %v\nwant %s", enc, show(back), k, err, show(p))
			}
			if again, _ := back.Append(nil, v); !bytes.Equal(again, enc) {
				t.Fatalf("encoding not stable:\n% x\n% x", enc, again)
			}
			off += n
		}
		if !bytes.Equal(in, orig) {
			t.Fatal("the decoder modified its input")
		}
	})
}

// FuzzDecodeChunked feeds the same bytes in chunks whose sizes come from the
// fuzz input: the packets, and the error that ends the stream if any, must be
// those of decoding the bytes whole [MQTT-6.0.0-2].
func FuzzDecodeChunked(f *testing.F) {
	chunkings := [][]byte{nil, {0}, {1, 2}, {6}, {0, 255, 3}}
	i := 0
	addSeeds(func(sel byte, in []byte) {
		f.Add(append([]byte{sel}, in...), chunkings[i%len(chunkings)])
		i++
	})
	f.Fuzz(func(t *testing.T, data, chunks []byte) {
		level, max, in := fuzzSetup(data)
		want, _, used, wantErr := decodeAll(&Decoder{Version: level, MaxSize: max}, in)
		for _, reuse := range []bool{false, true} {
			d := &Decoder{Version: level, MaxSize: max, Reuse: reuse}
			var buf []byte
			got, fed := 0, 0
			var gotErr error
		feed:
			for c := 0; fed < len(in); c++ {
				size := 1
				if len(chunks) > 0 {
					size = 1 + int(chunks[c%len(chunks)])
				}
				size = min(size, len(in)-fed)
				buf = append(buf, in[fed:fed+size]...)
				fed += size
				for {
					p, n, err := d.Decode(buf)
					if err != nil {
						gotErr = err
						break feed
					}
					if p == nil {
						break
					}
					if got >= len(want) || !deepEqual(p, want[got]) {
						t.Fatalf("Reuse %v: chunked packet %d = %s, not the one decoded whole", reuse, got, show(p))
					}
					got++
					buf = append(buf[:0], buf[n:]...)
				}
			}
			if got != len(want) || gotErr != wantErr {
				t.Fatalf("Reuse %v: chunked %d packets, error %v; whole %d packets (%d bytes), error %v",
					reuse, got, gotErr, len(want), used, wantErr)
			}
		}
	})
}
