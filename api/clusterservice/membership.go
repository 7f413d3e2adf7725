package clusterservice

import (
	"context"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/raft/cluster"
)

// DefaultProbeTimeout bounds the leader's dial of a joining node's Raft
// address.
const DefaultProbeTimeout = 2 * time.Second

// The leader's checks of a membership change, run before anything is
// proposed to Raft. They read the current configuration; a concurrent
// change (another admin) can still race them, which Raft then orders.

// checkJoinSyntax refuses a JoinRequest whose fields are malformed; any
// node runs it before forwarding.
func checkJoinSyntax(req *provledgerpb.JoinRequest) error {
	if req.GetNodeId() == "" || req.GetRaftAddress() == "" || req.GetApiAddress() == "" {
		return status.Error(codes.InvalidArgument, "join: node_id, raft_address and api_address are required: the joining node's --node-id, --raft-advertise (default --raft-addr) and --api-advertise (default --grpc-addr)")
	}
	if err := CheckNodeID(req.GetNodeId()); err != nil {
		return status.Errorf(codes.InvalidArgument, "join: %v", err)
	}
	for _, f := range []struct{ name, addr string }{{"raft_address", req.GetRaftAddress()}, {"api_address", req.GetApiAddress()}} {
		if err := CheckAddress(f.name, f.addr); err != nil {
			return status.Errorf(codes.InvalidArgument, "join %s: %v", req.GetNodeId(), err)
		}
	}
	return nil
}

// checkJoin runs on the leader: an id or Raft address that belongs to
// another member is refused (Raft would replace that member, dropping a
// healthy voter on a typo); a new voter's Raft address must answer a dial
// (unless req.Force): a voter that can never vote counts against the
// quorum. A member joining again with its own id and address only updates
// its API address, and is not dialed.
func (s *Service) checkJoin(ctx context.Context, req *provledgerpb.JoinRequest) error {
	id, addr := req.GetNodeId(), req.GetRaftAddress()
	ms, err := s.cfg.Node.Members(ctx)
	if err != nil {
		return s.errStatus("join "+id, err)
	}
	for _, m := range ms {
		switch {
		case m.ID == id && m.RaftAddr == addr:
			return nil // joining again: only the API address changes
		case m.ID == id:
			return status.Errorf(codes.AlreadyExists, "join %s: %s is already a member at raft address %s, not %s: a member does not move by joining again; to move it, remove it first (prov cluster remove %s) and join it again from an empty --data directory", id, id, m.RaftAddr, addr, id)
		case m.RaftAddr == addr:
			return status.Errorf(codes.AlreadyExists, "join %s: raft address %s belongs to member %s; give the joining node's own --raft-advertise address, or remove %s first (prov cluster remove %s)", id, addr, m.ID, m.ID, m.ID)
		}
	}
	if req.GetForce() {
		s.lg.Warn("join: raft address not probed (force)", "id", id, "raft_addr", addr)
		return nil
	}
	return s.probe(ctx, id, addr)
}

// probe dials a joining node's Raft address with the node's own Raft
// dialer (over TLS in a TLS cluster, so the handshake also checks the
// joining node's certificate) and hangs up.
func (s *Service) probe(ctx context.Context, id, addr string) error {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	defer cancel()
	c, err := s.cfg.DialRaft(pctx, addr)
	if err != nil {
		if ctx.Err() != nil {
			return status.Errorf(status.FromContextError(ctx.Err()).Code(), "join %s: %v", id, ctx.Err())
		}
		return status.Errorf(codes.FailedPrecondition,
			"join %s: the leader %s cannot reach raft address %s within %v (%v): start the node first (provd --node-id %s --raft-advertise %s), check the address, firewall and certificates; or add it anyway with prov cluster join --force (JoinRequest.force; a voter that never answers costs the cluster a vote of its quorum)",
			id, s.cfg.Node.ID(), addr, s.cfg.ProbeTimeout, err, id, addr)
	}
	c.Close()
	return nil
}

// checkRemove runs on the leader: the id must be a member; the last voter
// and the leader itself are refused (the leader would step down in the
// middle of its own change: transfer the leadership first).
func (s *Service) checkRemove(ctx context.Context, id string) error {
	ms, err := s.cfg.Node.Members(ctx)
	if err != nil {
		return s.errStatus("remove "+id, err)
	}
	var found *cluster.Member
	voters := 0
	ids := make([]string, 0, len(ms))
	for i, m := range ms {
		ids = append(ids, m.ID)
		if m.Voter {
			voters++
		}
		if m.ID == id {
			found = &ms[i]
		}
	}
	switch {
	case found == nil:
		return status.Errorf(codes.NotFound, "remove %s: no member has node id %q; the members are %s", id, id, strings.Join(ids, ", "))
	case found.Voter && voters == 1:
		return status.Errorf(codes.FailedPrecondition, "remove %s: %s is the cluster's only voter; removing it would leave no cluster to serve the log (join another node first, then transfer the leadership to it)", id, id)
	case id == s.cfg.Node.ID():
		return status.Errorf(codes.FailedPrecondition, "remove %s: %s is the raft leader; transfer the leadership first (prov cluster transfer-leadership), then remove %s", id, id, id)
	}
	return nil
}

func defaultDialRaft(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}
