// Package scanservice implements the provledger Scanner gRPC service
// (provledgerpb.ScannerServer) over query/scanner: stored findings, a scan
// pass on demand (leader only), and cost forecasts.
//
// Errors are gRPC statuses: InvalidArgument for a bad filter,
// FailedPrecondition for a scan asked of a node that does not lead,
// Unavailable while the sequencer cannot take the findings, Internal for
// storage errors (logged).
package scanservice

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/scanner"
)

// Limits of ListFindings.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
)

// ErrConfig is returned by New for an incomplete Config.
var ErrConfig = errors.New("scanservice: bad config")

// Config configures a Service.
type Config struct {
	// Scanner is the node's scanner. Required.
	Scanner *scanner.Scanner
	// IsLeader says whether this node may scan (append findings). Nil:
	// always (a single node leads itself).
	IsLeader func() bool
	// Logger receives the service's logs. Default slog.Default().
	Logger *slog.Logger
}

// Service implements provledgerpb.ScannerServer.
type Service struct {
	provledgerpb.UnimplementedScannerServer
	s        *scanner.Scanner
	isLeader func() bool
	log      *slog.Logger
}

var _ provledgerpb.ScannerServer = (*Service)(nil)

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Scanner == nil {
		return nil, errors.Join(ErrConfig, errors.New("Scanner is required"))
	}
	if cfg.IsLeader == nil {
		cfg.IsLeader = func() bool { return true }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{s: cfg.Scanner, isLeader: cfg.IsLeader, log: cfg.Logger.With("component", "scanner-api")}, nil
}

// ListFindings implements provledgerpb.ScannerServer.
func (s *Service) ListFindings(ctx context.Context, r *provledgerpb.ListFindingsRequest) (*provledgerpb.ListFindingsResponse, error) {
	f := scanner.Filter{Detector: r.GetDetector(), Kind: r.GetKind(), Limit: int(r.GetLimit())}
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	if f.Limit > MaxLimit {
		return nil, status.Errorf(codes.InvalidArgument, "limit %d is above %d; page with after_index", r.GetLimit(), MaxLimit)
	}
	if r.GetMinSeverity() != "" {
		sv, err := scanner.ParseSeverity(r.GetMinSeverity())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "min_severity %q: use info, low, medium, high or critical", r.GetMinSeverity())
		}
		f.MinSeverity = sv
	}
	if r.GetSince() != nil {
		if err := r.GetSince().CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "since: %v", err)
		}
		f.Since = r.GetSince().AsTime()
	}
	if r.GetHasAfter() {
		a := r.GetAfterIndex()
		f.After = &a
	}
	fs, err := s.s.Findings(f)
	if err != nil {
		return nil, s.internal(ctx, "list findings", err)
	}
	out := &provledgerpb.ListFindingsResponse{Cursor: s.s.Cursor(), LogSize: s.sLogSize()}
	for _, sf := range fs {
		out.Findings = append(out.Findings, ToProto(sf))
	}
	return out, nil
}

func (s *Service) sLogSize() uint64 { return s.s.LogSize() }

// Scan implements provledgerpb.ScannerServer.
func (s *Service) Scan(ctx context.Context, r *provledgerpb.ScanRequest) (*provledgerpb.ScanResponse, error) {
	if !s.isLeader() {
		return nil, status.Error(codes.FailedPrecondition, "this node does not lead the cluster: only the leader scans; ask the leader")
	}
	p, err := s.s.Scan(ctx, r.GetUpTo())
	out := &provledgerpb.ScanResponse{}
	if p != nil {
		out.From, out.To, out.Skipped = p.From, p.To, uint64(p.Skipped)
		for _, sf := range p.Findings {
			out.Findings = append(out.Findings, ToProto(sf))
		}
	}
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, context.Canceled):
		return nil, status.Error(codes.Canceled, "scan canceled; the cursor stays after the last committed chunk")
	case errors.Is(err, context.DeadlineExceeded):
		return nil, status.Error(codes.DeadlineExceeded, "scan deadline exceeded; the cursor stays after the last committed chunk: call Scan again")
	case errors.Is(err, ledger.ErrClosed):
		return nil, status.Error(codes.Unavailable, "the node is shutting down")
	}
	return nil, s.internal(ctx, "scan", err)
}

