// Package forward makes any node of a provledger Raft cluster accept
// appends: its Sequencer submits to the local Raft sequencer
// (raft/cluster), and when this node is not the leader it forwards the
// already-verified entries to the leader's gRPC API (AppendBatch) with the
// caller's deadline, and hands back the leader's receipts, which the client
// verifies as usual.
//
// A forwarded request carries the ForwardedHeader metadata; a node that
// receives one and is not the leader (any more) answers Unavailable
// instead of forwarding again, so a request makes at most one hop. After a
// failure that a leader change explains (the leader died, stepped down or
// lost its leadership before committing), Submit waits for the cluster to
// know another leader and tries once more: appending the same envelope
// twice is safe, since dedup returns the first index.
//
// The package also provides the linearizable read fence (ReadFence) the
// Ledger service uses for CONSISTENCY_LINEARIZABLE reads, and NodeGuard,
// which keeps the forwarded header to callers holding a cluster node's
// certificate.
package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/cluster"
)

// ForwardedHeader is the gRPC metadata key marking a request that another
// node forwarded; its value is the forwarding node's id.
const ForwardedHeader = "x-provledger-forwarded-by"

// Defaults for Config fields left zero.
const (
	DefaultLeaderWait = 5 * time.Second
	// DefaultMaxChunk is the most entries forwarded in one AppendBatch
	// (the leader's service.DefaultMaxBatch).
	DefaultMaxChunk = service.DefaultMaxBatch
	// DefaultMaxChunkBytes caps the envelope bytes of one forwarded
	// AppendBatch, well below the gRPC message limit.
	DefaultMaxChunkBytes = 8 << 20
)

// Sentinel errors.
var (
	// ErrNoLeader: no leader became known within Config.LeaderWait.
	ErrNoLeader = errors.New("forward: no raft leader known")
	// ErrBadReceipt: the leader answered with a receipt that does not hold
	// together (leaf hash, checkpoint).
	ErrBadReceipt = errors.New("forward: bad receipt from the leader")
)

// Node is what forwarding needs from the Raft node; *cluster.Node
// implements it.
type Node interface {
	// ID is this node's id.
	ID() string
	// Leader is the leader this node knows, with its API address.
	Leader() (cluster.Member, bool)
	// Barrier fences a linearizable read (see cluster.Node.Barrier).
	Barrier(ctx context.Context) error
}

// Config configures a Sequencer.
type Config struct {
	// Node is the local Raft node. Required.
	Node Node
	// Local is the node's replicated sequencer (cluster.Node.NewSequencer).
	// Required.
	Local ledger.Sequencer
	// Pool holds the connections to the other nodes. Required.
	Pool *Pool
	// Keyring, if set, supplies the signers' public keys sent along with
	// forwarded entries, so a leader that trusts keys on first use
	// (provd --dev) learns the keys this node accepted. Leave nil when every
	// node has the same trust file.
	Keyring *keys.Keyring
	// Verifier, if set, checks the signature of every checkpoint the
	// leader returns (the log key); else the checkpoint is only parsed. The
	// client checks receipts either way.
	Verifier note.Verifier
	// LeaderWait bounds the wait for a leader to become known (or to
	// change, before the retry). The caller's deadline bounds it too.
	// Default DefaultLeaderWait.
	LeaderWait time.Duration
	// MaxChunk and MaxChunkBytes split a large Submit into several
	// AppendBatch calls. Defaults DefaultMaxChunk, DefaultMaxChunkBytes.
	MaxChunk      int
	MaxChunkBytes int
	// Logger receives the package's logs. Default slog.Default().
	Logger *slog.Logger
}

// Sequencer is a ledger.Sequencer for any node of a cluster: local
// submission on the leader, forwarding on a follower.
type Sequencer struct {
	cfg  Config
	lg   *slog.Logger
	pems sync.Map // keys.KeyID → []byte PEM
}

var _ ledger.Sequencer = (*Sequencer)(nil)

