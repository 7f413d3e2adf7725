package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []int64, q float64) int64 {
	if q >= 1 {
		return sorted[len(sorted)-1]
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(rank, 1)
	return sorted[rank-1]
}

func TestBucketsRoundTrip(t *testing.T) {
	prevHi := uint64(0)
	for i := 0; i < numBuckets; i++ {
		lo, hi := bucketRange(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d: gap or overlap", i, lo, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d = [%d,%d] but bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= subCount && float64(hi-lo+1)/float64(lo) > 1.0/halfCount+1e-12 {
			t.Fatalf("bucket %d = [%d,%d] is wider than 1/%d of its start", i, lo, hi, halfCount)
		}
		prevHi = hi
	}
	if prevHi != uint64(MaxTrackable) {
		t.Fatalf("last bucket ends at %d, want MaxTrackable %d", prevHi, MaxTrackable)
	}
}

func TestQuantileMatchesExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"uniform-small": func() int64 { return rng.Int64N(2000) },
		"lognormal-ms":  func() int64 { return int64(math.Exp(rng.NormFloat64()*0.8) * 3e6) },
		"bimodal": func() int64 {
			if rng.IntN(100) == 0 {
				return 50e6 + rng.Int64N(10e6)
			}
			return 1e6 + rng.Int64N(1e6)
		},
		"exponential": func() int64 { return int64(rng.ExpFloat64() * 5e6) },
	}
	qs := []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			vals := make([]int64, 200_000)
			for i := range vals {
				vals[i] = gen()
				h.Record(time.Duration(vals[i]))
			}
			slices.Sort(vals)
			for _, q := range qs {
				got, want := int64(h.Quantile(q)), exactQuantile(vals, q)
				tol := float64(want) / 1000 // 0.1 %
				if want < subCount {
					tol = 0
				}
				if math.Abs(float64(got-want)) > tol+0.5 {
					t.Errorf("q=%v: got %d, exact %d (tolerance %.1f)", q, got, want, tol)
				}
			}
			if h.Min() != time.Duration(vals[0]) || h.Max() != time.Duration(vals[len(vals)-1]) {
				t.Errorf("min/max %v/%v, want %v/%v", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
			}
			var sum float64
			for _, v := range vals {
				sum += float64(v)
			}
			if want := time.Duration(math.Round(sum / float64(len(vals)))); h.Mean() != want {
				t.Errorf("mean %v, want %v", h.Mean(), want)
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
	h.Record(7 * time.Millisecond)
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if got := h.Quantile(q); got != 7*time.Millisecond {
			t.Errorf("single value: Quantile(%v) = %v, want 7ms (clamped to min/max)", q, got)
		}
	}
	h.Record(-5)
	h.Record(time.Hour)
	if h.Min() != 0 || h.Max() != MaxTrackable {
		t.Errorf("clamping: min %v max %v, want 0 and %v", h.Min(), h.Max(), MaxTrackable)
	}
	if h.Count() != 3 {
		t.Errorf("count %d, want 3", h.Count())
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(nil)
	m.Merge(&Histogram{})
	if m.Count() != all.Count() || m.Min() != all.Min() || m.Max() != all.Max() || m.Mean() != all.Mean() {
		t.Fatalf("merged count/min/max/mean %d/%v/%v/%v, want %d/%v/%v/%v",
			m.Count(), m.Min(), m.Max(), m.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		if m.Quantile(q) != all.Quantile(q) {
			t.Errorf("q=%v: merged %v, single %v", q, m.Quantile(q), all.Quantile(q))
		}
	}
	if got := m.Quantile(0.5); got < 499*time.Microsecond || got > 501*time.Microsecond {
		t.Errorf("median of 1..1000 µs is %v", got)
	}
}
