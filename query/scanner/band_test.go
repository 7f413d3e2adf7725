package scanner

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// bandBySorting is band's spread as it was first written: the
// leave-one-out median of each point by sorting the other points. band
// reads it off one sorted copy of the group; the results must be equal,
// bit for bit.
func bandBySorting(s *series, o BandOptions, wd int8) (Band, bool) {
	var groups [7][]bandPoint
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
	vals := make([]float64, n)
	for i, p := range groups[own] {
		vals[i] = p.v
	}
	med := median(vals)
	var dev, recent []float64
	for _, g := range groups {
		if len(g) < 3 {
			continue
		}
		for i, p := range g {
			var others []float64
			for j, q := range g {
				if j != i {
					others = append(others, q.v)
				}
			}
			gm := median(others)
			if gm == 0 {
				continue
			}
			dev = append(dev, math.Abs(p.v-gm)/math.Abs(gm))
			if i == 0 && p.pos >= len(s.Points)-7 {
				var older []float64
				for _, q := range g[1:] {
					older = append(older, q.v)
				}
				if om := median(older); om != 0 {
					recent = append(recent, p.v/om-1)
				}
			}
		}
	}
	if len(recent) >= 3 && sameSign(recent) >= (5*len(recent)+6)/7 {
		med *= 1 + math.Max(-maxDrift, math.Min(maxDrift, median(recent)))
	}
	half := 0.0
	if len(dev) > 0 {
		half = o.K * madScale * median(dev) * math.Abs(med) * math.Sqrt(1+math.Pi/2/float64(n))
	}
	if f := o.MinRelWidth * math.Abs(med); half < f {
		half = f
	}
	return Band{Low: med - half, High: med + half, Median: med, Points: n}, true
}

func TestBandMatchesSortingReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, o := range []BandOptions{
		{K: 4, Window: 8, MinPoints: 4, MinRelWidth: 0.05},
		{K: 3, Window: 5, MinPoints: 3, NotWeekly: true},
		{K: 4, Window: 12, MinPoints: 4},
	} {
		for trial := range 300 {
			var s series
			n := rng.IntN(keep(o) + 10)
			for i := range n {
				v := 1000 * (1 + 0.05*rng.NormFloat64())
				switch rng.IntN(10) {
				case 0:
					v = 0 // zero medians are skipped
				case 1:
					v = math.Round(v / 100) // ties
				case 2:
					v *= 5
				}
				s.add(o, v, int8(i%7))
			}
			for wd := int8(0); wd < 7; wd++ {
				got, gok := s.band(o, wd)
				want, wok := bandBySorting(&s, o, wd)
				if gok != wok || got != want {
					t.Fatalf("options %+v, trial %d, weekday %d: band %+v %v, by sorting %+v %v", o, trial, wd, got, gok, want, wok)
				}
			}
		}
	}
}

// TestMedianSelect: selection gives median's value, bit for bit, on what
// band gives it (relative deviations: not negative), with ties, zeros,
// infinities and NaNs among the values.
func TestMedianSelect(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	special := []float64{0, math.Inf(1), math.NaN(), 1, 1, 2}
	for trial := range 3000 {
		n := 1 + rng.IntN(60)
		vals := make([]float64, n)
		for i := range vals {
			if rng.IntN(4) == 0 {
				vals[i] = special[rng.IntN(len(special))]
			} else {
				vals[i] = math.Abs(math.Round(rng.NormFloat64() * 10))
			}
		}
		want := median(slices.Clone(vals))
		got := medianSelect(slices.Clone(vals))
		if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("trial %d: %v: medianSelect %v, median %v", trial, vals, got, want)
		}
	}
}

// TestBandMemo: band with its memo, called before each point is added as
// the detectors call it (with options and weekdays changing on the way,
// and the series reloaded without its memo now and then), gives what
// bandBySorting computes from the points alone.
func TestBandMemo(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	opts := []BandOptions{
		{K: 4, Window: 8, MinPoints: 4, MinRelWidth: 0.05},
		{K: 3, Window: 5, MinPoints: 3, NotWeekly: true},
		{K: 4, Window: 12, MinPoints: 4},
	}
	calls := 0
	for trial := range 200 {
		var s series
		o := opts[trial%len(opts)]
		for i := range 300 {
			if rng.IntN(100) == 0 {
				o = opts[rng.IntN(len(opts))]
			}
			if rng.IntN(150) == 0 {
				s = series{Points: slices.Clone(s.Points)} // reloaded: no memo
			}
			wd := int8(i % 7)
			if rng.IntN(10) == 0 {
				wd = int8(rng.IntN(7)) // days missing or repeated
			}
			v := 1000 * (1 + 0.05*rng.NormFloat64())
			switch rng.IntN(12) {
			case 0:
				v = 0
			case 1:
				v = math.Round(v / 100)
			case 2:
				v *= 5
			}
			got, gok := s.band(o, wd)
			want, wok := bandBySorting(&s, o, wd)
			if gok != wok || got != want {
				t.Fatalf("options %+v, trial %d, point %d: band %+v %v, by sorting %+v %v", o, trial, i, got, gok, want, wok)
			}
			calls++
			s.add(o, v, wd)
		}
	}
	if calls == 0 {
		t.Fatal("no band computed")
	}
}
