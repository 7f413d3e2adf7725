package scanservice_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/scanservice"
)

// logSize reads the log size the service reports.
func logSize(t testing.TB, svc *scanservice.Service) uint64 {
	r, err := svc.ListFindings(context.Background(), &provledgerpb.ListFindingsRequest{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetLogSize()
}

// FuzzScannerRPC decodes arbitrary bytes as the request of each Scanner
// method and calls the real service on a synthetic log. Whatever the
// fields, the answer is a proper status (never Unknown or Internal, always
// with a message); reads leave the log as it was, and a scan grows it by
// exactly the findings it reports (none when it fails).
func FuzzScannerRPC(f *testing.F) {
	leader := true
	svc, _ := setup(f, &leader)
	type method struct {
		name string
		req  func() proto.Message
		call func(context.Context, proto.Message) (findings int, err error)
	}
	methods := []method{
		{"ListFindings", func() proto.Message { return &provledgerpb.ListFindingsRequest{} }, func(ctx context.Context, m proto.Message) (int, error) {
			_, err := svc.ListFindings(ctx, m.(*provledgerpb.ListFindingsRequest))
			return 0, err
		}},
		{"Scan", func() proto.Message { return &provledgerpb.ScanRequest{} }, func(ctx context.Context, m proto.Message) (int, error) {
			r, err := svc.Scan(ctx, m.(*provledgerpb.ScanRequest))
			return len(r.GetFindings()), err
		}},
		{"ForecastCost", func() proto.Message { return &provledgerpb.ForecastCostRequest{} }, func(ctx context.Context, m proto.Message) (int, error) {
			_, err := svc.ForecastCost(ctx, m.(*provledgerpb.ForecastCostRequest))
			return 0, err
		}},
	}
	seeds := []proto.Message{
		&provledgerpb.ListFindingsRequest{MinSeverity: "warning", Limit: 5, HasAfter: true, AfterIndex: 3, Since: timestamppb.New(time.Unix(1_700_000_000, 0))},
		&provledgerpb.ScanRequest{UpTo: 100},
		&provledgerpb.ForecastCostRequest{Series: "service:"},
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
		before := logSize(t, svc)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := m.call(ctx, req)
		st := status.Convert(err)
		switch st.Code() {
		case codes.OK, codes.InvalidArgument, codes.NotFound, codes.OutOfRange, codes.FailedPrecondition:
		default:
			t.Fatalf("%s(%v): status %v", m.name, req, st)
		}
		if st.Code() != codes.OK && st.Message() == "" {
			t.Fatalf("%s(%v): %v without a message", m.name, req, st.Code())
		}
		if after := logSize(t, svc); after-before != uint64(n) {
			t.Fatalf("%s(%v): the log grew by %d, the reply reports %d findings", m.name, req, after-before, n)
		}
	})
}