// New returns a forwarding sequencer.
func New(cfg Config) (*Sequencer, error) {
	switch {
	case cfg.Node == nil:
		return nil, errors.New("forward: Config.Node is required")
	case cfg.Local == nil:
		return nil, errors.New("forward: Config.Local is required")
	case cfg.Pool == nil:
		return nil, errors.New("forward: Config.Pool is required")
	case cfg.LeaderWait < 0 || cfg.MaxChunk < 0 || cfg.MaxChunkBytes < 0:
		return nil, errors.New("forward: LeaderWait, MaxChunk and MaxChunkBytes must not be negative")
	}
	if cfg.LeaderWait == 0 {
		cfg.LeaderWait = DefaultLeaderWait
	}
	if cfg.MaxChunk == 0 {
		cfg.MaxChunk = DefaultMaxChunk
	}
	if cfg.MaxChunkBytes == 0 {
		cfg.MaxChunkBytes = DefaultMaxChunkBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Sequencer{cfg: cfg, lg: cfg.Logger.With("component", "forward")}, nil
}

// forwardedBy returns the id of the node that forwarded the request in
// ctx, or "".
func forwardedBy(ctx context.Context) string {
	// ValueFromIncomingContext does not copy the whole metadata map as
	// FromIncomingContext does (this runs for every append).
	if v := metadata.ValueFromIncomingContext(ctx, ForwardedHeader); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Submit implements ledger.Sequencer. Errors that are not the ledger's are
// gRPC statuses saying what happened and what to do.
func (s *Sequencer) Submit(ctx context.Context, entries []ledger.Entry) ([]ledger.Receipt, error) {
	from := forwardedBy(ctx)
	retried := false
	// Each turn either returns, or waits for a leader (bounded by
	// LeaderWait or ctx); the bound on turns only guards against a
	// leadership that keeps flapping.
	for turn := 0; turn < 8; turn++ {
		rs, err := s.cfg.Local.Submit(ctx, entries)
		var le *cluster.LeaderError
		if err == nil || !errors.As(err, &le) {
			return rs, err // the ledger's errors are mapped by the service
		}
		if from != "" {
			// No second hop: the forwarding node retries at the leader.
			return nil, leaderStatus("append forwarded by "+from, s.cfg.Node.ID(), le)
		}
		if errors.Is(err, cluster.ErrLeadershipLost) {
			if retried {
				return nil, leaderStatus("append", s.cfg.Node.ID(), le)
			}
			retried = true
			if err := s.waitLeader(ctx, ""); err != nil {
				return nil, err
			}
			continue
		}
		addr := le.Leader.APIAddr
		if addr == "" {
			if err := s.waitLeader(ctx, ""); err != nil {
				return nil, err
			}
			continue // the local submit names the leader now
		}
		rs, err = s.forward(ctx, addr, entries)
		if err == nil {
			return rs, nil
		}
		if retried || !retryable(err) || ctx.Err() != nil {
			return nil, err
		}
		s.lg.Debug("forward to the leader failed; retrying after a leader change", "leader_api_addr", addr, "err", err)
		retried = true
		if err := s.waitLeader(ctx, addr); err != nil {
			return nil, err
		}
	}
	return nil, status.Errorf(codes.Unavailable, "append: the raft leadership keeps changing; retry in a few seconds")
}

// retryable reports whether a forwarding failure may be cured by a leader
// change: the leader is unreachable, or no longer leads.
func retryable(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable
}

// waitLeader waits (up to LeaderWait and ctx) until a leader is known
// whose API address is known and is not notAddr, or this node leads.
func (s *Sequencer) waitLeader(ctx context.Context, notAddr string) error {
	deadline := time.NewTimer(s.cfg.LeaderWait)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		m, ok := s.cfg.Node.Leader()
		if ok && (m.ID == s.cfg.Node.ID() || (m.APIAddr != "" && m.APIAddr != notAddr)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			if notAddr != "" {
				return nil // try the same leader once more
			}
			return status.Errorf(codes.Unavailable, "append: %v after %v (an election may be in progress, or a majority of the nodes is down); retry in a few seconds", ErrNoLeader, s.cfg.LeaderWait)
		case <-tick.C:
		}
	}
}

// leaderStatus turns a *cluster.LeaderError into an Unavailable status that
// names the leader.
func leaderStatus(op, self string, le *cluster.LeaderError) error {
	if errors.Is(le, cluster.ErrLeadershipLost) {
		return status.Errorf(codes.Unavailable, "%s: node %s lost the raft leadership before the batch committed; it may or may not be in the log: retry (a duplicate returns the first index)", op, self)
	}
	switch {
	case le.Leader.ID == "":
		return status.Errorf(codes.Unavailable, "%s: node %s is not the raft leader and no leader is known yet (election in progress?); retry in a few seconds", op, self)
	case le.Leader.APIAddr == "":
		return status.Errorf(codes.Unavailable, "%s: node %s is not the raft leader; the leader is %s, whose API address is not recorded yet; retry in a few seconds", op, self, le.Leader.ID)
	}
	return status.Errorf(codes.Unavailable, "%s: node %s is not the raft leader; the leader is %s at %s: send it there", op, self, le.Leader.ID, le.Leader.APIAddr)
}

// forward sends entries to the leader at addr in one or more AppendBatch
// calls and turns the answers into receipts.
func (s *Sequencer) forward(ctx context.Context, addr string, entries []ledger.Entry) ([]ledger.Receipt, error) {
	conn, err := s.cfg.Pool.Conn(addr)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "append: forward to the leader at %s: %v", addr, err)
	}
	cl := provledgerpb.NewLedgerClient(conn)
	md := metadata.Pairs(ForwardedHeader, s.cfg.Node.ID())
	if id := service.RequestID(ctx); id != "" {
		md.Append("x-request-id", id)
	}
	octx := metadata.NewOutgoingContext(ctx, md)

	chunks := s.chunks(entries)
	out := make([]ledger.Receipt, len(entries))
	errs := make([]error, len(chunks))
	var wg sync.WaitGroup
	for ci, ch := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[ci] = s.forwardChunk(octx, cl, addr, entries[ch[0]:ch[1]], out[ch[0]:ch[1]])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, e := range errs {
			if e != nil {
				return nil, e // a status: the first failure says it best
			}
		}
	}
	return out, nil
}

