// Package cluster runs a provledger node in a Raft cluster: hashicorp/raft
// with the Badger log store (raft/badgerstore), a file snapshot store, a
// network transport over a caller-supplied listener and dialer, and the
// ledger state machine (raft/fsm). It tells who leads and at which API
// address, manages membership, offers linearizable read fences, and
// provides the replicated ledger.Sequencer (NewSequencer).
//
// A Node does not open or close the ledger: the caller opens the
// ledger.Log, passes it in Config.Log, and closes it after Shutdown.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/badgerstore"
	"github.com/provledger/provledger/raft/fsm"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxCommandBytes   = 16 << 20
	DefaultMaxAppendEntries  = 64
	DefaultSnapshotThreshold = 8192
	DefaultSnapshotInterval  = 2 * time.Minute
	DefaultTrailingLogs      = 2048
	DefaultSnapshotRetain    = 2
	DefaultTransportTimeout  = 10 * time.Second
	DefaultLogCache          = 32
	// DefaultTimeout is the heartbeat, election and leader lease timeout
	// when Config leaves them zero (hashicorp/raft's own defaults are 1 s,
	// 1 s and 500 ms). A follower checks for the leader's contact on a
	// timer of random period in [T, 2T), so it notices a dead leader
	// between T and 3T after the last contact; the first follower to
	// notice is refused its pre-vote by the other, which still has a
	// leader, so the election completes only when the last follower
	// notices: with T = 1 s failovers of 3–4 s were measured. 500 ms
	// bounds that at 1.5 s (plus the vote and the first commit). Pre-vote
	// makes a starved follower's spurious timeout harmless (the leader and
	// the other follower refuse it), and the lease equals T, so a leader
	// stalled for less than T does not step down. See docs/raft.md.
	DefaultTimeout = 500 * time.Millisecond
)

// Config configures a Node.
type Config struct {
	// NodeID names the node in the cluster; it must stay the same across
	// restarts. Required.
	NodeID string
	// Dir holds the node's Raft state: raft-log/ (Badger), snapshots/, and
	// tmp/ (restore scratch space; keep Dir on the ledger's file system).
	// Required.
	Dir string
	// Log is the ledger the cluster replicates into. Required. Every node
	// must open it with the same Origin, log key and MaxEnvelopeSize (the
	// state machine must be deterministic).
	Log *ledger.Log
	// APIAddr is this node's client (gRPC) address, recorded in the
	// replicated cluster metadata so that followers can forward to the
	// leader. Required.
	APIAddr string

	// Listener accepts Raft connections from the other nodes (wrap it for
	// TLS). Required unless Transport is set. Shutdown closes it.
	Listener net.Listener
	// Dial connects to another node's Raft address (wrap it for TLS).
	// Default: plain TCP.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Advertise is the Raft address the other nodes dial. Default the
	// listener's address, which must then not be a wildcard address.
	Advertise string
	// Transport replaces the network transport (tests use
	// raft.InmemTransport); Listener, Dial and Advertise are then ignored.
	Transport raft.Transport

	// Timing. A zero HeartbeatTimeout, ElectionTimeout or
	// LeaderLeaseTimeout is DefaultTimeout (LeaderLeaseTimeout: the
	// heartbeat timeout, its upper bound); a zero CommitTimeout keeps
	// hashicorp/raft's 50 ms.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	// SnapshotThreshold is the number of Raft log entries (batches) after
	// which a snapshot is taken; SnapshotInterval how often that is
	// checked; TrailingLogs how many entries are kept after a snapshot, so
	// a briefly lagging follower catches up from the log instead of a full
	// snapshot; SnapshotRetain how many snapshots are kept on disk.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	SnapshotRetain    int

	// MaxCommandBytes caps one encoded Raft command (one batch). Default
	// DefaultMaxCommandBytes (16 MiB).
	MaxCommandBytes int
	// MaxAppendEntries caps the Raft entries per append (and per log store
	// write). Default 64, lowered if needed so that MaxAppendEntries
	// commands of MaxCommandBytes always fit one atomic log store write.
	MaxAppendEntries int
	// Store configures the Badger log store.
	Store badgerstore.Options
	// LogCache is the number of most recent Raft log entries kept in
	// memory in front of the log store (raft.LogCache), so that the
	// leader replicating them and a follower applying them do not read
	// back and decode what was just written. Default DefaultLogCache (32
	// batches: ~1 MiB at ~30 entries per batch, at most 32 ×
	// MaxCommandBytes); negative turns it off.
	LogCache int
	// RaftConfig, if set, may adjust the raft.Config before the node starts.
	RaftConfig func(*raft.Config)
	// Logger receives the node's and raft's logs. Default slog.Default().
	Logger *slog.Logger
}

