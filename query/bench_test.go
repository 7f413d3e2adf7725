package query_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/bench/loadgen"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/internal/testlog"
	"github.com/provledger/provledger/query/payload"
)

// Scale of the synthetic lineage graph. The figures:
//
//	go test ./query -run '^$' -bench Lineage -benchtime 1x -timeout 2h \
//	  -lineage.datasets 100000 -lineage.edges 1000000
var (
	benchDatasets = flag.Int("lineage.datasets", 2000, "datasets in the synthetic lineage graph")
	benchEdges    = flag.Int("lineage.edges", 20000, "lineage edges (run inputs and outputs) in the synthetic graph")
	benchLayers   = flag.Int("lineage.layers", 20, "layers of the synthetic graph (layer 0: sources)")
	benchQueries  = flag.Int("lineage.queries", 200, "queries of each kind per benchmark round")
	benchBudget   = flag.Int("lineage.budget", 0, "relation budget of the queries (0: the engine's default)")
	benchDir      = flag.String("lineage.dir", "", "keep the ledger here (default: a temporary directory); with -lineage.reuse, query a graph built there before")
	benchReuse    = flag.Bool("lineage.reuse", false, "with -lineage.dir: reuse the ledger built there by an earlier run with the same scale (no ingest figures)")
	benchFlush    = flag.Bool("lineage.flush", true, "flush the memtables after ingest (queries then read sstables)")
	benchJSON     = flag.String("lineage.json", "", "also write the figures as JSON to this file")
	benchWarmup   = flag.Int("lineage.warmup", 0, "untimed queries of each kind before the timed ones (warms the adjacency and block caches)")
	benchKinds    = flag.String("lineage.kinds", "upstream,impact,asof", "the kinds of queries to run (comma-separated), e.g. impact alone for a profile of it")
	benchDigest   = flag.Bool("lineage.digest", false, "report a SHA-256 of each kind's timed answers (JSON), to check that two builds answer alike (the encoding adds to the process CPU figures)")
	benchProfile  = flag.String("lineage.cpuprofile", "", "write a CPU profile of the timed queries only (after the warm-up) to this file")
)

// synthGraph is a layered lineage graph: layer 0 holds sources; every
// other dataset is written by its own job, which reads fanIn datasets —
// mostly from the layer below, some from any lower layer, and 1 in 50
// from a higher layer (so the graph has cycles).
type synthGraph struct {
	datasets, layers, perLayer, fanIn int
	events                            [][]byte
	edges                             int
}

func dsName(i int, perLayer int) [2]string {
	return [2]string{"bench://warehouse", fmt.Sprintf("layer%02d.t%06d", i/perLayer, i)}
}