// chunks splits entries into [start, end) ranges of at most MaxChunk
// entries and MaxChunkBytes envelope bytes (a single larger entry alone).
func (s *Sequencer) chunks(entries []ledger.Entry) [][2]int {
	var out [][2]int
	start, size := 0, 0
	for i := range entries {
		n := len(entries[i].Envelope)
		if i > start && (i-start >= s.cfg.MaxChunk || size+n > s.cfg.MaxChunkBytes) {
			out = append(out, [2]int{start, i})
			start, size = i, 0
		}
		size += n
	}
	if start < len(entries) {
		out = append(out, [2]int{start, len(entries)})
	}
	return out
}

func (s *Sequencer) forwardChunk(ctx context.Context, cl provledgerpb.LedgerClient, addr string, entries []ledger.Entry, out []ledger.Receipt) error {
	req := &provledgerpb.AppendBatchRequest{Requests: make([]*provledgerpb.AppendRequest, len(entries))}
	for i := range entries {
		e := &entries[i]
		r := &provledgerpb.AppendRequest{Namespace: e.Namespace, Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: e.Envelope}, RequestId: uint64(i)}
		if s.cfg.Keyring != nil {
			for _, id := range e.Signers {
				if pem := s.pemOf(keys.KeyID(id)); pem != nil {
					r.PublicKeys = append(r.PublicKeys, pem)
				}
			}
		}
		req.Requests[i] = r
	}
	resp, err := cl.AppendBatch(ctx, req)
	if err != nil {
		st, _ := status.FromError(err)
		code := st.Code()
		if ctx.Err() == nil && code == codes.DeadlineExceeded {
			code = codes.Unavailable
		}
		return status.Errorf(code, "append: forwarded to the leader at %s: %s", addr, st.Message())
	}
	if len(resp.GetResponses()) != len(entries) {
		return status.Errorf(codes.Internal, "append: the leader at %s answered %d of %d forwarded entries", addr, len(resp.GetResponses()), len(entries))
	}
	cps := map[string]*ledger.Checkpoint{}
	for i, r := range resp.GetResponses() {
		if e := r.GetError(); e != nil {
			out[i].Err = status.Error(codes.Code(e.GetCode()), e.GetMessage())
			continue
		}
		rc, err := s.receipt(r, cps)
		if err != nil {
			s.lg.Error("bad receipt from the leader", "leader_api_addr", addr, "err", err)
			return status.Errorf(codes.Internal, "append: the leader at %s returned a bad receipt for entry %d: %v", addr, i, err)
		}
		out[i] = rc
	}
	return nil
}

