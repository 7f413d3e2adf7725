// Package runner runs provledger's benchmark suite: the machine's limits,
// the append matrix on one node and on a 3-node cluster, proofs served
// and verified, bytes on disk per entry, restart time, and the go test
// benchmarks of other packages (full audit, scanner, lineage queries,
// snapshot/restore), into one bench/suite document.
package runner

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/provledger/provledger/bench/loadgen"
)

// AppendPoint is one cell of the append matrix.
type AppendPoint struct {
	Nodes   int    `json:"nodes"`
	Clients int    `json:"clients"`
	Size    int    `json:"size"`
	Alg     string `json:"alg"`
	Mode    string `json:"mode"`
}

// Name is the point's stable result name.
func (p AppendPoint) Name() string {
	return fmt.Sprintf("append/nodes=%d/mode=%s/clients=%d/size=%d/alg=%s", p.Nodes, p.Mode, p.Clients, p.Size, p.Alg)
}

// Profile is a suite: what runs and for how long.
type Profile struct {
	Name string `json:"name"`
	// LimitsEach is how long each machine limit is measured.
	LimitsEach time.Duration `json:"-"`
	// Append are the append matrix's cells, each with AppendWarmup,
	// AppendDuration and AppendCalibrate.
	Append          []AppendPoint `json:"append"`
	AppendWarmup    time.Duration `json:"-"`
	AppendDuration  time.Duration `json:"-"`
	AppendCalibrate time.Duration `json:"-"`
	// BatchSize and Inflight of the batch and stream modes.
	BatchSize int `json:"batch_size"`
	Inflight  int `json:"inflight"`
	// MaxPoolBytes caps the pre-signed pool of one cell (payload bytes).
	MaxPoolBytes int64 `json:"max_pool_bytes"`
	// LogEntries is the size of the log the proofs, disk and restart
	// scenarios run on (filled with 1 KiB batched appends); ProofsClients
	// and ProofsDuration shape the proof load.
	LogEntries     int           `json:"log_entries"`
	ProofsClients  int           `json:"proofs_clients"`
	ProofsDuration time.Duration `json:"-"`
	// Scales of the go test benchmarks.
	AuditEntries     int           `json:"audit_entries"`
	ScannerJobs      int           `json:"scanner_jobs"`
	ScannerDays      int           `json:"scanner_days"`
	LineageDatasets  int           `json:"lineage_datasets"`
	LineageEdges     int           `json:"lineage_edges"`
	SnapshotEntries  int           `json:"snapshot_entries"`
	GoBenchTimeout   time.Duration `json:"-"`
	LimitsEachS      float64       `json:"limits_each_s"`
	AppendWarmupS    float64       `json:"append_warmup_s"`
	AppendDurationS  float64       `json:"append_duration_s"`
	AppendCalibrateS float64       `json:"append_calibrate_s"`
	ProofsDurationS  float64       `json:"proofs_duration_s"`
}

// Scenarios the suite knows, in run order.
var Scenarios = []string{"limits", "append", "proofs", "disk", "restart", "audit", "scanner", "lineage", "snapshot"}

// Matrix is the cartesian product of the append dimensions.
func Matrix(nodes, clients, sizes []int, algs, modes []string) []AppendPoint {
	var out []AppendPoint
	for _, n := range nodes {
		for _, m := range modes {
			for _, a := range algs {
				for _, s := range sizes {
					for _, c := range clients {
						out = append(out, AppendPoint{Nodes: n, Clients: c, Size: s, Alg: a, Mode: m})
					}
				}
			}
		}
	}
	return out
}

