package fsm_test

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/provledger/provledger/bench/loadgen"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/fsm"
)

// BenchmarkSnapshotRestore builds a ledger of N entries (1 KiB envelopes,
// default one million; set SNAPSHOT_BENCH_N to change it), then times
// persisting a snapshot to a file (the Pebble sync that precedes it and a
// reference), expanding it into the full stream as the node does to send
// it, and restoring that into an empty ledger. Run with -benchtime=1x.
func BenchmarkSnapshotRestore(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("SNAPSHOT_BENCH_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	la := openLog(b, b.TempDir(), logKey)
	pad := strings.Repeat("x", 900)
	signer := sha256.Sum256([]byte("signer"))
	start := time.Now()
	idx := uint64(0)
	for i := 0; i < n; {
		var es []ledger.Entry
		for j := 0; j < 1024 && i < n; j++ {
			es = append(es, ledger.Entry{
				Namespace:   "bench",
				PayloadType: "application/vnd.in-toto+json",
				Envelope:    fmt.Appendf(nil, `{"payload":"%012d%s","payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":"k","sig":"c2ln"}]}`, i, pad),
				Signers:     [][32]byte{signer},
			})
			i++
		}
		idx++
		if _, err := la.Apply(ledger.Batch{Time: time.UnixMilli(1_700_000_000_000), Entries: es}, ledger.ApplyOptions{RaftIndex: idx}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("built a ledger of %d entries in %v", n, time.Since(start))
	fa := newFSM(b, la, fsm.Options{})
	path := filepath.Join(b.TempDir(), "snap")

	b.ResetTimer()
	for range b.N {
		// Persist: the Pebble sync and a reference (snapref.go).
		t0 := time.Now()
		c0 := loadgen.SelfCPU()
		s, err := fa.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		sink := &fileSink{File: f, w: bufio.NewWriterSize(f, 1<<20)}
		if err := s.Persist(sink); err != nil {
			b.Fatal(err)
		}
		s.Release()
		persist := time.Since(t0)
		persistCPU := loadgen.SelfCPU() - c0
		fi, _ := os.Stat(path)

		// Sending it: the reference expanded into the full stream (what
		// Persist cost when it wrote the whole store).
		ref, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		c1 := loadgen.SelfCPU()
		full, size, done, err := fa.ExpandSnapshot(ref, fi.Size())
		if err != nil {
			b.Fatal(err)
		}
		expand := time.Since(t1)
		expandCPU := loadgen.SelfCPU() - c1
		ref.Close()

		lb := openLog(b, b.TempDir(), logKey)
		fb := newFSM(b, lb, fsm.Options{ScratchDir: b.TempDir()})
		t2 := time.Now()
		if err := fb.Restore(io.NopCloser(full)); err != nil {
			b.Fatal(err)
		}
		restore := time.Since(t2)
		done()
		if lb.Latest().Size != uint64(n) {
			b.Fatalf("restored size %d", lb.Latest().Size)
		}
		// A restart from its own snapshot reads only the reference.
		r, _ := os.Open(path)
		t3 := time.Now()
		if err := fa.Restore(r); err != nil {
			b.Fatal(err)
		}
		skip := time.Since(t3)
		b.ReportMetric(persist.Seconds(), "persist-s")
		b.ReportMetric(float64(persistCPU.Microseconds())/float64(n), "persist-cpu-µs/entry")
		b.ReportMetric(expand.Seconds(), "expand-s")
		b.ReportMetric(float64(expandCPU.Microseconds())/float64(n), "expand-cpu-µs/entry")
		b.ReportMetric(restore.Seconds(), "restore-s")
		b.ReportMetric(float64(skip.Microseconds())/1000, "covered-restore-ms")
		b.ReportMetric(float64(size)/(1<<20), "snapshot-MiB")
		b.ReportMetric(float64(fi.Size()), "reference-bytes")
	}
}

// BenchmarkApplyPerLog measures the state machine's CPU per entry when each
// Raft log (one proposal) carries 8 to 200 entries with 1 KiB envelopes (no
// indexer): what a ledger batch costs on every node regardless of its size
// (Pebble commit, checkpoint signature, partial tiles rewritten, applied
// index) shows as the difference. Run with e.g. -benchtime=2000x (logs per
// sub-benchmark). The fit c + p/n gives the fixed cost p per log; it
// decides whether hashicorp/raft's BatchingFSM (several committed logs in
// one ledger batch) is worth it: see docs/raft.md, "Raft settings".
func BenchmarkApplyPerLog(b *testing.B) {
	pad := strings.Repeat("x", 1000)
	signer := sha256.Sum256([]byte("signer"))
	for _, per := range []int{8, 25, 50, 100, 200} {
		b.Run(fmt.Sprintf("entries=%d", per), func(b *testing.B) {
			f := newFSM(b, openLog(b, b.TempDir(), logKey), fsm.Options{})
			n := 0
			var cpu time.Duration
			index := uint64(0)
			for b.Loop() {
				es := make([]ledger.Entry, per)
				for j := range es {
					es[j] = ledger.Entry{Namespace: "bench", PayloadType: "application/vnd.in-toto+json",
						Envelope: fmt.Appendf(nil, `{"payload":"%012d%s","payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":"k","sig":"c2ln"}]}`, n, pad),
						Signers:  [][32]byte{signer}}
					n++
				}
				index++
				data, err := fsm.EncodeBatch(ledger.Batch{Time: time.UnixMilli(1_700_000_000_000), Entries: es})
				if err != nil {
					b.Fatal(err)
				}
				l := &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
				c0 := loadgen.SelfCPU()
				a, ok := f.Apply(l).(*ledger.Applied)
				cpu += loadgen.SelfCPU() - c0
				if !ok || len(a.Results) != per {
					b.Fatalf("apply of log %d failed", index)
				}
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/entry")
			b.ReportMetric(float64(cpu.Microseconds())/float64(index), "cpu-µs/log")
		})
	}
}

type fileSink struct {
	*os.File
	w *bufio.Writer
}

func (s *fileSink) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s *fileSink) ID() string                  { return "bench" }
func (s *fileSink) Cancel() error               { return s.File.Close() }
func (s *fileSink) Close() error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	if err := s.File.Sync(); err != nil {
		return err
	}
	return s.File.Close()
}
