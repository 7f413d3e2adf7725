package scanner_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/provledger/provledger/bench/loadgen"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/scanner"
	"github.com/provledger/provledger/query/scanner/synth"
)

var (
	benchJobs   = flag.Int("scanner.bench.jobs", 1000, "jobs of the benchmark stream (entries ≈ 3·jobs·days; 3400 jobs × 100 days ≈ 1M entries)")
	benchDays   = flag.Int("scanner.bench.days", 100, "days of the benchmark stream")
	benchChunk  = flag.Int("scanner.bench.chunk", 0, "Options.ChunkSize of the benchmark's scans (0: the default)")
	benchCommit = flag.Int("scanner.bench.commit", 0, "Options.CommitEvery of the benchmark's scans (0: the default)")
	benchDir    = flag.String("scanner.bench.dir", "", "directory of the benchmark log: generated there on the first run and reused by later runs with the same -scanner.bench.jobs and -scanner.bench.days (default: a new temporary log each run)")
)

// benchMeta describes the stream a reusable benchmark log holds.
type benchMeta struct {
	Jobs, Days, PerKind int
	Seed                uint64
	Entries             uint64
}

const benchMetaFile = "synth.json"

// benchLog opens the benchmark log: a reused one from -scanner.bench.dir
// when it holds the same stream, else a newly generated one.
func benchLog(b *testing.B) (*ledger.Log, uint64) {
	want := benchMeta{Jobs: *benchJobs, Days: *benchDays, PerKind: 12, Seed: 5}
	cfg := synth.Config{Jobs: want.Jobs, Days: want.Days, PerKind: want.PerKind, Seed: want.Seed}
	if *benchDir == "" {
		l := openLog(b)
		t0 := time.Now()
		st, err := synth.Generate(l, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %d entries in %v", st.Entries, time.Since(t0).Round(time.Millisecond))
		return l, st.Entries
	}
	meta := filepath.Join(*benchDir, benchMetaFile)
	var have benchMeta
	if raw, err := os.ReadFile(meta); err == nil && json.Unmarshal(raw, &have) == nil && have.Entries > 0 {
		if have.Jobs == want.Jobs && have.Days == want.Days && have.PerKind == want.PerKind && have.Seed == want.Seed {
			l := openLogDir(b, filepath.Join(*benchDir, "ledger"))
			if l.Latest().Size >= have.Entries {
				b.Logf("reusing the %d-entry log in %s", have.Entries, *benchDir)
				return l, have.Entries
			}
			l.Close()
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		b.Fatal(err)
	}
	// Another stream, or an incomplete one: generate it anew.
	if err := os.RemoveAll(*benchDir); err != nil {
		b.Fatal(err)
	}
	l := openLogDir(b, filepath.Join(*benchDir, "ledger"))
	t0 := time.Now()
	st, err := synth.Generate(l, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d entries in %s in %v", st.Entries, *benchDir, time.Since(t0).Round(time.Millisecond))
	want.Entries = st.Entries
	raw, _ := json.Marshal(want)
	if err := os.WriteFile(meta, raw, 0o644); err != nil {
		b.Fatal(err)
	}
	return l, st.Entries
}

// BenchmarkScan builds (or reuses, -scanner.bench.dir) a synthetic log
// (≈ 3·jobs·days entries: OpenLineage START and COMPLETE events and a
// FOCUS cost row per job and day, plus policy, notes and injected
// anomalies) and measures one full scan pass from a fresh state: the
// default path (lean decoder, no signature re-verification), with
// signatures re-verified, and the reference path (point reads, the strict
// parsers: the scanner before the lean decoder).
//
//	go test ./query/scanner -run '^$' -bench 'Scan/default' -benchtime 1x -timeout 2h \
//	    -scanner.bench.jobs 3400 -scanner.bench.days 100 -scanner.bench.dir /tmp/provledger-scanbench-1m
func BenchmarkScan(b *testing.B) {
	l, entries := benchLog(b)
	trust, err := synth.Trust()
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []struct {
		name string
		mod  func(*scanner.Options)
	}{
		{"default", func(o *scanner.Options) { o.Integrity.VerifySignatures = false }},
		{"verify", func(o *scanner.Options) { o.Integrity.VerifySignatures = true }},
		{"reference", func(o *scanner.Options) { o.Integrity.VerifySignatures = false; scanner.UseReferencePath(o) }},
	} {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				// A fresh scanner state: drop the s keys. (Findings appended
				// by an earlier pass are deduplicated: same envelopes.)
				if err := l.DB().DeleteRange([]byte{'s'}, []byte{'t'}, nil); err != nil {
					b.Fatal(err)
				}
				s, _ := newScanner(b, l, trust, func(o *scanner.Options) {
					mode.mod(o)
					if *benchChunk > 0 {
						o.ChunkSize = *benchChunk
					}
					if *benchCommit > 0 {
						o.CommitEvery = *benchCommit
					}
				})
				b.StartTimer()
				t, cpu0 := time.Now(), loadgen.SelfCPU()
				p, err := s.Scan(context.Background(), entries)
				if err != nil {
					b.Fatal(err)
				}
				el, cpu := time.Since(t), loadgen.SelfCPU()-cpu0
				n := float64(p.To - p.From)
				b.ReportMetric(n/el.Seconds(), "entries/s")
				// CPU per entry does not depend on what else runs on the
				// machine: entries/s on k free cores ≈ k / (CPU per entry).
				b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/entry")
				b.ReportMetric(float64(len(p.Findings)), "findings")
				b.ReportMetric(float64(p.StrictParsed), "strict-parsed")
			}
		})
	}
}
