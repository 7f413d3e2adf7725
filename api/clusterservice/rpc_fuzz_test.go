package clusterservice_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/provledger/provledger/api/provledgerpb"
)

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
