package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/keys"
)

// DefaultRaftTimeout is provd's default --raft-timeout (raft/cluster.DefaultTimeout),
// which the cluster scenarios give their nodes unless told otherwise.
const DefaultRaftTimeout = 500 * time.Millisecond

// ClusterConfig is every setting of the cluster scenario: three provd
// processes of one Raft cluster on loopback, steady append load, then the
// leader SIGKILLed under load.
type ClusterConfig struct {
	Provd    string `json:"provd"`
	DataRoot string `json:"data_root"`
	KeepData bool   `json:"keep_data,omitempty"`
	// Target: "leader" sends every append to the leader (clients move to
	// another node when theirs fails), "all" spreads clients over the
	// three nodes (followers forward to the leader).
	Target  string `json:"target"`
	Clients int    `json:"clients"`
	// Conns is the number of gRPC connections to each node that the
	// clients share round-robin; 0 gives each client its own, like
	// independent processes. Default 1: at batches of 4, one connection
	// per client cost the load generator 50% more CPU and the leader 3%
	// more, for 8-15% fewer entries/s (docs/bench.md).
	Conns int `json:"conns"`
	// BatchSize is the envelopes each client sends per call: 1 is a
	// unary Append, more an AppendBatch of that many (latency is the
	// call's).
	BatchSize    int           `json:"batch_size"`
	Duration     time.Duration `json:"-"`
	Warmup       time.Duration `json:"-"`
	Size         int           `json:"size"`
	Keys         int           `json:"keys"`
	Presign      int           `json:"presign"`
	Failover     bool          `json:"failover"`
	RaftTimeout  time.Duration `json:"-"`
	RaftTimeoutS float64       `json:"raft_timeout_s"`
	VerifyEvery  int           `json:"verify_every"`
	Namespace    string        `json:"namespace"`
	PayloadType  string        `json:"payload_type"`
	Out          string        `json:"out,omitempty"`
	DurationS    float64       `json:"duration_s"`
	WarmupS      float64       `json:"warmup_s"`
	// CPUProfile, if set, is where a CPU profile of the load generator
	// over the measured window is written (--cpuprofile).
	CPUProfile string `json:"-"`
}

// Targets of the cluster scenario (issue 3).
const (
	TargetEntriesPerS = 6000
	TargetP99         = 100 * time.Millisecond
	TargetFailover    = 3 * time.Second
)

const clusterUsage = `provbench cluster — a 3-node provd cluster on 127.0.0.1 under append load.

Spawns three provd processes (--dev, one shared log key, node1 bootstraps,
node2 and node3 join), primes the signing keys on every node, then runs
--clients concurrent clients, each appending one pre-signed envelope at a
time (unary Append), for --warmup and --duration. With --failover it then
SIGKILLs the leader under the same load and measures the time to the first
acknowledged append after the kill (committed by the new leader). Every
--verify-every-th receipt is verified with the log key, after the load.

Flags (also PROVLEDGER_BENCH_CLUSTER_<FLAG>):
`

// DefaultClusterConfig returns the documented defaults.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{
		Provd: "./bin/provd", DataRoot: os.TempDir(), Target: "leader", Clients: 64, Conns: 1, BatchSize: 1,
		Duration: 15 * time.Second, Warmup: 2 * time.Second, Size: 1024, Keys: 4,
		Presign: 200_000, Failover: true, VerifyEvery: 100, RaftTimeout: DefaultRaftTimeout,
		Namespace: "provbench", PayloadType: "application/vnd.in-toto+json",
	}
}

