package query_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/provledger/provledger/query"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/internal/testlog"
	"github.com/provledger/provledger/query/payload"
)

// A dense graph full of cycles: n datasets, and a job per dataset that
// reads it and its next two neighbours (mod n) and writes the dataset
// after them. Every query ends, within its budget, and says when it was
// cut short.
func TestCyclesAndFanOutNeverHang(t *testing.T) {
	const n = 60
	l := testlog.Open(t, graph.New(graph.Options{Logger: testlog.Logger}))
	d := func(i int) [2]string { return [2]string{"mem://dense", fmt.Sprintf("d%02d", i%n)} }
	var ps []testlog.Payload
	for i := 0; i < n; i++ {
		ps = append(ps, testlog.Payload{Type: payload.TypeOpenLineage, Body: testlog.Event(uint64(i), "dense", fmt.Sprintf("j%02d", i), [][2]string{d(i), d(i + 1), d(i + 2)}, [][2]string{d(i + 3)})})
	}
	l.Apply(t, ps...)
	e := query.New(l.Log)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d0 := answer.Ref{Kind: "dataset", Parts: []string{"mem://dense", "d00"}}
	d30 := answer.Ref{Kind: "dataset", Parts: []string{"mem://dense", "d30"}}

	a, err := e.Upstream(ctx, d0, query.Request{Depth: query.MaxDepth})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(nodeKeys(a, "dataset")); got != n || a.Truncated != nil {
		t.Errorf("upstream reached %d datasets (truncated %+v)", got, a.Truncated)
	}
	a, err = e.Impact(ctx, d0, query.Request{Budget: 50})
	if err != nil {
		t.Fatal(err)
	}
	if a.Truncated == nil || !a.Truncated.Budget {
		t.Errorf("impact with a budget of 50: %+v", a.Truncated)
	}
	// Paths: exponentially many; the budget and the path cap end it.
	start := time.Now()
	a, err = e.Paths(ctx, d0, d30, 1000, query.Request{Depth: 40, Budget: 20000})
	if err != nil {
		t.Fatal(err)
	}
	if a.Truncated == nil || len(a.Paths) == 0 {
		t.Errorf("paths: %d, truncated %+v", len(a.Paths), a.Truncated)
	}
	for _, p := range a.Paths {
		seen := map[string]bool{}
		for _, k := range p {
			if seen[k] {
				t.Fatalf("path visits %s twice: %q", k, p)
			}
			seen[k] = true
		}
		if p[0] != "dataset:mem://dense:d00" || p[len(p)-1] != "dataset:mem://dense:d30" {
			t.Fatalf("path %q", p)
		}
	}
	t.Logf("%d paths in %v, truncated: %s", len(a.Paths), time.Since(start), a.Truncated.Reason)
	// A canceled context stops a query.
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if _, err := e.Paths(cctx, d0, d30, 1000, query.Request{Depth: 40}); err == nil {
		t.Error("canceled query succeeded")
	}
}
