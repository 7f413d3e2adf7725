package metrics

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
)

// ReasonForCode names a rejection by its gRPC code ("invalid_argument",
// "permission_denied", …).
func ReasonForCode(c codes.Code) string {
	s := c.String()
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 && s[i-1] >= 'a' && s[i-1] <= 'z' {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isAppend reports whether a full gRPC method name is one of the Ledger
// append RPCs, whose refusals count in rejected_total.
func isAppend(method string) bool {
	return strings.HasPrefix(method, "/"+provledgerpb.Ledger_ServiceDesc.ServiceName+"/Append")
}

// UnaryInterceptor counts and times unary RPCs, appended entries and
// rejections. Install it before the auth and limits interceptors.
func (m *Metrics) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	ctx, slot := withReasonSlot(ctx)
	resp, err := handler(ctx, req)
	code := status.Code(err)
	m.grpcRequests.WithLabelValues(info.FullMethod, code.String()).Inc()
	m.grpcDuration.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
	m.countRejection(info.FullMethod, code, slot.Load())
	switch r := resp.(type) {
	case *provledgerpb.AppendResponse:
		m.countResponse(r)
	case *provledgerpb.AppendBatchResponse:
		for _, x := range r.GetResponses() {
			m.countResponse(x)
		}
	}
	return resp, err
}

func (m *Metrics) countRejection(method string, code codes.Code, reason *string) {
	switch {
	case reason != nil:
		m.rejected.WithLabelValues(*reason).Inc()
	case code != codes.OK && isAppend(method):
		m.rejected.WithLabelValues(ReasonForCode(code)).Inc()
	}
}

func (m *Metrics) countResponse(r *provledgerpb.AppendResponse) {
	switch {
	case r == nil:
	case r.GetError() != nil:
		m.rejected.WithLabelValues(ReasonForCode(codes.Code(r.GetError().GetCode()))).Inc()
	case r.GetDuplicate():
		m.entries.WithLabelValues("duplicate").Inc()
	default:
		m.entries.WithLabelValues("appended").Inc()
	}
}

// StreamInterceptor is UnaryInterceptor for streams; every AppendResponse
// the stream sends is counted.
func (m *Metrics) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	ctx, slot := withReasonSlot(ss.Context())
	err := handler(srv, &countingStream{ServerStream: ss, ctx: ctx, m: m})
	code := status.Code(err)
	m.grpcRequests.WithLabelValues(info.FullMethod, code.String()).Inc()
	m.grpcDuration.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
	m.countRejection(info.FullMethod, code, slot.Load())
	return err
}

type countingStream struct {
	grpc.ServerStream
	ctx context.Context
	m   *Metrics
}

func (s *countingStream) Context() context.Context { return s.ctx }

func (s *countingStream) SendMsg(msg any) error {
	err := s.ServerStream.SendMsg(msg)
	if r, ok := msg.(*provledgerpb.AppendResponse); ok && err == nil {
		s.m.countResponse(r)
	}
	return err
}
