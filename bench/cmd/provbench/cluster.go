package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/provledger/provledger/bench/loadgen"
)

// runCluster is `provbench cluster`: a 3-node Raft cluster of provd
// processes under append load, then a leader kill.
func runCluster(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := loadgen.ParseCluster(args, env, stderr)
	if err != nil {
		return usageErr(err, stderr)
	}
	start := time.Now()
	rep, err := loadgen.RunCluster(ctx, *cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "provbench cluster: %v\n", err)
		return 1
	}
	out := cfg.Out
	if out == "" {
		out = loadgen.DefaultOut("cluster", start)
	}
	loadgen.PrintCluster(stdout, rep)
	if err := loadgen.WriteJSON(out, rep); err != nil {
		fmt.Fprintf(stderr, "provbench cluster: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "JSON: %s\n", out)
	if !rep.OK {
		return 1
	}
	return 0
}