// Member is one node of the cluster.
type Member struct {
	ID       string
	RaftAddr string
	// APIAddr is the node's recorded client API address ("" if not
	// recorded yet).
	APIAddr string
	Voter   bool
	Leader  bool
}

// Node is a running Raft node.
type Node struct {
	cfg   Config
	log   *ledger.Log
	lg    *slog.Logger
	raft  *raft.Raft
	fsm   *fsm.FSM
	store *badgerstore.Store
	trans raft.Transport // the guarded transport raft uses
	guard *guardTransport
	self  raft.ServerAddress
	// hadState: the node had Raft state when it opened (it is or was a
	// member of a cluster).
	hadState bool

	stop     chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup
	shutOnce sync.Once
	shutErr  error

	barrierMu      sync.Mutex
	barrierWaiters []chan error
	barrierRunning bool
}

// Open starts a node. A node with no Raft state waits to be bootstrapped
// (Bootstrap) or added by the leader of an existing cluster (Join, called on
// the leader); a node with state rejoins its cluster.
func Open(cfg Config) (*Node, error) {
	switch {
	case cfg.NodeID == "":
		return nil, errors.New("cluster: NodeID is required")
	case cfg.Dir == "":
		return nil, errors.New("cluster: Dir is required")
	case cfg.Log == nil:
		return nil, errors.New("cluster: Log is required")
	case cfg.APIAddr == "":
		return nil, errors.New("cluster: APIAddr is required")
	case cfg.Transport == nil && cfg.Listener == nil:
		return nil, errors.New("cluster: Listener is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxCommandBytes == 0 {
		cfg.MaxCommandBytes = DefaultMaxCommandBytes
	}
	if cfg.MaxAppendEntries == 0 {
		cfg.MaxAppendEntries = DefaultMaxAppendEntries
	}
	if cfg.SnapshotRetain == 0 {
		cfg.SnapshotRetain = DefaultSnapshotRetain
	}
	if cfg.Dial == nil {
		cfg.Dial = defaultDial
	}
	lg := cfg.Logger.With("node", cfg.NodeID)
	cfg.Store.Logger = cmpLogger(cfg.Store.Logger, lg)
	for _, d := range []string{"raft-log", "tmp"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	n := &Node{cfg: cfg, log: cfg.Log, lg: lg, stop: make(chan struct{}), done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			n.closeResources()
		}
	}()

	var err error
	if n.store, err = badgerstore.Open(filepath.Join(cfg.Dir, "raft-log"), cfg.Store); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotRetain, newHCLogger(lg, "raft-snapshots"))
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshot store: %w", err)
	}
	if cfg.Transport != nil {
		n.trans = cfg.Transport
	} else {
		adv := cfg.Advertise
		if adv == "" {
			adv = cfg.Listener.Addr().String()
		}
		if err := checkAdvertise(adv); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:  &streamLayer{Listener: cfg.Listener, advertise: advertiseAddr(adv), dial: cfg.Dial},
			MaxPool: 3,
			Timeout: DefaultTransportTimeout,
			// Pipelined replication off: in raft v1.8, when a follower
			// answers an append with Success=false the pipeline's decoder
			// stops while the sender may park on the pipeline's unbuffered
			// channel for ever, so the leader never replicates to that
			// follower again and raft.Shutdown never returns (seen here as
			// a hung shutdown under the race detector; grafana/pyroscope
			// #5518 disables it for the same reason). Every AppendEntries
			// carries up to MaxAppendEntries whole batches anyway.
			MaxRPCsInFlight: 1,
			Logger:          newHCLogger(lg, "raft-net"),
		})
	}
	if n.hadState, err = raft.HasExistingState(n.store, n.store, snaps); err != nil {
		return nil, fmt.Errorf("cluster: read raft state: %w", err)
	}
	n.trans, n.guard = newGuardTransport(n.trans)
	n.self = n.trans.LocalAddr()
	n.fsm, err = fsm.New(cfg.Log, fsm.Options{
		ScratchDir: filepath.Join(cfg.Dir, "tmp"),
		Logger:     lg,
		OnFatal: func(err error) {
			// The apply goroutine calls this; raft.Shutdown waits for it.
			go n.Shutdown()
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n.guard.expand = n.fsm.ExpandSnapshot // the node's own snapshots are references (fsm/snapref.go)
	if err := n.fsm.CheckNewestSnapshot(snaps); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = newHCLogger(lg, "raft")
	rc.BatchApplyCh = true
	rc.HeartbeatTimeout = cmpOr(cfg.HeartbeatTimeout, DefaultTimeout)
	rc.ElectionTimeout = cmpOr(cfg.ElectionTimeout, DefaultTimeout)
	rc.LeaderLeaseTimeout = cmpOr(cfg.LeaderLeaseTimeout, rc.HeartbeatTimeout)
	setDur(&rc.CommitTimeout, cfg.CommitTimeout)
	rc.SnapshotThreshold = cmpOr(cfg.SnapshotThreshold, DefaultSnapshotThreshold)
	rc.SnapshotInterval = cmpOr(cfg.SnapshotInterval, DefaultSnapshotInterval)
	rc.TrailingLogs = cmpOr(cfg.TrailingLogs, DefaultTrailingLogs)
	rc.MaxAppendEntries = min(cfg.MaxAppendEntries, n.store.MaxLogsPerBatch(int64(cfg.MaxCommandBytes)), 1024)
	if rc.MaxAppendEntries < 1 {
		return nil, fmt.Errorf("cluster: MaxCommandBytes %d does not fit one log store write; lower it or raise Store.MemTableSize", cfg.MaxCommandBytes)
	}
	// Restore-on-start stays on: a node restarting from its own snapshot
	// only reads the snapshot's header (the ledger already holds it), while
	// a node that crashed in the middle of installing a snapshot gets it
	// installed again. RestoreCommittedLogs stays off: in raft v1.8 it
	// applies logs before the apply goroutine runs and blocks forever once
	// more than 128 batches of logs are pending.
	rc.NoSnapshotRestoreOnStart = false
	if cfg.RaftConfig != nil {
		cfg.RaftConfig(rc)
	}
	var logs raft.LogStore = n.store
	if size := cmpOr(cfg.LogCache, DefaultLogCache); size > 0 {
		// The cache passes IsMonotonic through, not CommitTrackingLogStore:
		// fine while RestoreCommittedLogs stays off (see above).
		if logs, err = raft.NewLogCache(size, n.store); err != nil {
			return nil, fmt.Errorf("cluster: log cache: %w", err)
		}
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.store, snaps, n.trans); err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	ok = true
	n.wg.Add(1)
	go n.watchLeadership()
	lg.Info("raft node started", "raft_addr", n.self, "api_addr", cfg.APIAddr, "max_append_entries", rc.MaxAppendEntries, "ledger_applied_index", cfg.Log.AppliedIndex())
	return n, nil
}

func setDur(dst *time.Duration, v time.Duration) {
	if v > 0 {
		*dst = v
	}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func cmpLogger(l, def *slog.Logger) *slog.Logger {
	if l == nil {
		return def
	}
	return l
}

// closeResources closes what Open created (not the ledger). raft has
// stopped (or never started) by then.
func (n *Node) closeResources() {
	if n.guard != nil {
		if n.cfg.Transport == nil {
			n.guard.Close()
		}
		n.guard.quiesce() // no heartbeat handler may touch the store below
	}
	if n.store != nil {
		n.store.Close()
	}
}

// Shutdown stops the node: raft stops (no snapshot is taken), the transport
// and listener and the log store close. The ledger stays open. Safe to call
// more than once.
func (n *Node) Shutdown() error {
	n.shutOnce.Do(func() {
		close(n.stop)
		n.shutErr = n.raft.Shutdown().Error()
		n.wg.Wait()
		n.closeResources()
		close(n.done)
		n.lg.Info("raft node stopped")
	})
	<-n.done
	return n.shutErr
}

// Done is closed when the node has shut down (also after a state machine
// failure: see Err).
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns the error that stopped the state machine (fsm.ErrFailed), or
// nil. The node shuts itself down when that happens.
func (n *Node) Err() error { return n.fsm.Err() }

// HadState reports whether the node had Raft state when it opened: it was
// bootstrapped or added to a cluster before, and rejoins it on its own.
// A node without state waits for Bootstrap or for the leader to add it.
func (n *Node) HadState() bool { return n.hadState }

// APIAddr returns this node's client API address (Config.APIAddr).
func (n *Node) APIAddr() string { return n.cfg.APIAddr }

// ID returns this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftAddr returns the Raft address the other nodes dial.
func (n *Node) RaftAddr() string { return string(n.self) }

// Raft exposes the underlying raft node (for status pages and tests).
func (n *Node) Raft() *raft.Raft { return n.raft }

// FSM exposes the state machine.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Log returns the replicated ledger.
func (n *Node) Log() *ledger.Log { return n.log }

// IsLeader reports whether this node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// State returns the raft state: Follower, Candidate, Leader or Shutdown.
func (n *Node) State() raft.RaftState { return n.raft.State() }

// Leader returns the leader as this node knows it; ok is false when no
// leader is known. APIAddr is empty until the leader's address is recorded.
func (n *Node) Leader() (m Member, ok bool) {
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return Member{}, false
	}
	m = Member{ID: string(id), RaftAddr: string(addr), Voter: true, Leader: true}
	if string(id) == n.cfg.NodeID {
		m.APIAddr = n.cfg.APIAddr
	} else {
		m.APIAddr, _ = n.fsm.APIAddr(string(id))
	}
	return m, true
}

func (n *Node) leaderError(sentinel, cause error) error {
	m, _ := n.Leader()
	if m.ID == n.cfg.NodeID && sentinel == ErrNotLeader {
		m = Member{} // stale: we are not the leader any more
	}
	return &LeaderError{Err: sentinel, Leader: m, cause: cause}
}

// mapErr turns raft's errors into this package's.
func (n *Node) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.leaderError(ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return n.leaderError(ErrLeadershipLost, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: raft node shut down", ledger.ErrClosed)
	}
	return err
}

// wait waits for a raft future, or ctx.
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	ch := make(chan error, 1)
	go func() { ch <- f.Error() }()
	select {
	case err := <-ch:
		return n.mapErr(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// timeout converts ctx's deadline into raft's enqueue timeout.
func timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 0
}

// Bootstrap starts a new cluster whose voters are this node and the given
// others (usually none: add nodes later with Join). On a node that already
// has Raft state it does nothing and returns nil, so a node started with a
// bootstrap flag can be restarted with it.
func (n *Node) Bootstrap(others ...Member) error {
	servers := []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.NodeID), Address: n.self}}
	for _, m := range others {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr)})
	}
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		n.lg.Info("bootstrap skipped: this node already has raft state")
		return nil
	}
	if err != nil {
		return fmt.Errorf("bootstrap cluster: %w", err)
	}
	return nil
}