// ParseCluster parses the cluster scenario's flags.
func ParseCluster(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (*ClusterConfig, error) {
	c := DefaultClusterConfig()
	fs := flag.NewFlagSet("provbench cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Provd, "provd", c.Provd, "provd binary")
	fs.StringVar(&c.DataRoot, "data-root", c.DataRoot, "where the nodes' temporary data directories go")
	fs.BoolVar(&c.KeepData, "keep-data", c.KeepData, "keep the data directories and logs")
	fs.StringVar(&c.Target, "target", c.Target, "leader (clients append to the leader) or all (clients spread over the nodes; followers forward)")
	fs.IntVar(&c.Clients, "clients", c.Clients, "concurrent clients, one call in flight each")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "envelopes per call: 1 sends unary Appends, more sends AppendBatch calls of that many")
	fs.IntVar(&c.Conns, "conns", c.Conns, "gRPC connections to each node the clients share round-robin (0: one per client, like independent processes)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measured steady-state window")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "load before the window, not measured")
	fs.IntVar(&c.Size, "size", c.Size, "payload bytes per envelope")
	fs.IntVar(&c.Keys, "keys", c.Keys, "Ed25519 signing keys")
	fs.IntVar(&c.Presign, "presign", c.Presign, "envelopes signed before the clock starts; a phase ends early when they run out")
	fs.BoolVar(&c.Failover, "failover", c.Failover, "after the window, SIGKILL the leader under load and measure the failover")
	fs.DurationVar(&c.RaftTimeout, "raft-timeout", c.RaftTimeout, "provd --raft-timeout of every node (heartbeat and election timeout)")
	fs.IntVar(&c.VerifyEvery, "verify-every", c.VerifyEvery, "verify every Nth receipt with the log key (0: none)")
	fs.StringVar(&c.Out, "out", "", "JSON result path (default bench/results/cluster-<UTC timestamp>.json)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the load generator over the measured window to this file (go tool pprof bin/provbench FILE)")
	fs.Usage = func() { fmt.Fprint(stderr, clusterUsage); fs.PrintDefaults() }
	if err := parseWithEnv(fs, args, "PROVLEDGER_BENCH_CLUSTER_", lookupEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, err
	}
	switch {
	case c.Target != "leader" && c.Target != "all":
		return nil, fmt.Errorf("--target %q: want leader or all", c.Target)
	case c.Conns < 0 || c.Conns > c.Clients:
		return nil, fmt.Errorf("--conns %d: want 0 (one per client) to --clients (%d)", c.Conns, c.Clients)
	case c.Clients < 1 || c.Duration <= 0 || c.Warmup < 0 || c.Keys < 1 || c.VerifyEvery < 0:
		return nil, errors.New("--clients, --duration and --keys must be positive; --warmup and --verify-every not negative")
	case c.BatchSize < 1 || c.BatchSize > 1000:
		return nil, fmt.Errorf("--batch-size %d: must be between 1 and 1000 (the server's AppendBatch cap)", c.BatchSize)
	case c.Size < MinPayloadSize || c.Size > MaxPayloadSize:
		return nil, fmt.Errorf("--size %d: must be between %d and %d", c.Size, MinPayloadSize, MaxPayloadSize)
	case c.Presign < c.Clients*c.BatchSize:
		return nil, fmt.Errorf("--presign %d: must be at least --clients × --batch-size", c.Presign)
	}
	if c.RaftTimeout <= 0 {
		return nil, errors.New("--raft-timeout must be positive")
	}
	c.DurationS, c.WarmupS, c.RaftTimeoutS = c.Duration.Seconds(), c.Warmup.Seconds(), c.RaftTimeout.Seconds()
	return &c, nil
}

// ClusterReport is the JSON result of the cluster scenario.
type ClusterReport struct {
	Scenario   string        `json:"scenario"`
	Config     ClusterConfig `json:"config"`
	Machine    Machine       `json:"machine"`
	Provenance Provenance    `json:"provenance"`
	Nodes      []string      `json:"nodes"`
	Leader     string        `json:"leader"`
	// LeaderChanged: the leader was another node by the end of the window
	// (an election happened under load).
	LeaderChanged bool            `json:"leader_changed"`
	Steady        PhaseResult     `json:"steady"`
	Failover      *FailoverResult `json:"failover,omitempty"`
	Verified      int             `json:"receipts_verified"`
	BadReceipt    int             `json:"receipts_failed"`
	FirstBad      string          `json:"first_bad_receipt,omitempty"`
	// Met says which targets of issue 3 the run met.
	Met map[string]bool `json:"targets_met"`
	OK  bool            `json:"ok"`
}

