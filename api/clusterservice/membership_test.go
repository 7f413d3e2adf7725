package clusterservice_test

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/clusterservice"
	"github.com/provledger/provledger/api/provledgerpb"
)

// TestMembershipChecks: on a real 3-node cluster over TCP, every refused
// Join and Remove gets its precise status and a message naming what to
// fix, whether sent to the leader or to a follower (forwarded), and leaves
// the membership as it was; then a forced join of an unreachable node, and
// the removal of a follower, go through.
func TestMembershipChecks(t *testing.T) {
	ns := newCluster(t, 3, nil)
	l, fs := leaderOf(t, ns)
	f := fs[0]
	ctx := ctxT(t, 60*time.Second)
	before := members(t, ns)
	dead := closedAddr(t)

	join := func(via *tnode, id, raft, api string) func() error {
		return func() error {
			_, err := via.client.Join(ctx, &provledgerpb.JoinRequest{NodeId: id, RaftAddress: raft, ApiAddress: api})
			return err
		}
	}
	remove := func(via *tnode, id string) func() error {
		return func() error {
			_, err := via.client.Remove(ctx, &provledgerpb.RemoveRequest{NodeId: id})
			return err
		}
	}
	for _, tc := range []struct {
		name string
		call func() error
		code codes.Code
		msg  []string // substrings of the message
	}{
		{"join without addresses", join(l, "n4", "", ""), codes.InvalidArgument, []string{"raft_address and api_address are required"}},
		{"join with a bad node id", join(f, "n 4", dead, dead), codes.InvalidArgument, []string{`node id "n 4"`, "is not a letter"}},
		{"join with a node id too long", join(l, strings.Repeat("n", 129), dead, dead), codes.InvalidArgument, []string{"node id is 129 bytes; the limit is 128"}},
		{"join with no port", join(l, "n4", "127.0.0.1", dead), codes.InvalidArgument, []string{"raft_address", "not HOST:PORT"}},
		{"join with port 0", join(l, "n4", "127.0.0.1:0", dead), codes.InvalidArgument, []string{"port \"0\" must be a number from 1 to 65535"}},
		{"join with port out of range", join(f, "n4", "127.0.0.1:70000", dead), codes.InvalidArgument, []string{"port \"70000\""}},
		{"join with a wildcard host", join(l, "n4", "0.0.0.0:7402", dead), codes.InvalidArgument, []string{"0.0.0.0 is not an address another node can dial"}},
		{"join with a bad API host", join(l, "n4", dead, "no_such host:1"), codes.InvalidArgument, []string{"api_address", "neither an IP address nor a DNS name"}},
		{"join an unreachable address", join(l, "n4", dead, dead), codes.FailedPrecondition, []string{"cannot reach raft address " + dead, "--force"}},
		{"join an unreachable address via a follower", join(f, "n4", dead, dead), codes.FailedPrecondition, []string{"cannot reach raft address " + dead, "leader " + l.id}},
		{"join a member's id at another address", join(f, f.id, dead, dead), codes.AlreadyExists, []string{f.id + " is already a member at raft address " + f.node.RaftAddr(), "remove it first"}},
		{"join a member's address with another id", join(l, "n4", f.node.RaftAddr(), dead), codes.AlreadyExists, []string{"raft address " + f.node.RaftAddr() + " belongs to member " + f.id}},
		{"remove without an id", remove(l, ""), codes.InvalidArgument, []string{"node_id is required"}},
		{"remove a malformed id", remove(f, "-x"), codes.InvalidArgument, []string{"must start with a letter or digit"}},
		{"remove an unknown id", remove(l, "n9"), codes.NotFound, []string{`no member has node id "n9"`, "n1, n2, n3"}},
		{"remove an unknown id via a follower", remove(f, "n9"), codes.NotFound, []string{`no member has node id "n9"`}},
		{"remove the leader", remove(l, l.id), codes.FailedPrecondition, []string{l.id + " is the raft leader", "transfer the leadership first"}},
		{"remove the leader via a follower", remove(f, l.id), codes.FailedPrecondition, []string{"transfer the leadership first"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st := status.Convert(err)
			if st.Code() != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			for _, m := range tc.msg {
				if !strings.Contains(st.Message(), m) {
					t.Errorf("message %q does not say %q", st.Message(), m)
				}
			}
			if now := members(t, ns); !slices.Equal(now, before) {
				t.Fatalf("membership changed by a refused request:\n%q\nwas\n%q", now, before)
			}
		})
	}

	// force adds a voter the leader cannot reach (4 voters, 3 up: the
	// quorum of 3 still commits), and it can be removed again.
	resp, err := f.client.Join(ctx, &provledgerpb.JoinRequest{NodeId: "n4", RaftAddress: dead, ApiAddress: dead, Force: true})
	if err != nil {
		t.Fatalf("forced join: %v", err)
	}
	if len(resp.GetMembers()) != 4 {
		t.Fatalf("forced join: members %v", resp.GetMembers())
	}
	if _, err := l.client.Remove(ctx, &provledgerpb.RemoveRequest{NodeId: "n4"}); err != nil {
		t.Fatalf("remove the forced voter: %v", err)
	}
	if now := members(t, ns); !slices.Equal(now, before) {
		t.Fatalf("after join and remove of n4: %q, was %q", now, before)
	}

	// Joining again with the same id and address only moves the API
	// address (not dialed: nothing is added).
	moved := closedAddr(t)
	if _, err := l.client.Join(ctx, &provledgerpb.JoinRequest{NodeId: f.id, RaftAddress: f.node.RaftAddr(), ApiAddress: moved}); err != nil {
		t.Fatalf("re-join with a new API address: %v", err)
	}
	waitFor(t, "the new API address", func() bool { a, _ := l.node.FSM().APIAddr(f.id); return a == moved })
	if _, err := l.client.Join(ctx, &provledgerpb.JoinRequest{NodeId: f.id, RaftAddress: f.node.RaftAddr(), ApiAddress: f.api}); err != nil {
		t.Fatalf("re-join with the old API address: %v", err)
	}

	// A follower goes, asked through the other follower.
	resp2, err := fs[1].client.Remove(ctx, &provledgerpb.RemoveRequest{NodeId: f.id})
	if err != nil {
		t.Fatalf("remove follower %s: %v", f.id, err)
	}
	if len(resp2.GetMembers()) != 2 {
		t.Fatalf("after removing %s: members %v", f.id, resp2.GetMembers())
	}
}

