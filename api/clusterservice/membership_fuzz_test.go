package clusterservice_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/provledger/provledger/api/clusterservice"
	"github.com/provledger/provledger/api/provledgerpb"
)

// fuzzDialer is the fuzz cluster's Raft dialer for the Join probe: a
// real dial of the addresses allowed (the cluster's own while it forms,
// then the decoy only), and "unreachable" for any other, so that no fuzz
// input makes the test resolve names, leave the machine, or add as a voter
// a Raft node of another test or cluster that happens to listen on
// loopback (its leader would send it entries).
type fuzzDialer struct {
	mu      sync.Mutex
	allowed func(addr string) bool
}

func (d *fuzzDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	ok := d.allowed(addr)
	d.mu.Unlock()
	if !ok {
		return nil, errors.New("unreachable: the fuzz test dials its own decoy address only")
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", addr)
}

func (d *fuzzDialer) allow(f func(addr string) bool) {
	d.mu.Lock()
	d.allowed = f
	d.mu.Unlock()
}

// decoy is a TCP port that accepts connections and hangs up: reachable,
// but no Raft node. A voter joined at it is rolled back by the fuzz test.
func decoy(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return hangUp(t, ln, nil)
}

// hangUp accepts ln's connections until the test ends, runs first (if
// set) on each, and closes it; it returns ln's address.
func hangUp(t testing.TB, ln net.Listener, first func(net.Conn)) string {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if first != nil {
				first(c)
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
// input meets the same cluster: a voter added at the one address the
// probe reaches (a decoy port) or with force is removed again, an API
// address changed by a member joining again is set back. A forced join
// (no probe) of a well-formed address other than the cluster's own is
// sent with the decoy's address instead. Removing a
// running follower is the one valid change the fuzz test does not send
// (TestMembershipChecks does): its rollback would be a re-join of a node
// Raft has cut off.
func FuzzClusterMembershipRPC(f *testing.F) {
	fd := &fuzzDialer{}
	fd.allow(func(addr string) bool { // while the cluster forms: its nodes
		host, _, _ := net.SplitHostPort(addr)
		return host == "127.0.0.1"
	})
	ns := newCluster(f, 3, func(c *clusterservice.Config) {
		c.DialRaft, c.ProbeTimeout = fd.dial, 300*time.Millisecond
	})
	reachable := decoy(f)
	fd.allow(func(addr string) bool { return addr == reachable })
	before := members(f, ns)
	live, own := map[string]bool{}, map[string]bool{}
	for _, tn := range ns {
		live[tn.id], own[tn.node.RaftAddr()] = true, true
	}
	// Seeds with this run's addresses; testdata/fuzz holds static ones.
	n2 := ns[1]
	for _, s := range []struct {
		w uint8
		m proto.Message
	}{
		{0, &provledgerpb.JoinRequest{NodeId: "n4", RaftAddress: reachable, ApiAddress: "127.0.0.1:1"}},
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
			if r.GetForce() && clusterservice.CheckAddress("raft_address", r.GetRaftAddress()) == nil && !own[r.GetRaftAddress()] {
				// A forced voter is not probed: Raft would dial whatever
				// it names (a name to resolve, another test's node).
				r.RaftAddress = reachable
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
