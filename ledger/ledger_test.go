package ledger_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/ledger/tiles"
)

const testOrigin = "test.provledger/log"

var testKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

func testSigner(t testing.TB) note.Signer {
	s, err := checkpoint.NewSigner(testOrigin, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testVerifier(t testing.TB) note.Verifier {
	v, err := checkpoint.NewVerifier(testOrigin, testKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func openLog(t testing.TB, dir string, mod ...func(*ledger.Options)) *ledger.Log {
	t.Helper()
	o := ledger.Options{Origin: testOrigin, Signer: testSigner(t)}
	for _, m := range mod {
		m(&o)
	}
	l, err := ledger.Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// entry makes a distinct entry for i (the envelope bytes need not be a real
// DSSE envelope at this layer).
func entry(i int) ledger.Entry {
	return ledger.Entry{
		Namespace:   "ns",
		PayloadType: "application/vnd.in-toto+json",
		Envelope:    []byte(fmt.Sprintf(`{"payloadType":"x","payload":"%08d","signatures":[]}`, i)),
		Signers:     [][32]byte{sha256.Sum256([]byte("k"))},
	}
}

func entries(from, to int) []ledger.Entry {
	var es []ledger.Entry
	for i := from; i < to; i++ {
		es = append(es, entry(i))
	}
	return es
}

func apply(t testing.TB, l *ledger.Log, es []ledger.Entry) *ledger.Applied {
	t.Helper()
	a, err := l.Apply(ledger.Batch{Time: time.UnixMilli(1_700_000_000_000), Entries: es}, ledger.ApplyOptions{Sync: true})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return a
}

// leafHashes reads every leaf hash of the log through its records.
func leafHashes(t testing.TB, l *ledger.Log) []tlog.Hash {
	var hs []tlog.Hash
	if err := l.Records(0, l.Latest().Size, func(_ uint64, rec []byte) error {
		hs = append(hs, tlog.RecordHash(rec))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return hs
}

// tlogHashes builds golang.org/x/mod/sumdb/tlog's stored-hash storage for
// the given leaves, the reference our tiles and roots are checked against.
type tlogHashes []tlog.Hash

func (h tlogHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = h[x]
	}
	return out, nil
}

func storedHashes(t testing.TB, leaves []tlog.Hash) tlogHashes {
	var st tlogHashes
	for i, lh := range leaves {
		more, err := tlog.StoredHashesForRecordHash(int64(i), lh, st)
		if err != nil {
			t.Fatal(err)
		}
		st = append(st, more...)
	}
	return st
}

func TestOpenNewLogSignsEmptyCheckpoint(t *testing.T) {
	l := openLog(t, t.TempDir())
	cp := l.Latest()
	if cp.Size != 0 || cp.Hash != proof.EmptyRoot() {
		t.Fatalf("new log checkpoint = size %d root %x, want 0 and the empty root", cp.Size, cp.Hash)
	}
	got, err := checkpoint.Open(cp.Note, testVerifier(t))
	if err != nil {
		t.Fatalf("checkpoint does not verify: %v", err)
	}
	if got.Origin != testOrigin {
		t.Fatalf("origin %q", got.Origin)
	}
}

func TestApplyAssignsIndexesAndMatchesTlogRoot(t *testing.T) {
	l := openLog(t, t.TempDir())
	// Batches of uneven sizes cross tile boundaries at levels 0 and 1.
	total := 0
	for _, n := range []int{1, 2, 255, 1, 300, 7, 256, 1000} {
		a := apply(t, l, entries(total, total+n))
		for i, r := range a.Results {
			if r.Err != nil || r.Duplicate || r.Index != uint64(total+i) {
				t.Fatalf("result %d = %+v, want index %d", i, r, total+i)
			}
			if r.LeafHash != proof.LeafHash(r.Record) {
				t.Fatalf("leaf hash of %d does not hash its record", r.Index)
			}
		}
		total += n
		if a.Checkpoint.Size != uint64(total) {
			t.Fatalf("checkpoint size %d, want %d", a.Checkpoint.Size, total)
		}
		if _, err := checkpoint.Open(a.Checkpoint.Note, testVerifier(t)); err != nil {
			t.Fatalf("checkpoint %d: %v", total, err)
		}
	}
	leaves := leafHashes(t, l)
	want, err := tlog.TreeHash(int64(total), storedHashes(t, leaves))
	if err != nil {
		t.Fatal(err)
	}
	if l.Latest().Hash != [32]byte(want) {
		t.Fatalf("root %x, tlog computes %x", l.Latest().Hash, want)
	}
}

func TestProofsVerifyForEverySize(t *testing.T) {
	l := openLog(t, t.TempDir())
	const n = 70
	for i := range n {
		apply(t, l, entries(i, i+1)) // one checkpoint per size
	}
	leaves := leafHashes(t, l)
	roots := map[uint64][32]byte{}
	for size := uint64(0); size <= n; size++ {
		cp, err := l.CheckpointAt(size)
		if err != nil {
			t.Fatalf("CheckpointAt(%d): %v", size, err)
		}
		roots[size] = cp.Hash
	}
	for size := uint64(1); size <= n; size++ {
		for idx := uint64(0); idx < size; idx++ {
			p, err := l.InclusionProof(idx, size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", idx, size, err)
			}
			root := roots[size]
			if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, idx, size, leaves[idx][:], p, root[:]); err != nil {
				t.Fatalf("inclusion (%d, %d) does not verify: %v", idx, size, err)
			}
		}
		for old := uint64(0); old <= size; old++ {
			p, err := l.ConsistencyProof(old, size)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", old, size, err)
			}
			r1, r2 := roots[old], roots[size]
			if err := mproof.VerifyConsistency(rfc6962.DefaultHasher, old, size, p, r1[:], r2[:]); err != nil {
				t.Fatalf("consistency (%d, %d) does not verify: %v", old, size, err)
			}
		}
	}
}

func TestProofErrors(t *testing.T) {
	l := openLog(t, t.TempDir())
	apply(t, l, entries(0, 10))
	for _, tc := range []struct {
		name string
		f    func() error
	}{
		{"index at size", func() error { _, err := l.InclusionProof(10, 10); return err }},
		{"size beyond checkpoint", func() error { _, err := l.InclusionProof(0, 11); return err }},
		{"consistency beyond checkpoint", func() error { _, err := l.ConsistencyProof(1, 11); return err }},
		{"consistency old above new", func() error { _, err := l.ConsistencyProof(5, 4); return err }},
		{"record beyond size", func() error { _, err := l.Record(10); return err }},
		{"checkpoint beyond size", func() error { _, err := l.CheckpointAt(11); return err }},
		{"records beyond size", func() error { return l.Records(0, 11, func(uint64, []byte) error { return nil }) }},
	} {
		if err := tc.f(); !errors.Is(err, ledger.ErrOutOfRange) {
			t.Errorf("%s: err = %v, want ErrOutOfRange", tc.name, err)
		}
	}
}

func TestDedupReturnsFirstIndex(t *testing.T) {
	l := openLog(t, t.TempDir())
	apply(t, l, entries(0, 5))
	// entry(2) again, twice in one batch with a new one between.
	a := apply(t, l, []ledger.Entry{entry(2), entry(5), entry(2), entry(5)})
	want := []struct {
		idx uint64
		dup bool
	}{{2, true}, {5, false}, {2, true}, {5, true}}
	for i, w := range want {
		r := a.Results[i]
		if r.Index != w.idx || r.Duplicate != w.dup {
			t.Errorf("result %d = index %d dup %v, want %d %v", i, r.Index, r.Duplicate, w.idx, w.dup)
		}
	}
	if got := l.Latest().Size; got != 6 {
		t.Fatalf("size %d after duplicates, want 6", got)
	}
	// A batch of only duplicates publishes no new checkpoint.
	before := l.Latest()
	a = apply(t, l, []ledger.Entry{entry(0)})
	if a.Checkpoint.Size != before.Size || string(a.Checkpoint.Note) != string(before.Note) {
		t.Fatalf("duplicate-only batch changed the checkpoint")
	}
	idx, err := l.IndexOfEnvelope(entry(3).Digest())
	if err != nil || idx != 3 {
		t.Fatalf("IndexOfEnvelope = %d, %v; want 3", idx, err)
	}
}

func TestInvalidEntriesAreRejectedAlone(t *testing.T) {
	l := openLog(t, t.TempDir(), func(o *ledger.Options) { o.MaxEnvelopeSize = 100 })
	big := entry(1)
	big.Envelope = make([]byte, 101)
	noNS := entry(2)
	noNS.Namespace = ""
	noSigners := entry(3)
	noSigners.Signers = nil
	a := apply(t, l, []ledger.Entry{entry(0), big, noNS, noSigners, entry(4)})
	for i, want := range []error{nil, ledger.ErrTooLarge, ledger.ErrInvalidEntry, ledger.ErrInvalidEntry, nil} {
		if got := a.Results[i].Err; !errors.Is(got, want) || (want == nil) != (got == nil) {
			t.Errorf("entry %d: err = %v, want %v", i, got, want)
		}
	}
	if a.Results[4].Index != 1 || l.Latest().Size != 2 {
		t.Fatalf("valid entries got index %d, size %d; want 1 and 2", a.Results[4].Index, l.Latest().Size)
	}
}

func TestReopenRestoresTreeAndContinues(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	apply(t, l, entries(0, 300))
	before := l.Latest()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir)
	if got := l2.Latest(); got.Size != before.Size || got.Hash != before.Hash {
		t.Fatalf("after reopen: size %d root %x, want %d %x", got.Size, got.Hash, before.Size, before.Hash)
	}
	apply(t, l2, entries(300, 600))
	// The reference computation must agree after appending on a reopened log.
	leaves := leafHashes(t, l2)
	want, err := tlog.TreeHash(600, storedHashes(t, leaves))
	if err != nil {
		t.Fatal(err)
	}
	if l2.Latest().Hash != [32]byte(want) {
		t.Fatalf("root after reopen+append %x, want %x", l2.Latest().Hash, want)
	}
	// Dedup survives the restart.
	a := apply(t, l2, []ledger.Entry{entry(7)})
	if !a.Results[0].Duplicate || a.Results[0].Index != 7 {
		t.Fatalf("entry 7 after reopen: %+v", a.Results[0])
	}
}

func TestReopenWithOtherOriginFails(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	l.Close()
	s, err := checkpoint.NewSigner("other.origin/log", testKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Open(dir, ledger.Options{Origin: "other.origin/log", Signer: s}); err == nil {
		t.Fatal("Open with another origin succeeded")
	}
}

func TestCorruptTileIsDetectedOnOpen(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	apply(t, l, entries(0, 20))
	l.Close()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := append([]byte{'t', 0}, make([]byte, 8)...) // tile 0/0
	v, closer, err := db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), v...)
	closer.Close()
	bad[5] ^= 1
	if err := db.Set(key, bad, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = ledger.Open(dir, ledger.Options{Origin: testOrigin, Signer: testSigner(t)})
	if !errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("Open of a log with a flipped tile byte: err = %v, want ErrCorrupt", err)
	}
}

func TestTilesMatchTlog(t *testing.T) {
	l := openLog(t, t.TempDir())
	const n = 256*3 + 17
	apply(t, l, entries(0, n))
	st := storedHashes(t, leafHashes(t, l))
	for _, tile := range tlog.NewTiles(8, 0, n) {
		want, err := tlog.ReadTileData(tile, st)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Tile(uint8(tile.L), uint64(tile.N), tile.W)
		if err != nil {
			t.Fatalf("Tile(%d, %d, %d): %v", tile.L, tile.N, tile.W, err)
		}
		if string(got) != string(want) {
			t.Fatalf("tile %s differs from tlog's", tile.Path())
		}
	}
	// Partial views of a full tile are its prefixes.
	got, err := l.Tile(0, 0, 10)
	if err != nil || len(got) != 10*32 {
		t.Fatalf("partial tile: %d bytes, %v", len(got), err)
	}
	// Beyond the checkpoint: not found.
	if _, err := l.Tile(0, 3, 18); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("tile beyond size: %v", err)
	}
	if _, err := l.Tile(1, 0, 4); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("level-1 tile beyond size: %v", err)
	}
}

