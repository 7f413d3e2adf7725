// Package queryservice implements the provledger Query gRPC service
// (provledgerpb.QueryServer) over package query: lineage and cost
// questions about a ledger.Log whose graph index (query/graph) is
// attached, answered as of any log size or time, optionally proven.
//
// Errors are gRPC statuses that say what to fix: InvalidArgument for a
// request that cannot be answered as asked, NotFound for a node no entry
// below the as-of size asserts, OutOfRange for an as-of size beyond the
// latest checkpoint, FailedPrecondition when the index is behind the log.
package queryservice

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/queryservice/answerpb"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query"
	"github.com/provledger/provledger/query/answer"
)

// Config configures a Service.
type Config struct {
	// Log is the ledger queried; its Indexer must be a query/graph
	// Indexer attached to it. Required.
	Log *ledger.Log
	// Logger receives the service's logs. Default slog.Default().
	Logger *slog.Logger
}

// Service implements provledgerpb.QueryServer.
type Service struct {
	provledgerpb.UnimplementedQueryServer
	engine *query.Engine
	logger *slog.Logger
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Log == nil {
		return nil, errors.New("query service config: Log is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{engine: query.New(cfg.Log), logger: cfg.Logger.With("component", "query-api")}, nil
}

var _ provledgerpb.QueryServer = (*Service)(nil)

func request(o *provledgerpb.QueryOptions) query.Request {
	r := query.Request{
		AsOfSize: o.GetAsOfSize(), Depth: int(o.GetDepth()), Budget: int(o.GetBudget()),
		Prove: o.GetProve(), NoEnvelopes: o.GetNoEnvelopes(), Namespaces: o.GetNamespaces(),
	}
	if t := o.GetAsOfTime(); t != nil {
		r.AsOfTime = t.AsTime()
	}
	if t := o.GetFrom(); t != nil {
		r.From = t.AsTime()
	}
	if t := o.GetTo(); t != nil {
		r.To = t.AsTime()
	}
	r.Tags = o.GetTags()
	return r
}

func node(n *provledgerpb.NodeRef, field string) (answer.Ref, error) {
	if n == nil {
		return answer.Ref{}, status.Errorf(codes.InvalidArgument, "%s is required: {kind, parts}, e.g. {kind: \"dataset\", parts: [namespace, name]}", field)
	}
	return *answerpb.RefFromProto(n), nil
}

func (s *Service) answer(ctx context.Context, op string, a *answer.Answer, err error) (*provledgerpb.Answer, error) {
	if err != nil {
		return nil, s.status(ctx, op, err)
	}
	return answerpb.ToProto(a), nil
}

// status maps query and ledger errors onto gRPC codes.
func (s *Service) status(ctx context.Context, op string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, query.ErrInvalid):
		return status.Errorf(codes.InvalidArgument, "%s: %v", op, strings.TrimPrefix(err.Error(), query.ErrInvalid.Error()+": "))
	case errors.Is(err, query.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s: %v; check the node's kind and parts, or ask as of a later size", op, err)
	case errors.Is(err, ledger.ErrOutOfRange):
		return status.Errorf(codes.OutOfRange, "%s: %v", op, err)
	case errors.Is(err, ledger.ErrClosed):
		return status.Errorf(codes.Unavailable, "%s: the ledger is shutting down", op)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: deadline exceeded; lower the depth or budget, or allow more time", op)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: canceled by the client", op)
	case errors.Is(err, query.ErrIndexBehind):
		return status.Errorf(codes.FailedPrecondition, "%s: %v", op, err)
	}
	s.logger.ErrorContext(ctx, "internal error", "op", op, "err", err)
	return status.Errorf(codes.Internal, "%s: internal error; the server log has the details", op)
}

// Upstream implements provledgerpb.QueryServer.
func (s *Service) Upstream(ctx context.Context, q *provledgerpb.NodeQuery) (*provledgerpb.Answer, error) {
	n, err := node(q.GetNode(), "node")
	if err != nil {
		return nil, err
	}
	a, err := s.engine.Upstream(ctx, n, request(q.GetOptions()))
	return s.answer(ctx, "upstream", a, err)
}

// Downstream implements provledgerpb.QueryServer.
func (s *Service) Downstream(ctx context.Context, q *provledgerpb.NodeQuery) (*provledgerpb.Answer, error) {
	n, err := node(q.GetNode(), "node")
	if err != nil {
		return nil, err
	}
	a, err := s.engine.Downstream(ctx, n, request(q.GetOptions()))
	return s.answer(ctx, "downstream", a, err)
}

// Impact implements provledgerpb.QueryServer.
func (s *Service) Impact(ctx context.Context, q *provledgerpb.NodeQuery) (*provledgerpb.Answer, error) {
	n, err := node(q.GetNode(), "node")
	if err != nil {
		return nil, err
	}
	a, err := s.engine.Impact(ctx, n, request(q.GetOptions()))
	return s.answer(ctx, "impact", a, err)
}

// Paths implements provledgerpb.QueryServer.
func (s *Service) Paths(ctx context.Context, q *provledgerpb.PathsQuery) (*provledgerpb.Answer, error) {
	from, err := node(q.GetFrom(), "from")
	if err != nil {
		return nil, err
	}
	to, err := node(q.GetTo(), "to")
	if err != nil {
		return nil, err
	}
	a, err := s.engine.Paths(ctx, from, to, int(q.GetMaxPaths()), request(q.GetOptions()))
	return s.answer(ctx, "paths", a, err)
}

// History implements provledgerpb.QueryServer.
func (s *Service) History(ctx context.Context, q *provledgerpb.NodeQuery) (*provledgerpb.Answer, error) {
	n, err := node(q.GetNode(), "node")
	if err != nil {
		return nil, err
	}
	a, err := s.engine.History(ctx, n, request(q.GetOptions()))
	return s.answer(ctx, "history", a, err)
}

// Columns implements provledgerpb.QueryServer.
func (s *Service) Columns(ctx context.Context, q *provledgerpb.NodeQuery) (*provledgerpb.Answer, error) {
	n, err := node(q.GetNode(), "node")
	if err != nil {
		return nil, err
	}
	a, err := s.engine.Columns(ctx, n, request(q.GetOptions()))
	return s.answer(ctx, "columns", a, err)
}

// Cost implements provledgerpb.QueryServer.
func (s *Service) Cost(ctx context.Context, q *provledgerpb.CostQuery) (*provledgerpb.Answer, error) {
	req := query.CostRequest{Request: request(q.GetOptions()), GroupBy: q.GetGroupBy(), Node: answerpb.RefFromProto(q.GetNode())}
	// The window may come in the CostQuery or in its options, not both.
	if t := q.GetFrom(); t != nil {
		if !req.From.IsZero() {
			return nil, status.Error(codes.InvalidArgument, "from is given twice (in the cost query and in its options); give it once")
		}
		req.From = t.AsTime()
	}
	if t := q.GetTo(); t != nil {
		if !req.To.IsZero() {
			return nil, status.Error(codes.InvalidArgument, "to is given twice (in the cost query and in its options); give it once")
		}
		req.To = t.AsTime()
	}
	a, err := s.engine.Cost(ctx, req)
	return s.answer(ctx, "cost", a, err)
}
