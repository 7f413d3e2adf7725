package ledger_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/ledger"
)

// kibEntry is a distinct entry with a 1 KiB envelope.
func kibEntry(i uint64) ledger.Entry {
	env := make([]byte, 1024)
	binary.BigEndian.PutUint64(env, i)
	return ledger.Entry{Namespace: "bench", PayloadType: "application/vnd.in-toto+json", Envelope: env, Signers: [][32]byte{sha256.Sum256([]byte("k"))}}
}

func BenchmarkLeafHash(b *testing.B) {
	rec := make([]byte, 150)
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		proof.LeafHash(rec)
	}
}

// BenchmarkApplyUnsynced measures integration cost per entry (records,
// tiles, checkpoint signing, Pebble batch) without fsync, in batches of 256:
// the tile update per append is part of it.
func BenchmarkApplyUnsynced(b *testing.B) {
	l := openLog(b, b.TempDir())
	const batch = 256
	es := make([]ledger.Entry, batch)
	var n uint64
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		for j := range es {
			es[j] = kibEntry(n)
			n++
		}
		if _, err := l.Apply(ledger.Batch{Time: time.Now(), Entries: es}, ledger.ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGroupCommit measures the LocalSequencer with 64 concurrent
// submitters, every batch fsynced: entries/s is the durable append rate of
// the storage layer alone (no gRPC, no signature checks).
func BenchmarkGroupCommit(b *testing.B) {
	l := openLog(b, b.TempDir())
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer seq.Close()
	var next atomic.Uint64
	var wg sync.WaitGroup
	per := b.N/64 + 1
	b.ResetTimer()
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if _, err := seq.Submit(context.Background(), []ledger.Entry{kibEntry(next.Add(1))}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(per*64)/time.Since(start).Seconds(), "entries/s")
}

func BenchmarkInclusionProof(b *testing.B) {
	l := openLog(b, b.TempDir())
	const size = 100_000
	es := make([]ledger.Entry, 1000)
	for n := uint64(0); n < size; n += 1000 {
		for j := range es {
			es[j] = kibEntry(n + uint64(j))
		}
		if _, err := l.Apply(ledger.Batch{Time: time.Now(), Entries: es}, ledger.ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var i uint64
	for b.Loop() {
		i = (i + 7919) % size
		if _, err := l.InclusionProof(i, size); err != nil {
			b.Fatal(err)
		}
	}
}