// Join adds node id (Raft address raftAddr, API address apiAddr) as a
// voter and records its API address. It must be called on the leader
// (else a *LeaderError wrapping ErrNotLeader). Joining again with the same
// id and address only updates the API address; a node id or address that
// belongs to another member replaces that member.
func (n *Node) Join(ctx context.Context, id, raftAddr, apiAddr string) error {
	if id == "" || raftAddr == "" || apiAddr == "" {
		return errors.New("join: node id, raft address and API address are required")
	}
	rec, err := fsm.EncodeSetMember(fsm.Member{ID: id, APIAddr: apiAddr})
	if err != nil {
		return fmt.Errorf("join %s: %w", id, err)
	}
	if !n.IsLeader() {
		return n.leaderError(ErrNotLeader, nil)
	}
	cf := n.raft.GetConfiguration()
	if err := n.wait(ctx, cf); err != nil {
		return fmt.Errorf("join %s: %w", id, err)
	}
	present := false
	for _, s := range cf.Configuration().Servers {
		sameID, sameAddr := s.ID == raft.ServerID(id), s.Address == raft.ServerAddress(raftAddr)
		switch {
		case sameID && sameAddr && s.Suffrage == raft.Voter:
			present = true
		case sameID || sameAddr:
			if s.ID == raft.ServerID(n.cfg.NodeID) {
				return fmt.Errorf("join %s at %s: %w: that is the leader itself (%s at %s)", id, raftAddr, ErrExists, s.ID, s.Address)
			}
			n.lg.Info("join: removing the member it replaces", "id", s.ID, "raft_addr", s.Address)
			if err := n.wait(ctx, n.raft.RemoveServer(s.ID, 0, timeout(ctx))); err != nil {
				return fmt.Errorf("join %s: remove %s: %w", id, s.ID, err)
			}
		}
	}
	if !present {
		if err := n.wait(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeout(ctx))); err != nil {
			return fmt.Errorf("join %s: add voter: %w", id, err)
		}
	}
	if err := n.applyRecord(ctx, rec); err != nil {
		return fmt.Errorf("join %s: record API address: %w", id, err)
	}
	n.lg.Info("node joined", "id", id, "raft_addr", raftAddr, "api_addr", apiAddr, "already_voter", present)
	return nil
}

