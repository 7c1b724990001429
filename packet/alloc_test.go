package packet

import (
	"runtime"
	"testing"
)

// fill repeats unit as often as it fits in n bytes.
func fill(n int, unit []byte) []byte {
	var b []byte
	for len(b)+len(unit) <= n {
		b = append(b, unit...)
	}
	return b
}

// maxAllocFactor bounds what decoding a packet of MaxSize N may allocate:
// maxAllocFactor*N bytes, plus a constant. The worst inputs are the lists
// with the smallest elements: empty User Properties (5 bytes on the wire, 32
// in memory), one-character filters (4 bytes, 24 in memory).
const maxAllocFactor = 10

// TestDecodeAllocBound feeds packets of MaxSize bytes made of the smallest
// list elements and checks the bytes each decode allocates stay within
// maxAllocFactor*MaxSize: a hostile peer cannot make the decoder allocate
// much more than what it sent.
func TestDecodeAllocBound(t *testing.T) {
	sizes := []int{1024, 65536, 1 << 20}
	if testing.Short() {
		sizes = sizes[:2]
	}
	for _, n := range sizes {
		body := n - 6 // room for a 5-byte fixed header
		for _, tc := range []struct {
			name string
			raw  []byte
		}{
			{"PUBLISH of empty user properties", pkt(0x30, str("t"), props(fill(body-8, hx("26 00 00 00 00"))))},
			{"PUBLISH of subscription identifiers", pkt(0x30, str("t"), props(fill(body-8, hx("0b 01"))))},
			{"SUBSCRIBE of one-byte filters", pkt(0x82, hx("00 01 00"), fill(body-4, hx("00 01 61 00")))},
			{"UNSUBSCRIBE of one-byte filters", pkt(0xa2, hx("00 01 00"), fill(body-4, hx("00 01 61")))},
			{"SUBACK of reason codes", pkt(0x90, hx("00 01 00"), fill(body-4, hx("00")))},
			{"UNSUBACK of reason codes", pkt(0xb0, hx("00 01 00"), fill(body-4, hx("11")))},
			{"CONNECT of user properties", pkt(0x10, str("MQTT"), hx("05 02 00 00"), props(fill(body-20, hx("26 00 00 00 00"))), str("c"))},
		} {
			if len(tc.raw) > n {
				t.Fatalf("%s: %d bytes, over %d", tc.name, len(tc.raw), n)
			}
			for _, reuse := range []bool{false, true} {
				d := &Decoder{Version: V5, MaxSize: n, Reuse: reuse}
				if _, _, err := d.Decode(tc.raw); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				d = &Decoder{Version: V5, MaxSize: n, Reuse: reuse}
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				d.Decode(tc.raw) // the first decode: a Reuse decoder's lists are still empty
				runtime.ReadMemStats(&after)
				got := after.TotalAlloc - before.TotalAlloc
				t.Logf("MaxSize %d, %s, Reuse %v: %d bytes allocated, %.2f x MaxSize", n, tc.name, reuse, got, float64(got)/float64(n))
				limit := uint64(maxAllocFactor*n + 4096)
				if raceEnabled {
					// With the race detector, slices.Grow's append(s, make(...)...)
					// allocates the make too: every list costs twice.
					limit *= 2
				}
				if got > limit {
					t.Errorf("MaxSize %d, %s, Reuse %v: %d bytes allocated, over %d", n, tc.name, reuse, got, limit)
				}
			}
		}
	}
}

// checkSliceBounds checks that no slice of a decoded packet can hold more
// than the packet's own size n in elements, and that byte slices (which
// alias or copy the input) are no longer than n.
func checkSliceBounds(t testing.TB, p Packet, n int) {
	t.Helper()
	check := func(what string, l, c int) {
		if l > n || c > maxAllocFactor*n+64 {
			t.Fatalf("%v: %s has len %d cap %d for a packet of %d bytes", p.Type(), what, l, c, n)
		}
	}
	for _, pr := range propsOf(p) {
		check("CorrelationData", len(pr.CorrelationData), cap(pr.CorrelationData))
		check("AuthData", len(pr.AuthData), cap(pr.AuthData))
		check("User", len(pr.User), cap(pr.User))
		check("SubscriptionIDs", len(pr.SubscriptionIDs), cap(pr.SubscriptionIDs))
	}
	switch p := p.(type) {
	case *Connect:
		check("Password", len(p.Password), cap(p.Password))
		check("Will.Payload", len(p.Will.Payload), cap(p.Will.Payload))
	case *Publish:
		check("Payload", len(p.Payload), cap(p.Payload))
		if cap(p.Payload) > n {
			t.Fatalf("PUBLISH payload cap %d over the packet size %d", cap(p.Payload), n)
		}
	case *Subscribe:
		check("Subscriptions", len(p.Subscriptions), cap(p.Subscriptions))
	case *Unsubscribe:
		check("Filters", len(p.Filters), cap(p.Filters))
	case *Suback:
		check("ReasonCodes", len(p.ReasonCodes), cap(p.ReasonCodes))
	case *Unsuback:
		check("ReasonCodes", len(p.ReasonCodes), cap(p.ReasonCodes))
	}
}
