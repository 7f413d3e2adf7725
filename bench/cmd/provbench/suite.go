package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/provledger/provledger/bench/compare"
	"github.com/provledger/provledger/bench/loadgen"
	"github.com/provledger/provledger/bench/report"
	"github.com/provledger/provledger/bench/runner"
	"github.com/provledger/provledger/bench/suite"
)

// Environment prefixes of the suite, check and compare flags.
const (
	suiteEnvPrefix   = "PROVLEDGER_BENCH_SUITE_"
	compareEnvPrefix = "PROVLEDGER_BENCH_COMPARE_"
)

const suiteUsage = `provbench suite — the whole benchmark suite in one run.

Measures the machine's limits, the append matrix on one node and on a
3-node cluster, proofs served and verified, bytes on disk per entry,
restart time, and the go test benchmarks of the full audit, the scanner,
lineage queries and snapshot/restore. Writes suite.json, report.md (with
SVG plots) and suite.log into --out-dir (default
bench/results/<UTC timestamp>/).

  provbench suite --profile short            # make bench (< 5 min)
  provbench suite --profile full             # make bench-full (~2 h)
  provbench suite --profile short --baseline-out bench/baseline/short.json

The overrides below (0 or empty: the profile's) are for trying the suite
out quickly, e.g. --duration 1s --cells 'nodes=1/mode=batch/clients=64/'.
Every flag can also be set with PROVLEDGER_BENCH_SUITE_<FLAG>.

Flags:
`

// suiteFlags are the flags of suite and check.
type suiteFlags struct {
	profile, provd, dataRoot, goCmd, repo, scenarios, outDir, baselineOut, cells string
	duration, warmup, calibrate, limitsEach, proofsDuration                      time.Duration
	logEntries, auditEntries, scannerJobs, scannerDays, snapshotEntries          int
	lineageDatasets, lineageEdges                                                int
}

func (f *suiteFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.profile, "profile", "short", "short (make bench) or full (make bench-full)")
	fs.StringVar(&f.provd, "provd", "./bin/provd", "provd binary to spawn (make build)")
	fs.StringVar(&f.dataRoot, "data-root", os.TempDir(), "where nodes keep their data and the disk limits write: the disk to measure")
	fs.StringVar(&f.goCmd, "go", "go", "go command for the go test benchmarks")
	fs.StringVar(&f.repo, "repo", ".", "repository root (where go test runs)")
	fs.StringVar(&f.scenarios, "scenarios", "all", "comma-separated subset of: limits,append,proofs,disk,restart,audit,scanner,lineage,snapshot")
	fs.StringVar(&f.outDir, "out-dir", "", "result directory (default bench/results/<UTC timestamp>)")
	fs.StringVar(&f.baselineOut, "baseline-out", "", "also copy suite.json here (e.g. bench/baseline/short.json, to commit as the baseline)")
	fs.StringVar(&f.cells, "cells", "", "only the append cells whose name matches this regexp (e.g. 'nodes=3/')")
	fs.DurationVar(&f.duration, "duration", 0, "override: measured window of each append cell")
	fs.DurationVar(&f.warmup, "warmup", 0, "override: warmup of each append cell")
	fs.DurationVar(&f.calibrate, "calibrate", 0, "override: verification-limit calibration before each append cell")
	fs.DurationVar(&f.limitsEach, "limits-each", 0, "override: time per machine limit")
	fs.DurationVar(&f.proofsDuration, "proofs-duration", 0, "override: time per kind of proof request")
	fs.IntVar(&f.logEntries, "log-entries", 0, "override: entries of the log for proofs, disk and restart")
	fs.IntVar(&f.auditEntries, "audit-entries", 0, "override: entries of the audit benchmark's log")
	fs.IntVar(&f.scannerJobs, "scanner-jobs", 0, "override: jobs of the scanner benchmark (at least 48: the benchmark injects 12 anomalies of each kind)")
	fs.IntVar(&f.scannerDays, "scanner-days", 0, "override: days of the scanner benchmark (at least 60)")
	fs.IntVar(&f.snapshotEntries, "snapshot-entries", 0, "override: entries of the snapshot/restore benchmark")
	fs.IntVar(&f.lineageDatasets, "lineage-datasets", 0, "override: datasets of the lineage graph")
	fs.IntVar(&f.lineageEdges, "lineage-edges", 0, "override: edges of the lineage graph")
}

