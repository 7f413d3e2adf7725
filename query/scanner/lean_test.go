package scanner

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/provledger/provledger/query/payload"
)

// view is what the detectors read of a parsed payload: the lean decoder
// must give the same view as the strict parser.
type view struct {
	EventType, EventTime, Source, RunID, Job, CodeVersion string
	Inputs, Outputs                                       []datasetView
	Costs                                                 []costView
}

type datasetView struct {
	Name              string
	Schema            []string
	RowCount, Bytes   string
	QualityPresent    bool
	NullCounts        []string
	StatsPresent      bool
	QualityRows       string
	QualityBytes      string
	StatsRows         string
	StatsSize         string
	DistinctCountsSet int
}

type costView struct {
	Row                             int
	Billed, Effective, Currency     string
	Amount                          float64
	Start, End, Service, RunID, Job string
	LinkTag                         string
	Tags                            map[string]string
	TagsNil                         bool
}

func n64(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10)
}

func datasetsView(ds []payload.Dataset) []datasetView {
	var out []datasetView
	for i := range ds {
		d := &ds[i]
		v := datasetView{Name: d.Namespace + ":" + d.Name, Schema: flatten("", d.Schema, nil),
			RowCount: n64(d.RowCount()), Bytes: n64(d.Bytes()), QualityPresent: d.Quality != nil, StatsPresent: d.Stats != nil}
		if d.Quality != nil {
			v.QualityRows, v.QualityBytes = n64(d.Quality.RowCount), n64(d.Quality.Bytes)
			for _, c := range d.Quality.Columns {
				v.NullCounts = append(v.NullCounts, c.Column+"="+n64(c.NullCount))
				if c.DistinctCount != nil {
					v.DistinctCountsSet++
				}
			}
		}
		if d.Stats != nil {
			v.StatsRows, v.StatsSize = n64(d.Stats.RowCount), n64(d.Stats.Size)
		}
		out = append(out, v)
	}
	return out
}

func viewOf(p *payload.Parsed) view {
	var v view
	if e := p.Event; e != nil {
		v = view{EventType: string(e.EventType), EventTime: e.EventTime.Format("2006-01-02T15:04:05.999999999Z07:00"), Source: string(e.Source),
			RunID: e.Run.ID, Job: e.Job.Namespace + ":" + e.Job.Name, CodeVersion: e.Job.CodeVersion(),
			Inputs: datasetsView(e.Inputs), Outputs: datasetsView(e.Outputs)}
	}
	for i := range p.Costs {
		r := &p.Costs[i]
		c := costView{Row: r.Row, Billed: string(r.BilledCost), Effective: string(r.EffectiveCost), Currency: r.BillingCurrency,
			Amount: amountOf(r.Amount()), Start: r.ChargePeriodStart.String(), End: r.ChargePeriodEnd.String(),
			Service: r.ServiceName, RunID: r.Link.RunID, Tags: r.Tags, TagsNil: r.Tags == nil}
		if r.Link.Job != nil {
			c.Job = r.Link.Job.Namespace + ":" + r.Link.Job.Name
		}
		if r.Link.Tag != nil {
			c.LinkTag = r.Link.Tag.Key + "=" + r.Link.Tag.Value
		}
		if f, _ := r.Amount().Rat().Float64(); f != c.Amount {
			c.Amount = -1 // amountOf disagrees with the exact conversion
		}
		v.Costs = append(v.Costs, c)
	}
	return v
}

