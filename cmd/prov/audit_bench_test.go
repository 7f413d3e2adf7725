package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/provledger/provledger/bench/loadgen"
	"github.com/provledger/provledger/ledger"
)

// benchLog opens the log in $PROV_AUDIT_BENCH_DIR (default: a temp dir),
// growing it to $PROV_AUDIT_BENCH_N entries (default 100,000) if it is
// smaller. Building 1M entries takes about a minute on 2 cores; keep the
// directory to measure again.
func benchLog(b *testing.B) *logFixture {
	dir := os.Getenv("PROV_AUDIT_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	n := uint64(100_000)
	if s := os.Getenv("PROV_AUDIT_BENCH_N"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	f := newLogFixture(b, dir)
	const batch = 4096
	for f.n < n {
		k := min(batch, int(n-f.n))
		es := make([]ledger.Entry, k)
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < k; i += workers {
					es[i] = f.entry(b, f.n+uint64(i), "")
				}
			}()
		}
		wg.Wait()
		if _, err := f.log.Apply(ledger.Batch{Time: time.UnixMilli(1_800_000_000_000), Entries: es}, ledger.ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		f.n += uint64(k)
	}
	if err := f.log.Sync(); err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkAuditFull measures prov audit --full --trust (every entry
// bundle, tile and envelope bundle fetched over loopback HTTP from
// api/httpapi in the same process, every leaf and the root recomputed,
// every DSSE signature verified). It reports entries/s.
//
//	PROV_AUDIT_BENCH_DIR=/tmp/auditbench PROV_AUDIT_BENCH_N=1000000 \
//	  go test -run '^$' -bench AuditFull -benchtime 1x ./cmd/prov
//
// PROV_AUDIT_BENCH_ENVELOPES=http|grpc reads the envelopes one GET each
// or with gRPC GetEntries instead of /envelopes/<N> (PROV_AUDIT_BENCH_GRPC=1
// is grpc); PROV_AUDIT_BENCH_NOTRUST=1 skips signatures;
// PROV_AUDIT_BENCH_POLICY=1 adds --policy-from-log (the fold's extra read
// of every entry bundle and tile, and the check of every entry).
func BenchmarkAuditFull(b *testing.B) {
	f := benchLog(b)
	size := f.log.Latest().Size
	grpcAddr := serveGRPC(b, f)
	b.ResetTimer()
	cpu0 := loadgen.SelfCPU()
	start := time.Now()
	for range b.N {
		state := filepath.Join(b.TempDir(), "state")
		args := []string{"--log-key", f.logPub, "audit", "--full", "--url", f.url, "--state", state}
		if os.Getenv("PROV_AUDIT_BENCH_NOTRUST") == "" {
			args = append(args, "--trust", f.trust)
		}
		if os.Getenv("PROV_AUDIT_BENCH_POLICY") != "" {
			args = append(args, "--policy-from-log")
		}
		switch src := os.Getenv("PROV_AUDIT_BENCH_ENVELOPES"); {
		case src == "grpc" || os.Getenv("PROV_AUDIT_BENCH_GRPC") != "":
			args = append([]string{"--server", grpcAddr}, append(args, "--envelopes", "grpc")...)
		case src != "":
			args = append(args, "--envelopes", src)
		}
		code := runWith(context.Background(), args, nil, io.Discard, os.Stderr)
		if code != 0 {
			b.Fatalf("audit: exit %d", code)
		}
	}
	el := time.Since(start)
	cpu := loadgen.SelfCPU() - cpu0
	perEntry := cpu.Seconds() / (float64(size) * float64(b.N))
	b.ReportMetric(float64(size)*float64(b.N)/el.Seconds(), "entries/s")
	b.ReportMetric(float64(size), "entries")
	// CPU time of the whole process (auditor and server) per entry, and
	// the rate that gives on 2 dedicated cores: on a shared machine the
	// wall-clock rate says more about the neighbours than about the audit.
	b.ReportMetric(perEntry*1e6, "cpu-µs/entry")
	b.ReportMetric(2/perEntry, "entries/s@2cores")
}
