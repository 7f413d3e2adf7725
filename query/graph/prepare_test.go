package graph_test

import (
	"testing"

	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/internal/testlog"
	"github.com/provledger/provledger/query/payload"
)

// Payloads parsed ahead of sequencing (Indexer.Prepare, as the append path
// does on its checkers) give the index byte for byte what parsing the
// stored envelope gives, for every kind of payload in the shop scenario
// (events, in-toto, costs, a malformed event, a non-provenance statement);
// a prepared value for another payload type is ignored.
func TestPreparedMatchesEnvelope(t *testing.T) {
	want := dump(t, openShop(t, 100).DB())
	ix := graph.New(graph.Options{Logger: testlog.Logger})
	l := testlog.Open(t, ix)
	ps := testlog.LoadDir(t, shopDir)
	entries := make([]ledger.Entry, len(ps))
	for i, p := range ps {
		entries[i] = l.Entry(t, p)
		entries[i].Prepared = ix.Prepare(p.Type, p.Body)
		if entries[i].Prepared == nil {
			t.Fatalf("%d: Prepare(%q) = nil for a type the graph indexes", i, p.Type)
		}
	}
	// A stale prepared value (another type's) must not be used.
	entries[0].Prepared = ix.Prepare(payload.TypeCost, []byte(`{}`))
	l.ApplyEntries(t, entries)
	if d := diff(want, dump(t, l.DB())); d != "" {
		t.Errorf("index built from prepared payloads differs:\n%s", d)
	}
	if ix.Prepare("application/octet-stream", []byte("x")) != nil {
		t.Error("Prepare of a type the graph does not index returned a value")
	}
}
