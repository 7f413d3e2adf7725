// Package suite is the data model of a benchmark suite run: one JSON
// document (machine, Go version, git commit, settings, every scenario's
// metrics, the machine's limits and published peer figures) that
// bench/report renders and bench/compare checks against a baseline.
package suite

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/provledger/provledger/bench/loadgen"
)

// Schema is the version of the JSON document; Decode refuses others.
const Schema = 1

// Directions in which a metric is better.
const (
	HigherIsBetter = "higher"
	LowerIsBetter  = "lower"
)

// ScenarioLimits is the scenario name of the machine's limits.
const ScenarioLimits = "limits"

// Limit names: the metrics of the limits result that bound scenarios.
const (
	LimitSHA256         = "sha256_mb_per_s"
	LimitEd25519        = "ed25519_verify_per_s"
	LimitEd25519Keys    = "keys_verify_ed25519_per_s"
	LimitECDSAP256      = "ecdsa_p256_verify_per_s"
	LimitFsync          = "fsync_per_s"
	LimitPebbleSyncedWr = "pebble_synced_batches_per_s"
)

// Run is one suite run.
type Run struct {
	Schema int `json:"schema"`
	// Profile is "short" or "full" (or a custom name).
	Profile    string             `json:"profile"`
	Provenance loadgen.Provenance `json:"provenance"`
	Machine    loadgen.Machine    `json:"machine"`
	// Settings are the suite's settings (durations, matrix) as given.
	Settings map[string]any `json:"settings,omitempty"`
	// Durability is the statement every append figure is made under.
	Durability string `json:"durability,omitempty"`
	// Results are every scenario's result, the limits among them.
	Results []Result `json:"results"`
	// Peers are other systems' figures, quoted beside ours.
	Peers []Peer `json:"peers,omitempty"`
	// WallS is how long the whole suite took.
	WallS    float64  `json:"wall_s"`
	Failures []string `json:"failures,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Result is one scenario run with one set of parameters.
type Result struct {
	// Scenario groups results ("limits", "append", "cluster", "proofs",
	// "audit", "scanner", "lineage", "snapshot", "restart", "disk").
	Scenario string `json:"scenario"`
	// Name is unique within a run and stable across runs: it is what
	// bench/compare matches on (e.g. "append/nodes=1/mode=batch/clients=64/size=1024/alg=ed25519").
	Name string `json:"name"`
	// Params are the settings that make this result differ from its
	// scenario's others (clients, size, alg, mode, nodes...).
	Params  map[string]string `json:"params,omitempty"`
	Metrics map[string]Metric `json:"metrics"`
	// Bound names the limit (a metric of the limits result) that bounds
	// this scenario and BoundMetric the metric of this result divided by
	// it; Fraction is that quotient, filled by FillFractions.
	Bound       string  `json:"bound,omitempty"`
	BoundMetric string  `json:"bound_metric,omitempty"`
	Fraction    float64 `json:"fraction_of_limit,omitempty"`
	// OK is false when the scenario failed a check; Error says why.
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Detail is the scenario's own JSON report (e.g. loadgen.AppendReport),
	// kept whole for whoever needs more than the metrics.
	Detail any `json:"detail,omitempty"`
}

// Metric is one measured figure.
type Metric struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Better is HigherIsBetter, LowerIsBetter or empty (informational: not
	// guarded by bench/compare).
	Better string `json:"better,omitempty"`
	// Samples are the individual measurements when there were several;
	// Value is then their median.
	Samples []float64 `json:"samples,omitempty"`
}

// Peer is another system's figure. Published figures carry their source
// and the hardware they were measured on; they were not measured here.
type Peer struct {
	System    string  `json:"system"`
	What      string  `json:"what"`
	Value     float64 `json:"value"`
	Unit      string  `json:"unit"`
	Published bool    `json:"published"`
	Hardware  string  `json:"hardware"`
	Source    string  `json:"source"`
}

// Higher is a metric where more is better.
func Higher(v float64, unit string) Metric {
	return Metric{Value: v, Unit: unit, Better: HigherIsBetter}
}

// Lower is a metric where less is better.
func Lower(v float64, unit string) Metric { return Metric{Value: v, Unit: unit, Better: LowerIsBetter} }

// Info is a metric that is reported but not guarded.
func Info(v float64, unit string) Metric { return Metric{Value: v, Unit: unit} }

// ResultName builds a stable result name from a scenario and its
// parameters in the given order: scenario/k1=v1/k2=v2.
func ResultName(scenario string, kv ...string) string {
	var b strings.Builder
	b.WriteString(scenario)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "/%s=%s", kv[i], kv[i+1])
	}
	return b.String()
}

// Params builds a parameter map from key, value pairs.
func Params(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// Limits returns the limits result of the run, if there is one.
func (r *Run) Limits() (*Result, bool) {
	for i := range r.Results {
		if r.Results[i].Scenario == ScenarioLimits {
			return &r.Results[i], true
		}
	}
	return nil, false
}

// Find returns the result with the given name.
func (r *Run) Find(name string) (*Result, bool) {
	for i := range r.Results {
		if r.Results[i].Name == name {
			return &r.Results[i], true
		}
	}
	return nil, false
}

// Scenario returns the results of one scenario, in run order.
func (r *Run) Scenario(s string) []*Result {
	var out []*Result
	for i := range r.Results {
		if r.Results[i].Scenario == s {
			out = append(out, &r.Results[i])
		}
	}
	return out
}

// ErrNoLimit is returned by FillFractions when a result names a bound the
// limits result does not have.
var ErrNoLimit = errors.New("the limits result has no such limit")

// FillFractions sets Fraction on every result that names a Bound: its
// BoundMetric divided by that limit. Results whose bound or metric is
// missing (or zero) keep Fraction 0; the returned error lists them.
func (r *Run) FillFractions() error {
	lim, ok := r.Limits()
	var missing []string
	for i := range r.Results {
		res := &r.Results[i]
		res.Fraction = 0
		if res.Bound == "" || res.Scenario == ScenarioLimits {
			continue
		}
		if !ok {
			missing = append(missing, res.Name+": no limits result")
			continue
		}
		l, ok := lim.Metrics[res.Bound]
		if !ok || l.Value <= 0 {
			missing = append(missing, fmt.Sprintf("%s: limit %q", res.Name, res.Bound))
			continue
		}
		m, ok := res.Metrics[res.BoundMetric]
		if !ok {
			missing = append(missing, fmt.Sprintf("%s: metric %q", res.Name, res.BoundMetric))
			continue
		}
		res.Fraction = m.Value / l.Value
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrNoLimit, strings.Join(missing, "; "))
	}
	return nil
}

// MetricNames returns a result's metric names, sorted.
func (res *Result) MetricNames() []string {
	names := make([]string, 0, len(res.Metrics))
	for k := range res.Metrics {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
