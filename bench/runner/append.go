package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/provledger/provledger/bench/loadgen"
	"github.com/provledger/provledger/bench/suite"
)

// boundOf is the limit an append with alg is bounded by: every entry's
// signature is verified once, by the node that receives it.
func boundOf(alg string) string {
	if alg == "ecdsa-p256" {
		return suite.LimitECDSAP256
	}
	return suite.LimitEd25519Keys // provd verifies with crypto/keys.VerifyEd25519
}

func pointParams(pt AppendPoint) map[string]string {
	return suite.Params("nodes", itoa(pt.Nodes), "mode", pt.Mode, "clients", itoa(pt.Clients), "size", itoa(pt.Size), "alg", pt.Alg)
}

// appendConfig is the loadgen configuration of one cell.
func appendConfig(p *Profile, o Options, pt AppendPoint) loadgen.AppendConfig {
	cfg := loadgen.DefaultAppendConfig()
	cfg.Clients, cfg.Size, cfg.Alg, cfg.Mode = pt.Clients, pt.Size, pt.Alg, pt.Mode
	cfg.Warmup, cfg.Duration, cfg.Calibrate = p.AppendWarmup, p.AppendDuration, p.AppendCalibrate
	cfg.BatchSize, cfg.Inflight = p.BatchSize, p.Inflight
	cfg.Provd, cfg.DataRoot = o.Provd, o.DataRoot
	if p.MaxPoolBytes > 0 {
		cfg.PresignCap = int(max(p.MaxPoolBytes/int64(pt.Size), 1000))
	}
	return cfg
}

// runAppendPoint runs one cell: on a spawned provd --dev (1 node) or on
// the leader of a fresh 3-node cluster.
func runAppendPoint(ctx context.Context, p *Profile, o Options, pt AppendPoint) (suite.Result, error) {
	cfg := appendConfig(p, o, pt)
	switch pt.Nodes {
	case 1:
		cfg.Spawn = true
		cfg.ProvdArgs = nodeArgs(pt)
	case 3:
		cl, err := loadgen.StartCluster(ctx, o.Provd, o.DataRoot, false, loadgenRaftTimeout, nodeArgs(pt), o.Log)
		if err != nil {
			return suite.Result{}, err
		}
		defer cl.Close()
		cfg.Server, cfg.LogKey = cl.Leader()
		cfg.NodePIDs = cl.PIDs()
	default:
		return suite.Result{}, fmt.Errorf("append: %d nodes: want 1 or 3", pt.Nodes)
	}
	rep, err := loadgen.RunAppend(ctx, cfg, o.Log)
	if err != nil {
		return suite.Result{}, err
	}
	return appendResult(pt, rep), nil
}

// nodeArgs are the extra provd flags of a cell's node(s): provd's
// admission control refuses append RPCs beyond --max-inflight-appends
// (default 128) with ResourceExhausted, which would fail the 256-client
// cells; the suite measures throughput, so it admits twice the clients.
func nodeArgs(pt AppendPoint) []string {
	return []string{"--max-inflight-appends", itoa(max(128, 2*pt.Clients))}
}

// loadgenRaftTimeout is the cluster nodes' --raft-timeout: provd's default,
// as provbench cluster uses.
const loadgenRaftTimeout = loadgen.DefaultRaftTimeout

// appendResult converts one cell's report.
func appendResult(pt AppendPoint, rep *loadgen.AppendReport) suite.Result {
	res := &rep.Results
	m := map[string]suite.Metric{
		"entries_per_s":        suite.Higher(res.EntriesPerS, "entries/s"),
		"envelope_mb_per_s":    suite.Higher(res.EnvelopeMBPerS, "MB/s"),
		"payload_mb_per_s":     suite.Info(res.PayloadMBPerS, "MB/s"),
		"p50_ms":               suite.Lower(res.Latency.P50, "ms"),
		"p99_ms":               suite.Lower(res.Latency.P99, "ms"),
		"p999_ms":              suite.Info(res.Latency.P999, "ms"), // a handful of samples in a short window: reported, not guarded
		"loadgen_cores":        suite.Info(res.CPU.LoadgenCores, "cores"),
		"other_cores":          suite.Info(res.CPU.OtherCores, "cores"),
		"loadgen_us_per_entry": suite.Info(res.CPU.LoadgenUsPerEntry, "µs/entry"),
		"errors":               suite.Info(float64(res.ErrorsTotal), "appends"),
	}
	if res.CPU.NodeCores != nil {
		m["node_cores"] = suite.Info(*res.CPU.NodeCores, "cores")
	}
	if res.CPU.NodeUsPerEntry != nil {
		// CPU per entry hardly moves when other work competes for the
		// cores: the steadiest figure to guard.
		m["node_us_per_entry"] = suite.Lower(*res.CPU.NodeUsPerEntry, "µs/entry")
	}
	r := suite.Result{
		Scenario: "append", Name: pt.Name(), Params: pointParams(pt), Metrics: m,
		Bound: boundOf(pt.Alg), BoundMetric: "entries_per_s",
		OK: rep.OK, Detail: rep,
	}
	if !rep.OK {
		r.Error = strings.Join(rep.Failures, "; ")
		if r.Error == "" {
			r.Error = "failed a check"
		}
	}
	return r
}

// errNoLog is the error of the log scenarios when the log could not be
// filled.
var errNoLog = errors.New("the log for the proofs, disk and restart scenarios could not be filled")
