package ledger_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/ledger"
)

// toLayout1 rewrites a store in the first key layout (e<digest> → index ‖
// envelope; no v keys, no layout key), as a provd before the
// index-ordered layout left it. Entries in withheld keep only the index,
// as layout 1 stored a redacted envelope.
func toLayout1(t *testing.T, l *ledger.Log, withheld map[uint64]bool) {
	t.Helper()
	db := l.DB()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'v'}, UpperBound: []byte{'w'}})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	for it.First(); it.Valid(); it.Next() {
		idx := binary.BigEndian.Uint64(it.Key()[1:])
		env := it.Value()
		d := sha256.Sum256(env)
		v := binary.BigEndian.AppendUint64(nil, idx)
		if !withheld[idx] {
			v = append(v, env...)
		}
		if err := b.Set(append([]byte{'e'}, d[:]...), v, nil); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(bytes.Clone(it.Key()), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete([]byte("mlayout"), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateLayout: a store in the first key layout opens migrated — every
// envelope readable by digest and in index order, a withheld one still
// withheld, the whole store verifying against its checkpoint — and keeps
// working (appends, dedup, reopen).
func TestMigrateLayout(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	const n = 5000 // more than one migration batch
	for i := 0; i < n; i += 1000 {
		apply(t, l, entries(i, i+1000))
	}
	toLayout1(t, l, map[uint64]bool{7: true})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLog(t, dir)
	if err := l.Verify(); err != nil {
		t.Fatalf("Verify after migration: %v", err)
	}
	for _, i := range []int{0, 6, 4999} {
		got, err := l.Envelope(sha256.Sum256(entry(i).Envelope))
		if err != nil || !bytes.Equal(got, entry(i).Envelope) {
			t.Fatalf("Envelope(entry %d) = %q, %v", i, got, err)
		}
	}
	if _, err := l.Envelope(sha256.Sum256(entry(7).Envelope)); !errors.Is(err, ledger.ErrRedacted) {
		t.Fatalf("withheld entry 7: %v, want ErrRedacted", err)
	}
	var seen []uint64
	if err := l.Envelopes(5, 10, func(i uint64, env []byte) error {
		if !bytes.Equal(env, entry(int(i)).Envelope) {
			t.Errorf("Envelopes: entry %d has %q", i, env)
		}
		seen = append(seen, i)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{5, 6, 8, 9}; !slices.Equal(seen, want) {
		t.Fatalf("Envelopes(5, 10) visited %v, want %v", seen, want)
	}
	a := apply(t, l, append(entries(n, n+1), entry(3)))
	if a.Results[0].Index != n || !a.Results[1].Duplicate || a.Results[1].Index != 3 {
		t.Fatalf("after migration: append %+v", a.Results)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir)
	if err := l.Verify(); err != nil {
		t.Fatalf("Verify after reopening: %v", err)
	}
}

// TestLaterLayoutRefused: a store written by a newer layout is refused
// with a message saying what to run.
func TestLaterLayoutRefused(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	if err := l.DB().Set([]byte("mlayout"), binary.BigEndian.AppendUint64(nil, 99), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	l.Close()
	_, err := ledger.Open(dir, ledger.Options{Origin: testOrigin, Signer: testSigner(t)})
	if !errors.Is(err, ledger.ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte("layout 99")) {
		t.Fatalf("Open of a layout-99 store: %v", err)
	}
}
