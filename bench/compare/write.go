package compare

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
)

// Write prints the report as a benchstat-style table: result and metric,
// old and new value, the change (positive = better), the p-value and
// sample counts when a U-test decided, and the verdict; then the geomean
// and the overall verdict.
func (r *Report) Write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "result\tmetric\tbaseline\tnew\tchange\tp\tverdict\t\n")
	for _, row := range r.Rows {
		switch row.Verdict {
		case Missing:
			if row.Metric == "" {
				fmt.Fprintf(tw, "%s\t(whole result)\t\t—\t\t\t%s\t\n", row.Result, row.Verdict)
			} else {
				fmt.Fprintf(tw, "%s\t%s\t%s\t—\t\t\t%s\t\n", row.Result, row.Metric, num(row.Old, row.Unit), row.Verdict)
			}
			continue
		case NoBaseline:
			fmt.Fprintf(tw, "%s\t(whole result)\t—\t\t\t\t%s\t\n", row.Result, row.Verdict)
			continue
		case Failed:
			fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t%s\t\n", row.Result, row.Metric, row.Verdict)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", row.Result, row.Metric, num(row.Old, row.Unit), num(row.New, row.Unit), change(row), pval(row), row.Verdict)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ngeomean of improvement ratios (guarded metrics): %.3f   machine limits new/old: %.3f\n", r.Geomean, r.MachineRatio)
	if math.Abs(r.MachineRatio-1) > r.Options.Threshold {
		fmt.Fprintf(w, "warning: the machine's limits moved by %+.0f%% between the runs: the machines (or their load) differ, so the other ratios are suspect\n", 100*(r.MachineRatio-1))
	}
	fmt.Fprintf(w, "threshold %.0f%%", 100*r.Options.Threshold)
	fmt.Fprintf(w, "; U-test (alpha %.2f) when both sides have ≥ %d samples, else the threshold alone\n", r.Options.Alpha, r.Options.MinSamples)
	if r.OK() {
		fmt.Fprintf(w, "result: OK (no regression beyond the threshold)\n")
		return
	}
	fmt.Fprintf(w, "result: %d REGRESSION(S)\n", r.Regressions)
	for _, row := range r.Regressed() {
		switch row.Verdict {
		case Worse:
			fmt.Fprintf(w, "  - %s %s: %s → %s (%s)\n", row.Result, row.Metric, num(row.Old, row.Unit), num(row.New, row.Unit), change(row))
		case Failed:
			fmt.Fprintf(w, "  - %s: failed in the new run: %s\n", row.Result, row.Metric)
		case Missing:
			fmt.Fprintf(w, "  - %s %s: in the baseline, not in the new run\n", row.Result, row.Metric)
		}
	}
}

func num(v float64, unit string) string {
	var s string
	switch a := math.Abs(v); {
	case a == 0:
		s = "0"
	case a >= 1000:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'g', 3, 64)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

func change(row Row) string {
	switch {
	case row.Verdict == Informative:
		if row.Old == 0 {
			return "?"
		}
		return fmt.Sprintf("%+.1f%% (new/old)", 100*(row.Ratio-1))
	case math.IsInf(row.Change, 1):
		return "+∞"
	case math.IsInf(row.Change, -1):
		return "-∞"
	}
	return fmt.Sprintf("%+.1f%%", 100*row.Change)
}

func pval(row Row) string {
	if row.P < 0 {
		return fmt.Sprintf("n=%d+%d", row.N1, row.N2)
	}
	return fmt.Sprintf("p=%.3f n=%d+%d", row.P, row.N1, row.N2)
}
