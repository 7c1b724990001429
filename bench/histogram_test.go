package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// within reports whether got is within 1/256 (the bucket half-width) of want.
func within(got, want int64) bool {
	return math.Abs(float64(got-want)) <= float64(want)/256+0.5
}

func TestHistogramKnownData(t *testing.T) {
	var h Histogram
	// 1..100,000: the p-th percentile is p * 1,000.
	for v := int64(1); v <= 100000; v++ {
		h.Record(v)
	}
	for _, c := range []struct {
		p    float64
		want int64
	}{{0, 1}, {1, 1000}, {50, 50000}, {90, 90000}, {99, 99000}, {99.9, 99900}, {100, 100000}} {
		if got := h.Percentile(c.p); !within(got, c.want) {
			t.Errorf("p%v = %d, want %d within 0.4%%", c.p, got, c.want)
		}
	}
	if h.Count() != 100000 || h.Min() != 1 || h.Max() != 100000 || h.Mean() != 50000.5 {
		t.Errorf("count %d min %d max %d mean %v", h.Count(), h.Min(), h.Max(), h.Mean())
	}
}

func TestHistogramExactBelow128(t *testing.T) {
	var h Histogram
	for _, v := range []int64{5, 5, 5, 7, 100} {
		h.Record(v)
	}
	for p, want := range map[float64]int64{20: 5, 60: 5, 61: 7, 80: 7, 81: 100, 100: 100} {
		if got := h.Percentile(p); got != want {
			t.Errorf("p%v = %d, want %d", p, got, want)
		}
	}
}

// TestHistogramBimodal: 99% fast, 1% slow, as latencies often are.
func TestHistogramBimodal(t *testing.T) {
	var h Histogram
	for range 9900 {
		h.Record(int64(200 * time.Microsecond))
	}
	for range 100 {
		h.Record(int64(50 * time.Millisecond))
	}
	s := h.Summary()
	if !within(int64(s.P50), int64(200*time.Microsecond)) || !within(int64(s.P99), int64(200*time.Microsecond)) ||
		!within(int64(s.P999), int64(50*time.Millisecond)) || s.Max != 50*time.Millisecond {
		t.Errorf("summary %+v", s)
	}
}

// TestHistogramRandom compares with exact percentiles of random data
// spread over seven orders of magnitude.
func TestHistogramRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]int64, 200000)
	for i := range vals {
		vals[i] = int64(math.Exp(r.Float64() * 16)) // 1ns .. ~9ms
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, p := range []float64{50, 90, 99, 99.9} {
		want := vals[int(math.Ceil(p/100*float64(len(vals))))-1]
		if got := h.Percentile(p); !within(got, want) {
			t.Errorf("p%v = %d, want %d", p, got, want)
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for v := int64(0); v < 10000; v++ {
		if v%3 == 0 {
			a.Record(v * 1000)
		} else {
			b.Record(v * 1000)
		}
		all.Record(v * 1000)
	}
	a.Merge(&b)
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Errorf("merged %d/%d/%d, want %d/%d/%d", a.Count(), a.Min(), a.Max(), all.Count(), all.Min(), all.Max())
	}
	for _, p := range []float64{50, 99, 99.9} {
		if a.Percentile(p) != all.Percentile(p) {
			t.Errorf("p%v: merged %d, whole %d", p, a.Percentile(p), all.Percentile(p))
		}
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Percentile(50) != 0 || h.Summary() != nil || h.Mean() != 0 {
		t.Error("empty histogram")
	}
	h.Record(-5)
	h.Record(1 << 50)
	if h.Min() != 0 || h.Max() != maxValue || h.Percentile(100) != maxValue {
		t.Errorf("clamping: min %d max %d p100 %d", h.Min(), h.Max(), h.Percentile(100))
	}
	// Buckets tile the range: each starts where the previous ends.
	next := int64(0)
	for i := range numBuckets {
		low, width := bucketRange(i)
		if low != next || bucket(low) != i || bucket(low+width-1) != i {
			t.Fatalf("bucket %d: [%d, +%d), expected to start at %d", i, low, width, next)
		}
		next = low + width
	}
	if next != maxValue+1 {
		t.Errorf("buckets end at %d, want %d", next, int64(maxValue+1))
	}
}

func TestHistogramSize(t *testing.T) {
	if size := unsafe.Sizeof(Histogram{}); size > 40<<10 {
		t.Errorf("a histogram takes %d bytes", size)
	}
}