// ForecastCost implements provledgerpb.ScannerServer.
func (s *Service) ForecastCost(ctx context.Context, r *provledgerpb.ForecastCostRequest) (*provledgerpb.ForecastCostResponse, error) {
	fs, err := s.s.Forecast(r.GetSeries())
	if err != nil {
		return nil, s.internal(ctx, "forecast", err)
	}
	out := &provledgerpb.ForecastCostResponse{Horizon: uint32(s.s.Options().Forecast.Horizon)}
	for _, f := range fs {
		p := &provledgerpb.SeriesForecast{
			Series: f.Series, Currency: f.Currency, Method: f.Method, HistoryDays: uint32(f.History),
			Total: f.Total, MonthToDate: f.MonthToDate,
			Sigma: f.Fit.Sigma, Alpha: f.Fit.Alpha, Beta: f.Fit.Beta, Gamma: f.Fit.Gamma,
		}
		if f.Budget != nil {
			p.HasBudget, p.Budget = true, *f.Budget
		}
		if f.Exhausted != nil {
			p.Exhausted = timestamppb.New(*f.Exhausted)
		}
		for _, d := range f.Days {
			p.Days = append(p.Days, &provledgerpb.ForecastDay{Day: timestamppb.New(d.Day), Mean: d.Mean, Low: d.Low, High: d.High})
		}
		out.Series = append(out.Series, p)
	}
	return out, nil
}

func (s *Service) internal(ctx context.Context, op string, err error) error {
	s.log.ErrorContext(ctx, "scanner request failed", "op", op, "err", err)
	return status.Errorf(codes.Internal, "%s failed: %v", op, err)
}

// ToProto converts a stored finding.
func ToProto(sf scanner.StoredFinding) *provledgerpb.Finding {
	f := sf.Finding
	p := &provledgerpb.Finding{
		Index: sf.Index, Detector: f.Detector, Kind: f.Kind, Severity: f.Severity.String(), Subject: f.Subject,
		Entries: f.Entries, Time: timestamppb.New(f.Time), Message: f.Message, Details: f.Details,
	}
	if f.Observed != nil {
		p.HasObserved, p.Observed = true, *f.Observed
	}
	if f.Expected != nil {
		p.Expected = &provledgerpb.Band{Low: f.Expected.Low, High: f.Expected.High, Median: f.Expected.Median, Points: uint32(f.Expected.Points)}
	}
	if b, err := f.Marshal(); err == nil {
		p.Payload = b
	}
	return p
}

// FromProto converts a finding back (from its payload when present, so
// the result is exactly what was signed).
func FromProto(p *provledgerpb.Finding) (scanner.StoredFinding, error) {
	if len(p.GetPayload()) > 0 {
		f, err := scanner.ParseFinding(p.GetPayload())
		if err != nil {
			return scanner.StoredFinding{}, err
		}
		return scanner.StoredFinding{Index: p.GetIndex(), Finding: f}, nil
	}
	sv, err := scanner.ParseSeverity(p.GetSeverity())
	if err != nil {
		return scanner.StoredFinding{}, err
	}
	f := &scanner.Finding{Version: scanner.FindingVersion, Detector: p.GetDetector(), Kind: p.GetKind(), Severity: sv,
		Subject: p.GetSubject(), Entries: p.GetEntries(), Time: p.GetTime().AsTime(), Message: p.GetMessage(), Details: p.GetDetails()}
	if p.GetHasObserved() {
		v := p.GetObserved()
		f.Observed = &v
	}
	if e := p.GetExpected(); e != nil {
		f.Expected = &scanner.Band{Low: e.GetLow(), High: e.GetHigh(), Median: e.GetMedian(), Points: int(e.GetPoints())}
	}
	return scanner.StoredFinding{Index: p.GetIndex(), Finding: f}, f.Validate()
}
