package queryservice_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/provledger/provledger/api/provledgerpb"
)

// FuzzQueryRPC decodes arbitrary bytes as the request of each Query method
// (as the server's codec would; bytes that do not decode are the server
// package's FuzzLedgerRPC case) and sends it to the real service over gRPC,
// on a log holding the shop scenario. Whatever the fields, the answer is a
// proper status (never Unknown or Internal, always with a message) and the
// log does not change.
func FuzzQueryRPC(f *testing.F) {
	e := start(f)
	e.appendShop(f)
	methods := []struct {
		name string
		req  func() proto.Message
		call func(context.Context, proto.Message) error
	}{
		{"Upstream", func() proto.Message { return &provledgerpb.NodeQuery{} }, func(ctx context.Context, m proto.Message) error {
			_, err := e.query.Upstream(ctx, m.(*provledgerpb.NodeQuery))
			return err
		}},
		{"Downstream", func() proto.Message { return &provledgerpb.NodeQuery{} }, func(ctx context.Context, m proto.Message) error {
			_, err := e.query.Downstream(ctx, m.(*provledgerpb.NodeQuery))
			return err
		}},
		{"Impact", func() proto.Message { return &provledgerpb.NodeQuery{} }, func(ctx context.Context, m proto.Message) error {
			_, err := e.query.Impact(ctx, m.(*provledgerpb.NodeQuery))
			return err
		}},
		{"Paths", func() proto.Message { return &provledgerpb.PathsQuery{} }, func(ctx context.Context, m proto.Message) error {
			_, err := e.query.Paths(ctx, m.(*provledgerpb.PathsQuery))
			return err
		}},
		{"History", func() proto.Message { return &provledgerpb.NodeQuery{} }, func(ctx context.Context, m proto.Message) error {
			_, err := e.query.History(ctx, m.(*provledgerpb.NodeQuery))
			return err
		}},
		{"Columns", func() proto.Message { return &provledgerpb.NodeQuery{} }, func(ctx context.Context, m proto.Message) error {
			_, err := e.query.Columns(ctx, m.(*provledgerpb.NodeQuery))
			return err
		}},
		{"Cost", func() proto.Message { return &provledgerpb.CostQuery{} }, func(ctx context.Context, m proto.Message) error {
			_, err := e.query.Cost(ctx, m.(*provledgerpb.CostQuery))
			return err
		}},
	}
	seeds := []proto.Message{
		&provledgerpb.NodeQuery{Node: revenue, Options: &provledgerpb.QueryOptions{Prove: true, Depth: 3}},
		&provledgerpb.NodeQuery{Node: raw},
		&provledgerpb.NodeQuery{Node: pg, Options: &provledgerpb.QueryOptions{AsOfSize: 3, Namespaces: []string{"airflow-prod"}}},
		&provledgerpb.PathsQuery{From: raw, To: revenue, MaxPaths: 2},
		&provledgerpb.NodeQuery{Node: model, Options: &provledgerpb.QueryOptions{Budget: 5}},
		&provledgerpb.NodeQuery{Node: ref("column", "snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.DAILY_REVENUE", "revenue")},
		&provledgerpb.CostQuery{GroupBy: "service"},
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		m := methods[int(which)%len(methods)]
		req := m.req()
		if proto.Unmarshal(body, req) != nil {
			return
		}
		before := e.log.Latest().Size
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st := status.Convert(m.call(ctx, req))
		switch st.Code() {
		case codes.OK, codes.InvalidArgument, codes.NotFound, codes.OutOfRange, codes.FailedPrecondition, codes.ResourceExhausted:
		default:
			t.Fatalf("%s(%v): status %v", m.name, req, st)
		}
		if st.Code() != codes.OK && st.Message() == "" {
			t.Fatalf("%s(%v): %v without a message", m.name, req, st.Code())
		}
		if after := e.log.Latest().Size; after != before {
			t.Fatalf("%s(%v): the log grew from %d to %d", m.name, req, before, after)
		}
	})
}