func viewJSON(t testing.TB, p *payload.Parsed) string {
	b, err := json.Marshal(viewOf(p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// leanLimits are the limits the differential checks run under: the
// defaults, and small ones so that every cap is reachable by small inputs.
var leanLimits = []payload.Limits{{}, {MaxFacetSize: 160, MaxDatasets: 2, MaxFields: 3, MaxNameLen: 12, MaxCostRows: 2}}

// checkLean runs the lean decoder and the strict parser on b and fails
// when the lean decoder accepts what the strict parser rejects or decodes
// a different view. It reports whether the lean decoder accepted b and
// whether the strict parser did.
func checkLean(t testing.TB, typ string, b []byte, lim payload.Limits) (leanOK, strictOK bool) {
	t.Helper()
	checkLexer(t, typ, b, lim)
	ld := newLeanDecoder(lim)
	got, lerr := ld.parse(typ, b)
	want, serr := payload.Parse(typ, b, lim)
	if lerr == nil && serr != nil {
		t.Fatalf("limits %+v: the lean decoder accepts a payload the strict parser rejects (%v):\n%s", lim, serr, b)
	}
	if lerr == nil {
		if g, w := viewJSON(t, got), viewJSON(t, want); g != w {
			t.Fatalf("limits %+v: views differ\nlean   %s\nstrict %s\npayload %s", lim, g, w, b)
		}
	}
	// A decoder is reused: a second payload after a failed one decodes alike.
	if again, err := ld.parse(typ, b); (err == nil) != (lerr == nil) || (err == nil && viewJSON(t, again) != viewJSON(t, got)) {
		t.Fatalf("limits %+v: a reused decoder disagrees with itself on %s", lim, b)
	}
	return lerr == nil, serr == nil
}

// TestLeanMatchesStrict runs the testdata/lean payloads through both
// decoders: ok-* must be taken by the lean decoder, bail-* (valid, but
// outside what it decodes) left to the strict parser, bad-* rejected by
// the strict parser (and so never taken by the lean decoder).
func TestLeanMatchesStrict(t *testing.T) {
	files, _ := filepath.Glob("testdata/lean/*.json")
	if len(files) < 10 {
		t.Fatalf("%d lean testdata files", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			typ := payload.TypeOpenLineage
			if strings.Contains(name, "-cost-") {
				typ = payload.TypeCost
			}
			leanOK, strictOK := checkLean(t, typ, b, payload.Limits{})
			checkLean(t, typ, b, leanLimits[1])
			switch {
			case strings.HasPrefix(name, "ok-") && !leanOK:
				t.Fatalf("the lean decoder left it to the strict parser (strict accepts: %v)", strictOK)
			case strings.HasPrefix(name, "bail-") && (leanOK || !strictOK):
				t.Fatalf("lean accepts %v, strict accepts %v; want false, true", leanOK, strictOK)
			case strings.HasPrefix(name, "bad-") && strictOK:
				t.Fatal("the strict parser accepts it")
			}
		})
	}
}

func TestPlainDecimal(t *testing.T) {
	for _, s := range []string{"0", "-0", "-0.000", "12.3400", "1.5", "-1.50", "100", "0.000000000000000001", "0.0000000000000000001", "01", "1.", ".5", "-", "1e3", "1.5e-2", "+1", " 1", "12a"} {
		got, ok := plainDecimal(s)
		want, wok := payload.ParseDecimal(s)
		if ok && (!wok || got != want) {
			t.Errorf("plainDecimal(%q) = %q, ParseDecimal = %q, %v", s, got, want, wok)
		}
	}
}

func addLeanSeeds(f *testing.F, kind string) {
	files, _ := filepath.Glob("testdata/lean/*.json")
	for _, p := range files {
		if strings.Contains(p, "-cost-") == (kind == "cost") {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// FuzzLeanRunEvent: the lean decoder never accepts a run event the strict
// parser rejects, and decodes what the detectors read alike.
func FuzzLeanRunEvent(f *testing.F) {
	addLeanSeeds(f, "openlineage")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, lim := range leanLimits {
			checkLean(t, payload.TypeOpenLineage, b, lim)
		}
	})
}

// FuzzLeanCost: the same for cost payloads.
func FuzzLeanCost(f *testing.F) {
	addLeanSeeds(f, "cost")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, lim := range leanLimits {
			checkLean(t, payload.TypeCost, b, lim)
		}
	})
}

// TestLeanMutations runs the differential check on many deterministic
// mutations of the testdata payloads (token insertions, deletions,
// duplications, byte changes): a cheap, always-run complement to the
// coverage-guided fuzzers.
func TestLeanMutations(t *testing.T) {
	files, _ := filepath.Glob("testdata/lean/*.json")
	tokens := []string{`null`, `""`, `"x"`, `-1`, `0`, `1.5`, `1e400`, `-0.0`, `true`, `{}`, `[]`, `[{}]`, `"\u00e9"`, `"\ud800"`, `,"a":1`, `,"name":"n"`,
		`"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a0Z"`, `"2026-02-03T04:05:06Z"`, `"START"`, `"ALTER"`, `{"fields":[]}`, `{"rowCount":"1"}`, `"USD"`, `"12.30"`, `" 1 "`}
	rng := rand.New(rand.NewPCG(11, 13))
	n, leanTook := 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		typ := payload.TypeOpenLineage
		if strings.Contains(f, "-cost-") {
			typ = payload.TypeCost
		}
		for range 1000 {
			m := slices.Clone(b)
			for range 1 + rng.IntN(3)/2 {
				if len(m) == 0 {
					break
				}
				i := rng.IntN(len(m))
				j := min(len(m), i+1+rng.IntN(24))
				switch rng.IntN(4) {
				case 0:
					m = slices.Insert(m, i, []byte(tokens[rng.IntN(len(tokens))])...)
				case 1:
					m = slices.Delete(m, i, j)
				case 2:
					m = slices.Insert(m, j, slices.Clone(m[i:j])...)
				default:
					m[i] = "{}[]\",:0a\\ "[rng.IntN(11)]
				}
			}
			for _, lim := range leanLimits {
				ok, _ := checkLean(t, typ, m, lim)
				n++
				if ok {
					leanTook++
				}
			}
		}
	}
	t.Logf("%d mutated payloads, %d taken by the lean decoder", n, leanTook)
	if leanTook == 0 {
		t.Fatal("no mutation was taken by the lean decoder: the check would be vacuous")
	}
}

// checkLexer runs the lean decoder and its jsontext predecessor (refLean,
// leanref_test.go) on b and fails unless both take it or both leave it,
// with the same view.
func checkLexer(t testing.TB, typ string, b []byte, lim payload.Limits) (ok bool) {
	t.Helper()
	got, err := newLeanDecoder(lim).parse(typ, b)
	want, rerr := newRefLean(lim).parse(typ, b)
	if (err == nil) != (rerr == nil) {
		t.Fatalf("limits %+v: the byte-level lean decoder says %v, over jsontext it says %v:\n%q", lim, err, rerr, b)
	}
	if err == nil {
		if g, w := viewJSON(t, got), viewJSON(t, want); g != w {
			t.Fatalf("limits %+v: views differ\nbytes    %s\njsontext %s\npayload %q", lim, g, w, b)
		}
	}
	return err == nil
}

// FuzzLeanLexer: the lean decoder over its byte-level lexer takes exactly
// the payloads it took over jsontext tokens, with the same view (seed
// corpus in testdata/fuzz/FuzzLeanLexer: a first byte 'c' makes the rest a
// cost payload, anything else a run event).
func FuzzLeanLexer(f *testing.F) {
	files, _ := filepath.Glob("testdata/lean/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if strings.Contains(p, "-cost-") {
			b = append([]byte{'c'}, b...)
		} else {
			b = append([]byte{'o'}, b...)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		typ := payload.TypeOpenLineage
		if b[0] == 'c' {
			typ = payload.TypeCost
		}
		for _, lim := range leanLimits {
			checkLexer(t, typ, b[1:], lim)
		}
	})
}
