package fsm_test

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/fsm"
)

const preparedType = "application/vnd.in-toto+json"

// preparingIndexer is an Indexer and a ledger.Preparer: it prepares
// payloads of preparedType only (a string naming type and payload) and
// records the Prepared value of every entry it indexes.
type preparingIndexer struct {
	calls    atomic.Int64
	prepared []any
}

func (p *preparingIndexer) Prepare(payloadType string, payload []byte) any {
	p.calls.Add(1)
	if payloadType != preparedType {
		return nil
	}
	return fmt.Sprintf("%s|%s", payloadType, payload)
}

func (p *preparingIndexer) IndexBatch(_ *pebble.Batch, es []ledger.IndexedEntry) error {
	for _, e := range es {
		p.prepared = append(p.prepared, e.Prepared)
	}
	return nil
}

// wrappingIndexer indexes nothing itself and hands every batch to the
// indexer it wraps (as the policy index wraps the lineage index).
type wrappingIndexer struct{ next ledger.Indexer }

func (w *wrappingIndexer) IndexBatch(b *pebble.Batch, es []ledger.IndexedEntry) error {
	return w.next.IndexBatch(b, es)
}

func (w *wrappingIndexer) Unwrap() ledger.Indexer { return w.next }

// openPreparingLog opens a ledger whose Indexer is a preparingIndexer,
// wrapped depth times.
func openPreparingLog(t *testing.T, depth int) (*ledger.Log, *preparingIndexer) {
	t.Helper()
	ix := &preparingIndexer{}
	var top ledger.Indexer = ix
	for range depth {
		top = &wrappingIndexer{next: top}
	}
	s, err := checkpoint.NewSigner(origin, logKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger"), ledger.Options{Origin: origin, Signer: s, Logger: quiet, Indexer: top})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, ix
}

// entryOf is an entry of type typ with envelope env, signed by one key.
func entryOf(typ string, env []byte) ledger.Entry {
	return ledger.Entry{Namespace: "ns", PayloadType: typ, Envelope: env, Signers: [][32]byte{{1}}}
}

func dsse(payload string) []byte {
	return fmt.Appendf(nil, `{"payloadType":"t","payload":%q,"signatures":[{"keyid":"k","sig":"c2ln"}]}`, base64.StdEncoding.EncodeToString([]byte(payload)))
}

// A batch this node did not propose gets its payloads prepared before it
// is applied, with the values the indexer would compute itself, in entry
// order, whatever the number of workers; entries the indexer does not
// prepare, and envelopes that do not parse, stay unprepared.
func TestFollowerBatchPrepared(t *testing.T) {
	mixed := []ledger.Entry{
		entryOf(preparedType, dsse("first")),
		entryOf("application/vnd.provledger.finding+json", dsse("not prepared")),
		entryOf(preparedType, []byte(`{"payloadType":"t"`)), // does not parse
		entryOf(preparedType, dsse("last")),
	}
	want := []any{preparedType + "|first", nil, nil, preparedType + "|last"}
	var many []ledger.Entry
	var wantMany []any
	for i := range 61 { // several chunks per worker, the last one short
		p := fmt.Sprintf("payload %03d", i)
		many = append(many, entryOf(preparedType, dsse(p)))
		wantMany = append(wantMany, preparedType+"|"+p)
	}
	for _, tc := range []struct {
		name    string
		workers int
		wrapped int // the preparer is this deep behind wrapping indexers
		entries []ledger.Entry
		want    []any
	}{
		{"mixed, default workers", 0, 0, mixed, want},
		{"mixed, on the apply goroutine", 1, 0, mixed, want},
		{"mixed, 4 workers", 4, 0, mixed, want},
		{"61 entries, 1 worker", 1, 0, many, wantMany},
		{"61 entries, 3 workers", 3, 0, many, wantMany},
		{"61 entries, 16 workers", 16, 0, many, wantMany},
		{"preparer behind a wrapping indexer", 2, 1, mixed, want},
		{"preparer behind two wrapping indexers", 2, 2, many, wantMany},
		{"disabled: the indexer parses", -1, 0, mixed, []any{nil, nil, nil, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, ix := openPreparingLog(t, tc.wrapped)
			f := newFSM(t, l, fsm.Options{PrepareWorkers: tc.workers})
			data, err := fsm.EncodeBatch(ledger.Batch{Time: time.UnixMilli(1_700_000_000_000), Entries: tc.entries})
			if err != nil {
				t.Fatal(err)
			}
			a := mustApplied(t, f.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: data}))
			if len(a.Results) != len(tc.entries) {
				t.Fatalf("%d results for %d entries", len(a.Results), len(tc.entries))
			}
			if len(ix.prepared) != len(tc.want) {
				t.Fatalf("indexed %d entries, want %d", len(ix.prepared), len(tc.want))
			}
			for i := range tc.want {
				if ix.prepared[i] != tc.want[i] {
					t.Errorf("entry %d: Prepared = %v, want %v", i, ix.prepared[i], tc.want[i])
				}
			}
		})
	}
}

// The proposer's stashed values are used as they are: the follower path
// does not parse the payloads again, not even those stashed as nil.
func TestStashedBatchNotPreparedAgain(t *testing.T) {
	l, ix := openPreparingLog(t, 0)
	f := newFSM(t, l, fsm.Options{PrepareWorkers: 2})
	es := []ledger.Entry{
		entryOf(preparedType, dsse("a")),
		entryOf(preparedType, dsse("b")),
	}
	data, err := fsm.EncodeBatch(ledger.Batch{Time: time.UnixMilli(1_700_000_000_000), Entries: es})
	if err != nil {
		t.Fatal(err)
	}
	f.Stash(data, []any{"stashed", nil})
	mustApplied(t, f.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: data}))
	if n := ix.calls.Load(); n != 0 {
		t.Errorf("Prepare called %d times for a stashed batch", n)
	}
	if len(ix.prepared) != 2 || ix.prepared[0] != "stashed" || ix.prepared[1] != nil {
		t.Errorf("indexed Prepared = %v, want [stashed <nil>]", ix.prepared)
	}
}

// A batch the ledger already applied (a replay after a restart) is
// skipped by the ledger: its payloads are not parsed for nothing.
func TestReplayNotPrepared(t *testing.T) {
	l, ix := openPreparingLog(t, 0)
	f := newFSM(t, l, fsm.Options{PrepareWorkers: 2})
	data, err := fsm.EncodeBatch(ledger.Batch{Time: time.UnixMilli(1_700_000_000_000), Entries: []ledger.Entry{entryOf(preparedType, dsse("a"))}})
	if err != nil {
		t.Fatal(err)
	}
	mustApplied(t, f.Apply(&raft.Log{Index: 5, Term: 1, Type: raft.LogCommand, Data: data}))
	if n := ix.calls.Load(); n != 1 {
		t.Fatalf("Prepare called %d times for a new batch, want 1", n)
	}
	for _, idx := range []uint64{4, 5} {
		if a := mustApplied(t, f.Apply(&raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data})); !a.Skipped {
			t.Fatalf("raft index %d applied again: %+v", idx, a)
		}
	}
	if n := ix.calls.Load(); n != 1 {
		t.Errorf("Prepare called %d times in all, want 1 (replays are not prepared)", n)
	}
}
