package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/provledger/provledger/query"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/internal/testlog"
	"github.com/provledger/provledger/query/payload"
)

// TestAdjacencyCacheNeverChangesAnswers grows two identical logs — one
// indexer with the adjacency cache, one without — batch by batch, and
// after every batch asks both the same questions at the latest size and
// as of every earlier size: the answers must be byte-for-byte the same,
// whatever the cache holds (lists cached before a batch added edges to
// them, lists cached at a larger size asked about a smaller one). Small
// caches force evictions.
func TestAdjacencyCacheNeverChangesAnswers(t *testing.T) {
	for _, size := range []int64{graph.DefaultAdjacencyCacheSize, 4 << 10} {
		t.Run(fmt.Sprint("cache ", size), func(t *testing.T) {
			cached := testlog.Open(t, graph.New(graph.Options{Logger: testlog.Logger, AdjacencyCacheSize: size}))
			plain := testlog.Open(t, graph.New(graph.Options{Logger: testlog.Logger, AdjacencyCacheSize: -1}))
			qc, qp := query.New(cached.Log), query.New(plain.Log)
			rng := rand.New(rand.NewPCG(7, 8))
			const datasets = 40
			ds := func(i int) [2]string { return [2]string{"s3://lake", fmt.Sprintf("t%02d", i)} }
			ctx := context.Background()
			run := uint64(0)
			for batch := 0; batch < 12; batch++ {
				var ps []testlog.Payload
				for e := 0; e < 1+rng.IntN(4); e++ {
					run++
					out := rng.IntN(datasets)
					var ins [][2]string
					for range 1 + rng.IntN(3) {
						ins = append(ins, ds(rng.IntN(datasets))) // cycles included
					}
					ps = append(ps, testlog.Payload{Type: payload.TypeOpenLineage, Body: testlog.Event(run, "etl", fmt.Sprintf("job%02d", out%7), ins, [][2]string{ds(out)})})
				}
				cached.Apply(t, ps...)
				plain.Apply(t, ps...)
				n := cached.Latest().Size
				for q := 0; q < 30; q++ {
					d := ds(rng.IntN(datasets))
					ref := answer.Ref{Kind: "dataset", Parts: d[:]}
					req := query.Request{AsOfSize: 1 + rng.Uint64N(n), Depth: 1 + rng.IntN(4)}
					if q%3 == 0 {
						req.AsOfSize = 0 // the latest
					}
					for _, kind := range []string{"upstream", "downstream", "impact"} {
						ask := func(e *query.Engine) (*answer.Answer, error) {
							switch kind {
							case "upstream":
								return e.Upstream(ctx, ref, req)
							case "downstream":
								return e.Downstream(ctx, ref, req)
							}
							return e.Impact(ctx, ref, req)
						}
						ac, errc := ask(qc)
						ap, errp := ask(qp)
						if fmt.Sprint(errc) != fmt.Sprint(errp) {
							t.Fatalf("batch %d %s %v at %d: errors differ: %v / %v", batch, kind, d, req.AsOfSize, errc, errp)
						}
						jc, _ := json.Marshal(ac)
						jp, _ := json.Marshal(ap)
						if !bytes.Equal(jc, jp) {
							t.Fatalf("batch %d %s %v at %d: answers differ\ncached: %s\nplain:  %s", batch, kind, d, req.AsOfSize, jc, jp)
						}
					}
				}
			}
			if st := cached.Indexer.CacheStats(); st.Hits == 0 || st.Misses == 0 {
				t.Errorf("cache stats %+v: the test did not exercise both paths", st)
			}
		})
	}
}

// TestAdjacencyCacheDuringAppends queries a cached log from several
// goroutines while batches are appended to it, each answer at the latest
// size; every answer must equal the uncached log's at the same size (the
// uncached twin gets every batch first).
func TestAdjacencyCacheDuringAppends(t *testing.T) {
	cached := testlog.Open(t, graph.New(graph.Options{Logger: testlog.Logger}))
	plain := testlog.Open(t, graph.New(graph.Options{Logger: testlog.Logger, AdjacencyCacheSize: -1}))
	qc, qp := query.New(cached.Log), query.New(plain.Log)
	ds := func(i int) [2]string { return [2]string{"s3://lake", fmt.Sprintf("t%02d", i)} }
	const datasets, batches = 20, 40
	ctx := context.Background()
	done := make(chan struct{})
	errs := make(chan error, 4)
	for g := 0; g < 3; g++ {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				d := ds(rng.IntN(datasets))
				ref := answer.Ref{Kind: "dataset", Parts: d[:]}
				ac, err := qc.Upstream(ctx, ref, query.Request{})
				if err != nil {
					continue // not asserted yet
				}
				ap, err := qp.Upstream(ctx, ref, query.Request{AsOfSize: ac.Size})
				if err != nil {
					errs <- fmt.Errorf("plain at %d: %v", ac.Size, err)
					return
				}
				ap.Query.AsOfSize = 0
				jc, _ := json.Marshal(ac)
				jp, _ := json.Marshal(ap)
				if !bytes.Equal(jc, jp) {
					errs <- fmt.Errorf("at size %d the answers differ\ncached: %s\nplain:  %s", ac.Size, jc, jp)
					return
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for b := 0; b < batches; b++ {
		out := rng.IntN(datasets)
		p := testlog.Payload{Type: payload.TypeOpenLineage, Body: testlog.Event(uint64(b+1), "etl", fmt.Sprintf("job%02d", out), [][2]string{ds(rng.IntN(datasets)), ds(rng.IntN(datasets))}, [][2]string{ds(out)})}
		plain.Apply(t, p)
		cached.Apply(t, p)
	}
	close(done)
	for g := 0; g < 3; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
