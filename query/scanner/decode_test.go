package scanner_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provledger/provledger/query/scanner"
)

func TestParsePolicyTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/policy/*.json")
	if len(files) == 0 {
		t.Fatal("no policy testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := scanner.ParsePolicy(b)
			if err != nil {
				t.Fatal(err)
			}
			if p.Version != scanner.PolicyVersion {
				t.Fatalf("version %d", p.Version)
			}
		})
	}
	b, _ := os.ReadFile("testdata/policy/full.json")
	p, err := scanner.ParsePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Keys[0].ID().IsZero() || p.Budgets[0].Amount() != 12000 || p.Datasets[0].Interval().Hours() != 26 {
		t.Fatalf("parsed policy: key %s, budget %v, interval %v", p.Keys[0].ID(), p.Budgets[0].Amount(), p.Datasets[0].Interval())
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not json", `{`, "unexpected EOF"},
		{"version", `{"policyVersion": 2}`, "policyVersion 2"},
		{"unknown member", `{"policyVersion": 1, "budget": []}`, "unknown field"},
		{"bad key", `{"policyVersion": 1, "keys": [{"publicKey": "nope"}]}`, "keys[0].publicKey"},
		{"bad revocation", `{"policyVersion": 1, "revokedKeys": ["zz"]}`, "revokedKeys[0]"},
		{"job without name", `{"policyVersion": 1, "jobs": [{"namespace": "a", "approvedVersions": []}]}`, "jobs[0]"},
		{"empty version", `{"policyVersion": 1, "jobs": [{"namespace": "a", "name": "b", "approvedVersions": [""]}]}`, "approvedVersions[0]"},
		{"negative budget", `{"policyVersion": 1, "budgets": [{"series": "s", "currency": "USD", "monthly": "-1"}]}`, "budgets[0].monthly"},
		{"bad currency", `{"policyVersion": 1, "budgets": [{"series": "s", "currency": "US", "monthly": "1"}]}`, "budgets[0]"},
		{"bad interval", `{"policyVersion": 1, "datasets": [{"namespace": "a", "name": "b", "maxInterval": "soon"}]}`, "maxInterval"},
		{"trailing", `{"policyVersion": 1} {}`, "trailing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := scanner.ParsePolicy([]byte(tc.in))
			if err == nil || !errors.Is(err, scanner.ErrBadPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParsePolicy = %v, want ErrBadPolicy mentioning %q", err, tc.want)
			}
		})
	}
}

func TestFindingRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/finding/*.json")
	if len(files) == 0 {
		t.Fatal("no finding testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			fd, err := scanner.ParseFinding(b)
			if err != nil {
				t.Fatal(err)
			}
			out, err := fd.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(b)); string(out) != got {
				t.Fatalf("re-marshalled finding differs:\n got %s\nwant %s", out, got)
			}
		})
	}
}

func TestParseFindingErrors(t *testing.T) {
	ok := `{"findingVersion":1,"detector":"time","kind":"time.skew","severity":"low","subject":"run:x","entries":[1],"time":"2026-01-01T00:00:00Z","message":"m"}`
	if _, err := scanner.ParseFinding([]byte(ok)); err != nil {
		t.Fatalf("valid finding: %v", err)
	}
	tests := []struct{ name, from, to string }{
		{"version", `"findingVersion":1`, `"findingVersion":2`},
		{"kind of another detector", `"kind":"time.skew"`, `"kind":"cost.band"`},
		{"severity", `"severity":"low"`, `"severity":"urgent"`},
		{"subject", `"subject":"run:x"`, `"subject":"x"`},
		{"no entries", `"entries":[1]`, `"entries":[]`},
		{"entries not ascending", `"entries":[1]`, `"entries":[3,2]`},
		{"two lines", `"message":"m"`, `"message":"a\nb"`},
		{"no time", `"time":"2026-01-01T00:00:00Z",`, ``},
		{"unknown member", `"message":"m"`, `"message":"m","extra":1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(ok, tc.from, tc.to, 1)
			if in == ok {
				t.Fatal("replacement did not apply")
			}
			if _, err := scanner.ParseFinding([]byte(in)); !errors.Is(err, scanner.ErrBadFinding) {
				t.Fatalf("ParseFinding = %v, want ErrBadFinding", err)
			}
		})
	}
}

func TestSeverity(t *testing.T) {
	for s := scanner.SeverityInfo; s <= scanner.SeverityCritical; s++ {
		got, err := scanner.ParseSeverity(strings.ToUpper(s.String()))
		if err != nil || got != s {
			t.Fatalf("ParseSeverity(%s) = %v, %v", s, got, err)
		}
	}
	if _, err := scanner.ParseSeverity("urgent"); err == nil {
		t.Fatal("urgent parsed")
	}
}

func FuzzParseFinding(f *testing.F) {
	files, _ := filepath.Glob("testdata/finding/*.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fd, err := scanner.ParseFinding(b)
		if err != nil {
			if !errors.Is(err, scanner.ErrBadFinding) {
				t.Fatalf("error %v does not wrap ErrBadFinding", err)
			}
			return
		}
		out, err := fd.Marshal()
		if err != nil {
			t.Fatalf("valid finding does not marshal: %v", err)
		}
		again, err := scanner.ParseFinding(out)
		if err != nil {
			t.Fatalf("marshalled finding does not parse: %v", err)
		}
		out2, _ := again.Marshal()
		if string(out) != string(out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	files, _ := filepath.Glob("testdata/policy/*.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := scanner.ParsePolicy(b)
		if err != nil {
			if !errors.Is(err, scanner.ErrBadPolicy) {
				t.Fatalf("error %v does not wrap ErrBadPolicy", err)
			}
			return
		}
		for _, bu := range p.Budgets {
			if !(bu.Amount() > 0) {
				t.Fatalf("budget %q accepted with amount %v", bu.Monthly, bu.Amount())
			}
		}
		for _, k := range p.Keys {
			if k.ID().IsZero() {
				t.Fatal("key accepted without an id")
			}
		}
	})
}
