package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provledger/provledger/bench/suite"
)

func TestCompareCommand(t *testing.T) {
	td := func(f string) string { return filepath.Join("testdata", f) }
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		wantOut string
		wantErr string
	}{
		{"same", []string{"--baseline", td("baseline.json"), "--new", td("same.json")}, nil, 0, "result: OK", ""},
		{"regression", []string{"--baseline", td("baseline.json"), "--new", td("throughput-down.json")}, nil, 1, "1 REGRESSION", ""},
		{"looser threshold", []string{"--baseline", td("baseline.json"), "--new", td("throughput-down.json"), "--threshold", "0.4"}, nil, 0, "result: OK", ""},
		{"threshold from env", []string{"--baseline", td("baseline.json"), "--new", td("throughput-down.json")}, map[string]string{"PROVLEDGER_BENCH_COMPARE_THRESHOLD": "0.4"}, 0, "result: OK", ""},
		{"no new", []string{"--baseline", td("baseline.json")}, nil, 2, "", "--new is required"},
		{"bad threshold", []string{"--baseline", td("baseline.json"), "--new", td("same.json"), "--threshold", "0"}, nil, 2, "", "threshold 0"},
		{"no baseline", []string{"--baseline", td("absent.json"), "--new", td("same.json")}, nil, 1, "", "make bench-baseline"},
		{"new not a run", []string{"--baseline", td("baseline.json"), "--new", "suite.go"}, nil, 1, "", "invalid suite result"},
		{"positional", []string{"--baseline", td("baseline.json"), td("same.json")}, nil, 2, "", "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"compare"}, tc.args...), env, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String(), tc.wantOut) || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
		})
	}
}

func TestSuiteCommandUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"bad profile", []string{"suite", "--profile", "medium"}, 2, `profile "medium"`},
		{"bad scenario", []string{"suite", "--scenarios", "limits,warp"}, 2, `scenario "warp"`},
		{"no cell matches", []string{"suite", "--cells", "nodes=5/", "--provd", os.Args[0]}, 2, "matches none"},
		{"bad cells regexp", []string{"suite", "--cells", "(", "--provd", os.Args[0]}, 2, "--cells"},
		{"negative override", []string{"suite", "--duration", "-1s"}, 2, "--duration -1s is negative"},
		{"tiny log", []string{"suite", "--log-entries", "1"}, 2, "--log-entries 1"},
		{"no provd", []string{"suite", "--scenarios", "append", "--provd", filepath.Join(dir, "absent")}, 2, "--provd"},
		{"check without baseline", []string{"check", "--baseline", filepath.Join(dir, "absent.json")}, 1, "make bench-baseline"},
		{"report without in", []string{"report"}, 2, "--in is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append(tc.args, "--out-dir", filepath.Join(dir, tc.name))
			if tc.args[0] == "report" {
				args = tc.args
			}
			code := run(context.Background(), args, noEnv, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("exit %d (want %d)\nstderr:\n%s", code, tc.code, stderr.String())
			}
		})
	}
}

// TestSuiteLimitsOnly runs the real suite with only the limits, briefly,
// and checks the directory it writes, then renders it again with report.
func TestSuiteLimitsOnly(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	base := filepath.Join(dir, "baseline", "short.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"suite", "--scenarios", "limits", "--limits-each", "50ms", "--data-root", dir,
		"--out-dir", out, "--baseline-out", base}, noEnv, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	r, err := suite.Load(filepath.Join(out, "suite.json"))
	if err != nil {
		t.Fatal(err)
	}
	lim, ok := r.Limits()
	if !ok || len(r.Results) != 1 || r.Profile != "short" || r.Provenance.GoVersion == "" || r.Machine.NProc == 0 {
		t.Fatalf("unexpected run: %+v", r)
	}
	for _, k := range []string{suite.LimitSHA256, suite.LimitEd25519, suite.LimitEd25519Keys, suite.LimitECDSAP256, suite.LimitFsync, suite.LimitPebbleSyncedWr} {
		if lim.Metrics[k].Value <= 0 {
			t.Errorf("limit %s = %v", k, lim.Metrics[k].Value)
		}
	}
	for _, f := range []string{"report.md", "suite.log"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := suite.Load(base); err != nil {
		t.Errorf("baseline copy: %v", err)
	}
	// The run compared with itself (its baseline copy) passes.
	stdout.Reset()
	if code := run(context.Background(), []string{"compare", "--baseline", base, "--new", filepath.Join(out, "suite.json")}, noEnv, &stdout, &stderr); code != 0 {
		t.Errorf("compare with itself: exit %d\n%s", code, stdout.String())
	}
	// report renders it again elsewhere.
	again := filepath.Join(dir, "again")
	if code := run(context.Background(), []string{"report", "--in", filepath.Join(out, "suite.json"), "--out-dir", again}, noEnv, &stdout, &stderr); code != 0 {
		t.Fatalf("report: exit %d\n%s", code, stderr.String())
	}
	if b, err := os.ReadFile(filepath.Join(again, "report.md")); err != nil || !strings.Contains(string(b), "## Machine limits") {
		t.Errorf("re-rendered report: %v\n%s", err, b)
	}
}
