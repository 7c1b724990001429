package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram counts non-negative values (latencies in nanoseconds) in
// log-linear buckets: exact below 2^subBits, then every power of two is cut
// into 2^subBits equal buckets. A reported percentile is therefore within
// 1/2^(subBits+1) (0.4%) of the true value, and the histogram takes a fixed
// 34 KiB whatever the number of samples. Values above maxValue (about 18
// minutes) are counted as maxValue.
//
// A Histogram is not safe for concurrent use; the engine keeps one per
// shard, each under its own lock, and merges them for the report.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64 // float: a uint64 of nanoseconds overflows after 584 years of samples
	min    int64
	max    int64
}

const (
	subBits    = 7
	subCount   = 1 << subBits
	maxValue   = 1<<40 - 1        // ns, about 18 minutes
	maxShift   = 40 - 1 - subBits // the shift of maxValue's bucket
	numBuckets = subCount + (maxShift+1)*subCount
)

// bucket returns the index of v's bucket.
func bucket(v int64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 1 - subBits
	sub := int(v>>shift) - subCount
	return subCount + shift*subCount + sub
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (low, width int64) {
	if i < subCount {
		return int64(i), 1
	}
	shift := (i - subCount) / subCount
	sub := (i - subCount) % subCount
	return int64(subCount+sub) << shift, 1 << shift
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	v = min(max(v, 0), maxValue)
	h.counts[bucket(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest value recorded (0 when empty).
func (h *Histogram) Min() int64 { return h.min }

// Max returns the largest value recorded (0 when empty).
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the mean of the values recorded (0 when empty).
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Percentile returns the value at or below which p percent of the values
// lie (p in [0, 100]): the middle of the bucket holding the ceil(p/100*n)th
// smallest value, kept within the recorded minimum and maximum (which the
// first and last rank return exactly). It returns 0 when the histogram is
// empty.
func (h *Histogram) Percentile(p float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.n)))
	switch {
	case rank <= 1:
		return h.min
	case rank >= h.n:
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, width := bucketRange(i)
			return min(max(low+(width-1)/2, h.min), h.max)
		}
	}
	return h.max
}

// Summary returns the report's view of h: its count and percentiles.
func (h *Histogram) Summary() *Latency {
	if h.n == 0 {
		return nil
	}
	return &Latency{
		Samples: h.n,
		Min:     time.Duration(h.min),
		Mean:    time.Duration(h.Mean()),
		P50:     time.Duration(h.Percentile(50)),
		P90:     time.Duration(h.Percentile(90)),
		P99:     time.Duration(h.Percentile(99)),
		P999:    time.Duration(h.Percentile(99.9)),
		Max:     time.Duration(h.max),
	}
}