// Remove removes node id from the cluster and forgets its API address. It
// must be called on the leader; an id that is not a member is ErrNoMember. The leader may remove itself; it then
// steps down.
func (n *Node) Remove(ctx context.Context, id string) error {
	rec, err := fsm.EncodeRemoveMember(id)
	if err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if !n.IsLeader() {
		return n.leaderError(ErrNotLeader, nil)
	}
	if _, err := n.raftAddrOf(ctx, id); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if err := n.applyRecord(ctx, rec); err != nil {
		return fmt.Errorf("remove %s: forget API address: %w", id, err)
	}
	if err := n.wait(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, timeout(ctx))); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	n.lg.Info("node removed", "id", id)
	return nil
}

func (n *Node) applyRecord(ctx context.Context, rec []byte) error {
	f := n.raft.Apply(rec, timeout(ctx))
	if err := n.wait(ctx, f); err != nil {
		return err
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// TransferLeadership asks the leader to hand leadership to node id (any
// up-to-date voter if id is empty) and waits for the handover.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return n.leaderError(ErrNotLeader, nil)
	}
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		addr, err := n.raftAddrOf(ctx, id)
		if err != nil {
			return fmt.Errorf("transfer leadership: %w", err)
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
	}
	if err := n.wait(ctx, f); err != nil {
		return fmt.Errorf("transfer leadership to %q: %w", id, err)
	}
	return nil
}

