package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/metrics"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/service"
)

// grpcCredentials extracts the credentials of a gRPC request.
func grpcCredentials(ctx context.Context) Credentials {
	var c Credentials
	// ValueFromIncomingContext does not copy the metadata map.
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		c.HasBearer = true
		c.Bearer = bearer(v[0])
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
			c.Cert = ti.State.VerifiedChains[0][0]
		}
	}
	return c
}

// bearer returns the token of an "Bearer <token>" header value, or "".
func bearer(v string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// toStatus turns an Authenticate/Allow error into a gRPC status and
// records the rejection reason for metrics.
func toStatus(ctx context.Context, err error) error {
	if errors.Is(err, ErrUnauthenticated) {
		metrics.SetReason(ctx, metrics.ReasonUnauthenticated)
		return status.Error(codes.Unauthenticated, err.Error())
	}
	metrics.SetReason(ctx, metrics.ReasonForbidden)
	return status.Error(codes.PermissionDenied, err.Error())
}

func (a *Authenticator) deny(ctx context.Context, method string, p *Principal, err error) {
	name := ""
	if p != nil {
		name = p.Name
	}
	a.log.InfoContext(ctx, "request refused", "method", method, "principal", name, "request_id", service.RequestID(ctx), "err", err)
}

// UnaryInterceptor authenticates every unary call, puts the principal in
// the context (FromContext) and authorizes the call by its class; appends
// are checked request by request (a batch is refused whole if any of its
// requests is not allowed).
func (a *Authenticator) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	p, err := a.Authenticate(grpcCredentials(ctx))
	if err == nil {
		err = a.Allow(p, a.MethodClass(info.FullMethod))
	}
	if err == nil {
		switch r := req.(type) {
		case *provledgerpb.AppendRequest:
			err = a.AuthorizeAppend(p, r)
		case *provledgerpb.AppendBatchRequest:
			for _, x := range r.GetRequests() {
				if err = a.AuthorizeAppend(p, x); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		a.deny(ctx, info.FullMethod, p, err)
		return nil, toStatus(ctx, err)
	}
	return handler(NewContext(ctx, p), req)
}

// StreamInterceptor is UnaryInterceptor for streams. An AppendStream
// request that is not allowed is answered with an AppendResponse whose
// error is PermissionDenied (like any other refused item); the stream
// goes on.
func (a *Authenticator) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	p, err := a.Authenticate(grpcCredentials(ctx))
	if err == nil {
		err = a.Allow(p, a.MethodClass(info.FullMethod))
	}
	if err != nil {
		a.deny(ctx, info.FullMethod, p, err)
		return toStatus(ctx, err)
	}
	return handler(srv, &authStream{ServerStream: ss, ctx: NewContext(ctx, p), a: a, p: p, method: info.FullMethod})
}

type authStream struct {
	grpc.ServerStream
	ctx    context.Context
	a      *Authenticator
	p      *Principal
	method string
	sendMu sync.Mutex // the handler's sends and ours
}

func (s *authStream) Context() context.Context { return s.ctx }

func (s *authStream) SendMsg(m any) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.ServerStream.SendMsg(m)
}

func (s *authStream) RecvMsg(m any) error {
	for {
		if err := s.ServerStream.RecvMsg(m); err != nil {
			return err
		}
		req, ok := m.(*provledgerpb.AppendRequest)
		if !ok {
			return nil
		}
		err := s.a.AuthorizeAppend(s.p, req)
		if err == nil {
			return nil
		}
		s.a.deny(s.ctx, s.method, s.p, err)
		resp := &provledgerpb.AppendResponse{RequestId: req.GetRequestId(), Error: &provledgerpb.Error{Code: int32(codes.PermissionDenied), Message: err.Error()}}
		if err := s.SendMsg(resp); err != nil {
			return err
		}
	}
}

// HTTPMiddleware authenticates and authorizes HTTP requests by path class
// (PathClass); refusals are 401 (with WWW-Authenticate) or 403. Paths that
// authenticate themselves (OpenLineage ingest) pass through untouched.
func (a *Authenticator) HTTPMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		class := PathClass(r.URL.Path)
		if class == ClassOwnAuth {
			next.ServeHTTP(w, r)
			return
		}
		var c Credentials
		if v := r.Header.Values("Authorization"); len(v) > 0 {
			c.HasBearer, c.Bearer = true, bearer(v[0])
		}
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
			c.Cert = r.TLS.VerifiedChains[0][0]
		}
		p, err := a.Authenticate(c)
		if err == nil {
			err = a.Allow(p, class)
		}
		if err != nil {
			a.deny(r.Context(), r.Method+" "+r.URL.Path, p, err)
			code, reason := http.StatusForbidden, metrics.ReasonForbidden
			if errors.Is(err, ErrUnauthenticated) {
				code, reason = http.StatusUnauthorized, metrics.ReasonUnauthenticated
				w.Header().Set("WWW-Authenticate", `Bearer realm="provledger"`)
			}
			if a.cfg.OnHTTPRefusal != nil {
				a.cfg.OnHTTPRefusal(reason)
			}
			http.Error(w, err.Error(), code)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
	})
}
