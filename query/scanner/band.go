package scanner

import (
	"cmp"
	"math"
	"slices"
	"sync"
)

// maxDrift caps the drift correction of a band's centre (±20 %): clustered
// spikes must not move it further.
const maxDrift = 0.2

// madScale makes the MAD of a normal sample estimate its standard
// deviation.
const madScale = 1.4826

// point is one value of a series, with the weekday (0 = Sunday, UTC) it
// belongs to.
type point struct {
	V  float64 `json:"v"`
	WD int8    `json:"w"`
}

// series is the recent history of one banded quantity.
type series struct {
	Points []point `json:"p"`
	// memo keeps band's work on each weekday group between calls (not
	// stored: the first band after a load computes it). Only add may
	// change Points while a memo is kept.
	memo *bandMemo
}

// bandMemo is what band computed from each weekday group's values alone,
// for the Window and NotWeekly it was computed with. add invalidates the
// group it adds a point to and the groups of the points it drops, so a
// band after an add recomputes one group of seven; the band is the same
// as without the memo (TestBandMemo). Its numbers are in one allocation:
// the series are many and each is read about once a day, so band's cost
// is mostly cache misses.
type bandMemo struct {
	window    int
	notWeekly bool
	valid     [7]bool
	n, ndev   [7]int32
	v0, gm0   [7]float64 // the group's newest value, and the median of the others
	dev       []float64  // group g's deviations at [g*window, g*window+ndev[g])
}

// memoFor returns the memo of s for o, a new one when it was computed
// with other options.
func (s *series) memoFor(o BandOptions) *bandMemo {
	m := s.memo
	if m == nil || m.window != o.Window || m.notWeekly != o.NotWeekly {
		m = &bandMemo{window: o.Window, notWeekly: o.NotWeekly, dev: make([]float64, 7*o.Window)}
		s.memo = m
	}
	return m
}

// invalidate forgets the memo of the group of a point of weekday wd.
func (m *bandMemo) invalidate(wd int8) {
	if m.notWeekly {
		wd = 0
	}
	if wd >= 0 && wd <= 6 {
		m.valid[wd] = false
	}
}

// keep is how many points a series holds for o.
func keep(o BandOptions) int {
	if o.NotWeekly {
		return o.Window
	}
	return o.Window * 7
}

// band computes the expected band for a value on weekday wd; ok is false
// while there are fewer than MinPoints comparable points.
//
// The centre is the median of the last Window comparable points (same
// weekday unless NotWeekly), corrected for drift: the median of the
// relative deviations of the last 7 points from the median of the older
// points of their weekday says how far the level moved since the middle
// of the window (a trend would otherwise lag by Window/2 weeks); it is
// applied only when at least 5 of those 7 deviations have the same sign,
// so a short outage or spike does not drag the centre, and it is capped
// at ±maxDrift. The
// spread is pooled over the whole series: each point's relative deviation
// from the median of the other points of its weekday group (leave-one-out),
// whose median (MAD, scaled by 1.4826) estimates the relative standard
// deviation from up to 7·Window points instead of Window. The half-width
// is K·σ·√(1+π/(2n)): the centre's own error (median of n points) counts.
func (s *series) band(o BandOptions, wd int8) (Band, bool) {
	sc := bandScratchPool.Get().(*bandScratch)
	defer bandScratchPool.Put(sc)
	groups := &sc.groups
	for g := range groups {
		groups[g] = groups[g][:0]
	}
	for i := len(s.Points) - 1; i >= 0; i-- {
		g := s.Points[i].WD
		if o.NotWeekly {
			g = 0
		}
		if g < 0 || g > 6 || len(groups[g]) >= o.Window {
			continue
		}
		groups[g] = append(groups[g], bandPoint{i, s.Points[i].V})
	}
	own := wd
	if o.NotWeekly {
		own = 0
	}
	if own < 0 || own > 6 || len(groups[own]) < o.MinPoints {
		return Band{}, false
	}
	n := len(groups[own])
	vals := sc.vals[:0]
	for _, p := range groups[own] {
		vals = append(vals, p.v)
	}
	med := median(vals)
	dev, recent := sc.dev[:0], sc.recent[:0]
	defer func() { sc.vals, sc.dev, sc.recent = vals, dev, recent }()
	memo := s.memoFor(o)
	for gi, g := range groups {
		if len(g) < 3 {
			continue
		}
		if !memo.valid[gi] || memo.n[gi] != int32(len(g)) || math.Float64bits(memo.v0[gi]) != math.Float64bits(g[0].v) {
			// The median of the other points of the group (leave-one-out),
			// read off the sorted group: the same operands as sorting the
			// others, without sorting once per point.
			sc.sortRanks(g)
			gd := memo.dev[gi*memo.window : gi*memo.window : (gi+1)*memo.window]
			for i, p := range g {
				gm := medianWithout(sc.sorted, sc.rank[i])
				if i == 0 {
					memo.gm0[gi] = gm
				}
				if gm == 0 {
					continue
				}
				gd = append(gd, math.Abs(p.v-gm)/math.Abs(gm))
			}
			memo.valid[gi], memo.n[gi], memo.ndev[gi], memo.v0[gi] = true, int32(len(g)), int32(len(gd)), g[0].v
		}
		// (The order of dev and recent does not matter: only their
		// medians and signs are read.)
		dev = append(dev, memo.dev[gi*memo.window:gi*memo.window+int(memo.ndev[gi])]...)
		if g[0].pos >= len(s.Points)-7 && memo.gm0[gi] != 0 {
			// The newest point of its group, against the older ones.
			recent = append(recent, g[0].v/memo.gm0[gi]-1)
		}
	}
	if len(recent) >= 3 && sameSign(recent) >= (5*len(recent)+6)/7 {
		// Only a consistent move (5 of 7 recent points on one side) is
		// drift; a few days of outage or spike are not.
		med *= 1 + math.Max(-maxDrift, math.Min(maxDrift, median(recent)))
	}
	half := 0.0
	if len(dev) > 0 {
		half = o.K * madScale * medianSelect(dev) * math.Abs(med) * math.Sqrt(1+math.Pi/2/float64(n))
	}
	if f := o.MinRelWidth * math.Abs(med); half < f {
		half = f
	}
	return Band{Low: med - half, High: med + half, Median: med, Points: n}, true
}

