// Package clusterservice implements the provledger Cluster gRPC service
// (provledgerpb.ClusterServer) over a raft/cluster Node: status of every
// member, and membership changes (Join, Remove, TransferLeadership).
//
// Every node serves it. A membership change sent to a follower is
// forwarded to the leader's API address (one hop, marked with
// forward.ForwardedHeader), so `prov cluster join` works against any node.
package clusterservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/forward"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/cluster"
)

// DefaultPeerTimeout bounds the Status call to each other member.
const DefaultPeerTimeout = 2 * time.Second

// Config configures a Service.
type Config struct {
	// Node is the local Raft node. Required.
	Node *cluster.Node
	// Pool holds the connections to the other nodes. Required.
	Pool *forward.Pool
	// PeerTimeout bounds each member's Status answer. Default
	// DefaultPeerTimeout.
	PeerTimeout time.Duration
	// DialRaft connects to a Raft address: the leader dials a joining
	// node's raft_address with it before adding a new voter. Give it the
	// node's Raft dialer (cluster.Config.Dial), so that in a TLS cluster
	// the probe checks the joining node's certificate too. Default plain
	// TCP.
	DialRaft func(ctx context.Context, addr string) (net.Conn, error)
	// ProbeTimeout bounds that dial. Default DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// Logger receives the service's logs. Default slog.Default().
	Logger *slog.Logger
}

// Service implements provledgerpb.ClusterServer.
type Service struct {
	provledgerpb.UnimplementedClusterServer
	cfg Config
	lg  *slog.Logger
	lag lagTracker
}

var _ provledgerpb.ClusterServer = (*Service)(nil)

// New returns the Cluster service of cfg.Node.
func New(cfg Config) (*Service, error) {
	if cfg.Node == nil || cfg.Pool == nil {
		return nil, errors.New("clusterservice: Config.Node and Config.Pool are required")
	}
	if cfg.PeerTimeout <= 0 {
		cfg.PeerTimeout = DefaultPeerTimeout
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = DefaultProbeTimeout
	}
	if cfg.DialRaft == nil {
		cfg.DialRaft = defaultDialRaft
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{cfg: cfg, lg: cfg.Logger.With("component", "cluster-api")}, nil
}

// NodeStatus converts a cluster.Status.
func NodeStatus(st cluster.Status) *provledgerpb.NodeStatus {
	ns := &provledgerpb.NodeStatus{
		Id: st.ID, RaftAddress: st.RaftAddr, ApiAddress: st.APIAddr, State: st.State, Term: st.Term,
		LastLogIndex: st.LastLogIndex, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
		LastSnapshotIndex: st.LastSnapshotIndex, LedgerAppliedIndex: st.LedgerAppliedIndex,
		LastContact: st.LastContact,
	}
	if cp := st.Checkpoint; cp != nil {
		ns.Checkpoint = &provledgerpb.Checkpoint{Note: cp.Note, Origin: cp.Origin, Size: cp.Size, RootHash: cp.Hash[:]}
	}
	if st.Err != nil {
		ns.Error = st.Err.Error()
	}
	return ns
}

func memberProto(m cluster.Member) *provledgerpb.ClusterMember {
	return &provledgerpb.ClusterMember{Id: m.ID, RaftAddress: m.RaftAddr, ApiAddress: m.APIAddr, Voter: m.Voter, Leader: m.Leader}
}

// Status implements provledgerpb.ClusterServer: this node's status, the
// leader, and every member with its own status (asked concurrently, each
// within PeerTimeout).
func (s *Service) Status(ctx context.Context, req *provledgerpb.ClusterStatusRequest) (*provledgerpb.ClusterStatusResponse, error) {
	n := s.cfg.Node
	self := NodeStatus(n.Status())
	resp := &provledgerpb.ClusterStatusResponse{Node: self, Leader: &provledgerpb.ClusterMember{}}
	if l, ok := n.Leader(); ok {
		resp.Leader = memberProto(l)
	}
	if req.GetLocalOnly() {
		return resp, nil
	}
	ms, err := n.Members(ctx)
	if err != nil {
		return nil, s.errStatus("cluster status", err)
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		pm := memberProto(m)
		resp.Members = append(resp.Members, pm)
		switch {
		case m.ID == n.ID():
			pm.Status = self
		case m.APIAddr == "":
			pm.StatusError = "API address not recorded yet (the node has not registered)"
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				pm.Status, pm.StatusError = s.peerStatus(ctx, m.APIAddr)
			}()
		}
	}
	wg.Wait()
	return resp, nil
}

