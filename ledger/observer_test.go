package ledger_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/provledger/provledger/ledger"
)

type recorder struct {
	mu    sync.Mutex
	stats []ledger.BatchStats
}

func (r *recorder) BatchApplied(s ledger.BatchStats) {
	r.mu.Lock()
	r.stats = append(r.stats, s)
	r.mu.Unlock()
}

// TestObserver: Options.Observer hears of every applied batch (Apply and
// the local sequencer alike), with its size and the log size after it.
func TestObserver(t *testing.T) {
	rec := &recorder{}
	l := openLog(t, t.TempDir(), func(o *ledger.Options) { o.Observer = rec })
	if _, err := l.Apply(ledger.Batch{Time: time.Now(), Entries: entries(0, 3)}, ledger.ApplyOptions{RaftIndex: 1}); err != nil {
		t.Fatal(err)
	}
	// A replayed Raft index is skipped, and not reported.
	if _, err := l.Apply(ledger.Batch{Time: time.Now(), Entries: entries(0, 3)}, ledger.ApplyOptions{RaftIndex: 1}); err != nil {
		t.Fatal(err)
	}
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Close()
	// Two new entries and a duplicate.
	if _, err := seq.Submit(context.Background(), append(entries(3, 5), entry(0))); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.stats) != 2 {
		t.Fatalf("%d batches reported; want 2: %+v", len(rec.stats), rec.stats)
	}
	for i, want := range []ledger.BatchStats{{Entries: 3, Added: 3, Size: 3, Sync: false}, {Entries: 3, Added: 2, Size: 5, Sync: true}} {
		got := rec.stats[i]
		if got.Entries != want.Entries || got.Added != want.Added || got.Size != want.Size || got.Sync != want.Sync {
			t.Errorf("batch %d: %+v; want %+v", i, got, want)
		}
		if got.Apply < got.Commit || got.Commit < 0 {
			t.Errorf("batch %d: apply %v, commit %v: commit is part of apply", i, got.Apply, got.Commit)
		}
	}
}
