package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/bench/loadgen"
	"github.com/provledger/provledger/bench/suite"
)

// fillRound is how many entries one pre-signed round of the fill appends
// (its pool of 1 KiB envelopes takes ~1 GiB of memory).
const fillRound = 250_000

// restartTimeout bounds how long a restart of a large log may take.
const restartTimeout = 30 * time.Minute

// runLogScenarios spawns one node, fills its log to p.LogEntries entries
// (1 KiB in-toto payloads, batched appends from 64 clients, every batch
// fsynced), then measures on it: proofs served and verified, bytes on
// disk per entry, and restart time after a clean stop and after a kill.
func runLogScenarios(ctx context.Context, p *Profile, o Options, say func(string, ...any)) []suite.Result {
	params := suite.Params("entries", itoa(p.LogEntries))
	fail := func(scenario string, err error) suite.Result {
		return suite.Result{Scenario: scenario, Name: scenario, Params: params, Metrics: map[string]suite.Metric{}, Error: err.Error()}
	}
	failAll := func(err error) []suite.Result {
		var out []suite.Result
		for _, s := range []string{"proofs", "disk", "restart"} {
			if o.Scenarios[s] {
				out = append(out, fail(s, err))
			}
		}
		return out
	}
	node, err := loadgen.SpawnNode(ctx, o.Provd, nil, o.DataRoot, true)
	if err != nil {
		return failAll(err)
	}
	defer func() {
		node.Stop()
		node.RemoveData()
	}()
	du0, err := node.DiskUsage() // an empty log's files: not per entry
	if err != nil {
		return failAll(err)
	}
	say("filling a log of %d entries on %s", p.LogEntries, node.Addr)
	t0 := time.Now()
	size, err := fill(ctx, node, p, o)
	if err != nil {
		return failAll(fmt.Errorf("%w: %v", errNoLog, err))
	}
	fillS := time.Since(t0).Seconds()
	var out []suite.Result

	if o.Scenarios["proofs"] {
		say("proofs: %d clients, %v per kind", p.ProofsClients, p.ProofsDuration)
		rep, err := loadgen.RunProofs(ctx, loadgen.ProofsConfig{Addr: node.Addr, HTTPAddr: node.HTTPAddr, LogKey: node.LogPub(), Clients: p.ProofsClients, Duration: p.ProofsDuration})
		if err != nil {
			out = append(out, fail("proofs", err))
		} else {
			out = append(out, proofsResults(rep)...)
		}
	}
	// Bytes on disk, at rest: after a clean stop (SIGTERM), less what an
	// empty log's files took (manifests, keys): the bytes written
	// (apparent sizes) is the guarded figure; the space allocated, which
	// counts Pebble's preallocated WAL files, is reported beside it. The
	// restart scenario then starts the node again from here.
	if err := node.Stop(); err != nil {
		return append(out, failAll(fmt.Errorf("stop the node: %w", err))...)
	}
	if o.Scenarios["disk"] {
		du, err := node.DiskUsage()
		if err != nil {
			out = append(out, fail("disk", err))
		} else {
			out = append(out, suite.Result{
				Scenario: "disk", Name: "disk", Params: params, OK: true,
				Metrics: map[string]suite.Metric{
					"bytes_per_entry":           suite.Lower(float64(du.Apparent-du0.Apparent)/float64(size), "B/entry"),
					"allocated_bytes_per_entry": suite.Info(float64(du.Allocated-du0.Allocated)/float64(size), "B/entry"),
					"total_bytes":               suite.Info(float64(du.Apparent), "B"),
					"allocated_bytes":           suite.Info(float64(du.Allocated), "B"),
					"empty_bytes":               suite.Info(float64(du0.Apparent), "B"),
					"entries":                   suite.Info(float64(size), "entries"),
					"fill_s":                    suite.Info(fillS, "s"),
				},
			})
		}
	}
	if o.Scenarios["restart"] {
		out = append(out, restart(ctx, node, params, size))
	}
	return out
}