// resolve turns the flags into a profile and options.
func (f *suiteFlags) resolve(log io.Writer) (runner.Profile, runner.Options, error) {
	p, err := runner.ProfileByName(f.profile)
	if err != nil {
		return p, runner.Options{}, fmt.Errorf("--profile: %w", err)
	}
	sc, err := runner.ParseScenarios(f.scenarios)
	if err != nil {
		return p, runner.Options{}, fmt.Errorf("--scenarios: %w", err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"duration", f.duration}, {"warmup", f.warmup}, {"calibrate", f.calibrate}, {"limits-each", f.limitsEach}, {"proofs-duration", f.proofsDuration}} {
		if d.v < 0 {
			return p, runner.Options{}, fmt.Errorf("--%s %v is negative", d.name, d.v)
		}
	}
	setD := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	setD(&p.AppendDuration, f.duration)
	setD(&p.AppendWarmup, f.warmup)
	setD(&p.AppendCalibrate, f.calibrate)
	setD(&p.LimitsEach, f.limitsEach)
	setD(&p.ProofsDuration, f.proofsDuration)
	for _, n := range []struct {
		name string
		v    int
		dst  *int
		min  int
	}{
		{"log-entries", f.logEntries, &p.LogEntries, 2}, {"audit-entries", f.auditEntries, &p.AuditEntries, 1},
		{"scanner-jobs", f.scannerJobs, &p.ScannerJobs, 48}, {"scanner-days", f.scannerDays, &p.ScannerDays, 60},
		{"snapshot-entries", f.snapshotEntries, &p.SnapshotEntries, 1},
		{"lineage-datasets", f.lineageDatasets, &p.LineageDatasets, 2}, {"lineage-edges", f.lineageEdges, &p.LineageEdges, 1},
	} {
		switch {
		case n.v < 0 || (n.v > 0 && n.v < n.min):
			return p, runner.Options{}, fmt.Errorf("--%s %d: want 0 (the profile's) or at least %d", n.name, n.v, n.min)
		case n.v > 0:
			*n.dst = n.v
		}
	}
	if f.cells != "" {
		re, err := regexp.Compile(f.cells)
		if err != nil {
			return p, runner.Options{}, fmt.Errorf("--cells: %w", err)
		}
		var keep []runner.AppendPoint
		for _, pt := range p.Append {
			if re.MatchString(pt.Name()) {
				keep = append(keep, pt)
			}
		}
		if len(keep) == 0 {
			return p, runner.Options{}, fmt.Errorf("--cells %q matches none of the profile's append cells (names like %s)", f.cells, p.Append[0].Name())
		}
		p.Append = keep
	}
	o := runner.Options{Provd: f.provd, DataRoot: f.dataRoot, GoCmd: f.goCmd, RepoRoot: f.repo, Scenarios: sc, Log: log}
	if sc["append"] || sc["proofs"] || sc["disk"] || sc["restart"] {
		if _, err := os.Stat(f.provd); err != nil {
			return p, o, fmt.Errorf("--provd: %w (build it with make build)", err)
		}
	}
	return p, o, nil
}

// runSuiteOnce runs the suite and writes its directory; it returns the
// run, the suite.json path and an exit code (0 when it could run).
func runSuiteOnce(ctx context.Context, f *suiteFlags, stdout, stderr io.Writer) (*suite.Run, string, int) {
	start := time.Now()
	outDir := f.outDir
	if outDir == "" {
		outDir = filepath.Join("bench", "results", start.UTC().Format("20060102T150405Z"))
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		fmt.Fprintf(stderr, "provbench suite: %v\n", err)
		return nil, "", 1
	}
	logF, err := os.Create(filepath.Join(outDir, "suite.log"))
	if err != nil {
		fmt.Fprintf(stderr, "provbench suite: %v\n", err)
		return nil, "", 1
	}
	defer logF.Close()
	log := io.MultiWriter(logF, stderr)
	p, o, err := f.resolve(log)
	if err != nil {
		fmt.Fprintf(stderr, "provbench suite: %v\n", err)
		return nil, "", 2
	}
	run, runErr := runner.Run(ctx, p, o)
	if run == nil {
		fmt.Fprintf(stderr, "provbench suite: %v\n", runErr)
		return nil, "", 1
	}
	path := filepath.Join(outDir, "suite.json")
	if err := run.Save(path); err != nil {
		fmt.Fprintf(stderr, "provbench suite: %v\n", err)
		return nil, "", 1
	}
	md, err := report.Write(outDir, run)
	if err != nil {
		fmt.Fprintf(stderr, "provbench suite: report: %v\n", err)
		return nil, "", 1
	}
	if f.baselineOut != "" {
		if err := run.Save(f.baselineOut); err != nil {
			fmt.Fprintf(stderr, "provbench suite: %v\n", err)
			return nil, "", 1
		}
		fmt.Fprintf(stdout, "baseline: %s\n", f.baselineOut)
	}
	fmt.Fprintf(stdout, "JSON: %s\nreport: %s\n", path, md)
	if runErr != nil {
		fmt.Fprintf(stderr, "provbench suite: %v\n", runErr)
		return run, path, 1
	}
	return run, path, 0
}