// TestRemoveLastVoter: the only voter of a cluster cannot be removed.
func TestRemoveLastVoter(t *testing.T) {
	svc, n := oneNode(t)
	ctx := ctxT(t, 20*time.Second)
	_, err := svc.Remove(ctx, &provledgerpb.RemoveRequest{NodeId: n.ID()})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "only voter") {
		t.Fatalf("remove the only voter: %v", err)
	}
	if ms, err := n.Members(ctx); err != nil || len(ms) != 1 || !n.IsLeader() {
		t.Fatalf("after a refused remove: %v, %v, leader %v", ms, err, n.IsLeader())
	}
}

// TestCheckAddress covers the address syntax the Join check accepts.
func TestCheckAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:7402", true},
		{"[::1]:7402", true},
		{"node-1.prod.example:7402", true},
		{"provd_n1:65535", true},
		{"localhost.:1", true},
		{"", false},
		{"127.0.0.1", false},
		{"127.0.0.1:", false},
		{"127.0.0.1:0", false},
		{"127.0.0.1:065", false},
		{"127.0.0.1:65536", false},
		{"127.0.0.1:-1", false},
		{"127.0.0.1:http", false},
		{":7402", false},
		{"0.0.0.0:7402", false},
		{"[::]:7402", false},
		{"224.0.0.1:7402", false},
		{"-bad.example:1", false},
		{"a..b:1", false},
		{"host name:1", false},
		{"h\x00:1", false},
		{strings.Repeat("a", 64) + ".example:1", false},
		{strings.Repeat("a.", 1100) + "b:1", false},
	} {
		err := checkAddr(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddress(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
		if h, p, serr := net.SplitHostPort(tc.addr); tc.ok && (serr != nil || h == "" || p == "") {
			t.Errorf("%q accepted but not HOST:PORT", tc.addr)
		}
	}
}

func checkAddr(a string) error { return clusterservice.CheckAddress("raft_address", a) }