func (s *Service) peerStatus(ctx context.Context, addr string) (*provledgerpb.NodeStatus, string) {
	conn, err := s.cfg.Pool.Conn(addr)
	if err != nil {
		return nil, err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PeerTimeout)
	defer cancel()
	r, err := provledgerpb.NewClusterClient(conn).Status(ctx, &provledgerpb.ClusterStatusRequest{LocalOnly: true})
	if err != nil {
		st, _ := status.FromError(err)
		return nil, fmt.Sprintf("%s: %s (%s)", addr, st.Message(), st.Code())
	}
	return r.GetNode(), ""
}

// Join implements provledgerpb.ClusterServer. Malformed fields are
// InvalidArgument on any node; the leader then refuses an id or Raft
// address that belongs to another member (AlreadyExists) and a new voter
// whose Raft address it cannot dial (FailedPrecondition, unless force).
func (s *Service) Join(ctx context.Context, req *provledgerpb.JoinRequest) (*provledgerpb.JoinResponse, error) {
	if err := checkJoinSyntax(req); err != nil {
		return nil, err
	}
	if s.cfg.Node.IsLeader() {
		if err := s.checkJoin(ctx, req); err != nil {
			return nil, err
		}
	}
	err := s.cfg.Node.Join(ctx, req.GetNodeId(), req.GetRaftAddress(), req.GetApiAddress())
	if conn, fwd, ferr := s.toLeader(ctx, "join", err); fwd {
		if ferr != nil {
			return nil, ferr
		}
		return provledgerpb.NewClusterClient(conn).Join(s.outgoing(ctx), req)
	}
	if err != nil {
		return nil, s.errStatus("", err) // err names the operation and node
	}
	ms, err := s.members(ctx)
	return &provledgerpb.JoinResponse{Members: ms}, err
}

// Remove implements provledgerpb.ClusterServer. The leader refuses an id
// that is no member (NotFound), the last voter and itself
// (FailedPrecondition: transfer the leadership first).
func (s *Service) Remove(ctx context.Context, req *provledgerpb.RemoveRequest) (*provledgerpb.RemoveResponse, error) {
	if req.GetNodeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "remove: node_id is required (see prov cluster status for the members)")
	}
	if err := CheckNodeID(req.GetNodeId()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "remove: %v (see prov cluster status for the members)", err)
	}
	if s.cfg.Node.IsLeader() {
		if err := s.checkRemove(ctx, req.GetNodeId()); err != nil {
			return nil, err
		}
	}
	err := s.cfg.Node.Remove(ctx, req.GetNodeId())
	if conn, fwd, ferr := s.toLeader(ctx, "remove", err); fwd {
		if ferr != nil {
			return nil, ferr
		}
		return provledgerpb.NewClusterClient(conn).Remove(s.outgoing(ctx), req)
	}
	if err != nil {
		return nil, s.errStatus("", err)
	}
	ms, err := s.members(ctx)
	return &provledgerpb.RemoveResponse{Members: ms}, err
}

