package fsm_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/provledger/provledger/raft/fsm"
)

// Persist writes a reference, not the store: small whatever the log's size,
// restorable only where the ledger holds it, and expanded into the ledger's
// full stream when raft sends it.
func TestSnapshotReference(t *testing.T) {
	dir := t.TempDir()
	scratch := t.TempDir()
	la := openLog(t, dir, logKey)
	fa := newFSM(t, la, fsm.Options{ScratchDir: scratch})
	idx := uint64(1)
	for i := 0; i < 1000; i += 100 {
		mustApplied(t, fa.Apply(batchLog(t, idx, i, i+100)))
		idx++
	}
	fa.Apply(memberLog(t, idx, "n1", "127.0.0.1:7001"))
	refIndex := idx
	ref := persisted(t, fa)
	full := expand(t, fa, ref)
	if len(ref) > 1024 || len(full) < 50*len(ref) {
		t.Fatalf("reference of %d bytes for a full stream of %d", len(ref), len(full))
	}
	if left, _ := filepath.Glob(filepath.Join(scratch, "*")); len(left) != 0 {
		t.Fatalf("expansion left %v in the scratch directory", left)
	}
	// A full stream is sent as it is.
	if again := expand(t, fa, full); !bytes.Equal(again, full) {
		t.Fatal("ExpandSnapshot changed a full stream")
	}

	// The node itself (raft restores its newest snapshot on start) holds it,
	// also after a restart.
	if err := restore(fa, ref); err != nil {
		t.Fatalf("restore of the node's own reference: %v", err)
	}
	la.Close()
	la = openLog(t, dir, logKey)
	fa = newFSM(t, la, fsm.Options{ScratchDir: scratch})
	if err := restore(fa, ref); err != nil {
		t.Fatalf("restore of the node's own reference after a restart: %v", err)
	}
	if m := fa.Members(); m["n1"] != "127.0.0.1:7001" {
		t.Fatalf("members after restoring the reference: %v", m)
	}

	// Another ledger does not hold it: refused, nothing changed.
	lb := openLog(t, t.TempDir(), logKey)
	fb := newFSM(t, lb, fsm.Options{})
	mustApplied(t, fb.Apply(batchLog(t, 1, 5000, 5010)))
	if err := restore(fb, ref); !errors.Is(err, fsm.ErrNotHeld) {
		t.Fatalf("restore of another node's reference: %v; want ErrNotHeld", err)
	}
	if lb.Latest().Size != 10 || lb.AppliedIndex() != 1 {
		t.Fatal("a refused reference changed the store")
	}

	// Sent later, the reference carries the ledger as it is then: the
	// receiver restores the newer state and skips the batches after the
	// snapshot's index that the state already holds (idempotent replay).
	later := []uint64{idx + 1, idx + 2}
	mustApplied(t, fa.Apply(batchLog(t, later[0], 1000, 1050)))
	mustApplied(t, fa.Apply(batchLog(t, later[1], 1050, 1100)))
	lc := openLog(t, t.TempDir(), logKey)
	fc := newFSM(t, lc, fsm.Options{})
	if err := restore(fc, expand(t, fa, ref)); err != nil {
		t.Fatal(err)
	}
	sameLog(t, la, lc)
	if fc.LastIndex() != later[1] {
		t.Fatalf("LastIndex after restoring a later expansion: %d, want %d", fc.LastIndex(), later[1])
	}
	for i, index := range later {
		if a := mustApplied(t, fc.Apply(batchLog(t, index, 1000+50*i, 1050+50*i))); !a.Skipped {
			t.Fatalf("batch at raft index %d (after the snapshot's %d, held by the state) applied again", index, refIndex)
		}
	}
	sameLog(t, la, lc)

	// A reference ahead of the ledger cannot be expanded from it.
	if _, _, _, err := fb.ExpandSnapshot(bytes.NewReader(ref), int64(len(ref))); err == nil {
		t.Fatal("a reference beyond the ledger's applied index was expanded")
	}
	// A truncated reference is refused.
	if err := restore(fa, ref[:20]); err == nil {
		t.Fatal("a truncated reference restored")
	}
	if _, err := os.Stat(scratch); err != nil {
		t.Fatal(err)
	}
}
