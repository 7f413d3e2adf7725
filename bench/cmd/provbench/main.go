// Command provbench is provledger's load generator and benchmark runner.
//
//	provbench append [flags]   append load against one node (--spawn starts one)
//	provbench limits [flags]   this machine's SHA-256, signature, fsync and Pebble limits
//	provbench cluster [flags]  a 3-node Raft cluster under load, then a leader kill
//	provbench suite [flags]    the whole suite: JSON, Markdown report and plots
//	provbench compare [flags]  a suite run against the baseline (benchstat-style)
//	provbench check [flags]    a fresh short suite against the baseline
//	provbench report [flags]   render a suite.json's report again
//
// Every run prints a summary table and writes a JSON result (default
// bench/results/<scenario>-<UTC timestamp>.json). See docs/bench.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/provledger/provledger/bench/loadgen"
)

const usage = `provbench — provledger benchmarks.

Usage:
  provbench append [flags]   append load against one node; --spawn starts
                             provd --dev itself (provbench append --help)
  provbench limits [flags]   this machine's raw limits: SHA-256 MB/s, Ed25519
                             and ECDSA P-256 verifications/s, fsyncs/s
                             (provbench limits --help)
  provbench cluster [flags]  3 provd nodes of one Raft cluster: entries/s,
                             latency, leader-kill failover (provbench cluster --help)
  provbench suite [flags]    the whole suite (--profile short or full): limits,
                             append matrix on 1 and 3 nodes, proofs, disk, restart,
                             audit, scanner, lineage, snapshot; writes suite.json,
                             report.md and plots under bench/results/<timestamp>/
  provbench compare [flags]  a suite.json against the baseline, benchstat-style;
                             exit 1 on a regression beyond --threshold
  provbench check [flags]    suite + compare (make bench-check)
  provbench report [flags]   render report.md and the plots of a suite.json again

Each prints a summary and writes JSON (--out, default
bench/results/<scenario>-<UTC timestamp>.json). Flags can also be set with
PROVLEDGER_BENCH_<FLAG> (append) or PROVLEDGER_BENCH_LIMITS_<FLAG> (limits).
Exit status: 0 ok, 1 the run failed a check (errors, unverified receipts...)
or could not run, 2 bad usage.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	if env == nil {
		env = os.LookupEnv
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "append":
		return runAppend(ctx, args[1:], env, stdout, stderr)
	case "limits":
		return runLimits(args[1:], env, stdout, stderr)
	case "cluster":
		return runCluster(ctx, args[1:], env, stdout, stderr) // cluster.go
	case "suite":
		return runSuite(ctx, args[1:], env, stdout, stderr) // suite.go
	case "compare":
		return runCompare(args[1:], env, stdout, stderr)
	case "check":
		return runCheck(ctx, args[1:], env, stdout, stderr)
	case "report":
		return runReport(args[1:], env, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "provbench: unknown scenario %q\n\n%s", args[0], usage)
	return 2
}

func runAppend(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := loadgen.ParseAppend(args, env, stderr)
	if err != nil {
		return usageErr(err, stderr)
	}
	start := time.Now()
	rep, err := loadgen.RunAppend(ctx, *cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "provbench append: %v\n", err)
		return 1
	}
	out := cfg.Out
	if out == "" {
		out = loadgen.DefaultOut("append", start)
	}
	loadgen.PrintAppend(stdout, rep)
	if err := loadgen.WriteJSON(out, rep); err != nil {
		fmt.Fprintf(stderr, "provbench append: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "JSON: %s\n", out)
	if !rep.OK {
		return 1
	}
	return 0
}

func runLimits(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := loadgen.ParseLimits(args, env, stderr)
	if err != nil {
		return usageErr(err, stderr)
	}
	start := time.Now()
	fmt.Fprintf(stderr, "provbench: measuring limits, %v each\n", cfg.Each)
	rep, err := loadgen.RunLimits(*cfg)
	if err != nil {
		fmt.Fprintf(stderr, "provbench limits: %v\n", err)
		return 1
	}
	out := cfg.Out
	if out == "" {
		out = loadgen.DefaultOut("limits", start)
	}
	loadgen.PrintLimits(stdout, rep)
	if err := loadgen.WriteJSON(out, rep); err != nil {
		fmt.Fprintf(stderr, "provbench limits: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "JSON: %s\n", out)
	return 0
}

func usageErr(err error, stderr io.Writer) int {
	if errors.Is(err, loadgen.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "provbench: %v (see --help)\n", err)
	return 2
}
