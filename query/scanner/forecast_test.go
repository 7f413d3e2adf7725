package scanner_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/provledger/provledger/query/scanner"
	"github.com/provledger/provledger/query/scanner/synth"
)

func TestHoltWintersRecoversSeasonalTrend(t *testing.T) {
	var y []float64
	season := []float64{10, 12, 11, 10, 9, -20, -22}
	for i := range 84 {
		y = append(y, 100+0.5*float64(i)+season[i%7])
	}
	fit, err := scanner.HoltWinters(y, 7, 14, 1.96)
	if err != nil {
		t.Fatal(err)
	}
	for h, m := range fit.Mean {
		want := 100 + 0.5*float64(84+h) + season[(84+h)%7]
		if math.Abs(m-want)/want > 0.05 {
			t.Fatalf("day %d: forecast %.1f, want %.1f ± 5%%", h+1, m, want)
		}
		if fit.Low[h] > m || fit.High[h] < m {
			t.Fatalf("day %d: interval %.1f–%.1f does not hold the forecast %.1f", h+1, fit.Low[h], fit.High[h], m)
		}
	}
	if _, err := scanner.HoltWinters(y[:10], 7, 5, 1.96); err == nil {
		t.Fatal("fit on less than two seasons")
	}
}

// TestForecastBacktest scans a synthetic stream of 120 days, then
// backtests a 30-day forecast of each team's daily cost (fitted on the
// first 90 days as the forecast sees them, scored against the actual last
// 30, injected anomalies included) and prints the MAPE and interval
// coverage.
func TestForecastBacktest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a synthetic log")
	}
	l := openLog(t)
	st, err := synth.Generate(l, synth.Config{Jobs: 40, Days: 121, PerKind: 2, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newScanner(t, l, st.Trust, func(o *scanner.Options) { o.Integrity.VerifySignatures = false })
	if _, err := s.Scan(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	hist, clean := s.CostHistory("tag:team=")
	var names []string
	for k := range hist {
		names = append(names, k)
	}
	slices.Sort(names)
	if len(names) == 0 {
		t.Fatal("no team series")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-26s %5s %8s %9s\n", "series", "days", "MAPE", "coverage")
	var mapes []float64
	for _, n := range names {
		y := hist[n]
		mape, cov, err := scanner.Backtest(clean[n], y, 7, 30, 1.96)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		mapes = append(mapes, mape)
		fmt.Fprintf(&b, "%-26s %5d %7.1f%% %8.0f%%\n", n, len(y), 100*mape, 100*cov)
	}
	slices.Sort(mapes)
	med := mapes[len(mapes)/2]
	fmt.Fprintf(&b, "median MAPE %.1f%% (30-day horizon, Holt-Winters additive, weekly season)\n", 100*med)
	t.Log("\n" + b.String())
	if med > 0.15 {
		t.Errorf("median 30-day MAPE %.1f%%, want ≤ 15%%", 100*med)
	}
	fs, err := s.Forecast("tag:team=")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != len(names) || len(fs[0].Days) != 30 || fs[0].Budget == nil {
		t.Fatalf("forecast: %d series, %d days, budget %v", len(fs), len(fs[0].Days), fs[0].Budget)
	}
}
