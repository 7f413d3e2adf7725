// Package compare checks a fresh suite run against a baseline, the way
// benchstat compares two sets of benchmark results: per metric the old and
// new value, their ratio and, when both sides hold enough samples, a
// Mann-Whitney U-test (golang.org/x/perf/benchmath). A guarded metric that
// got worse by more than the threshold is a regression.
package compare

import (
	"fmt"
	"math"
	"sort"

	"golang.org/x/perf/benchmath"

	"github.com/provledger/provledger/bench/suite"
)

// Options tune the verdict.
type Options struct {
	// Threshold is the relative change beyond which a guarded metric
	// that got worse is a regression (0.15: 15 % fewer entries/s, or 15 %
	// more latency).
	Threshold float64
	// Alpha is the significance level of the U-test, used only when both
	// sides have at least MinSamples samples of a metric.
	Alpha float64
	// MinSamples is the number of samples per side from which the U-test
	// decides (with fewer, the threshold alone does).
	MinSamples int
}

// DefaultOptions are what `provbench compare` uses without flags.
func DefaultOptions() Options { return Options{Threshold: 0.15, Alpha: 0.05, MinSamples: 4} }

// Validate reports a setting that makes no sense.
func (o Options) Validate() error {
	switch {
	case !(o.Threshold > 0) || o.Threshold >= 10:
		return fmt.Errorf("threshold %v: want a fraction above 0 (0.15 = 15%%)", o.Threshold)
	case !(o.Alpha > 0) || o.Alpha >= 1:
		return fmt.Errorf("alpha %v: want 0 < alpha < 1", o.Alpha)
	case o.MinSamples < 2:
		return fmt.Errorf("min samples %d: want at least 2", o.MinSamples)
	}
	return nil
}

// Verdicts of a row.
const (
	Same        = "~"           // within the threshold, or not significant
	Better      = "better"      // improved beyond the threshold
	Worse       = "REGRESSION"  // worse beyond the threshold (and significant)
	Informative = "info"        // not guarded (no direction, or a machine limit)
	Failed      = "FAILED"      // the scenario failed in the new run
	Missing     = "MISSING"     // in the baseline, not in the new run
	NoBaseline  = "no baseline" // in the new run only
)

// Row is one metric of one result.
type Row struct {
	Result string  `json:"result"`
	Metric string  `json:"metric"`
	Unit   string  `json:"unit"`
	Better string  `json:"better,omitempty"`
	Old    float64 `json:"old"`
	New    float64 `json:"new"`
	// Ratio is New/Old (0 when Old is 0).
	Ratio float64 `json:"ratio"`
	// Change is Ratio-1 signed so that positive is an improvement.
	Change float64 `json:"change"`
	// P is the U-test's p-value, or -1 when there were too few samples.
	P       float64 `json:"p"`
	N1, N2  int     `json:"-"`
	Verdict string  `json:"verdict"`
}

// Report is the outcome of Compare.
type Report struct {
	Options Options `json:"options"`
	Rows    []Row   `json:"rows"`
	// Regressions counts rows whose verdict fails the check (Worse,
	// Failed, Missing).
	Regressions int `json:"regressions"`
	// Geomean is the geometric mean of the improvement ratios (new/old
	// for higher-is-better metrics, old/new for lower-is-better) over the
	// guarded rows: above 1 the new run is faster overall.
	Geomean float64 `json:"geomean"`
	// MachineRatio is the geometric mean of new/old over the machine
	// limits (the rates, not the informational figures): far from 1, the two runs did not see the same machine and
	// the other ratios are suspect.
	MachineRatio float64 `json:"machine_ratio"`
}

// OK is true when nothing regressed.
func (r *Report) OK() bool { return r.Regressions == 0 }