// fill appends until the node's log holds p.LogEntries entries, in
// pre-signed rounds of at most fillRound entries.
func fill(ctx context.Context, node *loadgen.Node, p *Profile, o Options) (uint64, error) {
	c, err := client.Dial(ctx, node.Addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	for {
		cp, err := c.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{})
		if err != nil {
			return 0, err
		}
		head, err := client.OpenCheckpoint(cp.GetNote(), nil)
		if err != nil {
			return 0, err
		}
		if head.Size >= uint64(p.LogEntries) {
			return head.Size, nil
		}
		cfg := loadgen.DefaultAppendConfig()
		cfg.Server, cfg.LogKey = node.Addr, node.LogPub()
		cfg.Mode, cfg.BatchSize, cfg.Clients = loadgen.ModeBatch, 64, 64
		cfg.Warmup, cfg.Calibrate = 0, 0
		cfg.Count = int(min(uint64(fillRound), uint64(p.LogEntries)-head.Size))
		cfg.VerifyEvery = 1000
		rep, err := loadgen.RunAppend(ctx, cfg, nil)
		if err != nil {
			return 0, err
		}
		if !rep.OK {
			return 0, fmt.Errorf("fill round failed: %v", rep.Failures)
		}
		fmt.Fprintf(o.Log, "provbench suite: fill: +%d entries at %.0f/s\n", rep.Results.Entries, rep.Results.EntriesPerS)
	}
}

// restart starts the cleanly stopped node again, then kills it and starts
// it again, timing each start until the node serves.
func restart(ctx context.Context, node *loadgen.Node, params map[string]string, size uint64) suite.Result {
	r := suite.Result{Scenario: "restart", Name: "restart", Params: params, Metrics: map[string]suite.Metric{"entries": suite.Info(float64(size), "entries")}}
	d, err := node.Restart(ctx, restartTimeout)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Metrics["after_stop_s"] = suite.Lower(d.Seconds(), "s")
	node.Kill()
	if d, err = node.Restart(ctx, restartTimeout); err != nil {
		r.Error = "after kill: " + err.Error()
		return r
	}
	r.Metrics["after_kill_s"] = suite.Lower(d.Seconds(), "s")
	r.OK = true
	return r
}

// proofsResults converts the proofs report: one result for what the node
// serves (gRPC and tiles), one for client verification.
func proofsResults(rep *loadgen.ProofsReport) []suite.Result {
	params := suite.Params("tree_size", fmt.Sprint(rep.TreeSize), "clients", itoa(rep.Settings.Clients))
	served := suite.Result{
		Scenario: "proofs", Name: "proofs/served", Params: params, OK: rep.Errors == 0, Detail: rep,
		Metrics: map[string]suite.Metric{
			"inclusion_grpc_per_s":    suite.Higher(rep.Inclusion.PerS, "proofs/s"),
			"inclusion_grpc_p99_ms":   suite.Lower(rep.Inclusion.Latency.P99, "ms"),
			"consistency_grpc_per_s":  suite.Higher(rep.Consistency.PerS, "proofs/s"),
			"consistency_grpc_p99_ms": suite.Lower(rep.Consistency.Latency.P99, "ms"),
			"tiles_http_per_s":        suite.Higher(rep.Tiles.PerS, "tiles/s"),
			"tiles_http_p99_ms":       suite.Lower(rep.Tiles.Latency.P99, "ms"),
			"tile_mb_per_s":           suite.Info(rep.TileMBPerS, "MB/s"),
			"loadgen_cores":           suite.Info(rep.LoadgenCores, "cores"),
		},
	}
	if rep.Errors > 0 {
		served.Error = fmt.Sprintf("%d requests failed; first: %s", rep.Errors, rep.FirstError)
	}
	verify := suite.Result{
		Scenario: "proofs", Name: "proofs/client-verify", Params: params, OK: true,
		Metrics: map[string]suite.Metric{
			"verify_inclusion_per_s":   suite.Higher(rep.VerifyInclusionPerS, "verifications/s"),
			"verify_consistency_per_s": suite.Higher(rep.VerifyConsistencyPerS, "verifications/s"),
		},
		// A Merkle path is ~log2(size) SHA-256 compressions of 64 bytes:
		// bounded by SHA-256 speed, shown for scale.
	}
	return []suite.Result{served, verify}
}
