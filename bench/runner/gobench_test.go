package runner

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/bench/suite"
)

func TestParseGoBench(t *testing.T) {
	type want struct {
		value  float64
		unit   string
		better string
		n      int // samples kept (0: a single value)
	}
	tests := []struct {
		file    string
		gb      GoBench
		results []string
		metrics map[string]map[string]want // result → metric → want
		bounded map[string]bool
		absent  map[string][]string // result → metrics that must not be there
	}{
		{
			file:    "scanner.txt",
			gb:      GoBench{Scenario: "scanner", Pkg: "./query/scanner", Bound: suite.LimitEd25519Keys, BoundMetric: "entries/s", BoundSuffix: "/verify"},
			results: []string{"scanner/Scan/verify", "scanner/Scan/noverify"},
			metrics: map[string]map[string]want{
				"scanner/Scan/verify": {
					"entries/s":    {20010, "entries/s", suite.HigherIsBetter, 0},
					"cpu-µs/entry": {95.5, "cpu-µs/entry", suite.LowerIsBetter, 0},
					"findings":     {12, "findings", "", 0},
				},
				"scanner/Scan/noverify": {"entries/s": {40050, "entries/s", suite.HigherIsBetter, 0}},
			},
			bounded: map[string]bool{"scanner/Scan/verify": true, "scanner/Scan/noverify": false},
			absent:  map[string][]string{"scanner/Scan/verify": {"ns/op", "sec/op"}},
		},
		{
			file:    "lineage.txt",
			gb:      GoBench{Scenario: "lineage", Pkg: "./query"},
			results: []string{"lineage/Lineage"},
			metrics: map[string]map[string]want{"lineage/Lineage": {
				"upstream-p99-ms":  {1.2, "upstream-p99-ms", suite.LowerIsBetter, 0},
				"impact-p50-ms":    {0.5, "impact-p50-ms", suite.LowerIsBetter, 0},
				"ingest-entries/s": {15000, "ingest-entries/s", suite.HigherIsBetter, 0},
			}},
			bounded: map[string]bool{"lineage/Lineage": false},
		},
		{
			file:    "snapshot-count3.txt",
			gb:      GoBench{Scenario: "snapshot", Pkg: "./raft/fsm"},
			results: []string{"snapshot/SnapshotRestore"},
			metrics: map[string]map[string]want{"snapshot/SnapshotRestore": {
				"restore-s":          {3.0, "restore-s", suite.LowerIsBetter, 3}, // median of 3.0, 3.5, 2.9
				"persist-s":          {2.0, "persist-s", suite.LowerIsBetter, 3},
				"covered-restore-ms": {0.1, "covered-restore-ms", suite.LowerIsBetter, 3},
				"snapshot-MiB":       {48, "snapshot-MiB", "", 3},
			}},
		},
		{
			file:    "audit.txt",
			gb:      GoBench{Scenario: "audit", Pkg: "./cmd/prov", Bound: suite.LimitEd25519Keys, BoundMetric: "entries/s"},
			results: []string{"audit/AuditFull"},
			metrics: map[string]map[string]want{"audit/AuditFull": {
				"entries/s":        {5000, "entries/s", suite.HigherIsBetter, 0},
				"entries/s@2cores": {9524, "entries/s@2cores", suite.HigherIsBetter, 0},
				"entries":          {20000, "entries", "", 0},
				"cpu-µs/entry":     {210, "cpu-µs/entry", suite.LowerIsBetter, 0},
			}},
			bounded: map[string]bool{"audit/AuditFull": true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rs, err := ParseGoBench(f, &tc.gb)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != len(tc.results) {
				t.Fatalf("%d results, want %d: %+v", len(rs), len(tc.results), rs)
			}
			run := suite.Run{Schema: suite.Schema, Results: rs}
			if err := run.Validate(); err != nil {
				t.Fatalf("parsed results do not validate: %v", err)
			}
			for i, name := range tc.results {
				r := &rs[i]
				if r.Name != name || r.Scenario != tc.gb.Scenario || !r.OK {
					t.Errorf("result %d: %q (scenario %q, ok %v), want %q", i, r.Name, r.Scenario, r.OK, name)
				}
				for k, w := range tc.metrics[name] {
					m, ok := r.Metrics[k]
					if !ok {
						t.Errorf("%s: no metric %q (have %v)", name, k, r.MetricNames())
						continue
					}
					if m.Value != w.value || m.Unit != w.unit || m.Better != w.better || len(m.Samples) != w.n {
						t.Errorf("%s %s: %+v, want %+v", name, k, m, w)
					}
				}
				if got := r.Bound != ""; got != tc.bounded[name] {
					t.Errorf("%s: bounded %v, want %v", name, got, tc.bounded[name])
				}
				for _, k := range tc.absent[name] {
					if _, ok := r.Metrics[k]; ok {
						t.Errorf("%s: metric %q should have been dropped", name, k)
					}
				}
			}
		})
	}
}