// bandPoint is a point of a weekday group, with its position in the
// series.
type bandPoint struct {
	pos int
	v   float64
}

// bandScratch holds band's buffers between calls.
type bandScratch struct {
	groups                    [7][]bandPoint
	vals, dev, recent, sorted []float64
	rank, idx                 []int
}

var bandScratchPool = sync.Pool{New: func() any { return new(bandScratch) }}

// sortRanks sets sc.sorted to the values of g in ascending order and
// sc.rank[i] to the position of g[i] among them (ties in g's order).
func (sc *bandScratch) sortRanks(g []bandPoint) {
	sc.idx = sc.idx[:0]
	for i := range g {
		sc.idx = append(sc.idx, i)
	}
	// A stable insertion sort: groups hold at most Window points.
	for i := 1; i < len(sc.idx); i++ {
		x := sc.idx[i]
		j := i
		for ; j > 0 && cmp.Less(g[x].v, g[sc.idx[j-1]].v); j-- {
			sc.idx[j] = sc.idx[j-1]
		}
		sc.idx[j] = x
	}
	sc.sorted = sc.sorted[:0]
	sc.rank = slices.Grow(sc.rank[:0], len(g))[:len(g)]
	for r, i := range sc.idx {
		sc.sorted = append(sc.sorted, g[i].v)
		sc.rank[i] = r
	}
}

// medianWithout is the median of sorted without its element at k, as
// median computes it.
func medianWithout(sorted []float64, k int) float64 {
	at := func(j int) float64 {
		if j >= k {
			j++
		}
		return sorted[j]
	}
	n := len(sorted) - 1
	if n%2 == 1 {
		return at(n / 2)
	}
	return (at(n/2-1) + at(n/2)) / 2
}

// add appends a point, dropping the oldest beyond keep(o).
func (s *series) add(o BandOptions, v float64, wd int8) {
	m := s.memo
	if m != nil && (m.window != o.Window || m.notWeekly != o.NotWeekly) {
		s.memo, m = nil, nil
	}
	s.Points = append(s.Points, point{V: v, WD: wd})
	if m != nil {
		m.invalidate(wd)
	}
	if n := keep(o); len(s.Points) > n {
		if m != nil {
			for _, p := range s.Points[:len(s.Points)-n] {
				m.invalidate(p.WD)
			}
		}
		s.Points = slices.Delete(s.Points, 0, len(s.Points)-n)
	}
}

// median of vals (reordered in place).
func median(vals []float64) float64 {
	slices.Sort(vals)
	n := len(vals)
	if n%2 == 1 {
		return vals[n/2]
	}
	return (vals[n/2-1] + vals[n/2]) / 2
}

// medianSelect is median(vals) by selection instead of sorting (vals is
// reordered): the same order statistics, so the same value bit for bit
// when equal values have equal bits (no -0 beside 0: band passes
// absolute relative deviations).
func medianSelect(vals []float64) float64 {
	n := len(vals)
	k := n / 2
	selectNth(vals, k)
	if n%2 == 1 {
		return vals[k]
	}
	lo := vals[0] // the largest of vals[:k]: the lower middle value
	for _, v := range vals[1:k] {
		if cmp.Less(lo, v) {
			lo = v
		}
	}
	return (lo + vals[k]) / 2
}

// selectNth reorders v so that v[k] is the value sorting would put there,
// with no larger value before it and no smaller after (cmp.Less order).
func selectNth(v []float64, k int) {
	lo, hi := 0, len(v)-1
	for hi > lo {
		// Median-of-three pivot, moved to hi; Lomuto partition.
		mid := lo + (hi-lo)/2
		if cmp.Less(v[mid], v[lo]) {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if cmp.Less(v[hi], v[lo]) {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if cmp.Less(v[mid], v[hi]) {
			v[mid], v[hi] = v[hi], v[mid]
		}
		p := v[hi]
		i := lo
		for j := lo; j < hi; j++ {
			if cmp.Less(v[j], p) {
				v[i], v[j] = v[j], v[i]
				i++
			}
		}
		v[i], v[hi] = v[hi], v[i]
		switch {
		case k < i:
			hi = i - 1
		case k > i:
			lo = i + 1
		default:
			return
		}
	}
}

// outside reports whether v is outside b.
func outside(b Band, v float64) bool { return v < b.Low || v > b.High }

// bandSeverity is medium, or high when v is more than twice the band's
// half-width from the median.
func bandSeverity(b Band, v float64) Severity {
	if half := (b.High - b.Low) / 2; half > 0 && math.Abs(v-b.Median) > 2*half {
		return SeverityHigh
	}
	return SeverityMedium
}

// sameSign is the larger of the counts of positive and negative values.
func sameSign(vals []float64) int {
	pos, neg := 0, 0
	for _, v := range vals {
		switch {
		case v > 0:
			pos++
		case v < 0:
			neg++
		}
	}
	return max(pos, neg)
}