// PhaseResult is one measured phase.
type PhaseResult struct {
	Acked       int64   `json:"acked"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Seconds     float64 `json:"seconds"`
	EntriesPerS float64 `json:"entries_per_s"`
	Latency     Latency `json:"latency"`
	// PoolExhausted: the pre-signed envelopes ran out before the phase's end.
	PoolExhausted bool `json:"pool_exhausted,omitempty"`
	// CPU seconds used during the phase by each node, by provbench itself,
	// and by the whole machine (all processes, including other work).
	NodeCPUS    map[string]float64 `json:"node_cpu_s"`
	BenchCPUS   float64            `json:"bench_cpu_s"`
	MachineCPUS float64            `json:"machine_cpu_s"`
}

// FailoverResult is the leader-kill phase.
type FailoverResult struct {
	Killed string `json:"killed"`
	// FirstAckMS is the time from the SIGKILL to the first append
	// acknowledged after it.
	FirstAckMS float64 `json:"first_ack_ms"`
	// Where the time went, each from the SIGKILL (0: not seen; survivors
	// polled every 10 ms): DetectMS when the first survivor forgot the
	// dead leader (its heartbeat timeout fired), ElectedMS when a survivor
	// first reported itself the leader. FirstAckMS − ElectedMS is the new
	// leader's first commit plus the clients' retry.
	DetectMS  float64     `json:"detect_ms"`
	ElectedMS float64     `json:"elected_ms"`
	NewLeader string      `json:"new_leader"`
	Phase     PhaseResult `json:"phase"`
}

// clusterNode is one spawned node and its client connection.
type clusterNode struct {
	*Node
	id   string
	raft string
	conn *grpc.ClientConn
	dead atomic.Bool
}

// kill SIGKILLs the node and waits for it to exit.
func (n *Node) kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// Cluster is three provd processes of one Raft cluster on loopback,
// sharing one log key: node1 bootstraps, node2 and node3 join.
type Cluster struct {
	nodes  []*clusterNode
	leader *clusterNode
	keyDir string
}

// StartCluster spawns the three nodes under dataRoot (kept after Close
// with keep) with the given provd --raft-timeout and extra flags, and
// waits until they form a cluster with a leader.
func StartCluster(ctx context.Context, provd, dataRoot string, keep bool, raftTimeout time.Duration, extraArgs []string, progress io.Writer) (cl *Cluster, err error) {
	if progress == nil {
		progress = io.Discard
	}
	started := &Cluster{}
	cl = started
	defer func() {
		if err != nil {
			// cl is nil here (the return statements set it): close what
			// was started.
			started.Close()
			cl = nil
		}
	}()
	if cl.keyDir, err = os.MkdirTemp(dataRoot, "provbench-cluster-key-"); err != nil {
		return nil, err
	}
	priv, err := keys.Generate("ed25519")
	if err != nil {
		return nil, err
	}
	pem, err := keys.MarshalPrivatePEM(priv)
	if err != nil {
		return nil, err
	}
	logKey := filepath.Join(cl.keyDir, "log.key")
	if err := os.WriteFile(logKey, pem, 0o600); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "provbench cluster: starting 3 provd nodes\n")
	for i := range 3 {
		raftAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("node%d", i+1)
		extra := append([]string{"--node-id", id, "--raft-addr", raftAddr, "--log-key", logKey, "--log-level", "warn", "--raft-timeout", raftTimeout.String()}, extraArgs...)
		if i == 0 {
			extra = append(extra, "--bootstrap")
		} else {
			extra = append(extra, "--join", cl.nodes[0].Addr)
		}
		n, err := SpawnNode(ctx, provd, extra, dataRoot, keep)
		if err != nil {
			return nil, fmt.Errorf("spawn %s: %w", id, err)
		}
		cn := &clusterNode{Node: n, id: id, raft: raftAddr}
		cl.nodes = append(cl.nodes, cn)
		fmt.Fprintf(progress, "provbench cluster: %s serving gRPC on %s, admin (metrics, pprof) on %s\n", id, n.Addr, n.AdminAddr)
		if cn.conn, err = grpc.NewClient(n.Addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			return nil, err
		}
	}
	if cl.leader, err = waitCluster(ctx, cl.nodes); err != nil {
		return nil, err
	}
	return cl, nil
}

// Leader is the leader's gRPC address and the path of its log.pub.
func (cl *Cluster) Leader() (addr, logPub string) { return cl.leader.Addr, cl.leader.LogPub() }

// PIDs are the node processes still running.
func (cl *Cluster) PIDs() []int {
	var out []int
	for _, n := range cl.nodes {
		if !n.dead.Load() {
			out = append(out, n.PID())
		}
	}
	return out
}

// Close stops every node (removing its data unless kept) and the log key.
func (cl *Cluster) Close() {
	for _, n := range cl.nodes {
		if n.conn != nil {
			n.conn.Close()
		}
		if !n.dead.Load() {
			n.Stop()
		} else {
			n.logF.Close()
			if !n.keep {
				os.RemoveAll(n.DataDir)
			}
		}
	}
	if cl.keyDir != "" {
		os.RemoveAll(cl.keyDir)
	}
}

// RunCluster runs the cluster scenario.
func RunCluster(ctx context.Context, cfg ClusterConfig, progress io.Writer) (*ClusterReport, error) {
	rep := &ClusterReport{Scenario: "cluster", Config: cfg, Machine: ReadMachine(), Provenance: ReadProvenance(time.Now()), Met: map[string]bool{}}
	cl, err := StartCluster(ctx, cfg.Provd, cfg.DataRoot, cfg.KeepData, cfg.RaftTimeout, nil, progress)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	nodes, leader := cl.nodes, cl.leader
	for _, n := range nodes {
		rep.Nodes = append(rep.Nodes, fmt.Sprintf("%s grpc=%s raft=%s data=%s", n.id, n.Addr, n.raft, n.DataDir))
	}
	rep.Leader = leader.id
	fmt.Fprintf(progress, "provbench cluster: leader %s; signing %d envelopes\n", leader.id, cfg.Presign)

	signers, err := newSigners("ed25519", cfg.Keys)
	if err != nil {
		return nil, err
	}
	acfg := &AppendConfig{Size: cfg.Size, PayloadType: cfg.PayloadType, Namespace: cfg.Namespace}
	nonce := runNonce()
	// Prime: every node learns every signer's key (trust on first use).
	for _, n := range nodes {
		for k, s := range signers {
			req, _, err := signedRequest(acfg, s, nonce+"-prime-"+n.id, uint64(k))
			if err != nil {
				return nil, err
			}
			req.PublicKeys = [][]byte{s.pubPEM}
			pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			_, err = provledgerpb.NewLedgerClient(n.conn).Append(pctx, req)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("prime key %d on %s: %w", k, n.id, err)
			}
		}
	}
	pool, err := presign(ctx, acfg, signers, nonce, 0, cfg.Presign)
	if err != nil {
		return nil, err
	}
	cpNote, err := provledgerpb.NewLedgerClient(leader.conn).GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{})
	if err != nil {
		return nil, err
	}
	v, _, err := loadVerifier(leader.LogPub(), cpNote.GetNote())
	if err != nil {
		return nil, err
	}

	l := &clusterLoad{cfg: &cfg, nodes: nodes, pool: pool, v: v, leader: leader}
	if err := l.dial(); err != nil {
		return nil, err
	}
	defer l.closeConns()
	l.start(ctx)
	fmt.Fprintf(progress, "provbench cluster: %d clients, warmup %v, window %v\n", cfg.Clients, cfg.Warmup, cfg.Duration)
	sleepCtx(ctx, cfg.Warmup)
	var onWindow func(bool)
	if cfg.CPUProfile != "" {
		onWindow = ProfileWindow(cfg.CPUProfile, progress)
		onWindow(true)
	}
	rep.Steady = l.phase(ctx, cfg.Duration)
	if onWindow != nil {
		onWindow(false)
	}
	if cfg.Failover && ctx.Err() == nil {
		fr := &FailoverResult{Killed: leader.id}
		var phase PhaseResult
		done := make(chan struct{})
		go func() {
			defer close(done)
			phase = l.phase(ctx, 0) // ends when the first ack after the kill is 3 s old
		}()
		sleepCtx(ctx, time.Second)
		// Kill the leader of now: it may have changed during the window.
		if cur, err := waitCluster(ctx, nodes); err == nil && cur != leader {
			rep.LeaderChanged = true
			leader = cur
		}
		fr.Killed = leader.id
		fmt.Fprintf(progress, "provbench cluster: SIGKILL leader %s\n", leader.id)
		leader.dead.Store(true)
		l.killedAt.Store(time.Now().UnixNano())
		leader.kill()
		l.deadAt.Store(time.Now().UnixNano())
		fr.DetectMS, fr.ElectedMS = watchElection(ctx, nodes, leader.id, time.Unix(0, l.killedAt.Load()))
		<-done
		fr.Phase = phase
		if first := l.firstAfter.Load(); first != 0 {
			fr.FirstAckMS = float64(first-l.killedAt.Load()) / 1e6
		}
		for _, n := range nodes {
			if n.dead.Load() {
				continue
			}
			if st, err := provledgerpb.NewClusterClient(n.conn).Status(ctx, &provledgerpb.ClusterStatusRequest{LocalOnly: true}); err == nil {
				fr.NewLeader = st.GetLeader().GetId()
				break
			}
		}
		rep.Failover = fr
	}
	l.stop()
	l.verifyKept()
	rep.Verified, rep.BadReceipt, rep.FirstBad = l.verified, l.badReceipts, l.firstBad

	rep.Met["entries_per_s"] = rep.Steady.EntriesPerS >= TargetEntriesPerS
	rep.Met["p99"] = rep.Steady.Latency.P99 <= float64(TargetP99.Milliseconds())
	if rep.Failover != nil {
		rep.Met["failover"] = rep.Failover.FirstAckMS > 0 && rep.Failover.FirstAckMS <= float64(TargetFailover.Milliseconds())
	}
	rep.OK = rep.Steady.Acked > 0 && rep.Steady.Errors == 0 && rep.BadReceipt == 0 && (rep.Failover == nil || rep.Failover.FirstAckMS > 0)
	return rep, ctx.Err()
}

// watchElection polls the surviving nodes every 10 ms (for at most 30 s)
// and returns, in ms after killedAt, when the first of them stopped naming
// the dead node as leader and when one of them first reported itself the
// leader (0 when not seen).
func watchElection(ctx context.Context, nodes []*clusterNode, dead string, killedAt time.Time) (detectMS, electedMS float64) {
	since := func() float64 { return float64(time.Since(killedAt).Microseconds()) / 1000 }
	deadline := killedAt.Add(30 * time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.dead.Load() {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := provledgerpb.NewClusterClient(n.conn).Status(cctx, &provledgerpb.ClusterStatusRequest{LocalOnly: true})
			cancel()
			if err != nil {
				continue
			}
			if detectMS == 0 && st.GetLeader().GetId() != dead {
				detectMS = since()
			}
			if st.GetNode().GetState() == "Leader" {
				if detectMS == 0 {
					detectMS = since()
				}
				return detectMS, since()
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return detectMS, electedMS
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// waitCluster waits until node1 reports a leader and three members that
// all answer, and returns the leader.
func waitCluster(ctx context.Context, nodes []*clusterNode) (*clusterNode, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := provledgerpb.NewClusterClient(nodes[0].conn).Status(cctx, &provledgerpb.ClusterStatusRequest{})
		cancel()
		if err == nil && len(st.GetMembers()) == len(nodes) {
			ok := true
			for _, m := range st.GetMembers() {
				ok = ok && m.GetStatus() != nil
			}
			for _, n := range nodes {
				if ok && n.id == st.GetLeader().GetId() {
					return n, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the cluster did not form within 60 s (last: %v, %v)", st, err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clusterLoad runs the clients; phases swap in fresh statistics.
type clusterLoad struct {
	cfg    *ClusterConfig
	nodes  []*clusterNode
	pool   *presigned
	v      note.Verifier
	leader *clusterNode
	// conns[slot][node]: client c uses slot c % len(conns).
	conns [][]*grpc.ClientConn

	next       atomic.Int64 // next pool index
	killedAt   atomic.Int64
	deadAt     atomic.Int64 // the killed leader's process has exited
	firstAfter atomic.Int64
	end        chan struct{}
	wg         sync.WaitGroup

	mu          sync.Mutex
	stats       *phaseStats
	kept        []sample // receipts to verify after the load
	verified    int
	badReceipts int
	firstBad    string
}

// dial opens the clients' connections: cfg.Conns to each node (one per
// client when 0).
func (l *clusterLoad) dial() error {
	n := l.cfg.Conns
	if n == 0 {
		n = l.cfg.Clients
	}
	l.conns = make([][]*grpc.ClientConn, n)
	for i := range l.conns {
		for _, nd := range l.nodes {
			c, err := grpc.NewClient(nd.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				l.closeConns()
				return fmt.Errorf("connect to %s: %w", nd.id, err)
			}
			l.conns[i] = append(l.conns[i], c)
		}
	}
	return nil
}

func (l *clusterLoad) closeConns() {
	for _, cs := range l.conns {
		for _, c := range cs {
			c.Close()
		}
	}
}

type phaseStats struct {
	hist       Histogram
	acked      int64
	errors     int64
	firstError string
	exhausted  bool
}

func (l *clusterLoad) start(ctx context.Context) {
	l.end = make(chan struct{})
	l.stats = &phaseStats{}
	for c := range l.cfg.Clients {
		l.wg.Add(1)
		go l.client(ctx, c)
	}
}

func (l *clusterLoad) stop() {
	close(l.end)
	l.wg.Wait()
}

// phase measures from now for d (d = 0: until 3 s after the first ack
// following the kill, at most 30 s).
func (l *clusterLoad) phase(ctx context.Context, d time.Duration) PhaseResult {
	l.mu.Lock()
	l.stats = &phaseStats{}
	l.mu.Unlock()
	t0 := time.Now()
	cpu0 := l.cpu()
	if d > 0 {
		sleepCtx(ctx, d)
	} else {
		limit := time.After(30 * time.Second)
	wait:
		for {
			select {
			case <-ctx.Done():
				break wait
			case <-limit:
				break wait
			case <-time.After(50 * time.Millisecond):
				if f := l.firstAfter.Load(); f != 0 && time.Since(time.Unix(0, f)) > 3*time.Second {
					break wait
				}
			}
		}
	}
	l.mu.Lock()
	s := l.stats
	l.stats = &phaseStats{}
	l.mu.Unlock()
	secs := time.Since(t0).Seconds()
	cpu1 := l.cpu()
	r := PhaseResult{Acked: s.acked, Errors: s.errors, FirstError: s.firstError, Seconds: secs,
		EntriesPerS: float64(s.acked) / secs, Latency: latencyOf(&s.hist), PoolExhausted: s.exhausted,
		NodeCPUS: map[string]float64{}}
	for k, v := range cpu1 {
		if v0, ok := cpu0[k]; ok && v >= 0 && v0 >= 0 {
			switch k {
			case "bench":
				r.BenchCPUS = (v - v0).Seconds()
			case "machine":
				r.MachineCPUS = (v - v0).Seconds()
			default:
				r.NodeCPUS[k] = (v - v0).Seconds()
			}
		}
	}
	return r
}

// cpu samples the CPU time of every live node, provbench and the machine.
func (l *clusterLoad) cpu() map[string]time.Duration {
	m := map[string]time.Duration{"bench": SelfCPU(), "machine": machineBusy()}
	for _, n := range l.nodes {
		if !n.dead.Load() {
			m[n.id] = nodeCPU(n.Node)
		}
	}
	return m
}

func (l *clusterLoad) client(ctx context.Context, c int) {
	defer l.wg.Done()
	var target int
	if l.cfg.Target == "all" {
		target = c % len(l.nodes)
	} else {
		for i, n := range l.nodes {
			if n == l.leader {
				target = i
			}
		}
	}
	for {
		select {
		case <-l.end:
			return
		case <-ctx.Done():
			return
		default:
		}
		n := max(l.cfg.BatchSize, 1)
		i := int(l.next.Add(int64(n)) - int64(n))
		if i+n > len(l.pool.reqs) {
			l.mu.Lock()
			l.stats.exhausted = true
			l.mu.Unlock()
			<-l.end
			return
		}
		for {
			n := l.nodes[target]
			if n.dead.Load() {
				target = (target + 1) % len(l.nodes)
				continue
			}
			t0 := time.Now()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			resps, err := l.call(cctx, l.conns[c%len(l.conns)][target], i, max(l.cfg.BatchSize, 1))
			cancel()
			now := time.Now()
			if err == nil {
				for j, resp := range resps {
					if e := resp.GetError(); e != nil {
						l.mu.Lock()
						l.stats.errors++
						if l.stats.firstError == "" {
							l.stats.firstError = fmt.Sprintf("%s: %s", n.id, e.GetMessage())
						}
						l.mu.Unlock()
						continue
					}
					l.ack(i+j, resp, t0, now)
				}
				break
			}
			l.mu.Lock()
			l.stats.errors++
			if l.stats.firstError == "" {
				l.stats.firstError = fmt.Sprintf("%s: %v", n.id, err)
			}
			l.mu.Unlock()
			select {
			case <-l.end:
				return
			default:
			}
			if status.Code(err) == codes.ResourceExhausted {
				time.Sleep(5 * time.Millisecond) // the node sheds load: back off, same node
				continue
			}
			// Move on (followers forward); the same envelope again is safe.
			target = (target + 1) % len(l.nodes)
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// call appends pre-signed requests [i, i+n) over conn: a unary Append
// for one, an AppendBatch for more.
func (l *clusterLoad) call(ctx context.Context, conn *grpc.ClientConn, i, n int) ([]*provledgerpb.AppendResponse, error) {
	c := provledgerpb.NewLedgerClient(conn)
	if n == 1 {
		resp, err := c.Append(ctx, l.pool.reqs[i])
		if err != nil {
			return nil, err
		}
		return []*provledgerpb.AppendResponse{resp}, nil
	}
	resp, err := c.AppendBatch(ctx, &provledgerpb.AppendBatchRequest{Requests: l.pool.reqs[i : i+n]})
	if err != nil {
		return nil, err
	}
	if len(resp.GetResponses()) != n {
		return nil, fmt.Errorf("AppendBatch answered %d of %d requests", len(resp.GetResponses()), n)
	}
	return resp.GetResponses(), nil
}

func (l *clusterLoad) ack(i int, resp *provledgerpb.AppendResponse, t0, now time.Time) {
	lat := now.Sub(t0)
	// The failover ends with the first ack of an append sent once the old
	// leader was dead: answers to appends sent earlier may be the old
	// leader's, arriving late.
	if d := l.deadAt.Load(); d != 0 && t0.UnixNano() > d {
		l.firstAfter.CompareAndSwap(0, now.UnixNano())
	}
	check := l.cfg.VerifyEvery > 0 && i%l.cfg.VerifyEvery == 0
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.hist.Record(lat)
	l.stats.acked++
	if check {
		// Verified after the load (verifyKept): no client CPU on the clock.
		l.kept = append(l.kept, sample{i: i, resp: resp})
	}
}

// verifyKept verifies the kept receipts on all cores, after the load.
func (l *clusterLoad) verifyKept() {
	// Retries across the leader kill may find their envelope committed.
	l.verified, l.badReceipts, l.firstBad = verifySamples(l.kept, l.pool, l.v, l.cfg.Failover)
}

// PrintCluster writes the human summary of a cluster run.
func PrintCluster(w io.Writer, r *ClusterReport) {
	fmt.Fprintf(w, "provbench cluster — 3 provd nodes, %d clients, %d-byte Ed25519 envelopes, target %s\n", r.Config.Clients, r.Config.Size, r.Config.Target)
	fmt.Fprintf(w, "machine: %s\n", machineLine(&r.Machine))
	p := r.Steady
	fmt.Fprintf(w, "steady (%.1f s): %s entries/s  p50 %s ms  p90 %s ms  p99 %s ms  max %s ms  acked %d  errors %d%s\n",
		p.Seconds, thousands(p.EntriesPerS), msStr(p.Latency.P50), msStr(p.Latency.P90), msStr(p.Latency.P99), msStr(p.Latency.Max), p.Acked, p.Errors, exhausted(p.PoolExhausted))
	var nodes float64
	for _, v := range p.NodeCPUS {
		nodes += v
	}
	fmt.Fprintf(w, "CPU in the window: nodes %.1f s (%v), provbench %.1f s, whole machine %.1f s of %.1f s available\n",
		nodes, fmtCPU(p.NodeCPUS), p.BenchCPUS, p.MachineCPUS, p.Seconds*float64(r.Machine.NProc))
	if r.LeaderChanged {
		fmt.Fprintf(w, "leadership moved during the window (an election under load): %s led at the start\n", r.Leader)
	}
	if f := r.Failover; f != nil {
		fmt.Fprintf(w, "failover: leader %s SIGKILLed; first acknowledged append %.0f ms later (dead leader forgotten at %.0f ms, new leader at %.0f ms); new leader %s; %d errors (retried) during the phase, %d acked\n",
			f.Killed, f.FirstAckMS, f.DetectMS, f.ElectedMS, f.NewLeader, f.Phase.Errors, f.Phase.Acked)
	}
	fmt.Fprintf(w, "receipts verified: %d, failed: %d\n", r.Verified, r.BadReceipt)
	fmt.Fprintf(w, "targets: ≥ %d entries/s %v, p99 ≤ %v %v", TargetEntriesPerS, r.Met["entries_per_s"], TargetP99, r.Met["p99"])
	if r.Failover != nil {
		fmt.Fprintf(w, ", failover ≤ %v %v", TargetFailover, r.Met["failover"])
	}
	fmt.Fprintln(w)
}

func fmtCPU(m map[string]float64) string {
	out := ""
	for _, id := range []string{"node1", "node2", "node3"} {
		if v, ok := m[id]; ok {
			if out != "" {
				out += ", "
			}
			out += fmt.Sprintf("%s %.1f", id, v)
		}
	}
	return out
}

func exhausted(b bool) string {
	if b {
		return " (pre-signed pool exhausted: raise --presign)"
	}
	return ""
}