func (n *Node) raftAddrOf(ctx context.Context, id string) (raft.ServerAddress, error) {
	cf := n.raft.GetConfiguration()
	if err := n.wait(ctx, cf); err != nil {
		return "", err
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(id) {
			return s.Address, nil
		}
	}
	return "", fmt.Errorf("%w: %q", ErrNoMember, id)
}

// Members lists the cluster's members (the latest Raft configuration), with
// their recorded API addresses, sorted by id.
func (n *Node) Members(ctx context.Context) ([]Member, error) {
	cf := n.raft.GetConfiguration()
	if err := n.wait(ctx, cf); err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	_, leader := n.raft.LeaderWithID()
	var ms []Member
	for _, s := range cf.Configuration().Servers {
		m := Member{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader}
		if m.ID == n.cfg.NodeID {
			m.APIAddr = n.cfg.APIAddr
		} else {
			m.APIAddr, _ = n.fsm.APIAddr(m.ID)
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	return ms, nil
}

// WaitForLeader waits until a leader is known and returns it.
func (n *Node) WaitForLeader(ctx context.Context) (Member, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if m, ok := n.Leader(); ok {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return Member{}, fmt.Errorf("wait for a raft leader: %w", ctx.Err())
		case <-n.done:
			return Member{}, fmt.Errorf("wait for a raft leader: %w: node shut down", ledger.ErrClosed)
		case <-t.C:
		}
	}
}

// VerifyLeader checks with a quorum that this node is still the leader
// (one heartbeat round, nothing written). It does not wait for the state
// machine: use Barrier before a read that must see every acknowledged write.
func (n *Node) VerifyLeader(ctx context.Context) error {
	return n.wait(ctx, n.raft.VerifyLeader())
}

// Barrier is the fence for linearizable reads: once it returns nil on the
// leader, the local ledger reflects every write acknowledged before
// Barrier was called, by this or any earlier leader. It commits one Raft
// entry, shared by all Barrier calls waiting at the same moment. On a
// follower it returns a *LeaderError (ErrNotLeader).
func (n *Node) Barrier(ctx context.Context) error {
	if !n.IsLeader() {
		return n.leaderError(ErrNotLeader, nil)
	}
	ch := make(chan error, 1)
	n.barrierMu.Lock()
	n.barrierWaiters = append(n.barrierWaiters, ch)
	if !n.barrierRunning {
		n.barrierRunning = true
		go n.runBarriers()
	}
	n.barrierMu.Unlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runBarriers issues one raft barrier for every group of waiters: those
// that arrive while a barrier is in flight wait for the next one, which is
// issued after they arrived.
func (n *Node) runBarriers() {
	for {
		n.barrierMu.Lock()
		batch := n.barrierWaiters
		n.barrierWaiters = nil
		if len(batch) == 0 {
			n.barrierRunning = false
			n.barrierMu.Unlock()
			return
		}
		n.barrierMu.Unlock()
		err := n.mapErr(n.raft.Barrier(0).Error())
		for _, ch := range batch {
			ch <- err
		}
	}
}

// Snapshot takes a Raft snapshot now (normally raft does it on its own,
// see Config.SnapshotThreshold).
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("snapshot: %w", n.mapErr(err))
	}
	return nil
}

