package suite_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provledger/provledger/bench/suite"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		file    string
		wantErr string // "" for a valid document
	}{
		{"valid.json", ""},
		{"bad-schema.json", "schema 2, want 1"},
		{"dup-names.json", "two results named"},
		{"no-name.json", "has no name"},
		{"no-scenario.json", "has no scenario"},
		{"no-unit.json", "no unit"},
		{"bad-better.json", `better is "faster"`},
		{"trailing.json", "trailing data"},
		{"not-json.json", "invalid character"},
		{"wrong-type.json", "cannot unmarshal string"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			run, err := suite.Load(filepath.Join("testdata", tc.file))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(run.Results) != 4 {
					t.Errorf("%d results, want 4", len(run.Results))
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.wantErr)
			}
			if !errors.Is(err, suite.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q: want ErrInvalid containing %q", err, tc.wantErr)
			}
		})
	}
	if _, err := suite.Load(filepath.Join("testdata", "absent.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v, want ErrNotExist", err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	run, err := suite.Load(filepath.Join("testdata", "valid.json"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sub", "suite.json")
	if err := run.Save(path); err != nil {
		t.Fatal(err)
	}
	again, err := suite.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := run.Find("restart")
	b, _ := again.Find("restart")
	if a.Metrics["after_stop_s"].Value != b.Metrics["after_stop_s"].Value || a.Metrics["after_stop_s"].Better != b.Metrics["after_stop_s"].Better || again.Provenance != run.Provenance {
		t.Errorf("round trip changed the run: %+v vs %+v", a, b)
	}
}

func TestValidateNonFinite(t *testing.T) {
	for _, m := range []suite.Metric{
		{Value: math.NaN(), Unit: "s"},
		{Value: math.Inf(1), Unit: "s"},
		{Value: 1, Unit: "s", Samples: []float64{1, math.Inf(-1)}},
	} {
		run := suite.Run{Schema: suite.Schema, Results: []suite.Result{{Scenario: "a", Name: "a", Metrics: map[string]suite.Metric{"m": m}}}}
		if err := run.Validate(); !errors.Is(err, suite.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", m, err)
		}
	}
}

func TestFillFractions(t *testing.T) {
	lim := suite.Result{Scenario: suite.ScenarioLimits, Name: "limits", Metrics: map[string]suite.Metric{
		suite.LimitEd25519Keys: suite.Higher(40000, "verifications/s"),
		suite.LimitECDSAP256:   suite.Higher(0, "verifications/s"),
	}}
	res := func(name, bound, metric string, v float64) suite.Result {
		return suite.Result{Scenario: "append", Name: name, Bound: bound, BoundMetric: "entries_per_s", Metrics: map[string]suite.Metric{metric: suite.Higher(v, "entries/s")}}
	}
	tests := []struct {
		name    string
		results []suite.Result
		want    map[string]float64
		wantErr string
	}{
		{"bounded", []suite.Result{lim, res("a", suite.LimitEd25519Keys, "entries_per_s", 10000)}, map[string]float64{"a": 0.25}, ""},
		{"unbounded", []suite.Result{lim, res("a", "", "entries_per_s", 10000)}, map[string]float64{"a": 0}, ""},
		{"unknown limit", []suite.Result{lim, res("a", "fsync_per_s", "entries_per_s", 10000)}, map[string]float64{"a": 0}, `limit "fsync_per_s"`},
		{"zero limit", []suite.Result{lim, res("a", suite.LimitECDSAP256, "entries_per_s", 10000)}, map[string]float64{"a": 0}, `limit "ecdsa_p256_verify_per_s"`},
		{"missing metric", []suite.Result{lim, res("a", suite.LimitEd25519Keys, "other", 10000)}, map[string]float64{"a": 0}, `metric "entries_per_s"`},
		{"no limits", []suite.Result{res("a", suite.LimitEd25519Keys, "entries_per_s", 10000)}, map[string]float64{"a": 0}, "no limits result"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := suite.Run{Schema: suite.Schema, Results: tc.results}
			err := run.FillFractions()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !errors.Is(err, suite.ErrNoLimit) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want ErrNoLimit containing %q", err, tc.wantErr)
			}
			for name, want := range tc.want {
				r, _ := run.Find(name)
				if r.Fraction != want {
					t.Errorf("%s: fraction %v, want %v", name, r.Fraction, want)
				}
			}
		})
	}
}

func TestResultName(t *testing.T) {
	if got := suite.ResultName("append", "nodes", "1", "mode", "batch"); got != "append/nodes=1/mode=batch" {
		t.Errorf("got %q", got)
	}
	if got := suite.Params("a", "1", "b"); len(got) != 1 || got["a"] != "1" {
		t.Errorf("odd pairs: %v", got)
	}
}

// FuzzDecode: no input makes Decode panic, and whatever it accepts
// survives a save and a second decode.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"valid.json", "dup-names.json", "trailing.json", "wrong-type.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		run, err := suite.Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		path := filepath.Join(t.TempDir(), "s.json")
		if err := run.Save(path); err != nil {
			t.Fatal(err)
		}
		if _, err := suite.Load(path); err != nil {
			t.Fatalf("a decoded run does not decode again: %v", err)
		}
		_ = run.FillFractions()
	})
}
