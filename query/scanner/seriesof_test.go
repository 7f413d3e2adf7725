package scanner

import (
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/provledger/provledger/query/payload"
)

// seriesOfRef is seriesOf as it was, allocating each name.
func (s *Scanner) seriesOfRef(r *payload.CostRow) (names []string, parts []float64) {
	add := func(n string, p float64) { names, parts = append(names, n), append(parts, p) }
	if r.ServiceName != "" {
		add("service:"+r.ServiceName, 1)
	}
	tags := make([]string, 0, len(r.Tags))
	for k, v := range r.Tags {
		tags = append(tags, "tag:"+k+"="+v)
	}
	sort.Strings(tags)
	for _, t := range tags {
		add(t, 1)
	}
	var datasets []string
	switch {
	case r.Link.Job != nil:
		jk := jobKey(r.Link.Job.Namespace, r.Link.Job.Name)
		add(subjectOf("job", jk), 1)
		if js := s.jobs.peek(jk); js != nil {
			datasets = js.Outputs
		}
	case r.Link.RunID != "":
		if rs := s.runs.peek(r.Link.RunID); rs != nil && rs.Job != "" {
			add(subjectOf("job", rs.Job), 1)
			datasets = rs.Outputs
		}
	}
	for _, d := range datasets {
		add("dataset:"+d, 1/float64(len(datasets)))
	}
	return names, parts
}

// TestSeriesOfMatchesReference: the series names seriesOf writes in its
// buffer are the ones it allocated before, in the same order, with the
// same parts (tags whose names sort differently from their keys, names
// with '=', ':' and NUL, rows linked by job, by run, by nothing).
func TestSeriesOfMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	words := []string{"a", "a-b", "a=b", "b", "team", "te\x00am", "x:y", "", "prod", "=", "a.b"}
	w := func() string { return words[rng.IntN(len(words))] }
	s := &Scanner{jobs: newTable[jobState, *jobState](tblJob), runs: newTable[runState, *runState](tblRun)}
	for i := range 20 {
		ns, name := w(), w()
		js := s.jobs.touch(jobKey(ns, name))
		for range rng.IntN(4) {
			js.Outputs = append(js.Outputs, w()+":"+w())
		}
		rs := s.runs.touch("run-" + string(rune('a'+i)))
		if rng.IntN(4) > 0 {
			rs.Job = jobKey(ns, name)
		}
		rs.Outputs = js.Outputs
	}
	for trial := range 5000 {
		r := payload.CostRow{ServiceName: w()}
		if n := rng.IntN(5); n > 0 {
			r.Tags = map[string]string{}
			for range n {
				r.Tags[w()] = w()
			}
		}
		switch rng.IntN(3) {
		case 0:
			r.Link.Job = &payload.JobRef{Namespace: w(), Name: w()}
		case 1:
			r.Link.RunID = "run-" + string(rune('a'+rng.IntN(24)))
		}
		wantNames, wantParts := s.seriesOfRef(&r)
		got := s.seriesOf(&r)
		if len(got) != len(wantNames) {
			t.Fatalf("trial %d: %d series, want %d (%q)", trial, len(got), len(wantNames), wantNames)
		}
		for i, sh := range got {
			if n := string(s.sb[sh.off:sh.end]); n != wantNames[i] || sh.part != wantParts[i] {
				t.Fatalf("trial %d: series %d is %q × %v, want %q × %v", trial, i, n, sh.part, wantNames[i], wantParts[i])
			}
		}
	}
}
