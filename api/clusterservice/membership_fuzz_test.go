package clusterservice_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/provledger/provledger/api/clusterservice"
	"github.com/provledger/provledger/api/provledgerpb"
)

// loopbackOnly is the fuzz cluster's Raft dialer for the Join probe: a
// real dial of loopback IP addresses, and "unreachable" for any other
// host, so that no fuzz input makes the test resolve names or leave the
// machine.
func loopbackOnly(ctx context.Context, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, errors.New("unreachable: the fuzz test dials loopback addresses only")
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// decoy is a TCP port that accepts connections and hangs up: reachable,
// but no Raft node. A voter joined at it is rolled back by the fuzz test.
func decoy(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// FuzzClusterMembershipRPC decodes arbitrary bytes as a JoinRequest or a
// RemoveRequest and sends it to one of the nodes of a real 3-node cluster
// (a follower forwards it to the leader). Whatever the fields: no panic,
// no Internal or Unknown status, a message with every refusal, and a
// refused request leaves the membership (ids, Raft and API addresses) as
// it was. Requests that pass every check are rolled back so the next
// input meets the same cluster: a voter added at a reachable address (a
// decoy port, or anything listening on loopback) is removed again, an API
// address changed by a member joining again is set back. Removing a
// running follower is the one valid change the fuzz test does not send
// (TestMembershipChecks does): its rollback would be a re-join of a node
// Raft has cut off.
func FuzzClusterMembershipRPC(f *testing.F) {
	ns := newCluster(f, 3, func(c *clusterservice.Config) {
		c.DialRaft, c.ProbeTimeout = loopbackOnly, 300*time.Millisecond
	})
	before := members(f, ns)
	live := map[string]bool{}
	for _, tn := range ns {
		live[tn.id] = true
	}
	// Seeds with this run's addresses; testdata/fuzz holds static ones.
	n2 := ns[1]
	for _, s := range []struct {
		w uint8
		m proto.Message
	}{
		{0, &provledgerpb.JoinRequest{NodeId: "n4", RaftAddress: decoy(f), ApiAddress: "127.0.0.1:1"}},
		{2, &provledgerpb.JoinRequest{NodeId: "n5", RaftAddress: closedAddr(f), ApiAddress: "127.0.0.1:1", Force: true}},
		{4, &provledgerpb.JoinRequest{NodeId: "n6", RaftAddress: closedAddr(f), ApiAddress: "127.0.0.1:1"}},
		{2, &provledgerpb.JoinRequest{NodeId: n2.id, RaftAddress: n2.node.RaftAddr(), ApiAddress: "127.0.0.1:2"}},
		{0, &provledgerpb.JoinRequest{NodeId: n2.id, RaftAddress: closedAddr(f), ApiAddress: n2.api}},
		{4, &provledgerpb.JoinRequest{NodeId: "n7", RaftAddress: n2.node.RaftAddr(), ApiAddress: n2.api}},
		{1, &provledgerpb.RemoveRequest{NodeId: "n1"}},
		{3, &provledgerpb.RemoveRequest{NodeId: "n1"}},
	} {
		b, err := proto.Marshal(s.m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.w, b)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		via := ns[int(which/2)%len(ns)].svc
		var (
			err error
			req proto.Message
		)
		switch which % 2 {
		case 0:
			r := &provledgerpb.JoinRequest{}
			if proto.Unmarshal(body, r) != nil {
				return
			}
			req = r
			if _, err = via.Join(ctx, r); err == nil {
				rollbackJoin(t, ns, r, before)
			}
		case 1:
			r := &provledgerpb.RemoveRequest{}
			if proto.Unmarshal(body, r) != nil {
				return
			}
			if l, _ := leaderOf(t, ns); live[r.GetNodeId()] && r.GetNodeId() != l.id {
				return // see above
			}
			req = r
			if _, err = via.Remove(ctx, r); err == nil {
				t.Fatalf("Remove(%v) succeeded: only running followers can be removed from this cluster, and the test does not send those", r)
			}
		}
		st := status.Convert(err)
		switch st.Code() {
		case codes.OK, codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists:
		default:
			t.Fatalf("%T(%v): status %v", req, req, st)
		}
		if st.Code() != codes.OK && st.Message() == "" {
			t.Fatalf("%T(%v): %v without a message", req, req, st.Code())
		}
		if now := members(t, ns); !slices.Equal(now, before) {
			t.Fatalf("%T(%v) -> %v: membership\n%q\nwas\n%q", req, req, st.Code(), now, before)
		}
	})
}

// rollbackJoin undoes a Join that went through: a new member is removed,
// a member that joined again gets its API address back.
func rollbackJoin(t *testing.T, ns []*tnode, r *provledgerpb.JoinRequest, before []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, _ := leaderOf(t, ns)
	for _, tn := range ns {
		if tn.id == r.GetNodeId() {
			if err := l.node.Join(ctx, tn.id, tn.node.RaftAddr(), tn.api); err != nil {
				t.Fatalf("rollback of %v: %v", r, err)
			}
			waitFor(t, "the API addresses back", func() bool { return slices.Equal(members(t, ns), before) })
			return
		}
	}
	if err := l.node.Remove(ctx, r.GetNodeId()); err != nil {
		t.Fatalf("rollback of %v: remove: %v", r, err)
	}
}
