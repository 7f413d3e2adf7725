package cluster_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/cluster"
)

// BenchmarkClusterSubmit measures appends on a 3-node in-process cluster
// over TCP loopback (every node fsyncs its Badger Raft log; Pebble is
// written unsynced and replayed on a crash): 64 concurrent clients, each
// appending one entry with a 1 KiB envelope at a time, straight to the
// leader's Sequencer (no gRPC, no signature checks: those are the api
// layer's). Run with e.g. -benchtime=20000x; it reports entries/s and
// latency percentiles.
func BenchmarkClusterSubmit(b *testing.B) {
	for _, o := range []cluster.SequencerOptions{
		{MaxInFlight: 1},
		{MaxInFlight: 2, PipelineMin: 1}, // pipeline whatever is queued
		{MaxInFlight: 2},                 // the default: pipeline from 32 queued appends
		{MaxInFlight: 4},
	} {
		b.Run(fmt.Sprintf("inflight=%d/pipelinemin=%d", o.MaxInFlight, o.PipelineMin), func(b *testing.B) { benchSubmit(b, o) })
	}
}

func benchSubmit(b *testing.B, so cluster.SequencerOptions) {
	c := newCluster(b, 3, false, func(cfg *cluster.Config) {
		// raft's default timing, as provd runs it.
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout, cfg.CommitTimeout = 0, 0, 0, 0
		cfg.Store = badgerOpts{}
	})
	l := c.bootstrap()
	c.converge(0, 10*time.Second)
	seq, err := l.node.NewSequencer(so)
	if err != nil {
		b.Fatal(err)
	}
	defer seq.Close()
	const clients = 64
	pad := strings.Repeat("x", 900)
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := next.Add(1)
				if k > int64(b.N) {
					return
				}
				e := ledger.Entry{
					Namespace:   "bench",
					PayloadType: "application/vnd.in-toto+json",
					Envelope:    fmt.Appendf(nil, `{"payload":"%012d%s","payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":"k","sig":"c2ln"}]}`, k, pad),
					Signers:     [][32]byte{sha256.Sum256([]byte("signer"))},
				}
				t0 := time.Now()
				if _, err := seq.Submit(context.Background(), []ledger.Entry{e}); err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "entries/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	st := l.node.Status()
	b.ReportMetric(float64(st.Checkpoint.Size)/float64(max(st.LedgerAppliedIndex, 1)), "entries/proposal")
}
