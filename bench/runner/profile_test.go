package runner

import (
	"strings"
	"testing"
	"time"
)

func TestProfiles(t *testing.T) {
	full := Full()
	if len(full.Append) != 2*4*3*2*3 {
		t.Errorf("full matrix has %d cells, want 144", len(full.Append))
	}
	for _, p := range []Profile{Short(), Full()} {
		seen := map[string]bool{}
		for _, pt := range p.Append {
			if seen[pt.Name()] {
				t.Errorf("%s: cell %s twice", p.Name, pt.Name())
			}
			seen[pt.Name()] = true
		}
		if p.LogEntries < 2 || p.AppendDuration <= 0 || p.GoBenchTimeout <= 0 {
			t.Errorf("%s: incomplete profile %+v", p.Name, p)
		}
	}
	// The short profile's append cells must fit its 5-minute budget: each
	// costs its window, warmup and calibration plus ~4 s of setup.
	s := Short()
	per := s.AppendWarmup + s.AppendDuration + s.AppendCalibrate + 4*time.Second
	if total := time.Duration(len(s.Append)) * per; total > 2*time.Minute {
		t.Errorf("short append cells take ~%v, want at most 2 minutes", total)
	}
	if _, err := ProfileByName("medium"); err == nil {
		t.Error("unknown profile accepted")
	}
}

func TestParseScenarios(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", Scenarios, ""},
		{"all", Scenarios, ""},
		{"limits, append", []string{"limits", "append"}, ""},
		{"limits,bogus", nil, `scenario "bogus"`},
	}
	for _, tc := range tests {
		got, err := ParseScenarios(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
		for _, s := range tc.want {
			if !got[s] {
				t.Errorf("%q: %s missing", tc.in, s)
			}
		}
	}
}

func TestMatrixNames(t *testing.T) {
	pts := Matrix([]int{1}, []int{1, 16}, []int{256}, []string{"ed25519"}, []string{"unary"})
	if len(pts) != 2 || pts[0].Name() != "append/nodes=1/mode=unary/clients=1/size=256/alg=ed25519" {
		t.Errorf("got %+v", pts)
	}
}