func TestParseGoBenchEmpty(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "none.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseGoBench(bytes.NewReader(b), &GoBench{Scenario: "x"}); !errors.Is(err, ErrNoBenchmarks) {
		t.Errorf("err %v, want ErrNoBenchmarks", err)
	}
	b, err = os.ReadFile(filepath.Join("testdata", "nan.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseGoBench(bytes.NewReader(b), &GoBench{Scenario: "x"}); !errors.Is(err, ErrBadValue) {
		t.Errorf("NaN: err %v, want ErrBadValue", err)
	}
}

func TestDirection(t *testing.T) {
	for unit, want := range map[string]string{
		"entries/s": suite.HigherIsBetter, "MB/s": suite.HigherIsBetter, "ingest-entries/s": suite.HigherIsBetter,
		"p99-ms": suite.LowerIsBetter, "restore-s": suite.LowerIsBetter, "cpu-µs/entry": suite.LowerIsBetter, "sec/op": suite.LowerIsBetter,
		"findings": "", "snapshot-MiB": "", "entries": "",
	} {
		if got := direction(unit); got != want {
			t.Errorf("direction(%q) = %q, want %q", unit, got, want)
		}
	}
}

// FuzzParseGoBench: no go test output makes the parser panic, and what it
// accepts is a valid suite document.
func FuzzParseGoBench(f *testing.F) {
	for _, name := range []string{"scanner.txt", "lineage.txt", "snapshot-count3.txt", "none.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := ParseGoBench(bytes.NewReader(b), &GoBench{Scenario: "fuzz", Bound: "x", BoundMetric: "entries/s"})
		if err != nil {
			return
		}
		run := suite.Run{Schema: suite.Schema, Results: rs}
		if err := run.Validate(); err != nil {
			t.Fatalf("accepted output gives an invalid document: %v\n%q", err, b)
		}
	})
}

func TestTail(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"a\n\n b \nc\nd\n": "b / c / d",
		"only":             "only",
	} {
		if got := tail(in, 3); got != want {
			t.Errorf("tail(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeGo writes a shell script standing in for the go command.
func fakeGo(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGoBenchRun(t *testing.T) {
	fixture, err := filepath.Abs(filepath.Join("testdata", "scanner.txt"))
	if err != nil {
		t.Fatal(err)
	}
	gb := GoBench{Scenario: "scanner", Pkg: "./query/scanner", Bench: "^BenchmarkScan$", Timeout: time.Minute}
	var log bytes.Buffer
	rs, err := gb.Run(context.Background(), fakeGo(t, "cat "+fixture), t.TempDir(), &log)
	if err != nil || len(rs) != 2 {
		t.Fatalf("results %v, err %v", rs, err)
	}
	if !strings.Contains(log.String(), "BenchmarkScan/verify-2") {
		t.Errorf("the output was not copied to the log:\n%s", log.String())
	}
	_, err = gb.Run(context.Background(), fakeGo(t, "echo '--- FAIL: BenchmarkScan'; echo 'bad config'; exit 1"), t.TempDir(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "bad config") {
		t.Errorf("failure: %v, want the test's last lines", err)
	}
}

// TestGoBenchRunHung: a go test that never ends is killed, with the
// processes it started, shortly after its timeout.
func TestGoBenchRunHung(t *testing.T) {
	old := killGrace
	killGrace = 200 * time.Millisecond
	defer func() { killGrace = old }()
	gb := GoBench{Scenario: "x", Pkg: ".", Bench: ".", Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, err := gb.Run(context.Background(), fakeGo(t, "sleep 60 & wait"), t.TempDir(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "killed after") {
		t.Errorf("err %v, want killed", err)
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("took %v: the child kept the run alive", el)
	}
}
