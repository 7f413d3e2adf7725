package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
)

// Durability is the statement every append report carries.
const Durability = "every batch is fsynced before acknowledgement: provd acknowledges an append only once the group-committed batch holding it is synced to disk and covered by a newly signed checkpoint (the receipt's checkpoint)"

// drainTimeout bounds how long requests still in flight when the clock
// stops may take before they are cancelled.
const drainTimeout = 30 * time.Second

// AppendReport is the JSON of `provbench append`.
type AppendReport struct {
	Scenario   string       `json:"scenario"`
	Provenance Provenance   `json:"provenance"`
	Machine    Machine      `json:"machine"`
	Settings   AppendConfig `json:"settings"`
	Target     Target       `json:"target"`
	Durability string       `json:"durability"`
	// Limits measured in this run, before the load (nil with --calibrate 0).
	Limits  *Calibration  `json:"limits,omitempty"`
	Results AppendResults `json:"results"`
	// OK is false when anything failed: an error, a duplicate, a receipt
	// that did not verify, an interrupted or empty measurement.
	OK       bool     `json:"ok"`
	Failures []string `json:"failures,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Target is the node under load.
type Target struct {
	Addr    string `json:"addr"`
	Spawned bool   `json:"spawned"`
	Provd   string `json:"provd,omitempty"`
	PID     int    `json:"pid,omitempty"`
	DataDir string `json:"data_dir,omitempty"`
}

// Calibration is the verification limit measured before the load, on all
// cores, over the DSSE PAE of a payload of the run's size.
type Calibration struct {
	Ed25519VerifyPerS float64 `json:"ed25519_verify_per_s"`
	// AlgVerifyPerS is the limit of the run's --alg (equal to the Ed25519
	// one for ed25519).
	AlgVerifyPerS float64 `json:"alg_verify_per_s"`
	MeasuredS     float64 `json:"measured_s"`
	// OtherCores is the CPU other processes used during the measurement:
	// large values mean the limit is understated.
	OtherCores float64 `json:"other_cores"`
}

// AppendResults are the measurements. Throughput and latency cover the
// appends acknowledged inside the measured window; counts of errors,
// duplicates and verified receipts cover the whole run (warmup and drain
// included), so nothing is hidden.
type AppendResults struct {
	// Entries acknowledged inside the window, and its length.
	Entries uint64  `json:"entries"`
	WindowS float64 `json:"window_s"`

	EntriesPerS float64 `json:"entries_per_s"`
	// EnvelopeMBPerS counts canonical DSSE JSON bytes (what the node
	// digests and stores); PayloadMBPerS the raw payloads. 1 MB = 10^6 bytes.
	EnvelopeMBPerS float64 `json:"envelope_mb_per_s"`
	PayloadMBPerS  float64 `json:"payload_mb_per_s"`
	// EnvelopeBytes is the mean canonical envelope size.
	EnvelopeBytes float64 `json:"envelope_bytes"`
	// Latency is per entry, from sending its request to receiving its
	// acknowledgement (for batch mode, the AppendBatch call's latency,
	// counted once per entry), in milliseconds.
	Latency Latency `json:"latency_ms"`

	// FractionOfEd25519Limit is EntriesPerS ÷ the Ed25519 verification
	// limit measured in this run; FractionOfAlgLimit the same for --alg.
	FractionOfEd25519Limit float64 `json:"fraction_of_ed25519_verify_limit,omitempty"`
	FractionOfAlgLimit     float64 `json:"fraction_of_alg_verify_limit,omitempty"`

	// AckedTotal is every acknowledged append (warmup, window and drain).
	AckedTotal uint64 `json:"acked_total"`
	// Errors counts failed appends by gRPC code name over the whole run;
	// ErrorExamples holds the first message seen for each code.
	Errors        map[string]uint64 `json:"errors"`
	ErrorsTotal   uint64            `json:"errors_total"`
	ErrorExamples map[string]string `json:"error_examples,omitempty"`
	// Duplicates are receipts with duplicate=true: there must be none,
	// as every payload is distinct.
	Duplicates uint64 `json:"duplicates"`
	// DistinctIndexes is true when every acknowledged append got its own
	// log index.
	DistinctIndexes bool `json:"distinct_indexes"`

	Presigned     int     `json:"presigned"`
	PresignS      float64 `json:"presign_s"`
	PoolExhausted bool    `json:"pool_exhausted"`
	// KeysPrimed is the number of signing keys introduced (with their
	// public key, trust on first use) before the clock started.
	KeysPrimed int `json:"keys_primed"`

	Verify VerifyResult `json:"verify"`
	CPU    CPUResult    `json:"cpu"`
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// VerifyResult reports client-side receipt verification, done after the
// clock stopped so it takes no CPU from the measurement.
type VerifyResult struct {
	Mode  string `json:"mode"`
	Every int    `json:"every,omitempty"`
	// Sampled receipts were kept for verification; Verified passed,
	// Failed did not (any failure fails the run).
	Sampled  int `json:"sampled"`
	Verified int `json:"verified"`
	Failed   int `json:"failed"`
	// SignatureChecked says whether checkpoint signatures were checked
	// with the log key (LogKey names where it came from).
	SignatureChecked bool    `json:"signature_checked"`
	LogKey           string  `json:"log_key,omitempty"`
	FirstFailure     string  `json:"first_failure,omitempty"`
	TookS            float64 `json:"took_s"`
}

// CPUResult is CPU time used inside the measured window.
type CPUResult struct {
	// LoadgenS is the load generator's own CPU (getrusage RUSAGE_SELF),
	// LoadgenCores that divided by the window (cores busy on average).
	LoadgenS     float64 `json:"loadgen_s"`
	LoadgenCores float64 `json:"loadgen_cores"`
	// NodeS and NodeCores are the spawned node's (from /proc/<pid>/stat;
	// absent when the node was not spawned).
	NodeS     *float64 `json:"node_s,omitempty"`
	NodeCores *float64 `json:"node_cores,omitempty"`
	// MachineS is the CPU time of every process on the machine (from
	// /proc/stat), OtherS and OtherCores the part neither the load
	// generator nor the spawned node used: other work competing for the
	// cores, which makes the run less trustworthy when it is large. (When
	// the node was not spawned, OtherS includes the node.)
	MachineS   float64 `json:"machine_s"`
	OtherS     float64 `json:"other_s"`
	OtherCores float64 `json:"other_cores"`
	// Cores is the machine's logical CPU count.
	Cores int `json:"cores"`
	// LoadgenUsPerEntry and NodeUsPerEntry are CPU microseconds per entry
	// acknowledged in the window: unlike entries/s they hardly change when
	// other processes compete for the cores. CPUBoundEntriesPerS is
	// Cores·10⁶ ÷ their sum, the rate the machine could sustain if the
	// load generator and the node had every core to themselves and CPU
	// were the only limit (spawned node only).
	LoadgenUsPerEntry   float64  `json:"loadgen_us_per_entry"`
	NodeUsPerEntry      *float64 `json:"node_us_per_entry,omitempty"`
	CPUBoundEntriesPerS *float64 `json:"cpu_bound_entries_per_s,omitempty"`
}

// Run phases.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

type run struct {
	cfg  *AppendConfig
	pool *presigned

	next     atomic.Int64
	phase    atomic.Int32
	measured atomic.Uint64

	endOnce   sync.Once
	end       chan struct{} // closed when the window must end early
	exhausted atomic.Bool
}

func (r *run) stop() { r.endOnce.Do(func() { close(r.end) }) }

// take reserves up to k envelopes of the pool; ok is false when the run is
// stopping or the pool is empty.
func (r *run) take(k int) (first, n int, ok bool) {
	if r.phase.Load() == phaseStop {
		return 0, 0, false
	}
	i := int(r.next.Add(int64(k)) - int64(k))
	if i >= len(r.pool.reqs) {
		r.exhausted.Store(true)
		r.stop()
		return 0, 0, false
	}
	return i, min(k, len(r.pool.reqs)-i), true
}

type sample struct {
	i    int
	resp *provledgerpb.AppendResponse
}

// clientStats is one client's tally; merged at the end.
type clientStats struct {
	hist          Histogram
	acked         uint64
	measured      uint64
	envBytes      uint64
	dups          uint64
	errors        map[codes.Code]uint64
	errorExamples map[codes.Code]string
	indexes       []uint64
	samples       []sample
}

func (r *run) sampled(i int) bool {
	switch r.cfg.Verify {
	case VerifyAll:
		return true
	case VerifySample:
		return i%r.cfg.VerifyEvery == 0
	}
	return false
}

func (r *run) ack(cs *clientStats, i int, resp *provledgerpb.AppendResponse, lat time.Duration) {
	if e := resp.GetError(); e != nil {
		r.fail(cs, codes.Code(e.GetCode()), e.GetMessage(), 1)
		return
	}
	cs.acked++
	cs.indexes = append(cs.indexes, resp.GetIndex())
	if resp.GetDuplicate() {
		cs.dups++
	}
	if r.sampled(i) {
		cs.samples = append(cs.samples, sample{i: i, resp: resp})
	}
	if r.phase.Load() != phaseMeasure {
		return
	}
	cs.hist.Record(lat)
	cs.measured++
	cs.envBytes += uint64(r.pool.envBytes[i])
	if c := r.cfg.Count; c > 0 && r.measured.Add(1) >= uint64(c) {
		r.stop()
	}
}

func (r *run) fail(cs *clientStats, code codes.Code, msg string, n uint64) {
	cs.errors[code] += n
	if _, ok := cs.errorExamples[code]; !ok {
		cs.errorExamples[code] = msg
	}
}

func (r *run) failErr(cs *clientStats, err error, n uint64) {
	st, _ := status.FromError(err)
	r.fail(cs, st.Code(), st.Message(), n)
}

func (r *run) unary(ctx context.Context, c *client.Client, cs *clientStats) {
	for ctx.Err() == nil {
		i, _, ok := r.take(1)
		if !ok {
			return
		}
		start := time.Now()
		resp, err := c.Append(ctx, r.pool.reqs[i])
		lat := time.Since(start)
		if err != nil {
			r.failErr(cs, err, 1)
			continue
		}
		r.ack(cs, i, resp, lat)
	}
}

func (r *run) batch(ctx context.Context, c *client.Client, cs *clientStats) {
	for ctx.Err() == nil {
		i, n, ok := r.take(r.cfg.BatchSize)
		if !ok {
			return
		}
		req := &provledgerpb.AppendBatchRequest{Requests: r.pool.reqs[i : i+n]}
		start := time.Now()
		resp, err := c.AppendBatch(ctx, req)
		lat := time.Since(start)
		if err != nil {
			r.failErr(cs, err, uint64(n))
			continue
		}
		rs := resp.GetResponses()
		if len(rs) != n {
			r.fail(cs, codes.Internal, fmt.Sprintf("AppendBatch answered %d of %d requests", len(rs), n), uint64(n))
			continue
		}
		for j, one := range rs {
			r.ack(cs, i+j, one, lat)
		}
	}
}

func (r *run) stream(ctx context.Context, c *client.Client, cs *clientStats) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.AppendStream(sctx)
	if err != nil {
		r.failErr(cs, err, 1)
		return
	}
	var (
		mu   sync.Mutex
		sent = make(map[uint64]time.Time, r.cfg.Inflight)
		sem  = make(chan struct{}, r.cfg.Inflight)
		// sendErr is set by the sender; the receiver reports it.
		sendErr error
	)
	go func() {
		defer st.CloseSend()
		for {
			select {
			case sem <- struct{}{}:
			case <-sctx.Done():
				return
			}
			i, _, ok := r.take(1)
			if !ok {
				return
			}
			req := r.pool.reqs[i]
			mu.Lock()
			sent[req.GetRequestId()] = time.Now()
			mu.Unlock()
			if err := st.Send(req); err != nil {
				mu.Lock()
				if err != io.EOF { // io.EOF: the stream failed; Recv reports why
					sendErr = err
				}
				mu.Unlock()
				return
			}
		}
	}()
	for {
		resp, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			mu.Lock()
			lost := uint64(len(sent))
			mu.Unlock()
			r.failErr(cs, err, max(lost, 1))
			return
		}
		now := time.Now()
		id := resp.GetRequestId()
		mu.Lock()
		t0, ok := sent[id]
		delete(sent, id)
		mu.Unlock()
		<-sem
		if !ok {
			r.fail(cs, codes.Internal, fmt.Sprintf("AppendStream answered request_id %d, which is not outstanding", id), 1)
			continue
		}
		r.ack(cs, int(id), resp, now.Sub(t0)) // request ids are pool indexes
	}
	mu.Lock()
	defer mu.Unlock()
	if sendErr != nil {
		r.failErr(cs, sendErr, 1)
	}
}

// RunAppend runs the append scenario. Progress lines go to progress (may
// be nil). An error means the run could not happen; a run that happened
// but failed a check returns a report with OK false and its Failures.
func RunAppend(ctx context.Context, cfg AppendConfig, progress io.Writer) (*AppendReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = io.Discard
	}
	say := func(format string, args ...any) { fmt.Fprintf(progress, "provbench: "+format+"\n", args...) }
	rep := &AppendReport{
		Scenario:   "append",
		Provenance: ReadProvenance(time.Now()),
		Machine:    ReadMachine(),
		Settings:   cfg,
		Durability: Durability,
	}
	res := &rep.Results

	// 1. Limits and pool size, before anything else runs.
	rate := 50_000.0 // pool sizing without calibration
	if cfg.Calibrate > 0 {
		say("measuring the verification limit on %d cores for %v", runtime.GOMAXPROCS(0), cfg.Calibrate)
		cal := &Calibration{MeasuredS: cfg.Calibrate.Seconds()}
		start, self0, busy0 := time.Now(), SelfCPU(), machineBusy()
		var err error
		if cal.Ed25519VerifyPerS, err = MeasureVerify("ed25519", cfg.Size, cfg.Calibrate); err != nil {
			return nil, err
		}
		cal.AlgVerifyPerS = cal.Ed25519VerifyPerS
		if cfg.Alg != "ed25519" {
			if cal.AlgVerifyPerS, err = MeasureVerify(cfg.Alg, cfg.Size, cfg.Calibrate); err != nil {
				return nil, err
			}
		}
		if busy1 := machineBusy(); busy0 >= 0 && busy1 >= 0 {
			cal.OtherCores = max(0, (busy1-busy0-(SelfCPU()-self0)).Seconds()/time.Since(start).Seconds())
			if cal.OtherCores > 0.1 {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("other processes used %.2f cores while the verification limit was measured: it is understated", cal.OtherCores))
			}
		}
		rep.Limits = cal
		rate = cal.AlgVerifyPerS
	}
	n := cfg.Presign
	if n == 0 {
		n = poolSize(&cfg, rate)
		if cfg.PresignCap > 0 && n > cfg.PresignCap {
			n = cfg.PresignCap
		}
	}

	// 2. Keys and envelopes, all signed before the clock.
	signers, err := newSigners(cfg.Alg, cfg.Keys)
	if err != nil {
		return nil, err
	}
	nonce := runNonce()
	say("pre-signing %d envelopes (%s, %d-byte payloads, %d keys)", n, cfg.Alg, cfg.Size, cfg.Keys)
	t := time.Now()
	prime := make([]*provledgerpb.AppendRequest, len(signers))
	for k, s := range signers {
		req, _, err := signedRequest(&cfg, s, nonce+"-prime", uint64(k))
		if err != nil {
			return nil, err
		}
		req.PublicKeys = [][]byte{s.pubPEM}
		prime[k] = req
	}
	pool, err := presign(ctx, &cfg, signers, nonce, 0, n)
	if err != nil {
		return nil, err
	}
	res.Presigned, res.PresignS = n, time.Since(t).Seconds()
	runtime.GC() // start the clock with the signing garbage gone

	// 3. The node.
	addr := cfg.Server
	var node *Node
	if cfg.Spawn {
		node, err = SpawnNode(ctx, cfg.Provd, cfg.ProvdArgs, cfg.DataRoot, cfg.KeepData)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := node.Stop(); err != nil {
				rep.Warnings = append(rep.Warnings, "stopping the node: "+err.Error())
			}
		}()
		addr = node.Addr
		rep.Target = Target{Addr: addr, Spawned: true, Provd: cfg.Provd, PID: node.PID()}
		if cfg.KeepData {
			rep.Target.DataDir = node.DataDir
		}
		say("spawned %s --dev (pid %d) on %s, admin (metrics, pprof) on %s, data in %s", cfg.Provd, node.PID(), addr, node.AdminAddr, node.DataDir)
	} else {
		rep.Target = Target{Addr: addr}
	}
	nconns := cfg.Conns
	if nconns == 0 {
		nconns = cfg.Clients
	}
	conns := make([]*client.Client, nconns)
	for i := range conns {
		if conns[i], err = client.Dial(ctx, addr); err != nil {
			return nil, err
		}
		defer conns[i].Close()
	}

	// 4. Introduce every key once (trust on first use), then verify those
	// receipts at once: a wrong log key fails here, not after the run.
	var verifier note.Verifier
	res.Verify = VerifyResult{Mode: cfg.Verify}
	if cfg.Verify == VerifySample {
		res.Verify.Every = cfg.VerifyEvery
	}
	for k, req := range prime {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := conns[0].Append(pctx, req)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("introduce signing key %d to %s: %w (the node must trust keys on first use: run it with --dev)", k, addr, err)
		}
		if k == 0 {
			logKey := cfg.LogKey
			if logKey == "" && node != nil {
				logKey = node.LogPub()
			}
			verifier, res.Verify.LogKey, err = loadVerifier(logKey, resp.GetCheckpoint())
			if err != nil {
				return nil, err
			}
			res.Verify.SignatureChecked = verifier != nil
			if verifier == nil && cfg.Verify != VerifyNone {
				rep.Warnings = append(rep.Warnings, "no --log-key: receipts are checked (record, envelope, inclusion proof) but checkpoint signatures are not")
			}
		}
		if err := client.VerifyReceipt(resp, canonical(req.GetEnvelope()), verifier); err != nil {
			return nil, fmt.Errorf("receipt of the first append with key %d: %w", k, err)
		}
		res.KeysPrimed++
	}

	// 5. The load.
	r := &run{cfg: &cfg, pool: pool, end: make(chan struct{})}
	cctx, cancelClients := context.WithCancel(context.Background())
	defer cancelClients()
	stats := make([]*clientStats, cfg.Clients)
	var wg sync.WaitGroup
	allDone := make(chan struct{})
	say("%d clients, %s mode: warming up for %v", cfg.Clients, cfg.Mode, cfg.Warmup)
	for c := range cfg.Clients {
		cs := &clientStats{errors: map[codes.Code]uint64{}, errorExamples: map[codes.Code]string{}}
		stats[c] = cs
		cl := conns[c%nconns]
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch cfg.Mode {
			case ModeUnary:
				r.unary(cctx, cl, cs)
			case ModeStream:
				r.stream(cctx, cl, cs)
			case ModeBatch:
				r.batch(cctx, cl, cs)
			}
		}()
	}
	go func() { wg.Wait(); close(allDone) }()

	interrupted := false
	wait := func(d time.Duration) bool { // false if the run must end now
		var timer <-chan time.Time
		if d > 0 {
			tm := time.NewTimer(d)
			defer tm.Stop()
			timer = tm.C
		}
		select {
		case <-timer:
			return true
		case <-r.end:
		case <-allDone:
		case <-ctx.Done():
			interrupted = true
		}
		return false
	}
	warmedUp := cfg.Warmup == 0 || wait(cfg.Warmup)
	cpu0, node0, busy0 := SelfCPU(), nodesCPU(node, cfg.NodePIDs), machineBusy()
	t0 := time.Now()
	r.phase.Store(phaseMeasure)
	if cfg.OnWindow != nil {
		cfg.OnWindow(true)
	}
	if warmedUp {
		if cfg.Count > 0 {
			say("measuring until %d entries are acknowledged", cfg.Count)
			wait(0)
		} else {
			say("measuring for %v", cfg.Duration)
			wait(cfg.Duration)
		}
	}
	if cfg.OnWindow != nil {
		cfg.OnWindow(false)
	}
	cpu1, node1, busy1 := SelfCPU(), nodesCPU(node, cfg.NodePIDs), machineBusy()
	t1 := time.Now()
	r.phase.Store(phaseStop)
	select {
	case <-allDone:
	case <-time.After(drainTimeout):
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("requests still in flight %v after the clock stopped were cancelled", drainTimeout))
		cancelClients()
		<-allDone
	}

	// 6. Tally.
	window := t1.Sub(t0)
	var hist Histogram
	res.Errors, res.ErrorExamples = map[string]uint64{}, map[string]string{}
	var indexes []uint64
	var samples []sample
	var envBytes uint64
	for _, cs := range stats {
		hist.Merge(&cs.hist)
		res.Entries += cs.measured
		res.AckedTotal += cs.acked
		res.Duplicates += cs.dups
		envBytes += cs.envBytes
		indexes = append(indexes, cs.indexes...)
		samples = append(samples, cs.samples...)
		for code, k := range cs.errors {
			res.Errors[code.String()] += k
			res.ErrorsTotal += k
			if _, ok := res.ErrorExamples[code.String()]; !ok {
				res.ErrorExamples[code.String()] = cs.errorExamples[code]
			}
		}
	}
	res.WindowS = window.Seconds()
	if res.Entries > 0 {
		res.EnvelopeBytes = float64(envBytes) / float64(res.Entries)
	}
	if res.WindowS > 0 {
		res.EntriesPerS = float64(res.Entries) / res.WindowS
		res.EnvelopeMBPerS = float64(envBytes) / res.WindowS / 1e6
		res.PayloadMBPerS = float64(res.Entries) * float64(cfg.Size) / res.WindowS / 1e6
	}
	res.Latency = latencyOf(&hist)
	res.PoolExhausted = r.exhausted.Load()
	slices.Sort(indexes)
	res.DistinctIndexes = len(slices.Compact(indexes)) == len(indexes)
	if rep.Limits != nil && res.EntriesPerS > 0 {
		res.FractionOfEd25519Limit = res.EntriesPerS / rep.Limits.Ed25519VerifyPerS
		if cfg.Alg != "ed25519" {
			res.FractionOfAlgLimit = res.EntriesPerS / rep.Limits.AlgVerifyPerS
		}
	}
	res.CPU = CPUResult{Cores: runtime.NumCPU(), LoadgenS: (cpu1 - cpu0).Seconds()}
	if res.WindowS > 0 {
		res.CPU.LoadgenCores = res.CPU.LoadgenS / res.WindowS
	}
	if (node != nil || len(cfg.NodePIDs) > 0) && node0 >= 0 && node1 >= 0 {
		s := (node1 - node0).Seconds()
		c := 0.0
		if res.WindowS > 0 {
			c = s / res.WindowS
		}
		res.CPU.NodeS, res.CPU.NodeCores = &s, &c
	}
	if res.Entries > 0 {
		res.CPU.LoadgenUsPerEntry = res.CPU.LoadgenS * 1e6 / float64(res.Entries)
		if res.CPU.NodeS != nil {
			nu := *res.CPU.NodeS * 1e6 / float64(res.Entries)
			res.CPU.NodeUsPerEntry = &nu
			if sum := nu + res.CPU.LoadgenUsPerEntry; sum > 0 {
				ceil := float64(res.CPU.Cores) * 1e6 / sum
				res.CPU.CPUBoundEntriesPerS = &ceil
			}
		}
	}
	if busy0 >= 0 && busy1 >= 0 && res.WindowS > 0 {
		res.CPU.MachineS = (busy1 - busy0).Seconds()
		other := res.CPU.MachineS - res.CPU.LoadgenS
		if res.CPU.NodeS != nil {
			other -= *res.CPU.NodeS
		}
		res.CPU.OtherS = max(other, 0)
		res.CPU.OtherCores = res.CPU.OtherS / res.WindowS
		if res.CPU.NodeS != nil && res.CPU.OtherCores > 0.1 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("other processes used %.2f cores during the window: the figures are pessimistic; rerun on a quiet machine", res.CPU.OtherCores))
		}
	}

	// 7. Receipts, off the clock.
	if cfg.Verify != VerifyNone {
		say("verifying %d receipts", len(samples))
		t := time.Now()
		res.Verify.Sampled = len(samples)
		res.Verify.Verified, res.Verify.Failed, res.Verify.FirstFailure = verifySamples(samples, pool, verifier, false)
		res.Verify.TookS = time.Since(t).Seconds()
	}

	// 8. Verdict.
	fail := func(format string, args ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...)) }
	if interrupted {
		fail("interrupted")
	}
	if !warmedUp && !interrupted {
		fail("the run ended during the warmup (pool exhausted or every client failed): nothing was measured")
	}
	if res.ErrorsTotal > 0 {
		fail("%d appends failed: %v", res.ErrorsTotal, res.Errors)
	}
	if res.Duplicates > 0 {
		fail("%d receipts say duplicate although every payload is distinct", res.Duplicates)
	}
	if !res.DistinctIndexes {
		fail("two acknowledged appends got the same log index")
	}
	if res.Verify.Failed > 0 {
		fail("%d receipts did not verify; first: %s", res.Verify.Failed, res.Verify.FirstFailure)
	}
	if cfg.Verify != VerifyNone && res.Verify.Sampled == 0 && res.AckedTotal > 0 {
		fail("no receipt was sampled for verification (raise the run's length or lower --verify-every)")
	}
	if res.Entries == 0 {
		fail("no entry was acknowledged inside the measured window")
	}
	if res.PoolExhausted {
		msg := fmt.Sprintf("the %d pre-signed envelopes ran out after %.1f s of measurement; the window was cut short (raise --presign)", n, res.WindowS)
		if cfg.Count > 0 && res.Entries < uint64(cfg.Count) {
			fail("%s", msg)
		} else {
			rep.Warnings = append(rep.Warnings, msg)
		}
	}
	rep.OK = len(rep.Failures) == 0
	return rep, nil
}

// poolSize is how many envelopes to pre-sign: enough for 1.25× rate over
// the warmup and the window, plus what the clients keep outstanding.
func poolSize(cfg *AppendConfig, rate float64) int {
	per := 1
	switch cfg.Mode {
	case ModeStream:
		per = cfg.Inflight
	case ModeBatch:
		per = cfg.BatchSize
	}
	slack := 2 * cfg.Clients * per
	n := 1.25 * rate * cfg.Warmup.Seconds()
	if cfg.Count > 0 {
		n += float64(cfg.Count)
	} else {
		n += 1.25 * rate * cfg.Duration.Seconds()
	}
	return int(math.Ceil(n)) + slack
}

// nodesCPU is the CPU time of the spawned node n or, without one, the sum
// over the processes pids (-1 when one cannot be read).
func nodesCPU(n *Node, pids []int) time.Duration {
	if n != nil {
		return nodeCPU(n)
	}
	if len(pids) == 0 {
		return -1
	}
	var sum time.Duration
	for _, pid := range pids {
		d, err := ProcCPU(pid)
		if err != nil {
			return -1
		}
		sum += d
	}
	return sum
}

func nodeCPU(n *Node) time.Duration {
	if n == nil {
		return -1
	}
	d, err := n.CPU()
	if err != nil {
		return -1
	}
	return d
}

func machineBusy() time.Duration {
	d, err := MachineBusy()
	if err != nil {
		return -1
	}
	return d
}

func latencyOf(h *Histogram) Latency {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 } // µs precision
	return Latency{
		Count: h.Count(),
		Min:   ms(h.Min()),
		Mean:  ms(h.Mean()),
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
	}
}

// loadVerifier builds the checkpoint verifier from logKey: a PEM public
// key file (the log's name is taken from cpNote's origin line) or a C2SP
// note verifier key. An empty logKey gives a nil verifier.
func loadVerifier(logKey string, cpNote []byte) (note.Verifier, string, error) {
	if logKey == "" {
		return nil, "", nil
	}
	if _, err := os.Stat(logKey); err == nil {
		pub, err := client.LoadLogKey(logKey)
		if err != nil {
			return nil, "", err
		}
		v, err := client.VerifierForCheckpoint(pub, "", cpNote)
		if err != nil {
			return nil, "", err
		}
		return v, logKey, nil
	}
	v, err := note.NewVerifier(logKey)
	if err != nil {
		return nil, "", fmt.Errorf("--log-key %q is neither a readable PEM file nor a note verifier key: %w", logKey, err)
	}
	return v, "note verifier key " + v.Name(), nil
}

// verifySamples verifies the kept receipts on all cores against their
// envelopes. Every pre-signed envelope is distinct, so a receipt marked
// duplicate is a failure unless dupOK: a client that retries after a lost
// answer (a leader kill) gets the original index back, which is dedup
// doing its job.
func verifySamples(samples []sample, pool *presigned, v note.Verifier, dupOK bool) (ok, failed int, first string) {
	var (
		next     atomic.Int64
		nOK      atomic.Int64
		nBad     atomic.Int64
		once     sync.Once
		wg       sync.WaitGroup
		firstMsg string
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= len(samples) {
					return
				}
				s := samples[j]
				err := client.VerifyReceipt(s.resp, canonical(pool.reqs[s.i].GetEnvelope()), v)
				if err == nil && s.resp.GetDuplicate() && !dupOK {
					err = errors.New("receipt says duplicate")
				}
				if err != nil {
					nBad.Add(1)
					once.Do(func() { firstMsg = fmt.Sprintf("request %d: %v", pool.reqs[s.i].GetRequestId(), err) })
					continue
				}
				nOK.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(nOK.Load()), int(nBad.Load()), firstMsg
}
