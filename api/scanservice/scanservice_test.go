package scanservice_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/scanservice"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/scanner"
	"github.com/provledger/provledger/query/scanner/synth"
)

func key(s string) ed25519.PrivateKey {
	h := sha256.Sum256([]byte(s))
	return ed25519.NewKeyFromSeed(h[:])
}

func setup(t testing.TB, leader *bool) (*scanservice.Service, *synth.Stream) {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	cs, err := checkpoint.NewSigner("test/scanservice", key("log"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(t.TempDir(), "l"), ledger.Options{Origin: "test/scanservice", Signer: cs, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	st, err := synth.Generate(l, synth.Config{Jobs: 30, Days: 60, PerKind: 2, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seq.Close() })
	sg, err := keys.NewSigner(key("scanner"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scanner.New(l, seq, scanner.Options{Signer: sg, Trust: st.Trust, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := scanservice.New(scanservice.Config{Scanner: sc, IsLeader: func() bool { return *leader }, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	return svc, st
}

func TestService(t *testing.T) {
	leader := false
	svc, st := setup(t, &leader)
	ctx := context.Background()
	if _, err := svc.Scan(ctx, &provledgerpb.ScanRequest{}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("scan on a follower: %v, want FailedPrecondition", err)
	}
	leader = true
	resp, err := svc.Scan(ctx, &provledgerpb.ScanRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetTo() != st.Entries || len(resp.GetFindings()) == 0 {
		t.Fatalf("scan to %d with %d findings; log has %d entries", resp.GetTo(), len(resp.GetFindings()), st.Entries)
	}
	all, err := svc.ListFindings(ctx, &provledgerpb.ListFindingsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.GetFindings()) != len(resp.GetFindings()) || all.GetCursor() != st.Entries {
		t.Fatalf("list: %d findings, cursor %d; scan reported %d", len(all.GetFindings()), all.GetCursor(), len(resp.GetFindings()))
	}
	for _, f := range all.GetFindings() {
		back, err := scanservice.FromProto(f)
		if err != nil {
			t.Fatalf("finding %d does not convert back: %v", f.GetIndex(), err)
		}
		if back.Index != f.GetIndex() || back.Finding.Kind != f.GetKind() {
			t.Fatalf("round trip changed finding %d", f.GetIndex())
		}
	}
	tests := []struct {
		name string
		req  *provledgerpb.ListFindingsRequest
		keep func(*provledgerpb.Finding) bool
	}{
		{"critical", &provledgerpb.ListFindingsRequest{MinSeverity: "critical"}, func(f *provledgerpb.Finding) bool { return f.GetSeverity() == "critical" }},
		{"detector", &provledgerpb.ListFindingsRequest{Detector: "cost"}, func(f *provledgerpb.Finding) bool { return f.GetDetector() == "cost" }},
		{"kind", &provledgerpb.ListFindingsRequest{Kind: "time.skew"}, func(f *provledgerpb.Finding) bool { return f.GetKind() == "time.skew" }},
		{"since", &provledgerpb.ListFindingsRequest{Since: timestamppb.New(st.Start.AddDate(0, 0, 50))}, func(f *provledgerpb.Finding) bool {
			return !f.GetTime().AsTime().Before(st.Start.AddDate(0, 0, 50))
		}},
		{"after", &provledgerpb.ListFindingsRequest{HasAfter: true, AfterIndex: all.GetFindings()[0].GetIndex()}, func(f *provledgerpb.Finding) bool {
			return f.GetIndex() > all.GetFindings()[0].GetIndex()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := svc.ListFindings(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, f := range all.GetFindings() {
				if tc.keep(f) {
					want++
				}
			}
			if len(got.GetFindings()) != want || want == 0 {
				t.Fatalf("%d findings, want %d (of %d), and at least one", len(got.GetFindings()), want, len(all.GetFindings()))
			}
			for _, f := range got.GetFindings() {
				if !tc.keep(f) {
					t.Fatalf("finding %d does not match the filter", f.GetIndex())
				}
			}
		})
	}
	for _, bad := range []*provledgerpb.ListFindingsRequest{{MinSeverity: "urgent"}, {Limit: 20000}, {Since: &timestamppb.Timestamp{Seconds: -1e12}}} {
		if _, err := svc.ListFindings(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("ListFindings(%v) = %v, want InvalidArgument", bad, err)
		}
	}
	fc, err := svc.ForecastCost(ctx, &provledgerpb.ForecastCostRequest{Series: "tag:team="})
	if err != nil {
		t.Fatal(err)
	}
	if len(fc.GetSeries()) == 0 || fc.GetHorizon() != 30 || len(fc.GetSeries()[0].GetDays()) != 30 || !fc.GetSeries()[0].GetHasBudget() {
		t.Fatalf("forecast: %d series, horizon %d", len(fc.GetSeries()), fc.GetHorizon())
	}
}
