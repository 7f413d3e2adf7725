// Package report renders a suite run (bench/suite) as a Markdown report
// with SVG plots (gonum.org/v1/plot): the machine's limits, every
// scenario's figures, each result as a fraction of the limit that bounds
// it, the latency-vs-throughput curves, and other systems' published
// figures marked as such.
package report

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/provledger/provledger/bench/suite"
)

// limitDescriptions say how each limit is measured, in report order.
var limitDescriptions = []struct{ key, text string }{
	{suite.LimitSHA256, "SHA-256 over 64 KiB buffers, all cores"},
	{suite.LimitEd25519, "crypto/ed25519.Verify of a 1 KiB payload's DSSE PAE, all cores"},
	{suite.LimitEd25519Keys, "crypto/keys.VerifyEd25519 (curve25519-voi, stdlib semantics: what provd uses), same message, all cores"},
	{suite.LimitECDSAP256, "SHA-256 + ecdsa.VerifyASN1 (P-256), same message, all cores"},
	{suite.LimitFsync, "4 KiB append + fsync, one at a time, on the data directory's disk"},
	{suite.LimitPebbleSyncedWr, "Pebble batches of one 1 KiB value committed with Sync, one at a time"},
}

// appendColumns are the append table's metric columns.
var appendColumns = []struct{ key, head string }{
	{"entries_per_s", "entries/s"},
	{"envelope_mb_per_s", "MB/s"},
	{"p50_ms", "p50 ms"},
	{"p99_ms", "p99 ms"},
	{"p999_ms", "p99.9 ms"},
	{"loadgen_cores", "provbench cores"},
	{"node_cores", "node cores"},
	{"other_cores", "other cores"},
}

// Write renders run into dir: report.md and the plots. It returns the
// report's path.
func Write(dir string, run *suite.Run) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("report directory: %w", err)
	}
	plots, err := WritePlots(dir, run)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "report.md")
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("create report: %w", err)
	}
	Markdown(f, run, plots)
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write report: %w", err)
	}
	return path, nil
}

// Markdown writes the report of run; plots are embedded by file name.
func Markdown(w io.Writer, run *suite.Run, plots []Plot) {
	p := &run.Provenance
	fmt.Fprintf(w, "# provledger benchmark suite — %s\n\n", run.Profile)
	commit := p.GitCommit
	if commit == "" {
		commit = "unknown commit"
	}
	if p.GitDirty {
		commit += " (with uncommitted changes)"
	}
	m := &run.Machine
	fmt.Fprintf(w, "- code: %s, %s, run at %s (%.0f s)\n", commit, p.GoVersion, p.Timestamp, run.WallS)
	fmt.Fprintf(w, "- machine: %s, %d CPUs (GOMAXPROCS %d), %.1f GiB, %s/%s %s", orUnknown(m.CPUModel), m.NProc, m.GOMAXPROCS, float64(m.MemTotalBytes)/(1<<30), m.OS, m.Arch, m.Kernel)
	if m.Nice != 0 {
		fmt.Fprintf(w, ", nice %d", m.Nice)
	}
	fmt.Fprintln(w)
	if run.Durability != "" {
		fmt.Fprintf(w, "- durability: %s\n", run.Durability)
	}
	fmt.Fprintf(w, "- fairness: the load generator pre-signs every envelope before the clock starts, verifies receipts after it stops, and reports its own CPU beside the node's and other processes'\n")
	if len(run.Failures) > 0 {
		fmt.Fprintf(w, "\n**%d scenario(s) failed:**\n\n", len(run.Failures))
		for _, f := range run.Failures {
			fmt.Fprintf(w, "- %s\n", f)
		}
	}
	if len(run.Warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings:\n\n")
		for _, s := range run.Warnings {
			fmt.Fprintf(w, "- %s\n", s)
		}
	}

	writeLimits(w, run)
	writeFractions(w, run)
	for _, nodes := range []string{"1", "3"} {
		writeAppend(w, run, nodes)
	}
	for _, pl := range plots {
		fmt.Fprintf(w, "\n![%s](%s)\n", pl.Title, pl.File)
	}
	writeOthers(w, run)
	writePeers(w, run)
}

func writeLimits(w io.Writer, run *suite.Run) {
	lim, ok := run.Limits()
	if !ok {
		return
	}
	fmt.Fprintf(w, "\n## Machine limits (measured in this run)\n\n| limit | value | how |\n|---|---:|---|\n")
	done := map[string]bool{}
	for _, d := range limitDescriptions {
		if mt, ok := lim.Metrics[d.key]; ok {
			fmt.Fprintf(w, "| %s | %s %s | %s |\n", d.key, Number(mt.Value), mt.Unit, d.text)
			done[d.key] = true
		}
	}
	for _, k := range lim.MetricNames() {
		if !done[k] {
			mt := lim.Metrics[k]
			fmt.Fprintf(w, "| %s | %s %s | |\n", k, Number(mt.Value), mt.Unit)
		}
	}
}

