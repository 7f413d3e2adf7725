package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/clusterservice"
	"github.com/provledger/provledger/api/forward"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/cluster"
)

// clusterConfig holds the Raft flags. Cluster mode is on when --node-id is
// set (or stored in DATA/cluster.json, which then requires it).
type clusterConfig struct {
	nodeID        string
	raftAddr      string
	raftAdvertise string
	apiAdvertise  string
	bootstrap     bool
	peers         string
	join          string
	raftTimeout   time.Duration
	// peerTLS is node-to-node TLS (peertls.go).
	peerTLS peerTLSConfig
	// peerList is --peers parsed.
	peerList []cluster.Member
}

func addClusterFlags(fs *flag.FlagSet, c *clusterConfig) {
	fs.StringVar(&c.nodeID, "node-id", "", "Raft cluster mode: this node's id, stable across restarts (a restarted node needs only --data and --node-id)")
	fs.StringVar(&c.raftAddr, "raft-addr", "127.0.0.1:7402", "cluster mode: Raft listen address (node-to-node traffic)")
	fs.StringVar(&c.raftAdvertise, "raft-advertise", "", "cluster mode: Raft address the other nodes dial (default --raft-addr; required when that is a wildcard address)")
	fs.StringVar(&c.apiAdvertise, "api-advertise", "", "cluster mode: gRPC address the other nodes forward appends to (default --grpc-addr)")
	fs.BoolVar(&c.bootstrap, "bootstrap", false, "cluster mode: start a new cluster with this node (and --peers, if any) as its voters; ignored by a node that already has Raft state")
	fs.StringVar(&c.peers, "peers", "", "with --bootstrap: the other initial voters, id=raftaddr=apiaddr,... (start every one of them with the same --bootstrap --peers); default none, others --join later")
	fs.StringVar(&c.join, "join", "", "cluster mode: gRPC address of any member of an existing cluster; this node asks it to add it (needs the cluster's --log-key); ignored by a node that already has Raft state")
	addPeerTLSFlags(fs, &c.peerTLS)
	fs.DurationVar(&c.raftTimeout, "raft-timeout", cluster.DefaultTimeout, "cluster mode: Raft heartbeat, election and leader lease timeout: a follower that hears nothing from the leader for this long (up to three times it) starts an election, so a dead leader is replaced within about 3x it; lower fails over faster but risks elections on a loaded machine")
}

// validate checks the cluster flags' syntax; how they combine with the
// data directory is checked at start (checkStart).
func (c *clusterConfig) validate(cfg *config) error {
	if c.nodeID != "" {
		if err := clusterservice.CheckNodeID(c.nodeID); err != nil {
			return fmt.Errorf("--node-id: %w", err)
		}
	}
	if c.bootstrap && c.join != "" {
		return errors.New("--bootstrap and --join exclude each other: bootstrap the first node, join the others")
	}
	if c.raftTimeout < 20*time.Millisecond || c.raftTimeout > time.Minute {
		return fmt.Errorf("--raft-timeout %v: must be between 20ms and 1m", c.raftTimeout)
	}
	for _, a := range []struct{ name, addr string }{{"--raft-addr", c.raftAddr}, {"--raft-advertise", c.raftAdvertise}, {"--api-advertise", c.apiAdvertise}, {"--join", c.join}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("%s %q: %v", a.name, a.addr, err)
		}
	}
	// Checked before provd makes DATA/log.key for a new node: a joining
	// node must sign with the cluster's key.
	if c.nodeID != "" && c.join != "" && cfg.logKeyPath == "" {
		if _, err := os.Stat(filepath.Join(cfg.dataDir, "log.key")); err != nil {
			return fmt.Errorf("--join needs the cluster's log key: every node signs the same checkpoints with it; pass --log-key FILE (a copy of the first node's DATA/log.key)")
		}
	}
	c.peerList = nil
	if c.peers != "" {
		for _, p := range strings.Split(c.peers, ",") {
			f := strings.Split(strings.TrimSpace(p), "=")
			if len(f) != 3 || f[0] == "" || f[1] == "" || f[2] == "" {
				return fmt.Errorf("--peers %q: each peer is id=raftaddr=apiaddr, e.g. n2=10.0.0.2:7402=10.0.0.2:7400", c.peers)
			}
			if err := clusterservice.CheckNodeID(f[0]); err != nil {
				return fmt.Errorf("--peers: %w", err)
			}
			for i, a := range f[1:] {
				if err := clusterservice.CheckAddress([]string{"raft address", "API address"}[i]+" of "+f[0], a); err != nil {
					return fmt.Errorf("--peers: %w", err)
				}
			}
			if f[0] == c.nodeID {
				continue // this node is a voter anyway
			}
			c.peerList = append(c.peerList, cluster.Member{ID: f[0], RaftAddr: f[1], APIAddr: f[2]})
		}
	}
	return nil
}