// receipt converts and checks one forwarded answer. cps caches the
// checkpoints of one response (usually one for the whole batch).
func (s *Sequencer) receipt(r *provledgerpb.AppendResponse, cps map[string]*ledger.Checkpoint) (ledger.Receipt, error) {
	if len(r.GetLeafHash()) != 32 {
		return ledger.Receipt{}, fmt.Errorf("%w: leaf hash of %d bytes", ErrBadReceipt, len(r.GetLeafHash()))
	}
	leaf := [32]byte(r.GetLeafHash())
	if proof.LeafHash(r.GetRecord()) != leaf {
		return ledger.Receipt{}, fmt.Errorf("%w: leaf hash of index %d is not the hash of its record", ErrBadReceipt, r.GetIndex())
	}
	cp, ok := cps[string(r.GetCheckpoint())]
	if !ok {
		c, err := s.parseCheckpoint(r.GetCheckpoint())
		if err != nil {
			return ledger.Receipt{}, err
		}
		cp = c
		cps[string(r.GetCheckpoint())] = c
	}
	if r.GetIndex() >= cp.Size {
		return ledger.Receipt{}, fmt.Errorf("%w: index %d is not below the checkpoint's size %d", ErrBadReceipt, r.GetIndex(), cp.Size)
	}
	return ledger.Receipt{
		Result:     ledger.Result{Index: r.GetIndex(), LeafHash: leaf, Record: r.GetRecord(), Duplicate: r.GetDuplicate()},
		Checkpoint: cp,
		Proof:      r.GetInclusionProof(),
	}, nil
}

func (s *Sequencer) parseCheckpoint(n []byte) (*ledger.Checkpoint, error) {
	var (
		c   checkpoint.Checkpoint
		err error
	)
	if s.cfg.Verifier != nil {
		c, err = checkpoint.Open(n, s.cfg.Verifier)
	} else {
		i := bytes.Index(n, []byte("\n\n"))
		if i < 0 {
			return nil, fmt.Errorf("%w: the checkpoint is not a signed note", ErrBadReceipt)
		}
		c, err = checkpoint.ParseBody(n[:i+1])
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadReceipt, err)
	}
	return &ledger.Checkpoint{Checkpoint: c, Note: n}, nil
}

// pemOf returns the PEM public key of id from the keyring, or nil.
func (s *Sequencer) pemOf(id keys.KeyID) []byte {
	if v, ok := s.pems.Load(id); ok {
		return v.([]byte)
	}
	pub, ok := s.cfg.Keyring.Lookup(id)
	if !ok {
		return nil
	}
	pem, err := keys.MarshalPublicPEM(pub)
	if err != nil {
		return nil
	}
	s.pems.Store(id, pem)
	return pem
}

// ReadFence implements the service's read fence for
// CONSISTENCY_LINEARIZABLE reads: on the leader it commits a barrier, so
// the local ledger holds every acknowledged append; elsewhere it fails
// with FailedPrecondition naming the leader.
func (s *Sequencer) ReadFence(ctx context.Context) error {
	err := s.cfg.Node.Barrier(ctx)
	var le *cluster.LeaderError
	if !errors.As(err, &le) {
		return err
	}
	self := s.cfg.Node.ID()
	switch {
	case errors.Is(err, cluster.ErrLeadershipLost):
		return status.Errorf(codes.Unavailable, "linearizable read: node %s lost the raft leadership; retry at the new leader", self)
	case le.Leader.ID == "":
		return status.Errorf(codes.FailedPrecondition, "linearizable read: node %s is not the raft leader and no leader is known yet; retry in a few seconds, or read with CONSISTENCY_STALE", self)
	case le.Leader.APIAddr == "":
		return status.Errorf(codes.FailedPrecondition, "linearizable read: node %s is not the raft leader; the leader is %s (API address not recorded yet): retry shortly, or read with CONSISTENCY_STALE", self, le.Leader.ID)
	}
	return status.Errorf(codes.FailedPrecondition, "linearizable read: node %s is not the raft leader; send the read to the leader %s at %s, or read with CONSISTENCY_STALE", self, le.Leader.ID, le.Leader.APIAddr)
}
