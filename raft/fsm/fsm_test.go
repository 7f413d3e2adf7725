package fsm_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/fsm"
)

const origin = "test.provledger/raft"

var quiet = slog.New(slog.DiscardHandler)

var logKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

func openLog(t testing.TB, dir string, key ed25519.PrivateKey) *ledger.Log {
	t.Helper()
	s, err := checkpoint.NewSigner(origin, key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(dir, ledger.Options{Origin: origin, Signer: s, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func newFSM(t testing.TB, l *ledger.Log, o fsm.Options) *fsm.FSM {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	if o.ScratchDir == "" {
		o.ScratchDir = t.TempDir()
	}
	f, err := fsm.New(l, o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func entry(i int) ledger.Entry {
	return ledger.Entry{
		Namespace:   "ns",
		PayloadType: "application/vnd.in-toto+json",
		Envelope:    []byte(fmt.Sprintf(`{"payloadType":"x","payload":"%08d","signatures":[]}`, i)),
		Signers:     [][32]byte{sha256.Sum256([]byte("k"))},
	}
}

func batchLog(t testing.TB, index uint64, from, to int) *raft.Log {
	t.Helper()
	var es []ledger.Entry
	for i := from; i < to; i++ {
		es = append(es, entry(i))
	}
	data, err := fsm.EncodeBatch(ledger.Batch{Time: time.UnixMilli(1_700_000_000_000 + int64(index)), Entries: es})
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

func memberLog(t testing.TB, index uint64, id, addr string) *raft.Log {
	t.Helper()
	var data []byte
	var err error
	if addr == "" {
		data, err = fsm.EncodeRemoveMember(id)
	} else {
		data, err = fsm.EncodeSetMember(fsm.Member{ID: id, APIAddr: addr})
	}
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

func mustApplied(t testing.TB, resp any) *ledger.Applied {
	t.Helper()
	a, ok := resp.(*ledger.Applied)
	if !ok {
		t.Fatalf("Apply response %T %v; want *ledger.Applied", resp, resp)
	}
	return a
}

func TestApplyAndReplay(t *testing.T) {
	l := openLog(t, t.TempDir(), logKey)
	f := newFSM(t, l, fsm.Options{})
	a := mustApplied(t, f.Apply(batchLog(t, 3, 0, 10)))
	if len(a.Results) != 10 || a.Checkpoint.Size != 10 || a.Skipped {
		t.Fatalf("Applied = %+v", a)
	}
	if f.Apply(&raft.Log{Index: 4, Type: raft.LogNoop}) != nil {
		t.Fatal("a non-command log got a response")
	}
	if r := f.Apply(memberLog(t, 5, "n1", "127.0.0.1:7001")); r != nil {
		t.Fatalf("member record: %v", r)
	}
	a = mustApplied(t, f.Apply(batchLog(t, 6, 5, 15))) // 5 duplicates
	if a.Checkpoint.Size != 15 || !a.Results[0].Duplicate || a.Results[0].Index != 5 {
		t.Fatalf("second batch: size %d, first result %+v", a.Checkpoint.Size, a.Results[0])
	}
	// Replaying already applied indexes changes nothing.
	for _, i := range []uint64{3, 6} {
		a := mustApplied(t, f.Apply(batchLog(t, i, 100, 110)))
		if !a.Skipped || l.Latest().Size != 15 {
			t.Fatalf("replay of %d: %+v, size %d", i, a, l.Latest().Size)
		}
	}
	if got := l.AppliedIndex(); got != 6 {
		t.Fatalf("AppliedIndex = %d", got)
	}
	if f.LastIndex() != 6 {
		t.Fatalf("LastIndex = %d", f.LastIndex())
	}
	// A command that does not decode is refused the same way on every node
	// and changes nothing.
	r := f.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: []byte{9, 9}})
	if err, ok := r.(error); !ok || !errors.Is(err, fsm.ErrMalformed) || f.Err() != nil {
		t.Fatalf("undecodable command: %v, Err %v", r, f.Err())
	}
	if addr, ok := f.APIAddr("n1"); !ok || addr != "127.0.0.1:7001" {
		t.Fatalf("APIAddr(n1) = %q, %v", addr, ok)
	}
	f.Apply(memberLog(t, 8, "n1", ""))
	if _, ok := f.APIAddr("n1"); ok {
		t.Fatal("removed member still recorded")
	}
	// A membership record at or below the ledger's applied index is a
	// replay over a state that holds it (and what came after): skipped.
	f.Apply(memberLog(t, 9, "n2", "127.0.0.1:7002"))
	mustApplied(t, f.Apply(batchLog(t, 10, 20, 21)))
	f.Apply(memberLog(t, 9, "n2", "127.0.0.1:6999"))
	f.Apply(memberLog(t, 5, "n1", "127.0.0.1:7001"))
	if m := f.Members(); len(m) != 1 || m["n2"] != "127.0.0.1:7002" {
		t.Fatalf("members after replayed records = %v, want only n2 at 127.0.0.1:7002", m)
	}
}

func TestMembersSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, logKey)
	f := newFSM(t, l, fsm.Options{})
	f.Apply(memberLog(t, 1, "n1", "a:1"))
	f.Apply(memberLog(t, 2, "n2", "b:2"))
	f.Apply(memberLog(t, 3, "n1", "a:9"))
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = openLog(t, dir, logKey)
	f = newFSM(t, l, fsm.Options{})
	if m := f.Members(); len(m) != 2 || m["n1"] != "a:9" || m["n2"] != "b:2" {
		t.Fatalf("Members after restart = %v", m)
	}
}

func TestFatalStopsTheMachine(t *testing.T) {
	l := openLog(t, t.TempDir(), logKey)
	var calls atomic.Int32
	f := newFSM(t, l, fsm.Options{OnFatal: func(error) { calls.Add(1) }})
	mustApplied(t, f.Apply(batchLog(t, 1, 0, 3)))
	l.Close() // every later Apply fails
	for i := uint64(2); i < 5; i++ {
		r := f.Apply(batchLog(t, i, 10, 12))
		if err, ok := r.(error); !ok || !errors.Is(err, fsm.ErrFailed) {
			t.Fatalf("Apply after the ledger closed: %v", r)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("OnFatal called %d times", calls.Load())
	}
	if _, err := f.Snapshot(); !errors.Is(err, fsm.ErrFailed) {
		t.Fatalf("Snapshot of a failed machine: %v", err)
	}
}

// bufSink is an in-memory raft.SnapshotSink.
type bufSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *bufSink) ID() string    { return "test" }
func (s *bufSink) Close() error  { s.closed = true; return nil }
func (s *bufSink) Cancel() error { s.cancelled = true; return nil }

// snapshot takes a snapshot of f, persists it and expands it as raft's
// transport does to send it: the full stream another node restores.
func snapshot(t testing.TB, f *fsm.FSM) []byte {
	t.Helper()
	return expand(t, f, persisted(t, f))
}

// persisted is what Persist writes into raft's snapshot store: a reference.
func persisted(t testing.TB, f *fsm.FSM) []byte {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	var sink bufSink
	if err := s.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed {
		t.Fatal("Persist did not close the sink")
	}
	return sink.Bytes()
}

// expand is what the node's transport sends for data.
func expand(t testing.TB, f *fsm.FSM, data []byte) []byte {
	t.Helper()
	r, n, done, err := f.ExpandSnapshot(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != n {
		t.Fatalf("ExpandSnapshot said %d bytes and gave %d", n, len(b))
	}
	return b
}

func restore(f *fsm.FSM, b []byte) error {
	return f.Restore(io.NopCloser(bytes.NewReader(b)))
}

// sameLog checks that b holds exactly a's entries and checkpoints.
func sameLog(t testing.TB, a, b *ledger.Log) {
	t.Helper()
	if a.Latest().Size != b.Latest().Size || !bytes.Equal(a.Latest().Note, b.Latest().Note) {
		t.Fatalf("latest checkpoints differ:\n%s\n%s", a.Latest().Note, b.Latest().Note)
	}
	n := a.Latest().Size
	for i := uint64(0); i < n; i++ {
		ra, err := a.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.Record(i)
		if err != nil || !bytes.Equal(ra, rb) {
			t.Fatalf("record %d differs: %v", i, err)
		}
	}
	if a.AppliedIndex() != b.AppliedIndex() {
		t.Fatalf("applied index %d vs %d", a.AppliedIndex(), b.AppliedIndex())
	}
}

func TestSnapshotRestore(t *testing.T) {
	la := openLog(t, t.TempDir(), logKey)
	fa := newFSM(t, la, fsm.Options{})
	idx := uint64(1)
	for i := 0; i < 1000; i += 100 { // crosses several tiles
		mustApplied(t, fa.Apply(batchLog(t, idx, i, i+100+7)))
		idx++
	}
	fa.Apply(memberLog(t, idx, "n1", "127.0.0.1:7001"))
	idx++
	snap := snapshot(t, fa)

	// A fresh node restores it.
	lb := openLog(t, t.TempDir(), logKey)
	fb := newFSM(t, lb, fsm.Options{})
	// Give it a record the snapshot does not have, to see it replaced.
	fb.Apply(memberLog(t, 1, "stale", "x:1"))
	if err := restore(fb, snap); err != nil {
		t.Fatal(err)
	}
	sameLog(t, la, lb)
	if m := fb.Members(); len(m) != 1 || m["n1"] != "127.0.0.1:7001" {
		t.Fatalf("members after restore: %v", m)
	}
	if fb.LastIndex() != la.AppliedIndex() {
		t.Fatalf("LastIndex after restore %d, want %d", fb.LastIndex(), la.AppliedIndex())
	}
	// Proofs and dedup work on the restored node, and both nodes go on to
	// produce identical checkpoints.
	p, err := lb.InclusionProof(500, lb.Latest().Size)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := lb.Record(500)
	if err := proof.VerifyInclusion(500, lb.Latest().Size, proof.LeafHash(rec), p, lb.Latest().Hash); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*fsm.FSM{fa, fb} {
		a := mustApplied(t, f.Apply(batchLog(t, idx, 990, 1200)))
		if !a.Results[0].Duplicate {
			t.Fatal("dedup lost in the restored store")
		}
	}
	sameLog(t, la, lb)
	for s := uint64(0); s <= la.Latest().Size; s++ {
		ca, errA := la.CheckpointAt(s)
		cb, errB := lb.CheckpointAt(s)
		if (errA == nil) != (errB == nil) || (errA == nil && !bytes.Equal(ca.Note, cb.Note)) {
			t.Fatalf("CheckpointAt(%d): %v / %v", s, errA, errB)
		}
	}
	// Reopening the restored store passes the ledger's recovery checks.
	dirB := t.TempDir()
	lc := openLog(t, dirB, logKey)
	fc := newFSM(t, lc, fsm.Options{})
	if err := restore(fc, snap); err != nil {
		t.Fatal(err)
	}
	lc.Close()
	lc = openLog(t, dirB, logKey)
	if lc.Latest().Size != 1007 || lc.AppliedIndex() != 10 {
		t.Fatalf("reopened restored store: size %d applied %d", lc.Latest().Size, lc.AppliedIndex())
	}
}

func TestRestoreSkipsWhatTheStoreHolds(t *testing.T) {
	l := openLog(t, t.TempDir(), logKey)
	f := newFSM(t, l, fsm.Options{})
	mustApplied(t, f.Apply(batchLog(t, 1, 0, 50)))
	snap := snapshot(t, f)
	mustApplied(t, f.Apply(batchLog(t, 2, 50, 60)))
	// Only the header is read: a truncated stream still "restores".
	if err := restore(f, snap[:500]); err != nil {
		t.Fatalf("restore of a covered snapshot: %v", err)
	}
	if l.Latest().Size != 60 || l.AppliedIndex() != 2 {
		t.Fatalf("covered restore changed the store: size %d applied %d", l.Latest().Size, l.AppliedIndex())
	}
}

// reframe rewrites a snapshot stream after edit changes its pairs, with a
// valid count and checksum, so only the content checks can catch the edit.
func reframe(t *testing.T, snap []byte, edit func(k, v []byte) []byte) []byte {
	t.Helper()
	r := bytes.NewReader(snap)
	var out bytes.Buffer
	magic := make([]byte, len("provledger snapshot v1\n"))
	io.ReadFull(r, magic)
	out.Write(magic)
	field := func() []byte {
		n, _ := binary.ReadUvarint(r)
		b := make([]byte, n)
		io.ReadFull(r, b)
		out.Write(binary.AppendUvarint(nil, n))
		out.Write(b)
		return b
	}
	field()
	a := make([]byte, 8)
	io.ReadFull(r, a)
	out.Write(a)
	field()
	var n uint64
	for {
		kl, _ := binary.ReadUvarint(r)
		if kl == 0 {
			break
		}
		vl, _ := binary.ReadUvarint(r)
		k, v := make([]byte, kl), make([]byte, vl)
		io.ReadFull(r, k)
		io.ReadFull(r, v)
		if v = edit(k, v); v == nil {
			continue
		}
		out.Write(binary.AppendUvarint(binary.AppendUvarint(nil, kl), uint64(len(v))))
		out.Write(k)
		out.Write(v)
		n++
	}
	out.WriteByte(0)
	out.Write(binary.BigEndian.AppendUint64(nil, n))
	sum := sha256.Sum256(out.Bytes())
	out.Write(sum[:])
	return out.Bytes()
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	la := openLog(t, t.TempDir(), logKey)
	fa := newFSM(t, la, fsm.Options{})
	mustApplied(t, fa.Apply(batchLog(t, 1, 0, 300)))
	snap := snapshot(t, fa)

	otherKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize))
	lo := openLog(t, t.TempDir(), otherKey)
	fo := newFSM(t, lo, fsm.Options{})
	mustApplied(t, fo.Apply(batchLog(t, 1, 0, 300)))
	foreign := snapshot(t, fo)

	flipped := bytes.Clone(snap)
	flipped[len(flipped)/2] ^= 1
	cases := map[string][]byte{
		"empty":          nil,
		"not a snapshot": []byte("hello world, this is not a snapshot at all"),
		"truncated":      snap[:len(snap)-40],
		"no checksum":    snap[:len(snap)-32],
		"flipped bit":    flipped,
		"other log key":  foreign,
		"tile edited": reframe(t, snap, func(k, v []byte) []byte {
			if k[0] == 't' {
				v[5] ^= 1
			}
			return v
		}),
		"checkpoint dropped": reframe(t, snap, func(k, v []byte) []byte {
			if k[0] == 'c' && binary.BigEndian.Uint64(k[1:]) == 300 {
				return nil
			}
			return v
		}),
		"applied index edited": reframe(t, snap, func(k, v []byte) []byte {
			if string(k) == "mapplied" {
				v[7]++
			}
			return v
		}),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			lb := openLog(t, t.TempDir(), logKey)
			fb := newFSM(t, lb, fsm.Options{})
			mustApplied(t, fb.Apply(batchLog(t, 1, 1000, 1010)))
			before := lb.Latest()
			err := restore(fb, b)
			if !errors.Is(err, ledger.ErrBadSnapshot) {
				t.Fatalf("Restore: %v; want ErrBadSnapshot", err)
			}
			// The store is untouched and still works.
			if lb.Latest() != before || lb.AppliedIndex() != 1 {
				t.Fatal("a rejected restore changed the store")
			}
			mustApplied(t, fb.Apply(batchLog(t, 2, 1010, 1020)))
			if lb.Latest().Size != 20 {
				t.Fatalf("size %d after a rejected restore and one more batch", lb.Latest().Size)
			}
		})
	}
	// Leftover scratch files of an interrupted restore are removed.
	scratch := t.TempDir()
	stale := filepath.Join(scratch, "ledger-restore-1.sst")
	os.WriteFile(stale, []byte("x"), 0o600)
	lb := openLog(t, t.TempDir(), logKey)
	fb := newFSM(t, lb, fsm.Options{ScratchDir: scratch})
	if err := restore(fb, snap); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(scratch, "*")); len(left) != 0 {
		t.Fatalf("scratch dir holds %v after a restore", left)
	}
}