func newSynth(datasets, edges, layers int) *synthGraph {
	g := &synthGraph{datasets: datasets, layers: layers, perLayer: max(datasets/layers, 1)}
	jobs := datasets - g.perLayer
	g.fanIn = max((edges+jobs-1)/jobs-1, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	for d := g.perLayer; d < datasets; d++ {
		layer := d / g.perLayer
		ins := make([][2]string, 0, g.fanIn)
		seen := map[int]bool{d: true}
		for len(ins) < g.fanIn {
			var src int
			switch r := rng.IntN(100); {
			case r < 2 && layer+1 < layers:
				src = (layer+1)*g.perLayer + rng.IntN(g.perLayer) // back edge: a cycle
			case r < 72:
				src = (layer-1)*g.perLayer + rng.IntN(g.perLayer)
			default:
				src = rng.IntN(layer * g.perLayer)
			}
			if src >= datasets || seen[src] {
				continue
			}
			seen[src] = true
			ins = append(ins, dsName(src, g.perLayer))
		}
		g.events = append(g.events, testlog.Event(uint64(d), "bench", fmt.Sprintf("job%06d", d), ins, [][2]string{dsName(d, g.perLayer)}))
		g.edges += len(ins) + 1
	}
	return g
}

type benchLog struct {
	log     *ledger.Log
	ix      *graph.Indexer
	engine  *query.Engine
	g       *synthGraph
	figures map[string]float64
	start   time.Time // integration time of the first batch
	end     time.Time
}

var (
	benchOnce  sync.Once
	benchState *benchLog
)

// buildBench ingests the synthetic graph through the real ingest path:
// envelopes signed by a pipeline key (not timed: that is the client's
// work), then, timed, each envelope's signature verified against the
// trust keyring (as the API does) and submitted to the ledger's local
// sequencer from several goroutines — group commit, synced batches, the
// graph indexer writing in each batch.
func buildBench(b *testing.B) *benchLog {
	benchOnce.Do(func() {
		g := newSynth(*benchDatasets, *benchEdges, *benchLayers)
		dir := *benchDir
		if dir == "" {
			dir = filepath.Join(b.TempDir(), "ledger")
		} else if *benchReuse {
			l := testlog.OpenDir(b, dir, graph.New(graph.Options{Logger: testlog.Logger}))
			if l.Latest().Size == uint64(len(g.events)) {
				first, _ := l.Record(0)
				last, _ := l.Record(l.Latest().Size - 1)
				benchState = &benchLog{log: l.Log, ix: l.Indexer, engine: query.New(l.Log), g: g, figures: map[string]float64{}, start: recordTime(b, first), end: recordTime(b, last)}
				b.Logf("reusing the graph in %s (%d events)", dir, len(g.events))
				return
			}
			l.Close()
			os.RemoveAll(dir)
		} else {
			os.RemoveAll(dir)
		}
		l := testlog.OpenDir(b, dir, graph.New(graph.Options{Logger: testlog.Logger}))
		seq, err := ledger.NewLocalSequencer(l.Log, ledger.SequencerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		signer, err := keys.NewSigner(testlog.SignerKey)
		if err != nil {
			b.Fatal(err)
		}
		kid, _ := keys.IDOf(testlog.SignerKey.Public())
		kr, _ := keys.NewKeyring(testlog.SignerKey.Public())
		verifier := &envelope.Verifier{Keyring: kr}

		t0 := time.Now()
		envs := make([]*envelope.Envelope, len(g.events))
		parallel(len(g.events), func(i int) {
			e, err := envelope.Sign(payload.TypeOpenLineage, g.events[i], signer)
			if err != nil {
				panic(err)
			}
			envs[i] = e
		})
		signTime := time.Since(t0)

		const chunk = 64
		start := time.Now()
		cpu0 := loadgen.SelfCPU()
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 1)
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(chunk)) - chunk
					if i >= len(envs) {
						return
					}
					batch := make([]ledger.Entry, 0, chunk)
					for _, e := range envs[i:min(i+chunk, len(envs))] {
						ids, err := verifier.Verify(e)
						if err != nil || ids[0] != kid {
							panic(fmt.Sprint("verify: ", err))
						}
						batch = append(batch, ledger.Entry{Namespace: "bench", PayloadType: e.PayloadType, Envelope: e.Marshal(), Signers: [][32]byte{kid}})
					}
					if _, err := seq.Submit(context.Background(), batch); err != nil {
						select {
						case errs <- err:
						default:
						}
						return
					}
				}
			}()
		}
		wg.Wait()
		ingest := time.Since(start)
		ingestCPU := loadgen.SelfCPU() - cpu0
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
		seq.Close()
		if *benchFlush {
			// Reads then come from sstables, as they mostly do on a node
			// that has run for a while, not from the memtable.
			if err := l.DB().Flush(); err != nil {
				b.Fatal(err)
			}
		}
		size := l.Latest().Size
		if size != uint64(len(g.events)) {
			b.Fatalf("log size %d, want %d", size, len(g.events))
		}
		first, _ := l.Record(0)
		last, _ := l.Record(size - 1)
		bs := &benchLog{log: l.Log, ix: l.Indexer, engine: query.New(l.Log), g: g, figures: map[string]float64{}}
		bs.start, bs.end = recordTime(b, first), recordTime(b, last)
		bs.figures["datasets"] = float64(g.datasets)
		bs.figures["lineage_edges"] = float64(g.edges)
		bs.figures["events"] = float64(len(g.events))
		bs.figures["ingest_s"] = ingest.Seconds()
		bs.figures["ingest_events_per_s"] = float64(len(g.events)) / ingest.Seconds()
		bs.figures["ingest_edges_per_s"] = float64(g.edges) / ingest.Seconds()
		bs.figures["sign_s"] = signTime.Seconds()
		bs.figures["ingest_cpu_us_per_event"] = float64(ingestCPU.Microseconds()) / float64(len(g.events))
		bs.figures["stored_edges"] = float64(storedEdges(b, l.Log))
		b.Logf("ingested %d events (%d datasets, %d lineage edges = run inputs and outputs, fan-in %d; %.0f edges stored in the graph) in %v: %.0f events/s, %.0f lineage edges/s, %.0f µs CPU per event (signing, not timed, took %v)",
			len(g.events), g.datasets, g.edges, g.fanIn, bs.figures["stored_edges"], ingest.Round(time.Millisecond), bs.figures["ingest_events_per_s"], bs.figures["ingest_edges_per_s"], bs.figures["ingest_cpu_us_per_event"], signTime.Round(time.Millisecond))
		benchState = bs
	})
	if benchState == nil {
		b.Fatal("building the benchmark graph failed")
	}
	return benchState
}

