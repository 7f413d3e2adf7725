package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/ledger"
)

// statusError maps an error from the ledger (or the context) onto a gRPC
// status. It is the only place ledger errors become codes, so every RPC
// answers the same condition with the same code. Unexpected errors are
// logged in full and answered with Internal and a message that carries no
// internals.
func (s *Service) statusError(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status (ours)
	}
	code, msg := s.classify(ctx, op, err)
	return status.Error(code, msg)
}

// errorProto is statusError for the per-item errors of AppendStream and
// AppendBatch.
func (s *Service) errorProto(ctx context.Context, op string, err error) *provledgerpb.Error {
	st, _ := status.FromError(s.statusError(ctx, op, err))
	return &provledgerpb.Error{Code: int32(st.Code()), Message: st.Message()}
}

func (s *Service) classify(ctx context.Context, op string, err error) (codes.Code, string) {
	switch {
	case errors.Is(err, ledger.ErrOutOfRange):
		return codes.OutOfRange, fmt.Sprintf("%s: %v; ask for indexes and sizes up to the latest checkpoint's size (GetCheckpoint)", op, err)
	case errors.Is(err, ledger.ErrRedacted):
		if by, ok := RedactedBy(err); ok {
			return codes.NotFound, fmt.Sprintf("%s: the envelope was redacted by entry %d; its record and leaf remain and still verify", op, by)
		}
		return codes.NotFound, fmt.Sprintf("%s: the envelope was redacted; its record and leaf remain and still verify", op)
	case errors.Is(err, ledger.ErrNotFound):
		return codes.NotFound, fmt.Sprintf("%s: %v; check the index, hash or size you asked for", op, err)
	case errors.Is(err, ledger.ErrTooLarge):
		return codes.InvalidArgument, fmt.Sprintf("%s: %v; shrink the envelope or raise provd --max-envelope-size", op, err)
	case errors.Is(err, ledger.ErrNotAdmin):
		return codes.PermissionDenied, fmt.Sprintf("%s: %v", op, err)
	case errors.Is(err, ledger.ErrInvalidEntry):
		return codes.InvalidArgument, fmt.Sprintf("%s: %v", op, err)
	case errors.Is(err, ledger.ErrClosed):
		return codes.Unavailable, fmt.Sprintf("%s: the ledger is shutting down; retry against another node or after restart", op)
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, fmt.Sprintf("%s: deadline exceeded; an append may still commit, and retrying it is safe (duplicates return the first index)", op)
	case errors.Is(err, context.Canceled):
		return codes.Canceled, fmt.Sprintf("%s: canceled by the client", op)
	}
	id := RequestID(ctx)
	s.logger.ErrorContext(ctx, "internal error", "op", op, "request_id", id, "err", err)
	if id != "" {
		return codes.Internal, fmt.Sprintf("%s: internal error (request id %s); the server log has the details", op, id)
	}
	return codes.Internal, fmt.Sprintf("%s: internal error; the server log has the details", op)
}

// RedactedBy extracts the index of the redaction entry from an error that
// wraps ledger.ErrRedacted. The ledger reports it only in the message
// ("… envelope redacted by entry N").
func RedactedBy(err error) (uint64, bool) {
	if !errors.Is(err, ledger.ErrRedacted) {
		return 0, false
	}
	msg := err.Error()
	i := strings.LastIndex(msg, " by entry ")
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len(" by entry "):]
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	n, perr := strconv.ParseUint(rest[:end], 10, 64)
	return n, perr == nil
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying a request id; errors and logs quote it.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id set by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

var _ = slog.LevelDebug
