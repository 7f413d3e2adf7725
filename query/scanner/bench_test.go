package scanner_test

import (
	"context"
	"flag"
	"syscall"
	"testing"
	"time"

	"github.com/provledger/provledger/query/scanner"
	"github.com/provledger/provledger/query/scanner/synth"
)

var (
	benchJobs = flag.Int("scanner.bench.jobs", 1000, "jobs of the benchmark stream (entries ≈ 3·jobs·days)")
	benchDays = flag.Int("scanner.bench.days", 100, "days of the benchmark stream")
)

// BenchmarkScan builds a synthetic log (3·jobs·days entries: OpenLineage
// START and COMPLETE events and a FOCUS cost row per job and day, plus
// policy, notes and injected anomalies) and measures one full scan pass,
// with and without the cryptographic re-verification of signatures.
//
//	go test ./query/scanner -run '^$' -bench Scan -benchtime 1x -scanner.bench.jobs 1000 -scanner.bench.days 100
func BenchmarkScan(b *testing.B) {
	l := openLog(b)
	t0 := time.Now()
	st, err := synth.Generate(l, synth.Config{Jobs: *benchJobs, Days: *benchDays, PerKind: 12, Seed: 5})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d entries in %v", st.Entries, time.Since(t0).Round(time.Millisecond))
	for _, mode := range []struct {
		name string
		skip bool
	}{{"verify", false}, {"noverify", true}} {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				// A fresh scanner state: drop the s keys.
				if err := l.DB().DeleteRange([]byte{'s'}, []byte{'t'}, nil); err != nil {
					b.Fatal(err)
				}
				s, _ := newScanner(b, l, st.Trust, func(o *scanner.Options) { o.Integrity.VerifySignatures = !mode.skip })
				b.StartTimer()
				t, cpu0 := time.Now(), cpuTime()
				p, err := s.Scan(context.Background(), st.Entries)
				if err != nil {
					b.Fatal(err)
				}
				el, cpu := time.Since(t), cpuTime()-cpu0
				n := float64(p.To - p.From)
				b.ReportMetric(n/el.Seconds(), "entries/s")
				// CPU per entry does not depend on what else runs on the
				// machine: entries/s on k free cores ≈ k / (CPU per entry).
				b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/entry")
				b.ReportMetric(float64(len(p.Findings)), "findings")
			}
		})
	}
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
