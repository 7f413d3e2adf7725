package report

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/provledger/provledger/bench/suite"
)

// Plot is one figure written next to the report.
type Plot struct {
	// File is the SVG's name inside the report directory.
	File string
	// Title is its caption.
	Title string
}

// curve is one series of the latency-vs-throughput plot: the results of
// one (nodes, mode, size, alg) as the client count grows.
type curve struct {
	label  string
	points []curvePoint
}

type curvePoint struct {
	clients       int
	eps, p50, p99 float64
}

// curves groups the append and cluster results into series that differ
// only in their client count, each with at least two points.
func curves(run *suite.Run, nodes string) []curve {
	byKey := map[string]*curve{}
	var order []string
	for i := range run.Results {
		r := &run.Results[i]
		if r.Scenario != "append" || r.Params["nodes"] != nodes || !r.OK {
			continue
		}
		c, err := strconv.Atoi(r.Params["clients"])
		if err != nil {
			continue
		}
		eps, ok1 := r.Metrics["entries_per_s"]
		p50, ok2 := r.Metrics["p50_ms"]
		p99, ok3 := r.Metrics["p99_ms"]
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		key := fmt.Sprintf("%s, %s B, %s", r.Params["mode"], r.Params["size"], r.Params["alg"])
		cv, ok := byKey[key]
		if !ok {
			cv = &curve{label: key}
			byKey[key] = cv
			order = append(order, key)
		}
		cv.points = append(cv.points, curvePoint{clients: c, eps: eps.Value, p50: p50.Value, p99: p99.Value})
	}
	var out []curve
	for _, k := range order {
		cv := byKey[k]
		if len(cv.points) < 2 {
			continue
		}
		sort.Slice(cv.points, func(i, j int) bool { return cv.points[i].clients < cv.points[j].clients })
		out = append(out, *cv)
	}
	return out
}

// latencyThroughput writes the latency-vs-throughput curve of one
// topology (p99 solid points joined by lines; x entries/s, y ms, log
// scale) and returns false when there is nothing to plot.
func latencyThroughput(dir, file, nodes string, run *suite.Run) (bool, error) {
	cs := curves(run, nodes)
	if len(cs) == 0 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("append, %s node(s): p99 latency vs throughput (1 … 256 clients)", nodes)
	p.X.Label.Text = "entries/s (acknowledged, fsynced)"
	p.Y.Label.Text = "p99 latency, ms (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	var args []any
	for _, c := range cs {
		xys := make(plotter.XYs, len(c.points))
		for i, pt := range c.points {
			xys[i].X, xys[i].Y = pt.eps, max(pt.p99, 1e-3)
		}
		args = append(args, c.label, xys)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return false, fmt.Errorf("latency plot: %w", err)
	}
	if err := p.Save(18*vg.Centimeter, 12*vg.Centimeter, filepath.Join(dir, file)); err != nil {
		return false, fmt.Errorf("save %s: %w", file, err)
	}
	return true, nil
}

// fractions writes a bar chart of every bounded result's fraction of its
// limit and returns false when no result has one.
func fractions(dir, file string, run *suite.Run) (bool, error) {
	var vals plotter.Values
	var names []string
	for i := range run.Results {
		r := &run.Results[i]
		if r.Fraction <= 0 {
			continue
		}
		vals = append(vals, 100*r.Fraction)
		names = append(names, strconv.Itoa(len(names)+1))
	}
	if len(vals) == 0 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = "each result as % of the machine limit that bounds it (numbers: rows of the table)"
	p.Y.Label.Text = "% of limit"
	bars, err := plotter.NewBarChart(vals, vg.Points(max(4, 300/float64(len(vals)))))
	if err != nil {
		return false, fmt.Errorf("fraction plot: %w", err)
	}
	bars.Color = plotutil.Color(0)
	p.Add(bars)
	p.NominalX(names...)
	if err := p.Save(18*vg.Centimeter, 9*vg.Centimeter, filepath.Join(dir, file)); err != nil {
		return false, fmt.Errorf("save %s: %w", file, err)
	}
	return true, nil
}

// WritePlots writes every plot the run has data for into dir and returns
// them in report order.
func WritePlots(dir string, run *suite.Run) ([]Plot, error) {
	var out []Plot
	for _, nodes := range []string{"1", "3"} {
		file := "latency-throughput-" + nodes + "node.svg"
		ok, err := latencyThroughput(dir, file, nodes, run)
		if err != nil {
			return out, err
		}
		if ok {
			out = append(out, Plot{File: file, Title: fmt.Sprintf("Latency vs throughput, %s node(s)", nodes)})
		}
	}
	ok, err := fractions(dir, "fraction-of-limit.svg", run)
	if err != nil {
		return out, err
	}
	if ok {
		out = append(out, Plot{File: "fraction-of-limit.svg", Title: "Fraction of the bounding limit"})
	}
	return out, nil
}