func TestEntryBundle(t *testing.T) {
	l := openLog(t, t.TempDir())
	apply(t, l, entries(0, 260))
	b, err := l.EntryBundle(1, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i := 256; i < 260; i++ {
		rec, err := l.Record(uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 2 || int(b[0])<<8|int(b[1]) != len(rec) || string(b[2:2+len(rec)]) != string(rec) {
			t.Fatalf("bundle entry %d is not the length-prefixed record", i)
		}
		if _, err := record.Unmarshal(rec); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		b = b[2+len(rec):]
	}
	if len(b) != 0 {
		t.Fatalf("%d trailing bytes in bundle", len(b))
	}
	if _, err := l.EntryBundle(1, 5); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("bundle beyond size: %v", err)
	}
}

func TestRecordsCarryBatchTimeMonotonically(t *testing.T) {
	l := openLog(t, t.TempDir())
	t1 := time.UnixMilli(2_000_000_000_000)
	if _, err := l.Apply(ledger.Batch{Time: t1, Entries: entries(0, 1)}, ledger.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// A batch proposed with an earlier clock keeps the log's time monotonic.
	if _, err := l.Apply(ledger.Batch{Time: t1.Add(-time.Hour), Entries: entries(1, 2)}, ledger.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 2; i++ {
		raw, _ := l.Record(i)
		r, err := record.Unmarshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !r.IntegratedTime.Equal(t1) {
			t.Errorf("record %d time %v, want %v", i, r.IntegratedTime, t1)
		}
		if r.EnvelopeDigest != entry(int(i)).Digest() || r.Namespace != "ns" {
			t.Errorf("record %d = %+v", i, r)
		}
	}
}

func TestRaftIndexMakesReplayIdempotent(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	b := ledger.Batch{Time: time.UnixMilli(1), Entries: entries(0, 3)}
	if _, err := l.Apply(b, ledger.ApplyOptions{RaftIndex: 5}); err != nil {
		t.Fatal(err)
	}
	a, err := l.Apply(ledger.Batch{Time: time.UnixMilli(1), Entries: entries(3, 6)}, ledger.ApplyOptions{RaftIndex: 5})
	if err != nil || !a.Skipped {
		t.Fatalf("replayed raft index 5: skipped=%v err=%v", a != nil && a.Skipped, err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l2 := openLog(t, dir)
	if l2.AppliedIndex() != 5 || l2.Latest().Size != 3 {
		t.Fatalf("after reopen: applied %d size %d, want 5 and 3", l2.AppliedIndex(), l2.Latest().Size)
	}
}

type recordingIndexer struct {
	mu      sync.Mutex
	indexes []uint64
}

func (r *recordingIndexer) IndexBatch(b *pebble.Batch, es []ledger.IndexedEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range es {
		r.indexes = append(r.indexes, e.Index)
		if err := b.Set([]byte(fmt.Sprintf("qtest/%d", e.Index)), e.RawRecord, nil); err != nil {
			return err
		}
	}
	return nil
}

func TestIndexerWritesInTheSameBatch(t *testing.T) {
	ix := &recordingIndexer{}
	l := openLog(t, t.TempDir(), func(o *ledger.Options) { o.Indexer = ix })
	apply(t, l, append(entries(0, 3), entry(1)))
	if fmt.Sprint(ix.indexes) != "[0 1 2]" {
		t.Fatalf("indexer saw %v, want [0 1 2] (duplicates are not re-indexed)", ix.indexes)
	}
	v, closer, err := l.DB().Get([]byte("qtest/2"))
	if err != nil {
		t.Fatalf("indexer write not committed: %v", err)
	}
	defer closer.Close()
	rec, _ := l.Record(2)
	if string(v) != string(rec) {
		t.Fatal("indexer value differs")
	}
}

func TestLocalSequencerConcurrentSubmitsVerify(t *testing.T) {
	l := openLog(t, t.TempDir())
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{MaxBatch: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Close()
	const clients, per = 32, 20
	var wg sync.WaitGroup
	errc := make(chan error, clients*per)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				rs, err := seq.Submit(context.Background(), []ledger.Entry{entry(c*per + i)})
				if err != nil {
					errc <- err
					return
				}
				r := rs[0]
				cp := r.Checkpoint
				if err := proof.VerifyInclusion(r.Index, cp.Size, r.LeafHash, r.Proof, cp.Hash); err != nil {
					errc <- fmt.Errorf("receipt %d: %w", r.Index, err)
				}
				if _, err := checkpoint.Open(cp.Note, testVerifier(t)); err != nil {
					errc <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if got := l.Latest().Size; got != clients*per {
		t.Fatalf("size %d, want %d", got, clients*per)
	}
}

func TestSequencerRejectsInvalidAndClosed(t *testing.T) {
	l := openLog(t, t.TempDir())
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := entry(0)
	bad.PayloadType = ""
	if _, err := seq.Submit(context.Background(), []ledger.Entry{entry(1), bad}); !errors.Is(err, ledger.ErrInvalidEntry) {
		t.Fatalf("invalid entry: %v", err)
	}
	if l.Latest().Size != 0 {
		t.Fatal("a rejected Submit appended entries")
	}
	seq.Close()
	if _, err := seq.Submit(context.Background(), []ledger.Entry{entry(1)}); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	s := testSigner(t)
	for _, tc := range []struct {
		name string
		o    ledger.Options
	}{
		{"no origin", ledger.Options{Signer: s}},
		{"no signer", ledger.Options{Origin: testOrigin}},
		{"origin differs from key name", ledger.Options{Origin: "x", Signer: s}},
		{"negative size", ledger.Options{Origin: testOrigin, Signer: s, MaxEnvelopeSize: -1}},
	} {
		if err := tc.o.Validate(); err == nil {
			t.Errorf("%s: Validate accepted", tc.name)
		}
		if _, err := ledger.Open(filepath.Join(t.TempDir(), "x"), tc.o); err == nil {
			t.Errorf("%s: Open accepted", tc.name)
		}
	}
}

var _ = tiles.Width

// TestLocalSequencerPipelines always pipelines (PipelineMin 1: a batch is
// integrated and written while the previous one syncs) under concurrent
// submitters that also resubmit each other's entries: every receipt
// verifies against its checkpoint, a resubmission gets the first index,
// and after Close and a reopen the log holds exactly the distinct entries.
func TestLocalSequencerPipelines(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{MaxBatch: 16, PipelineMin: 1})
	if err != nil {
		t.Fatal(err)
	}
	const clients, per = 16, 40
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		idx  = map[int]uint64{} // entry number → index
		errc = make(chan error, 2*clients*per)
	)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				// Entry c*per+i, then the one the previous client just sent.
				for _, n := range []int{c*per + i, ((c+clients-1)%clients)*per + i} {
					rs, err := seq.Submit(context.Background(), []ledger.Entry{entry(n)})
					if err != nil {
						errc <- err
						return
					}
					r := rs[0]
					cp := r.Checkpoint
					if r.Index >= cp.Size || cp.Size > l.Latest().Size {
						errc <- fmt.Errorf("entry %d: index %d, checkpoint %d, latest %d", n, r.Index, cp.Size, l.Latest().Size)
					}
					if err := proof.VerifyInclusion(r.Index, cp.Size, r.LeafHash, r.Proof, cp.Hash); err != nil {
						errc <- fmt.Errorf("receipt %d: %w", r.Index, err)
					}
					mu.Lock()
					if first, ok := idx[n]; ok && first != r.Index {
						errc <- fmt.Errorf("entry %d: index %d, earlier %d", n, r.Index, first)
					}
					idx[n] = r.Index
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if err := seq.Close(); err != nil {
		t.Fatal(err)
	}
	if got := l.Latest().Size; got != clients*per {
		t.Fatalf("size %d, want %d", got, clients*per)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir)
	defer l.Close()
	if got := l.Latest().Size; got != clients*per {
		t.Fatalf("reopened size %d, want %d", got, clients*per)
	}
	leaves := leafHashes(t, l)
	for n, i := range idx {
		e := entry(n)
		rs, err := l.Apply(ledger.Batch{Time: time.Now(), Entries: []ledger.Entry{e}}, ledger.ApplyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r := rs.Results[0]; !r.Duplicate || r.Index != i || tlog.Hash(r.LeafHash) != leaves[i] {
			t.Fatalf("entry %d after reopen: %+v, want duplicate of %d", n, r, i)
		}
	}
}
