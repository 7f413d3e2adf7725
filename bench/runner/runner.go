package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/provledger/provledger/bench/loadgen"
	"github.com/provledger/provledger/bench/suite"
)

// Options say where the suite runs.
type Options struct {
	// Provd is the provd binary the append, proofs and restart scenarios
	// spawn.
	Provd string
	// DataRoot is where nodes keep their data (and the fsync and Pebble
	// limits write): put it on the disk to measure.
	DataRoot string
	// GoCmd runs the go test benchmarks ("go"), in RepoRoot.
	GoCmd, RepoRoot string
	// Scenarios to run (ParseScenarios); nil runs all.
	Scenarios map[string]bool
	// Log receives progress lines and the go test output.
	Log io.Writer
}

// Run runs profile p. A scenario that fails is recorded (a result with OK
// false, and a line in Failures) and the suite goes on; the error is for
// a suite that could not run at all, or was interrupted.
func Run(ctx context.Context, p Profile, o Options) (*suite.Run, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.GoCmd == "" {
		o.GoCmd = "go"
	}
	if o.RepoRoot == "" {
		o.RepoRoot = "."
	}
	if o.DataRoot == "" {
		o.DataRoot = os.TempDir()
	}
	if o.Scenarios == nil {
		o.Scenarios, _ = ParseScenarios("")
	}
	start := time.Now()
	run := &suite.Run{
		Schema:     suite.Schema,
		Profile:    p.Name,
		Provenance: loadgen.ReadProvenance(start),
		Machine:    loadgen.ReadMachine(),
		Settings:   p.settings(),
		Durability: loadgen.Durability,
		Peers:      suite.PublishedPeers(),
	}
	say := func(format string, args ...any) { fmt.Fprintf(o.Log, "provbench suite: "+format+"\n", args...) }
	record := func(r suite.Result) {
		if !r.OK {
			run.Failures = append(run.Failures, fmt.Sprintf("%s: %s", r.Name, r.Error))
		}
		run.Results = append(run.Results, r)
	}
	failed := func(scenario, name string, err error) suite.Result {
		return suite.Result{Scenario: scenario, Name: name, Metrics: map[string]suite.Metric{}, Error: err.Error()}
	}

	if o.Scenarios["limits"] {
		say("machine limits, %v each", p.LimitsEach)
		rep, err := loadgen.RunLimits(loadgen.LimitsConfig{Each: p.LimitsEach, Dir: o.DataRoot, Size: 1024})
		if err != nil {
			record(failed(suite.ScenarioLimits, suite.ScenarioLimits, err))
		} else {
			record(limitsResult(rep))
		}
	}
	if o.Scenarios["append"] {
		for i, pt := range p.Append {
			if ctx.Err() != nil {
				break
			}
			say("append %d/%d: %s", i+1, len(p.Append), pt.Name())
			r, err := runAppendPoint(ctx, &p, o, pt)
			if err != nil {
				r = failed("append", pt.Name(), err)
				r.Params = pointParams(pt)
			}
			record(r)
		}
	}
	if ctx.Err() == nil && (o.Scenarios["proofs"] || o.Scenarios["disk"] || o.Scenarios["restart"]) {
		for _, r := range runLogScenarios(ctx, &p, o, say) {
			record(r)
		}
	}
	for _, gb := range goBenches(&p) {
		if ctx.Err() != nil || !o.Scenarios[gb.Scenario] {
			continue
		}
		say("%s: %v", gb.Scenario, gb.Command(o.GoCmd))
		rs, err := gb.Run(ctx, o.GoCmd, o.RepoRoot, o.Log)
		if err != nil {
			record(failed(gb.Scenario, gb.Scenario, err))
			continue
		}
		for _, r := range rs {
			record(r)
		}
	}
	if err := run.FillFractions(); err != nil {
		run.Warnings = append(run.Warnings, err.Error())
	}
	if lim, ok := run.Limits(); ok {
		if oc, ok := lim.Metrics["other_cores"]; ok && oc.Value > 0.1 {
			run.Warnings = append(run.Warnings, fmt.Sprintf("other processes used %.2f cores while the limits were measured: every figure here is pessimistic; measure on a quiet machine", oc.Value))
		}
	}
	run.WallS = time.Since(start).Seconds()
	if err := ctx.Err(); err != nil {
		slog.Warn("benchmark suite interrupted", "err", err)
		return run, fmt.Errorf("suite interrupted: %w", err)
	}
	return run, nil
}

// limitsResult converts the limits report.
func limitsResult(rep *loadgen.LimitsReport) suite.Result {
	l := &rep.Limits
	return suite.Result{
		Scenario: suite.ScenarioLimits, Name: suite.ScenarioLimits, OK: true,
		Params: suite.Params("each_s", strconv.FormatFloat(l.EachS, 'g', -1, 64), "dir", l.FsyncDir),
		Metrics: map[string]suite.Metric{
			suite.LimitSHA256:         suite.Higher(l.SHA256MBps, "MB/s"),
			suite.LimitEd25519:        suite.Higher(l.Ed25519VerifyPerS, "verifications/s"),
			suite.LimitEd25519Keys:    suite.Higher(l.KeysEd25519VerifyPerS, "verifications/s"),
			suite.LimitECDSAP256:      suite.Higher(l.ECDSAP256VerifyPerS, "verifications/s"),
			suite.LimitFsync:          suite.Higher(l.FsyncPerS, "fsyncs/s"),
			suite.LimitPebbleSyncedWr: suite.Higher(l.PebbleSyncedPerS, "batches/s"),
			"other_cores":             suite.Info(l.OtherCores, "cores"),
		},
		Detail: rep,
	}
}

// goBenches are the go test benchmarks of the profile.
func goBenches(p *Profile) []GoBench {
	return []GoBench{
		{
			Scenario: "audit", Pkg: "./cmd/prov", Bench: "^BenchmarkAuditFull$",
			Env:    []string{"PROV_AUDIT_BENCH_N=" + itoa(p.AuditEntries)},
			Params: suite.Params("entries", itoa(p.AuditEntries)), Bound: suite.LimitEd25519Keys, BoundMetric: "entries/s",
			Timeout: p.GoBenchTimeout,
		},
		{
			Scenario: "scanner", Pkg: "./query/scanner", Bench: "^BenchmarkScan$",
			Args:   []string{"-scanner.bench.jobs", itoa(p.ScannerJobs), "-scanner.bench.days", itoa(p.ScannerDays)},
			Params: suite.Params("jobs", itoa(p.ScannerJobs), "days", itoa(p.ScannerDays)),
			// Only the pass that re-verifies signatures is bounded by them.
			Bound: suite.LimitEd25519Keys, BoundMetric: "entries/s", BoundSuffix: "/verify",
			Timeout: p.GoBenchTimeout,
		},
		{
			Scenario: "lineage", Pkg: "./query", Bench: "^BenchmarkLineage$",
			Args:    []string{"-lineage.datasets", itoa(p.LineageDatasets), "-lineage.edges", itoa(p.LineageEdges)},
			Params:  suite.Params("datasets", itoa(p.LineageDatasets), "edges", itoa(p.LineageEdges)),
			Timeout: p.GoBenchTimeout,
		},
		{
			Scenario: "snapshot", Pkg: "./raft/fsm", Bench: "^BenchmarkSnapshotRestore$",
			Env:     []string{"SNAPSHOT_BENCH_N=" + itoa(p.SnapshotEntries)},
			Params:  suite.Params("entries", itoa(p.SnapshotEntries)),
			Timeout: p.GoBenchTimeout,
		},
	}
}