// checkStart checks how the cluster flags combine, when the node starts.
func (c *clusterConfig) checkStart(cfg *config) error {
	if c.nodeID == "" {
		for _, name := range []string{"bootstrap", "join", "peers", "raft-advertise", "api-advertise"} {
			if cfg.given[name] {
				return fmt.Errorf("--%s needs --node-id (cluster mode)", name)
			}
		}
		return nil
	}
	if c.peers != "" && !c.bootstrap {
		return errors.New("--peers is only used with --bootstrap")
	}
	return nil
}

// clusterState is DATA/cluster.json: what a restarted node needs beyond
// --data and --node-id.
type clusterState struct {
	NodeID        string `json:"node_id"`
	RaftAddr      string `json:"raft_addr"`
	RaftAdvertise string `json:"raft_advertise"`
	APIAdvertise  string `json:"api_advertise"`
	GRPCAddr      string `json:"grpc_addr"`
	HTTPAddr      string `json:"http_addr"`
}

func clusterStatePath(c *config) string { return filepath.Join(c.dataDir, "cluster.json") }

func readClusterState(c *config) (*clusterState, error) {
	b, err := os.ReadFile(clusterStatePath(c))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cluster state: %w", err)
	}
	st := &clusterState{}
	if err := json.Unmarshal(b, st); err != nil || st.NodeID == "" {
		return nil, fmt.Errorf("%s is not a provd cluster state file (%v): fix or remove it", clusterStatePath(c), err)
	}
	return st, nil
}

// applyClusterState fills the address flags not given this time from the
// state stored at the first start, checks the node id, and stores the
// result for the next start.
func applyClusterState(c *config) error {
	cc := &c.cluster
	st, err := readClusterState(c)
	if err != nil {
		return err
	}
	if st != nil && st.NodeID != cc.nodeID {
		return fmt.Errorf("data directory %s belongs to cluster node %q, not --node-id %q: start it with --node-id %s, or use another --data", c.dataDir, st.NodeID, cc.nodeID, st.NodeID)
	}
	if st != nil {
		keep := func(flagName string, dst *string, stored string) {
			if !c.given[flagName] && stored != "" {
				*dst = stored
			}
		}
		keep("raft-addr", &cc.raftAddr, st.RaftAddr)
		keep("raft-advertise", &cc.raftAdvertise, st.RaftAdvertise)
		keep("api-advertise", &cc.apiAdvertise, st.APIAdvertise)
		keep("grpc-addr", &c.grpcAddr, st.GRPCAddr)
		keep("http-addr", &c.httpAddr, st.HTTPAddr)
	}
	nst := clusterState{NodeID: cc.nodeID, RaftAddr: cc.raftAddr, RaftAdvertise: cc.raftAdvertise, APIAdvertise: cc.apiAdvertise, GRPCAddr: c.grpcAddr, HTTPAddr: c.httpAddr}
	if st != nil && *st == nst {
		return nil
	}
	b, _ := json.MarshalIndent(nst, "", "  ")
	if err := writeFileAtomic(clusterStatePath(c), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write cluster state: %w", err)
	}
	return nil
}

// sequencer is what the node needs of its sequencer: ledger.LocalSequencer
// on a single node, raftSequencer in a cluster.
type sequencer interface {
	ledger.Sequencer
	Close() error
}

// raftSequencer is the cluster mode of a node: the Raft node, its
// replicated sequencer wrapped for forwarding, the Cluster service, and the
// background registration with the cluster. Close stops all of it (not
// the ledger).
type raftSequencer struct {
	*forward.Sequencer
	node   *cluster.Node
	seq    *cluster.Sequencer
	pool   *forward.Pool
	api    *clusterservice.Service
	ver    note.Verifier // the log key, for --join's check
	lg     *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{} // closed when the node stops on its own or registration failed for good
	once   sync.Once
	mu     sync.Mutex
	err    error
}

