package compare_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provledger/provledger/bench/compare"
	"github.com/provledger/provledger/bench/suite"
)

const appendBatch = "append/nodes=1/mode=batch/clients=64/size=1024/alg=ed25519"

func load(t *testing.T, name string) *suite.Run {
	t.Helper()
	r, err := suite.Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func verdict(rep *compare.Report, result, metric string) string {
	for _, r := range rep.Rows {
		if r.Result == result && r.Metric == metric {
			return r.Verdict
		}
	}
	return "(no row)"
}

// TestCompare compares fixtures of a new run against testdata/baseline.json
// with the default options (15 % threshold, U-test from 4 samples).
func TestCompare(t *testing.T) {
	tests := []struct {
		file        string
		regressions int
		verdicts    map[[2]string]string // (result, metric) → verdict
		wantOut     []string
	}{
		{"same.json", 0, map[[2]string]string{
			{appendBatch, "entries_per_s"}:          compare.Same,
			{appendBatch, "node_cores"}:             compare.Informative,
			{"limits", "keys_verify_ed25519_per_s"}: compare.Informative,
		}, []string{"result: OK"}},
		{"throughput-down.json", 1, map[[2]string]string{
			{appendBatch, "entries_per_s"}: compare.Worse,
			{appendBatch, "p99_ms"}:        compare.Same,
		}, []string{"1 REGRESSION", "entries_per_s: 10000 entries/s → 7000 entries/s (-30.0%)"}},
		{"latency-up.json", 1, map[[2]string]string{
			{appendBatch, "p99_ms"}: compare.Worse, // 100 → 130 ms: 100/130-1 = -23 %
		}, []string{"p99_ms"}},
		{"faster.json", 0, map[[2]string]string{
			{appendBatch, "entries_per_s"}: compare.Better,
			{appendBatch, "p99_ms"}:        compare.Better,
		}, []string{"result: OK"}},
		{"within-threshold.json", 0, map[[2]string]string{
			{appendBatch, "entries_per_s"}: compare.Same, // -10 %
			{appendBatch, "node_cores"}:    compare.Informative,
		}, nil},
		{"failed.json", 1, map[[2]string]string{
			{appendBatch, "3 appends failed"}: compare.Failed,
		}, []string{"failed in the new run: 3 appends failed"}},
		{"missing-result.json", 1, map[[2]string]string{
			{"restart", ""}: compare.Missing,
		}, []string{"restart : in the baseline, not in the new run"}},
		{"missing-metric.json", 1, map[[2]string]string{
			{appendBatch, "p99_ms"}: compare.Missing,
		}, nil},
		{"scanner-significant.json", 1, map[[2]string]string{
			{"scanner/Scan/verify", "entries/s"}: compare.Worse,
		}, []string{"p=0.008 n=5+5"}},
		{"scanner-noisy.json", 0, map[[2]string]string{
			// The median dropped 20 %, but the samples overlap: not significant.
			{"scanner/Scan/verify", "entries/s"}: compare.Same,
		}, nil},
		{"slow-machine.json", 0, map[[2]string]string{
			{"limits", "keys_verify_ed25519_per_s"}: compare.Informative,
		}, []string{"the machine's limits moved by -50%"}},
		{"extra-result.json", 0, map[[2]string]string{
			{"proofs/served", ""}: compare.NoBaseline,
		}, nil},
		{"zero-restart.json", 0, map[[2]string]string{
			{"restart", "after_stop_s"}: compare.Better,
		}, nil},
	}
	base := load(t, "baseline.json")
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			rep, err := compare.Compare(base, load(t, tc.file), compare.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Regressions != tc.regressions || rep.OK() != (tc.regressions == 0) {
				t.Errorf("regressions %d (OK %v), want %d", rep.Regressions, rep.OK(), tc.regressions)
			}
			for k, want := range tc.verdicts {
				if got := verdict(rep, k[0], k[1]); got != want {
					t.Errorf("%s %s: verdict %q, want %q", k[0], k[1], got, want)
				}
			}
			var out bytes.Buffer
			rep.Write(&out)
			for _, s := range tc.wantOut {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
			if got := len(rep.Regressed()); got != tc.regressions {
				t.Errorf("Regressed() lists %d rows, want %d", got, tc.regressions)
			}
		})
	}
}

func TestCompareThreshold(t *testing.T) {
	base, cur := load(t, "baseline.json"), load(t, "within-threshold.json") // entries/s -10 %
	for _, tc := range []struct {
		threshold float64
		want      string
	}{{0.05, compare.Worse}, {0.099, compare.Worse}, {0.101, compare.Same}, {0.5, compare.Same}} {
		opt := compare.DefaultOptions()
		opt.Threshold = tc.threshold
		rep, err := compare.Compare(base, cur, opt)
		if err != nil {
			t.Fatal(err)
		}
		if got := verdict(rep, appendBatch, "entries_per_s"); got != tc.want {
			t.Errorf("threshold %v: %q, want %q", tc.threshold, got, tc.want)
		}
	}
}

func TestCompareGeomean(t *testing.T) {
	rep, err := compare.Compare(load(t, "baseline.json"), load(t, "slow-machine.json"), compare.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Geomean != 1 {
		t.Errorf("geomean %v, want 1 (only the limits changed)", rep.Geomean)
	}
	if rep.MachineRatio < 0.49 || rep.MachineRatio > 0.51 {
		t.Errorf("machine ratio %v, want 0.5", rep.MachineRatio)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []compare.Options{
		{Threshold: 0, Alpha: 0.05, MinSamples: 4},
		{Threshold: -0.1, Alpha: 0.05, MinSamples: 4},
		{Threshold: 0.1, Alpha: 0, MinSamples: 4},
		{Threshold: 0.1, Alpha: 1, MinSamples: 4},
		{Threshold: 0.1, Alpha: 0.05, MinSamples: 1},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
		if _, err := compare.Compare(&suite.Run{Schema: suite.Schema}, &suite.Run{Schema: suite.Schema}, o); err == nil {
			t.Errorf("Compare with %+v: no error", o)
		}
	}
	if err := compare.DefaultOptions().Validate(); err != nil {
		t.Error(err)
	}
}