// Short is `make bench`: under 5 minutes on a quiet 2-core machine (the
// go test benchmarks' compilation included when cached). Client sweeps
// for the latency curve in unary and batch mode on one node, one cell per
// other dimension, two cells on a cluster, and small logs.
func Short() Profile {
	var pts []AppendPoint
	for _, m := range []string{loadgen.ModeUnary, loadgen.ModeBatch} {
		for _, c := range []int{1, 16, 64, 256} {
			pts = append(pts, AppendPoint{Nodes: 1, Clients: c, Size: 1024, Alg: "ed25519", Mode: m})
		}
	}
	pts = append(pts,
		AppendPoint{Nodes: 1, Clients: 64, Size: 1024, Alg: "ed25519", Mode: loadgen.ModeStream},
		AppendPoint{Nodes: 1, Clients: 64, Size: 256, Alg: "ed25519", Mode: loadgen.ModeBatch},
		AppendPoint{Nodes: 1, Clients: 64, Size: 16384, Alg: "ed25519", Mode: loadgen.ModeBatch},
		AppendPoint{Nodes: 1, Clients: 64, Size: 1024, Alg: "ecdsa-p256", Mode: loadgen.ModeBatch},
		AppendPoint{Nodes: 3, Clients: 64, Size: 1024, Alg: "ed25519", Mode: loadgen.ModeUnary},
		AppendPoint{Nodes: 3, Clients: 64, Size: 1024, Alg: "ed25519", Mode: loadgen.ModeBatch},
	)
	return Profile{
		Name: "short", LimitsEach: time.Second,
		Append: pts, AppendWarmup: time.Second, AppendDuration: 3 * time.Second, AppendCalibrate: 500 * time.Millisecond,
		BatchSize: 64, Inflight: 8, MaxPoolBytes: 256 << 20,
		LogEntries: 50_000, ProofsClients: 16, ProofsDuration: 2 * time.Second,
		AuditEntries: 20_000, ScannerJobs: 200, ScannerDays: 100, LineageDatasets: 2000, LineageEdges: 20_000,
		SnapshotEntries: 50_000, GoBenchTimeout: 10 * time.Minute,
	}
}

// Full is `make bench-full`: the whole matrix (2 topologies × 4 client
// counts × 3 sizes × 2 signers × 3 modes = 144 cells of 15 s), a 10M-entry
// log for proofs, disk and restart, and the scales for the rest.
// About two hours on a 2-core machine.
func Full() Profile {
	return Profile{
		Name: "full", LimitsEach: 3 * time.Second,
		Append: Matrix([]int{1, 3}, []int{1, 16, 64, 256}, []int{256, 1024, 16384}, []string{"ed25519", "ecdsa-p256"},
			[]string{loadgen.ModeUnary, loadgen.ModeStream, loadgen.ModeBatch}),
		AppendWarmup: 2 * time.Second, AppendDuration: 15 * time.Second, AppendCalibrate: time.Second,
		BatchSize: 64, Inflight: 8, MaxPoolBytes: 1 << 30,
		LogEntries: 10_000_000, ProofsClients: 64, ProofsDuration: 10 * time.Second,
		AuditEntries: 1_000_000, ScannerJobs: 1000, ScannerDays: 100, LineageDatasets: 100_000, LineageEdges: 1_000_000,
		SnapshotEntries: 1_000_000, GoBenchTimeout: 3 * time.Hour,
	}
}

// ProfileByName returns "short" or "full".
func ProfileByName(name string) (Profile, error) {
	switch name {
	case "short":
		return Short(), nil
	case "full":
		return Full(), nil
	}
	return Profile{}, fmt.Errorf("profile %q: want short or full", name)
}

// ParseScenarios checks a comma-separated list of scenario names ("" or
// "all": every one).
func ParseScenarios(s string) (map[string]bool, error) {
	out := map[string]bool{}
	if s == "" || s == "all" {
		for _, sc := range Scenarios {
			out[sc] = true
		}
		return out, nil
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(Scenarios, f) {
			return nil, fmt.Errorf("scenario %q: want some of %s", f, strings.Join(Scenarios, ","))
		}
		out[f] = true
	}
	return out, nil
}

// settings is the profile as the JSON settings map.
func (p *Profile) settings() map[string]any {
	p.LimitsEachS, p.AppendWarmupS, p.AppendDurationS = p.LimitsEach.Seconds(), p.AppendWarmup.Seconds(), p.AppendDuration.Seconds()
	p.AppendCalibrateS, p.ProofsDurationS = p.AppendCalibrate.Seconds(), p.ProofsDuration.Seconds()
	return map[string]any{"profile": *p}
}

func itoa(n int) string { return strconv.Itoa(n) }
