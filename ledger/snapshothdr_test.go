package ledger_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/provledger/provledger/ledger"
)

// The header WriteHeaderTo writes is the one WriteTo starts with; a store
// that holds the snapshot restores it (SkipIfCovered) from the header alone,
// and any other store refuses it without changing anything.
func TestSnapshotHeaderOnly(t *testing.T) {
	l := openLog(t, t.TempDir())
	for i := range 3 {
		if _, err := l.Apply(ledger.Batch{Time: time.Now(), Entries: []ledger.Entry{entry(i)}}, ledger.ApplyOptions{RaftIndex: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := l.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var hdr, full bytes.Buffer
	if _, err := s.WriteHeaderTo(&hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteTo(&full); err != nil {
		t.Fatal(err)
	}
	if hdr.Len() == 0 || hdr.Len() >= full.Len() || !bytes.HasPrefix(full.Bytes(), hdr.Bytes()) {
		t.Fatalf("header of %d bytes is not a strict prefix of the %d-byte stream", hdr.Len(), full.Len())
	}
	info, err := l.Restore(bytes.NewReader(hdr.Bytes()), ledger.RestoreOptions{ScratchDir: t.TempDir(), SkipIfCovered: true})
	if err != nil || !info.Skipped || info.AppliedIndex != 3 {
		t.Fatalf("covered restore of the header: %+v, %v", info, err)
	}
	other := openLog(t, t.TempDir())
	if _, err := other.Restore(bytes.NewReader(hdr.Bytes()), ledger.RestoreOptions{ScratchDir: t.TempDir(), SkipIfCovered: true}); !errors.Is(err, ledger.ErrBadSnapshot) {
		t.Fatalf("restore of a bare header into another store: %v; want ErrBadSnapshot", err)
	}
	if other.Latest().Size != 0 || other.AppliedIndex() != 0 {
		t.Fatal("a refused header changed the store")
	}
}
