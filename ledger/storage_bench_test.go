package ledger_test

import (
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/provledger/provledger/bench/loadgen"
	"github.com/provledger/provledger/ledger"
)

// realisticEntry is a distinct entry whose envelope looks like a canonical
// DSSE envelope of a 1 KiB payload: about 1.6 KB of base64 JSON text, as
// incompressible as a signed envelope is (kibEntry's zeros compress to
// nothing and hide the storage engine's real cost).
func realisticEntry(pool [][]byte, i uint64) ledger.Entry {
	raw := pool[i%uint64(len(pool))]
	binary.BigEndian.PutUint64(raw, i)
	env := []byte(`{"payload":"` + base64.StdEncoding.EncodeToString(raw) + `","payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":"","sig":"c2lnbmF0dXJl"}]}`)
	return ledger.Entry{Namespace: "bench", PayloadType: "application/vnd.in-toto+json", Envelope: env, Signers: [][32]byte{{byte(i % 4)}}}
}

// BenchmarkApplyStorage measures what integrating one realistic 1 KiB entry
// costs the process in CPU — records, tiles, checkpoint signing, the synced
// Pebble batch and the flushes and compactions it causes later — in batches
// of 48 (the group-commit size seen under 64 clients). Run it long enough
// for compactions to matter, e.g. -benchtime 1000000x -v (which prints Pebble's metrics); cpu-µs/entry is the
// figure (wall time includes fsync waits).
func BenchmarkApplyStorage(b *testing.B) {
	l := openLog(b, b.TempDir())
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([][]byte, 4096)
	for i := range pool {
		pool[i] = make([]byte, 1180)
		for j := range pool[i] {
			pool[i][j] = byte(rng.Uint32())
		}
	}
	const batch = 48
	es := make([]ledger.Entry, batch)
	var n uint64
	b.ResetTimer()
	c0 := loadgen.SelfCPU()
	for i := 0; i < b.N; i += batch {
		for j := range es {
			es[j] = realisticEntry(pool, n)
			n++
		}
		if _, err := l.Apply(ledger.Batch{Time: time.Now(), Entries: es}, ledger.ApplyOptions{Sync: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// Flushes and compactions the appends caused are part of their cost.
	if err := l.DB().Flush(); err != nil {
		b.Fatal(err)
	}
	for l.DB().Metrics().Compact.NumInProgress > 0 { // let queued compactions finish
		time.Sleep(50 * time.Millisecond)
	}
	if testing.Verbose() {
		b.Logf("pebble metrics:\n%s", l.DB().Metrics())
	}
	b.ReportMetric(float64((loadgen.SelfCPU()-c0).Microseconds())/float64(n), "cpu-µs/entry")
}
