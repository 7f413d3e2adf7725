package fsm_test

import (
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/fsm"
)

// seenIndexer records the Prepared value of every entry it indexes.
type seenIndexer struct{ prepared []any }

func (s *seenIndexer) IndexBatch(_ *pebble.Batch, es []ledger.IndexedEntry) error {
	for _, e := range es {
		s.prepared = append(s.prepared, e.Prepared)
	}
	return nil
}

// The values a proposer stashes for its command reach the indexer when
// that very command applies, once; another command with equal bytes (a
// follower's copy, a replay) gets none.
func TestStashReachesIndexer(t *testing.T) {
	ix := &seenIndexer{}
	s, err := checkpoint.NewSigner(origin, logKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger"), ledger.Options{Origin: origin, Signer: s, Logger: quiet, Indexer: ix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f := newFSM(t, l, fsm.Options{})

	proposed := batchLog(t, 1, 0, 3)
	f.Stash(proposed.Data, []any{"a", nil, "c"})
	copied := batchLog(t, 2, 3, 6)
	f.Stash(append([]byte(nil), copied.Data...), []any{"x", "y", "z"}) // not the bytes Apply gets
	mustApplied(t, f.Apply(proposed))
	mustApplied(t, f.Apply(copied))
	want := []any{"a", nil, "c", nil, nil, nil}
	if len(ix.prepared) != len(want) {
		t.Fatalf("indexed %d entries, want %d", len(ix.prepared), len(want))
	}
	for i := range want {
		if ix.prepared[i] != want[i] {
			t.Errorf("entry %d: Prepared = %v, want %v", i, ix.prepared[i], want[i])
		}
	}
	// A stash of the wrong length is not used.
	odd := batchLog(t, 3, 6, 8)
	f.Stash(odd.Data, []any{"only one"})
	mustApplied(t, f.Apply(odd))
	if got := ix.prepared[len(ix.prepared)-1]; got != nil {
		t.Errorf("a stash of the wrong length was used: %v", got)
	}
}