func writeFractions(w io.Writer, run *suite.Run) {
	var rows []*suite.Result
	for i := range run.Results {
		if run.Results[i].Fraction > 0 {
			rows = append(rows, &run.Results[i])
		}
	}
	if len(rows) == 0 {
		return
	}
	lim, _ := run.Limits()
	fmt.Fprintf(w, "\n## Each result as a fraction of the limit that bounds it\n\n| # | result | figure | limit | fraction |\n|---:|---|---:|---|---:|\n")
	for i, r := range rows {
		mt := r.Metrics[r.BoundMetric]
		l := lim.Metrics[r.Bound]
		fmt.Fprintf(w, "| %d | %s | %s %s | %s %s (%s) | %.1f %% |\n", i+1, r.Name, Number(mt.Value), mt.Unit, Number(l.Value), l.Unit, r.Bound, 100*r.Fraction)
	}
}

func writeAppend(w io.Writer, run *suite.Run, nodes string) {
	var rows []*suite.Result
	for i := range run.Results {
		r := &run.Results[i]
		if r.Scenario == "append" && r.Params["nodes"] == nodes {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return
	}
	title := "one node (provd --dev)"
	if nodes != "1" {
		title = nodes + "-node Raft cluster on 127.0.0.1 (appends to the leader)"
	}
	fmt.Fprintf(w, "\n## Appends, %s\n\n| mode | clients | payload B | signer |", title)
	for _, c := range appendColumns {
		fmt.Fprintf(w, " %s |", c.head)
	}
	fmt.Fprintf(w, " of limit | ok |\n|---|---:|---:|---|")
	for range appendColumns {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintf(w, "---:|---|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |", r.Params["mode"], r.Params["clients"], r.Params["size"], r.Params["alg"])
		for _, c := range appendColumns {
			if mt, ok := r.Metrics[c.key]; ok {
				fmt.Fprintf(w, " %s |", Number(mt.Value))
			} else {
				fmt.Fprintf(w, " — |")
			}
		}
		frac := "—"
		if r.Fraction > 0 {
			frac = fmt.Sprintf("%.0f %%", 100*r.Fraction)
		}
		fmt.Fprintf(w, " %s | %s |\n", frac, okCell(r))
	}
}

func writeOthers(w io.Writer, run *suite.Run) {
	var scenarios []string
	seen := map[string]bool{"append": true, suite.ScenarioLimits: true}
	for i := range run.Results {
		if s := run.Results[i].Scenario; !seen[s] {
			seen[s] = true
			scenarios = append(scenarios, s)
		}
	}
	for _, s := range scenarios {
		fmt.Fprintf(w, "\n## %s\n\n| result | metric | value | ok |\n|---|---|---:|---|\n", s)
		for _, r := range run.Scenario(s) {
			names := r.MetricNames()
			if len(names) == 0 {
				fmt.Fprintf(w, "| %s | — | — | %s |\n", r.Name, okCell(r))
			}
			for _, k := range names {
				mt := r.Metrics[k]
				fmt.Fprintf(w, "| %s | %s | %s %s | %s |\n", r.Name, k, Number(mt.Value), mt.Unit, okCell(r))
			}
		}
	}
}

func writePeers(w io.Writer, run *suite.Run) {
	if len(run.Peers) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Other systems, for scale\n\n| system | figure | value | measured | hardware | source |\n|---|---|---:|---|---|---|\n")
	for _, p := range run.Peers {
		how := "here, in this run"
		if p.Published {
			how = "**published**, not measured here"
		}
		fmt.Fprintf(w, "| %s | %s | %s %s | %s | %s | %s |\n", p.System, p.What, Number(p.Value), p.Unit, how, p.Hardware, p.Source)
	}
}

func okCell(r *suite.Result) string {
	if r.OK {
		return "ok"
	}
	if r.Error != "" {
		return "FAILED: " + strings.ReplaceAll(r.Error, "|", "/")
	}
	return "FAILED"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown CPU"
	}
	return s
}

// Number formats v for a table: thousands grouped, three significant
// digits below 100.
func Number(v float64) string {
	switch a := math.Abs(v); {
	case v == 0:
		return "0"
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case a < 100:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	s := strconv.FormatInt(int64(math.Round(math.Abs(v))), 10)
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
