package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram is an HDR-style (log-linear) latency histogram of durations in
// nanoseconds, in the spirit of HdrHistogram: values below 1024 ns are
// counted exactly; above, each power of two is split into 512 equal
// buckets, so any recorded value is known to within 1/512 (< 0.2 %) of
// itself. It uses a fixed 128 KiB of memory whatever the number of
// samples, and two histograms merge by adding counts, so every client keeps
// its own and the run merges them at the end.
//
// Values are clamped to [0, MaxTrackable]. Min, max and mean are exact.
// A Histogram is not safe for concurrent use.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64 // exact enough for a mean: float64 sums of ns
	min    int64
	max    int64
}

const (
	subBits    = 10
	subCount   = 1 << subBits // exact range, and buckets per power of two ×2
	halfCount  = subCount / 2
	maxExp     = 40 // values up to 2^40 ns (~18 min)
	numBuckets = subCount + (maxExp-subBits)*halfCount
)

// MaxTrackable is the largest value a Histogram distinguishes; larger
// values are recorded as MaxTrackable.
const MaxTrackable = time.Duration(1<<maxExp - 1)

// bucketOf returns the bucket index of v (0 <= v <= MaxTrackable).
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // >= 1
	m := v >> uint(shift)            // in [halfCount, subCount)
	return subCount + (shift-1)*halfCount + int(m-halfCount)
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	j := i - subCount
	shift := uint(j/halfCount + 1)
	m := uint64(j%halfCount + halfCount)
	return m << shift, (m+1)<<shift - 1
}

// Record adds one value.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if v > int64(MaxTrackable) {
		v = int64(MaxTrackable)
	}
	h.counts[bucketOf(uint64(v))]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min and Max are the exact smallest and largest recorded values (0 when
// empty).
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max is the exact largest recorded value (0 when empty).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the exact mean (0 when empty).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.n)))
}

// Quantile returns the value at quantile q (0..1) with the nearest-rank
// definition: the smallest recorded value v such that at least q·Count
// values are <= v. It returns the midpoint of v's bucket, clamped to the
// exact min and max, so it is within 0.1 % of the exact nearest-rank value
// (and exact below 1024 ns). Quantile(1) is Max; an empty histogram gives 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			mid := int64(lo + (hi-lo)/2)
			return time.Duration(min(max(mid, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