// Status is a node's view of itself and the cluster.
type Status struct {
	ID       string
	RaftAddr string
	APIAddr  string
	State    string
	Term     uint64
	// Leader is the leader this node knows (ID empty if none).
	Leader Member
	// Raft log positions on this node.
	LastLogIndex, CommitIndex, AppliedIndex, LastSnapshotIndex uint64
	// LedgerAppliedIndex is the Raft index of the last batch in the ledger.
	LedgerAppliedIndex uint64
	// Checkpoint is the ledger's latest signed checkpoint (its size is the
	// log size).
	Checkpoint *ledger.Checkpoint
	// LastContact is the time since the leader was last heard from ("0" on
	// the leader, "never" before any contact).
	LastContact string
	// Err is set when the state machine failed (the node then stops).
	Err error
}

// Status returns this node's status.
func (n *Node) Status() Status {
	st := n.raft.Stats()
	u := func(k string) uint64 { v, _ := strconv.ParseUint(st[k], 10, 64); return v }
	s := Status{
		ID: n.cfg.NodeID, RaftAddr: string(n.self), APIAddr: n.cfg.APIAddr,
		State: n.raft.State().String(), Term: u("term"),
		LastLogIndex: u("last_log_index"), CommitIndex: u("commit_index"),
		AppliedIndex: u("applied_index"), LastSnapshotIndex: u("last_snapshot_index"),
		LedgerAppliedIndex: n.log.AppliedIndex(), Checkpoint: n.log.Latest(),
		LastContact: st["last_contact"], Err: n.fsm.Err(),
	}
	s.Leader, _ = n.Leader()
	return s
}

// watchLeadership runs when this node gains leadership: it waits until the
// state machine has applied every earlier entry, then makes sure the
// cluster metadata holds this node's current API address.
// It also notices raft shutting itself down (this node was removed from
// the cluster) and then shuts the node down, closing Done.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
			if n.raft.State() == raft.Shutdown {
				n.lg.Info("raft stopped on its own (this node was removed from the cluster)")
				go n.Shutdown()
				return
			}
		case leader := <-n.raft.LeaderCh():
			if !leader {
				n.lg.Info("lost raft leadership")
				continue
			}
			n.lg.Info("gained raft leadership")
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-n.stop:
				case <-ctx.Done():
				}
				cancel()
			}()
			n.establish(ctx)
			cancel()
		}
	}
}

func (n *Node) establish(ctx context.Context) {
	if err := n.Barrier(ctx); err != nil {
		n.lg.Warn("new leader: barrier failed", "err", err)
		return
	}
	if addr, ok := n.fsm.APIAddr(n.cfg.NodeID); ok && addr == n.cfg.APIAddr {
		return
	}
	rec, err := fsm.EncodeSetMember(fsm.Member{ID: n.cfg.NodeID, APIAddr: n.cfg.APIAddr})
	if err == nil {
		err = n.applyRecord(ctx, rec)
	}
	if err != nil {
		n.lg.Warn("new leader: cannot record its API address", "err", err)
		return
	}
	n.lg.Info("recorded this node's API address", "api_addr", n.cfg.APIAddr)
}
