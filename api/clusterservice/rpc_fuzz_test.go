package clusterservice_test

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/provledger/provledger/api/clusterservice"
	"github.com/provledger/provledger/api/forward"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/cluster"
)

// oneNode is a real one-voter Raft cluster on 127.0.0.1 with its Cluster
// service.
func oneNode(t testing.TB) (*clusterservice.Service, *cluster.Node) {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	s, err := checkpoint.NewSigner("test/clusterservice", key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), ledger.Options{Origin: "test/clusterservice", Signer: s, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := cluster.Open(cluster.Config{NodeID: "n1", Dir: filepath.Join(dir, "raft"), Log: l, APIAddr: "127.0.0.1:1", Listener: ln, Logger: lg,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pool := forward.NewPool(nil)
	t.Cleanup(func() {
		pool.Close()
		n.Shutdown()
		l.Close()
	})
	if err := n.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := clusterservice.New(clusterservice.Config{Node: n, Pool: pool, PeerTimeout: time.Second, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	return svc, n
}

// FuzzClusterReadRPC decodes arbitrary bytes as the request of the Cluster
// methods that cannot take the one-node cluster apart (Status, and
// TransferLeadership, which has no other voter to go to) and calls the
// real service. Whatever the fields: a proper status with a message, and
// the membership and leader stay as they were.
func FuzzClusterReadRPC(f *testing.F) {
	svc, n := oneNode(f)
	for _, s := range []struct {
		w uint8
		m proto.Message
	}{
		{0, &provledgerpb.ClusterStatusRequest{}},
		{0, &provledgerpb.ClusterStatusRequest{LocalOnly: true}},
		{1, &provledgerpb.TransferLeadershipRequest{}},
		{1, &provledgerpb.TransferLeadershipRequest{NodeId: "n2"}},
		{1, &provledgerpb.TransferLeadershipRequest{NodeId: "n1"}},
	} {
		b, err := proto.Marshal(s.m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.w, b)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		var req proto.Message
		switch which % 2 {
		case 0:
			r := &provledgerpb.ClusterStatusRequest{}
			if proto.Unmarshal(body, r) != nil {
				return
			}
			req = r
			var resp *provledgerpb.ClusterStatusResponse
			if resp, err = svc.Status(ctx, r); err == nil && resp.GetLeader().GetId() != "n1" {
				t.Fatalf("Status(%v): leader %v", r, resp.GetLeader())
			}
		case 1:
			r := &provledgerpb.TransferLeadershipRequest{}
			if proto.Unmarshal(body, r) != nil {
				return
			}
			req = r
			_, err = svc.TransferLeadership(ctx, r)
		}
		st := status.Convert(err)
		switch st.Code() {
		case codes.OK, codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition:
		default:
			t.Fatalf("%T(%v): status %v", req, req, st)
		}
		if st.Code() != codes.OK && st.Message() == "" {
			t.Fatalf("%T(%v): %v without a message", req, req, st.Code())
		}
		ms, err := n.Members(ctx)
		if err != nil || len(ms) != 1 || ms[0].ID != "n1" || !n.IsLeader() {
			t.Fatalf("%T(%v): membership %v (%v), leader %v", req, req, ms, err, n.IsLeader())
		}
	})
}
