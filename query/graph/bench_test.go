package graph_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/internal/testlog"
	"github.com/provledger/provledger/query/payload"
)

// BenchmarkIndex measures what the lineage index adds to applying a batch
// of 64 entries (unsynced), per payload kind: compare "indexed" with
// "bare" (the same entries, no indexer). The in-toto "other" statement is
// the load generator's payload (provbench append): a 1 KiB statement
// whose predicate is not provenance, which the index only skips.
//
//	go test ./query/graph -run '^$' -bench Index -benchtime 200x
func BenchmarkIndex(b *testing.B) {
	kinds := []struct {
		name string
		typ  string
		body func(i int) []byte
	}{
		{"intoto-other-1KiB", payload.TypeInToto, func(i int) []byte {
			head := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"provbench/x/%d","digest":{"sha256":"%064x"}}],"predicateType":"https://provledger.dev/provbench/v1","predicate":{"pad":"`, i, i)
			return []byte(head + strings.Repeat("x", 1024-len(head)-3) + `"}}`)
		}},
		{"openlineage-complete", payload.TypeOpenLineage, func(i int) []byte {
			return testlog.Event(uint64(i), "bench", fmt.Sprintf("job%d", i%100),
				[][2]string{{"s3://lake", fmt.Sprintf("in/%d", i%1000)}},
				[][2]string{{"s3://lake", fmt.Sprintf("out/%d", i%1000)}})
		}},
	}
	const batch = 64
	for _, k := range kinds {
		for _, indexed := range []bool{false, true} {
			name := k.name + "/bare"
			if indexed {
				name = k.name + "/indexed"
			}
			b.Run(name, func(b *testing.B) {
				var ix *graph.Indexer
				if indexed {
					ix = graph.New(graph.Options{Logger: testlog.Logger})
				}
				l := testlog.Open(b, ix)
				n := 0
				next := func() []ledger.Entry {
					es := make([]ledger.Entry, batch)
					for j := range es {
						es[j] = l.Entry(b, testlog.Payload{Type: k.typ, Body: k.body(n)})
						n++
					}
					return es
				}
				b.ResetTimer()
				for b.Loop() {
					b.StopTimer()
					es := next()
					b.StartTimer()
					l.ApplyEntries(b, es)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/entry")
			})
		}
	}
}
