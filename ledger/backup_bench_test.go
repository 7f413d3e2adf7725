package ledger_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/provledger/provledger/ledger"
)

// benchLog is a log of n 1 KiB entries in batches of 1024.
func benchLog(b *testing.B, n int) *ledger.Log {
	l := openLog(b, b.TempDir())
	es := make([]ledger.Entry, 0, 1024)
	for i := 0; i < n; i++ {
		es = append(es, kibEntry(uint64(i)))
		if len(es) == cap(es) || i == n-1 {
			if _, err := l.Apply(ledger.Batch{Entries: es}, ledger.ApplyOptions{}); err != nil {
				b.Fatal(err)
			}
			es = es[:0]
		}
	}
	if err := l.Sync(); err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkBackup measures writing a backup of a 100k-entry log (1 KiB
// envelopes) to a discarding writer: b.SetBytes makes `go test` report the
// stream rate.
func BenchmarkBackup(b *testing.B) {
	l := benchLog(b, 100_000)
	key := testLogKey(b)
	b.ResetTimer()
	for b.Loop() {
		bk, err := l.NewBackup(key)
		if err != nil {
			b.Fatal(err)
		}
		n, err := bk.WriteTo(io.Discard)
		bk.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(n)
	}
}

// BenchmarkRestoreBackup measures RestoreBackup of a 100k-entry backup,
// every check included (the recomputation of the tree from the entries).
func BenchmarkRestoreBackup(b *testing.B) {
	l := benchLog(b, 100_000)
	bk, err := l.NewBackup(testLogKey(b))
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "bench.backup")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	n, err := bk.WriteTo(f)
	bk.Close()
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	opts := restoreOpts(b)
	b.SetBytes(n)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		dir := filepath.Join(b.TempDir(), "r", string(rune('a'+i%26)), "restored")
		os.RemoveAll(dir)
		if _, err := ledger.RestoreBackup(dir, path, opts); err != nil {
			b.Fatal(err)
		}
	}
}
