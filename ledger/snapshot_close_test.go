package ledger_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/provledger/provledger/ledger"
)

// Close waits for open snapshots: a snapshot being read when the log is
// closed (a backup or Raft snapshot still streaming at shutdown) finishes
// its read instead of hitting a closed store, and Close returns once it
// is closed.
func TestCloseWaitsForOpenSnapshots(t *testing.T) {
	l := openLog(t, t.TempDir())
	apply(t, l, entries(0, 10))
	s, err := l.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a snapshot was open", err)
	case <-time.After(100 * time.Millisecond):
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatalf("reading an open snapshot while the log closes: %v", err)
	}
	if buf.Len() == 0 {
		t.Fatal("empty snapshot")
	}
	if _, err := l.NewSnapshot(); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("NewSnapshot on a closing log: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Close() // a second Close is harmless
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waits after the snapshot was closed")
	}
}