func recordTime(b *testing.B, raw []byte) time.Time {
	rec, err := recordUnmarshal(raw)
	if err != nil {
		b.Fatal(err)
	}
	return rec
}

// threadCPU is the calling OS thread's user+system CPU time so far
// (Linux RUSAGE_THREAD; the caller locks its goroutine to the thread).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// storedEdges counts the forward edge keys of the index.
func storedEdges(b *testing.B, l *ledger.Log) int {
	it, err := l.DB().NewIter(&pebble.IterOptions{LowerBound: []byte("qe"), UpperBound: []byte("qf")})
	if err != nil {
		b.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

func parallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		}()
	}
	wg.Wait()
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(int(float64(len(s))*p), len(s)-1)]
}

// BenchmarkLineage builds the synthetic graph once (reporting the ingest
// rate), then times, per round, depth-5 upstream queries from datasets in
// the upper half of the graph, impact queries from datasets in its middle
// layers, and depth-5 upstream queries as of a random time in the log's
// history; it reports p50 and p99 of each.
func BenchmarkLineage(b *testing.B) {
	bs := buildBench(b)
	g := bs.g
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(minLayer, maxLayer int) answer.Ref {
		layer := minLayer + rng.IntN(maxLayer-minLayer+1)
		n := dsName(layer*g.perLayer+rng.IntN(g.perLayer), g.perLayer)
		return answer.Ref{Kind: "dataset", Parts: n[:]}
	}
	ctx := context.Background()
	type kind struct {
		name string
		run  func() (*answer.Answer, error)
	}
	span := bs.end.Sub(bs.start)
	kinds := []kind{
		{"upstream", func() (*answer.Answer, error) {
			return bs.engine.Upstream(ctx, pick(g.layers/2, g.layers-1), query.Request{Depth: 5, Budget: *benchBudget})
		}},
		{"impact", func() (*answer.Answer, error) {
			return bs.engine.Impact(ctx, pick(g.layers/2, g.layers*3/4), query.Request{Budget: *benchBudget})
		}},
		{"asof", func() (*answer.Answer, error) {
			// A time in the log's history, and a dataset that existed
			// then (entries were appended concurrently, so the log's
			// order is not the generator's: draw until one did).
			at := bs.start.Add(time.Duration(rng.Int64N(int64(span) + 1)))
			for try := 0; try < 50; try++ {
				a, err := bs.engine.Upstream(ctx, pick(1, g.layers-1), query.Request{Depth: 5, Budget: *benchBudget, AsOfTime: at})
				if errors.Is(err, query.ErrNotFound) {
					continue
				}
				return a, err
			}
			return nil, nil
		}},
	}
	kinds = slices.DeleteFunc(kinds, func(k kind) bool { return !slices.Contains(strings.Split(*benchKinds, ","), k.name) })
	// digest sums every timed answer of a kind (its JSON), so runs of two
	// builds show whether they answered alike.
	digest := map[string]hash.Hash{}
	for _, k := range kinds {
		digest[k.name] = sha256.New()
	}
	// The queries run on one locked OS thread, so each query's thread CPU
	// time is its service time, whatever else the machine runs (wall
	// times on a shared machine include waiting for a core). Background
	// GC work on other threads is in the per-kind CPU totals only.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lat := map[string][]time.Duration{}
	tcpu := map[string][]time.Duration{}
	cpu := map[string]time.Duration{}
	cut := map[string]int{}
	nodes := map[string]int{}
	for _, k := range kinds {
		for q := 0; q < *benchWarmup; q++ {
			if _, err := k.run(); err != nil {
				b.Fatalf("%s: %v", k.name, err)
			}
		}
	}
	st0 := bs.ix.CacheStats()
	if *benchProfile != "" {
		f, err := os.Create(*benchProfile)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, k := range kinds {
			c0 := loadgen.SelfCPU()
			for q := 0; q < *benchQueries; q++ {
				t, tc := time.Now(), threadCPU()
				a, err := k.run()
				d, dc := time.Since(t), threadCPU()-tc
				if err != nil {
					b.Fatalf("%s: %v", k.name, err)
				}
				if a == nil {
					continue
				}
				lat[k.name] = append(lat[k.name], d)
				tcpu[k.name] = append(tcpu[k.name], dc)
				if a.Truncated != nil {
					cut[k.name]++
				}
				nodes[k.name] += len(a.Nodes)
				if *benchDigest {
					j, err := json.Marshal(a)
					if err != nil {
						b.Fatal(err)
					}
					digest[k.name].Write(j)
				}
			}
			cpu[k.name] += loadgen.SelfCPU() - c0
		}
	}
	b.StopTimer()
	for _, k := range kinds {
		ls := lat[k.name]
		p50, p99 := percentile(ls, 0.50), percentile(ls, 0.99)
		b.ReportMetric(float64(p50.Microseconds())/1000, k.name+"-p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, k.name+"-p99-ms")
		bs.figures[k.name+"_p50_ms"] = float64(p50.Microseconds()) / 1000
		bs.figures[k.name+"_p99_ms"] = float64(p99.Microseconds()) / 1000
		bs.figures[k.name+"_cut_short_fraction"] = float64(cut[k.name]) / float64(max(len(ls), 1))
		bs.figures[k.name+"_mean_nodes"] = float64(nodes[k.name]) / float64(max(len(ls), 1))
		bs.figures[k.name+"_cpu_ms_per_query"] = float64(cpu[k.name].Microseconds()) / 1000 / float64(max(len(ls), 1))
		c50, c99 := percentile(tcpu[k.name], 0.50), percentile(tcpu[k.name], 0.99)
		bs.figures[k.name+"_thread_cpu_p50_ms"] = float64(c50.Microseconds()) / 1000
		bs.figures[k.name+"_thread_cpu_p99_ms"] = float64(c99.Microseconds()) / 1000
		b.ReportMetric(float64(c99.Microseconds())/1000, k.name+"-cpu-p99-ms")
		sum := ""
		if *benchDigest {
			sum = fmt.Sprintf("; answers sha256 %x", digest[k.name].Sum(nil)[:8])
		}
		b.Logf("%-8s n=%d wall p50=%v p99=%v; thread CPU p50=%v p99=%v; %.1f ms process CPU per query, cut short %d/%d, %.0f nodes per answer%s", k.name, len(ls), p50, p99, c50, c99, bs.figures[k.name+"_cpu_ms_per_query"], cut[k.name], len(ls), bs.figures[k.name+"_mean_nodes"], sum)
	}
	if st := bs.ix.CacheStats(); true {
		h, m := st.Hits-st0.Hits, st.Misses-st0.Misses
		bs.figures["adjacency_cache_hit_fraction"] = float64(h) / float64(max(h+m, 1))
		b.Logf("adjacency cache (timed queries): %d hits, %d misses (%.1f%% hits; %d warm-up queries of each kind)", h, m, 100*bs.figures["adjacency_cache_hit_fraction"], *benchWarmup)
	}
	if m := bs.log.DB().Metrics(); m != nil {
		bc := m.BlockCache
		b.Logf("pebble block cache: %d hits, %d misses (%.1f%% hits), %d MiB", bc.Hits, bc.Misses, 100*float64(bc.Hits)/float64(max(bc.Hits+bc.Misses, 1)), bc.Size>>20)
	}
	b.ReportMetric(bs.figures["ingest_events_per_s"], "ingest-events/s")
	b.ReportMetric(bs.figures["ingest_edges_per_s"], "ingest-edges/s")
	if *benchJSON != "" {
		j, _ := json.MarshalIndent(bs.figures, "", "  ")
		if err := os.WriteFile(*benchJSON, j, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}