func runSuite(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	var f suiteFlags
	fs := flag.NewFlagSet("provbench suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs)
	fs.Usage = func() { fmt.Fprint(stderr, suiteUsage); fs.PrintDefaults() }
	if err := loadgen.ParseWithEnv(fs, args, suiteEnvPrefix, env); err != nil {
		return usageErr(err, stderr)
	}
	run, _, code := runSuiteOnce(ctx, &f, stdout, stderr)
	if code != 0 {
		return code
	}
	if len(run.Failures) > 0 {
		fmt.Fprintf(stdout, "%d scenario(s) FAILED:\n", len(run.Failures))
		for _, s := range run.Failures {
			fmt.Fprintf(stdout, "  - %s\n", s)
		}
		return 1
	}
	fmt.Fprintf(stdout, "result: OK (%d results in %.0f s)\n", len(run.Results), run.WallS)
	return 0
}

const compareUsage = `provbench compare — a suite run against a baseline, benchstat-style.

  provbench compare --baseline bench/baseline/short.json --new bench/results/<dir>/suite.json

Prints, per guarded metric, baseline and new value, the change (positive =
better) and the verdict; a Mann-Whitney U-test decides when both sides have
--min-samples samples, the threshold alone otherwise. Exit status 1 when a
metric got worse by more than --threshold, a result failed or is missing.
Every flag can also be set with PROVLEDGER_BENCH_COMPARE_<FLAG>.

Flags:
`

// compareFlags are the flags of compare and check.
type compareFlags struct {
	baseline, newPath string
	opt               compare.Options
}

func (c *compareFlags) register(fs *flag.FlagSet, withNew bool) {
	c.opt = compare.DefaultOptions()
	fs.StringVar(&c.baseline, "baseline", "bench/baseline/short.json", "the baseline suite.json (make bench-baseline writes it)")
	if withNew {
		fs.StringVar(&c.newPath, "new", "", "the new suite.json (required)")
	}
	fs.Float64Var(&c.opt.Threshold, "threshold", c.opt.Threshold, "relative change beyond which a guarded metric that got worse fails (0.15 = 15%)")
	fs.Float64Var(&c.opt.Alpha, "alpha", c.opt.Alpha, "significance level of the U-test")
	fs.IntVar(&c.opt.MinSamples, "min-samples", c.opt.MinSamples, "samples per side from which the U-test decides")
}

// compareRuns loads the baseline and compares cur with it; the exit code
// is 0 (no regression), 1 (regression, or nothing to compare with) or 2
// (bad options).
func compareRuns(c *compareFlags, cur *suite.Run, stdout, stderr io.Writer) int {
	if err := c.opt.Validate(); err != nil {
		fmt.Fprintf(stderr, "provbench compare: %v\n", err)
		return 2
	}
	base, err := suite.Load(c.baseline)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "provbench compare: no baseline at %s: make one on a quiet machine with `make bench-baseline` and commit it\n", c.baseline)
		} else {
			fmt.Fprintf(stderr, "provbench compare: baseline: %v\n", err)
		}
		return 1
	}
	rep, err := compare.Compare(base, cur, c.opt)
	if err != nil {
		fmt.Fprintf(stderr, "provbench compare: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "baseline: %s (%s, %s)\n\n", c.baseline, short(base.Provenance.GitCommit), base.Provenance.Timestamp)
	rep.Write(stdout)
	if !rep.OK() {
		return 1
	}
	return 0
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	if commit == "" {
		return "commit unknown"
	}
	return commit
}

func runCompare(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	var c compareFlags
	fs := flag.NewFlagSet("provbench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	fs.Usage = func() { fmt.Fprint(stderr, compareUsage); fs.PrintDefaults() }
	if err := loadgen.ParseWithEnv(fs, args, compareEnvPrefix, env); err != nil {
		return usageErr(err, stderr)
	}
	if c.newPath == "" {
		fmt.Fprintf(stderr, "provbench compare: --new is required (see --help)\n")
		return 2
	}
	cur, err := suite.Load(c.newPath)
	if err != nil {
		fmt.Fprintf(stderr, "provbench compare: %v\n", err)
		return 1
	}
	return compareRuns(&c, cur, stdout, stderr)
}

const checkUsage = `provbench check — make bench-check: a fresh short suite against the baseline.

Runs the suite (the flags of provbench suite) and compares it with
--baseline (the flags of provbench compare). Exit status 1 on a regression
beyond --threshold, a failed scenario or a missing baseline. Flags also
from PROVLEDGER_BENCH_SUITE_<FLAG> and PROVLEDGER_BENCH_COMPARE_<FLAG>.

Flags:
`

func runCheck(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	var f suiteFlags
	var c compareFlags
	fs := flag.NewFlagSet("provbench check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs)
	c.register(fs, false)
	fs.Usage = func() { fmt.Fprint(stderr, checkUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return usageErr(err, stderr)
	}
	// The environment fills what the command line left, with either prefix.
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var envErr error
	fs.VisitAll(func(fl *flag.Flag) {
		if given[fl.Name] || envErr != nil {
			return
		}
		for _, prefix := range []string{suiteEnvPrefix, compareEnvPrefix} {
			if v, ok := env(loadgen.EnvName(prefix, fl.Name)); ok {
				if err := fs.Set(fl.Name, v); err != nil {
					envErr = fmt.Errorf("%s=%q: %v", loadgen.EnvName(prefix, fl.Name), v, err)
				}
			}
		}
	})
	if envErr != nil {
		return usageErr(envErr, stderr)
	}
	if fs.NArg() > 0 {
		return usageErr(fmt.Errorf("unexpected arguments %q (flags only)", fs.Args()), stderr)
	}
	if err := c.opt.Validate(); err != nil {
		fmt.Fprintf(stderr, "provbench check: %v\n", err)
		return 2
	}
	if _, err := os.Stat(c.baseline); err != nil {
		fmt.Fprintf(stderr, "provbench check: no baseline at %s (%v): make one on a quiet machine with `make bench-baseline` and commit it\n", c.baseline, err)
		return 1
	}
	run, _, code := runSuiteOnce(ctx, &f, stdout, stderr)
	if code != 0 {
		return code
	}
	return compareRuns(&c, run, stdout, stderr)
}

const reportUsage = `provbench report — render report.md and the plots again from a suite.json.

  provbench report --in bench/results/<dir>/suite.json [--out-dir DIR]

Flags:
`

func runReport(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("provbench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "the suite.json to render (required)")
	outDir := fs.String("out-dir", "", "where report.md and the plots go (default: beside --in)")
	fs.Usage = func() { fmt.Fprint(stderr, reportUsage); fs.PrintDefaults() }
	if err := loadgen.ParseWithEnv(fs, args, "PROVLEDGER_BENCH_REPORT_", env); err != nil {
		return usageErr(err, stderr)
	}
	if *in == "" {
		fmt.Fprintf(stderr, "provbench report: --in is required (see --help)\n")
		return 2
	}
	run, err := suite.Load(*in)
	if err != nil {
		fmt.Fprintf(stderr, "provbench report: %v\n", err)
		return 1
	}
	if err := run.FillFractions(); err != nil {
		fmt.Fprintf(stderr, "provbench report: warning: %v\n", err)
	}
	dir := *outDir
	if dir == "" {
		dir = filepath.Dir(*in)
	}
	md, err := report.Write(dir, run)
	if err != nil {
		fmt.Fprintf(stderr, "provbench report: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "report: %s\n", md)
	return 0
}