// TransferLeadership implements provledgerpb.ClusterServer.
func (s *Service) TransferLeadership(ctx context.Context, req *provledgerpb.TransferLeadershipRequest) (*provledgerpb.TransferLeadershipResponse, error) {
	if s.cfg.Node.IsLeader() { // the caller's mistakes, which raft reports as plain errors
		if req.GetNodeId() == s.cfg.Node.ID() {
			return nil, status.Errorf(codes.FailedPrecondition, "transfer leadership: %s already leads; name another member, or none to let Raft pick one", req.GetNodeId())
		}
		if ms, err := s.cfg.Node.Members(ctx); err == nil && len(ms) < 2 {
			return nil, status.Error(codes.FailedPrecondition, "transfer leadership: this node is the only member; add another first (prov cluster join)")
		}
	}
	err := s.cfg.Node.TransferLeadership(ctx, req.GetNodeId())
	if conn, fwd, ferr := s.toLeader(ctx, "transfer leadership", err); fwd {
		if ferr != nil {
			return nil, ferr
		}
		return provledgerpb.NewClusterClient(conn).TransferLeadership(s.outgoing(ctx), req)
	}
	if err != nil {
		return nil, s.errStatus("", err)
	}
	// Wait (briefly) until a leader is known again, so the answer names it.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		if l, ok := s.cfg.Node.Leader(); ok && l.ID != s.cfg.Node.ID() {
			return &provledgerpb.TransferLeadershipResponse{Leader: memberProto(l)}, nil
		}
		select {
		case <-wctx.Done():
			l, _ := s.cfg.Node.Leader()
			return &provledgerpb.TransferLeadershipResponse{Leader: memberProto(l)}, nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// toLeader decides whether a membership call that failed with err must go
// to the leader: fwd is true when err says this node is not the leader;
// conn is then the leader's connection, or ferr says why the request
// cannot be forwarded (already forwarded once, or no leader known).
func (s *Service) toLeader(ctx context.Context, op string, err error) (conn *grpc.ClientConn, fwd bool, ferr error) {
	var le *cluster.LeaderError
	if !errors.As(err, &le) {
		return nil, false, nil
	}
	self := s.cfg.Node.ID()
	switch {
	case errors.Is(err, cluster.ErrLeadershipLost):
		return nil, true, status.Errorf(codes.Unavailable, "%s: node %s lost the raft leadership during the change; check prov cluster status and retry", op, self)
	case le.Leader.ID == "" || le.Leader.APIAddr == "":
		return nil, true, status.Errorf(codes.Unavailable, "%s: node %s is not the raft leader and the leader's API address is not known yet; retry in a few seconds", op, self)
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(forward.ForwardedHeader)) > 0 {
		return nil, true, status.Errorf(codes.Unavailable, "%s: node %s is not the raft leader (the leader is %s at %s); retry", op, self, le.Leader.ID, le.Leader.APIAddr)
	}
	conn, cerr := s.cfg.Pool.Conn(le.Leader.APIAddr)
	if cerr != nil {
		return nil, true, status.Errorf(codes.Unavailable, "%s: forward to the leader %s at %s: %v", op, le.Leader.ID, le.Leader.APIAddr, cerr)
	}
	return conn, true, nil
}

func (s *Service) outgoing(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, forward.ForwardedHeader, s.cfg.Node.ID())
}

func (s *Service) members(ctx context.Context) ([]*provledgerpb.ClusterMember, error) {
	ms, err := s.cfg.Node.Members(ctx)
	if err != nil {
		return nil, s.errStatus("members", err)
	}
	out := make([]*provledgerpb.ClusterMember, len(ms))
	for i, m := range ms {
		out[i] = memberProto(m)
	}
	return out, nil
}

// errStatus maps the cluster package's errors onto gRPC codes. An empty op
// means err already names the operation.
func (s *Service) errStatus(op string, err error) error {
	msg := err.Error()
	if op != "" {
		msg = op + ": " + msg
	}
	switch {
	case errors.Is(err, cluster.ErrExists):
		return status.Errorf(codes.AlreadyExists, "%s; remove that member first or use another node id / address", msg)
	case errors.Is(err, cluster.ErrNoMember):
		return status.Errorf(codes.NotFound, "%s; see prov cluster status for the members", msg)
	case errors.Is(err, ledger.ErrClosed):
		return status.Errorf(codes.Unavailable, "%s: the node is shutting down; retry against another node", msg)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s; the change may still happen: check prov cluster status", msg)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s", msg)
	}
	var le *cluster.LeaderError
	if errors.As(err, &le) {
		return status.Errorf(codes.Unavailable, "%s; retry", msg)
	}
	s.lg.Error("cluster operation failed", "err", msg)
	return status.Errorf(codes.Internal, "%s", msg)
}