// openSequencer returns the node's sequencer: the local one, or with
// --node-id (or a data directory that belongs to a cluster node) the Raft
// one. l is the ledger the state machine applies to: the one opened with
// the lineage Indexer, so indexes are built from replicated batches too.
//
// g supplies node-to-node TLS (g.peer, --peer-tls-*): the Raft listener
// and dialer, and the forward pool, use it when set.
func openSequencer(c *config, l *ledger.Log, keyring *keys.Keyring, priv ed25519.PrivateKey, g *guard, lg *slog.Logger) (sequencer, error) {
	cc := &c.cluster
	if err := cc.checkStart(c); err != nil {
		return nil, err
	}
	if cc.nodeID == "" {
		st, err := readClusterState(c)
		if err != nil {
			return nil, err
		}
		if st != nil {
			return nil, fmt.Errorf("data directory %s belongs to cluster node %q: start it with --node-id %s (running it alone would fork the log)", c.dataDir, st.NodeID, st.NodeID)
		}
		return ledger.NewLocalSequencer(l, ledger.SequencerOptions{MaxBatch: c.maxBatch})
	}
	if err := applyClusterState(c); err != nil {
		return nil, err
	}
	api := cc.apiAdvertise
	if api == "" {
		api = c.grpcAddr
	}
	if err := clusterservice.CheckAddress("--api-advertise (default --grpc-addr)", api); err != nil {
		return nil, fmt.Errorf("%w: the other nodes forward to it", err)
	}
	if _, port, _ := net.SplitHostPort(cc.raftAddr); port == "0" {
		return nil, fmt.Errorf("--raft-addr %q: give a fixed port: the cluster records this node's Raft address, and a restart must listen on it again", cc.raftAddr)
	}
	raftDir := filepath.Join(c.dataDir, "raft")
	if _, err := os.Stat(raftDir); errors.Is(err, fs.ErrNotExist) && l.Latest().Size > 0 && c.restore.file == "" {
		return nil, fmt.Errorf("the log in %s already holds %d entries but has never been part of a cluster: start cluster nodes from an empty --data directory (turning a single-node log into a cluster is not supported)", filepath.Join(c.dataDir, "ledger"), l.Latest().Size)
	}
	raftHost, _, _ := net.SplitHostPort(cmp.Or(cc.raftAdvertise, cc.raftAddr))
	apiHost, _, _ := net.SplitHostPort(api)
	ln, err := net.Listen("tcp", cc.raftAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on --raft-addr: %w", err)
	}
	pt, err := newPeerTransport(c, g, ln, raftHost, apiHost) // peertls.go
	if err != nil {
		ln.Close()
		return nil, err
	}
	node, err := cluster.Open(cluster.Config{
		NodeID:    cc.nodeID,
		Dir:       raftDir,
		Log:       l,
		APIAddr:   api,
		Listener:  pt.listener,
		Dial:      pt.dial,
		Advertise: cc.raftAdvertise,
		Logger:    lg,
		// The lease may not exceed the heartbeat timeout; equal to it, a
		// leader stalled for less than that does not step down.
		HeartbeatTimeout:   cc.raftTimeout,
		ElectionTimeout:    cc.raftTimeout,
		LeaderLeaseTimeout: cc.raftTimeout,
	})
	if err != nil {
		ln.Close()
		pt.pool.Close()
		return nil, fmt.Errorf("%w (set --raft-advertise to an address the other nodes can dial)", err)
	}
	r := &raftSequencer{node: node, lg: lg, done: make(chan struct{}), pool: pt.pool}
	fail := func(err error) (sequencer, error) {
		r.pool.Close()
		node.Shutdown()
		return nil, err
	}
	if cc.bootstrap {
		if err := node.Bootstrap(cc.peerList...); err != nil {
			return fail(err)
		}
		if err := compactRestored(c, node); err != nil { // restore.go
			return fail(err)
		}
	}
	if r.seq, err = node.NewSequencer(cluster.SequencerOptions{MaxBatch: c.maxBatch}); err != nil {
		return fail(err)
	}
	v, err := checkpoint.NewVerifier(c.origin, priv.Public().(ed25519.PublicKey))
	if err != nil {
		r.seq.Close()
		return fail(err)
	}
	r.ver = v
	fc := forward.Config{Node: node, Local: r.seq, Pool: r.pool, Verifier: v, Logger: lg}
	if c.dev {
		fc.Keyring = keyring // a TOFU leader learns the keys this node accepted
	}
	if r.Sequencer, err = forward.New(fc); err == nil {
		r.api, err = clusterservice.New(clusterservice.Config{Node: node, Pool: r.pool, DialRaft: pt.dial, Logger: lg})
	}
	if err != nil {
		r.seq.Close()
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(2)
	go r.watch(ctx)
	go r.register(ctx, c)
	mode := "rejoining its cluster from its Raft state"
	switch {
	case node.HadState():
	case cc.bootstrap:
		mode = "bootstrapped a new cluster"
	case cc.join != "":
		mode = "joining the cluster through " + cc.join
	default:
		mode = "waiting to be added (prov cluster join --node-id " + cc.nodeID + " --raft-addr " + node.RaftAddr() + " --api-addr " + api + ")"
	}
	lg.Info("raft cluster mode", "node_id", cc.nodeID, "raft_addr", node.RaftAddr(), "api_addr", api, "state", mode, "node_tls", g.peer != nil)
	return r, nil
}

// registerCluster serves the Cluster service on a cluster node.
func registerCluster(g *grpc.Server, s sequencer) {
	if r, ok := s.(*raftSequencer); ok {
		provledgerpb.RegisterClusterServer(g, r.api)
	}
}

// clusterDone is closed when a cluster node stops on its own (removed from
// the cluster, state machine failure, or it could not join); nil on a
// single node.
func clusterDone(s sequencer) <-chan struct{} {
	if r, ok := s.(*raftSequencer); ok {
		return r.done
	}
	return nil
}

// clusterErr says why clusterDone closed (nil: removed from the cluster).
func clusterErr(s sequencer) error {
	if r, ok := s.(*raftSequencer); ok {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.err
	}
	return nil
}

func (r *raftSequencer) stopWith(err error) {
	r.once.Do(func() {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		close(r.done)
	})
}

// watch notices the Raft node stopping on its own.
func (r *raftSequencer) watch(ctx context.Context) {
	defer r.wg.Done()
	select {
	case <-ctx.Done():
	case <-r.node.Done():
		if err := r.node.Err(); err != nil {
			r.stopWith(fmt.Errorf("raft state machine failed, node stopped: %w (restart it: it replays from its durable state)", err))
			return
		}
		r.lg.Warn("raft node stopped: this node was removed from the cluster")
		r.stopWith(nil)
	}
}

// register brings the node into the cluster and keeps its API address
// recorded: with --join (and no Raft state) it asks the given member to add
// it, after checking that the cluster's checkpoints are signed with this
// node's log key; otherwise, once a leader is known, it makes sure the
// address the cluster has for it is the current one (after a restart with
// another --grpc-addr, or with --bootstrap --peers).
func (r *raftSequencer) register(ctx context.Context, c *config) {
	defer r.wg.Done()
	id, api := r.node.ID(), r.node.APIAddr()
	req := &provledgerpb.JoinRequest{NodeId: id, RaftAddress: r.node.RaftAddr(), ApiAddress: api}
	target := ""
	if !r.node.HadState() && c.cluster.join != "" {
		target = c.cluster.join
		if err := r.checkLogKey(ctx, target, c); err != nil {
			if ctx.Err() == nil {
				r.stopWith(err)
			}
			return
		}
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		to := target
		if to == "" {
			// Registered already? The leader records its own address.
			l, ok := r.node.Leader()
			if !ok || l.APIAddr == "" {
				continue
			}
			if a, ok := r.node.FSM().APIAddr(id); (ok && a == api) || l.ID == id {
				return
			}
			to = l.APIAddr
		}
		conn, err := r.pool.Conn(to)
		if err != nil {
			r.lg.Warn("cluster join: cannot connect", "to", to, "err", err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = provledgerpb.NewClusterClient(conn).Join(cctx, req)
		cancel()
		if c := status.Code(err); c == codes.AlreadyExists || c == codes.InvalidArgument {
			// Refused for good (this node's id or address clashes with
			// another member's, or is malformed): retrying cannot help.
			r.stopWith(fmt.Errorf("cluster join through %s refused: %s", to, status.Convert(err).Message()))
			return
		}
		if err != nil {
			r.lg.Warn("cluster join: retrying", "to", to, "err", err)
			continue
		}
		r.lg.Info("cluster join: this node is a member", "through", to, "api_addr", api)
		return // Join recorded the API address too
	}
}

// checkLogKey refuses to join a cluster whose checkpoints this node's log
// key did not sign: the node would sign different checkpoints for the same
// log and fork it.
func (r *raftSequencer) checkLogKey(ctx context.Context, addr string, c *config) error {
	conn, err := r.pool.Conn(addr)
	if err != nil {
		return fmt.Errorf("--join %s: %w", addr, err)
	}
	var last error
	for attempt := 0; attempt < 30; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cp, err := provledgerpb.NewLedgerClient(conn).GetCheckpoint(cctx, &provledgerpb.GetCheckpointRequest{})
		cancel()
		if err == nil {
			if _, err := checkpoint.Open(cp.GetNote(), r.ver); err != nil {
				return fmt.Errorf("--join %s: the cluster's checkpoint is not signed by this node's log key for origin %q (%v): start this node with the cluster's --origin and --log-key", addr, c.origin, err)
			}
			return nil
		}
		last = err
		r.lg.Warn("cluster join: cannot read the cluster's checkpoint yet; retrying", "to", addr, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("--join %s: cannot read the cluster's checkpoint: %w", addr, last)
}

// Close stops the cluster mode: registration, the sequencer (appends in
// flight finish or fail), the Raft node, the connections. The caller then
// closes the ledger.
func (r *raftSequencer) Close() error {
	r.cancel()
	r.wg.Wait()
	err := r.seq.Close()
	if serr := r.node.Shutdown(); serr != nil && err == nil {
		err = serr
	}
	r.pool.Close()
	return err
}