// TestRestoreWhileReading runs readers against a node while it restores
// snapshots (run with -race): they never fail or see a checkpoint go
// backwards.
func TestRestoreWhileReading(t *testing.T) {
	la := openLog(t, t.TempDir(), logKey)
	fa := newFSM(t, la, fsm.Options{})
	var snaps [][]byte
	for i := range 4 {
		mustApplied(t, fa.Apply(batchLog(t, uint64(i+1), i*300, i*300+300)))
		snaps = append(snaps, snapshot(t, fa))
	}
	lb := openLog(t, t.TempDir(), logKey)
	fb := newFSM(t, lb, fsm.Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				cp := lb.Latest()
				if cp.Size < last {
					t.Errorf("checkpoint went back from %d to %d", last, cp.Size)
					return
				}
				last = cp.Size
				if cp.Size == 0 {
					continue
				}
				i := uint64(reads.Load()) % cp.Size
				rec, err := lb.Record(i)
				if err != nil {
					t.Errorf("Record(%d) at size %d: %v", i, cp.Size, err)
					return
				}
				p, err := lb.InclusionProof(i, cp.Size)
				if err != nil {
					t.Errorf("InclusionProof(%d, %d): %v", i, cp.Size, err)
					return
				}
				if err := proof.VerifyInclusion(i, cp.Size, proof.LeafHash(rec), p, cp.Hash); err != nil {
					t.Errorf("proof (%d, %d): %v", i, cp.Size, err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	for _, s := range snaps {
		if err := restore(fb, s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	sameLog(t, la, lb)
	t.Logf("%d verified reads during 4 restores", reads.Load())
}