// Compare compares cur against base. Results are matched by name and
// metrics by key; rows come out in the baseline's result order, then the
// new run's extra results.
func Compare(base, cur *suite.Run, opt Options) (*Report, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{Options: opt}
	var logSum float64
	var logN int
	var machSum float64
	var machN int
	for i := range base.Results {
		b := &base.Results[i]
		c, ok := cur.Find(b.Name)
		if !ok {
			rep.Rows = append(rep.Rows, Row{Result: b.Name, Verdict: Missing, P: -1})
			rep.Regressions++
			continue
		}
		if !c.OK && b.OK {
			msg := c.Error
			if msg == "" {
				msg = "failed a check"
			}
			rep.Rows = append(rep.Rows, Row{Result: b.Name, Metric: msg, Verdict: Failed, P: -1})
			rep.Regressions++
			continue
		}
		for _, name := range b.MetricNames() {
			bm := b.Metrics[name]
			cm, ok := c.Metrics[name]
			if !ok {
				row := Row{Result: b.Name, Metric: name, Unit: bm.Unit, Better: bm.Better, Old: bm.Value, Verdict: Missing, P: -1}
				switch {
				case b.Scenario == suite.ScenarioLimits || bm.Better == "":
					row.Verdict = Informative
				default:
					rep.Regressions++
				}
				rep.Rows = append(rep.Rows, row)
				continue
			}
			row := compareMetric(b.Name, name, bm, cm, opt)
			if b.Scenario == suite.ScenarioLimits {
				row.Verdict = Informative
				if row.Better == suite.HigherIsBetter && row.Old > 0 && row.New > 0 {
					machSum += math.Log(row.New / row.Old)
					machN++
				}
			} else if row.Better != "" && row.Old > 0 && row.New > 0 {
				logSum += math.Log(1 + row.Change)
				logN++
			}
			if row.Verdict == Worse {
				rep.Regressions++
			}
			rep.Rows = append(rep.Rows, row)
		}
	}
	for i := range cur.Results {
		c := &cur.Results[i]
		if _, ok := base.Find(c.Name); !ok {
			rep.Rows = append(rep.Rows, Row{Result: c.Name, Verdict: NoBaseline, P: -1})
		}
	}
	rep.Geomean, rep.MachineRatio = 1, 1
	if logN > 0 {
		rep.Geomean = math.Exp(logSum / float64(logN))
	}
	if machN > 0 {
		rep.MachineRatio = math.Exp(machSum / float64(machN))
	}
	return rep, nil
}

// compareMetric builds one row. Change is signed so that positive is
// better; a row is Worse when Change < -Threshold and (with enough
// samples on both sides) the U-test finds the difference significant.
func compareMetric(result, name string, bm, cm suite.Metric, opt Options) Row {
	row := Row{Result: result, Metric: name, Unit: bm.Unit, Better: bm.Better, Old: bm.Value, New: cm.Value, P: -1, N1: max(1, len(bm.Samples)), N2: max(1, len(cm.Samples))}
	if bm.Value != 0 {
		row.Ratio = cm.Value / bm.Value
	}
	switch {
	case bm.Better == "":
		row.Verdict = Informative
		return row
	case bm.Value == 0 && cm.Value == 0:
		row.Verdict = Same
		return row
	case bm.Value == 0:
		// From nothing to something: better for higher-is-better, worse
		// (without a ratio) for lower-is-better.
		row.Change = math.Inf(1)
		if bm.Better == suite.LowerIsBetter {
			row.Change = math.Inf(-1)
		}
	case bm.Better == suite.HigherIsBetter:
		row.Change = row.Ratio - 1
	default:
		if cm.Value == 0 {
			row.Change = math.Inf(1)
		} else {
			row.Change = bm.Value/cm.Value - 1
		}
	}
	significant := true
	if len(bm.Samples) >= opt.MinSamples && len(cm.Samples) >= opt.MinSamples {
		th := benchmath.DefaultThresholds
		th.CompareAlpha = opt.Alpha
		c := benchmath.AssumeNothing.Compare(benchmath.NewSample(append([]float64(nil), bm.Samples...), &th), benchmath.NewSample(append([]float64(nil), cm.Samples...), &th))
		row.P = c.P
		significant = c.P <= opt.Alpha
	}
	switch {
	case row.Change < -opt.Threshold && significant:
		row.Verdict = Worse
	case row.Change > opt.Threshold && significant:
		row.Verdict = Better
	default:
		row.Verdict = Same
	}
	return row
}

// Regressed returns the rows that fail the check, sorted by how much
// worse they got.
func (r *Report) Regressed() []Row {
	var out []Row
	for _, row := range r.Rows {
		switch row.Verdict {
		case Worse, Failed:
			out = append(out, row)
		case Missing:
			out = append(out, row)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Change < out[j].Change })
	return out
}
