// Package limits bounds what callers of a provledger node can make it do:
// a token-bucket rate per identity (golang.org/x/time/rate), a cap on each
// identity's requests in flight, a node-wide cap on appends in flight
// (enforced before their bodies are read, so memory stays bounded under a
// flood), and a default deadline on every RPC that has none.
//
// The identity is the authenticated principal (package auth) when there is
// one, else the client's IP address. Refusals are ResourceExhausted (gRPC)
// or 429 (HTTP) with a message saying when to retry.
package limits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/metrics"
	"github.com/provledger/provledger/api/provledgerpb"
)

// Defaults for Config fields left zero.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultStreamTimeout = time.Hour
	DefaultMaxIdentities = 10000
)

// Sentinel errors (wrapped in the statuses' messages).
var (
	ErrRateLimited = errors.New("rate limit exceeded")
	ErrConcurrency = errors.New("too many requests in flight")
	ErrOverloaded  = errors.New("node overloaded")
)

// Config configures a Limiter. Zero limits are unlimited.
type Config struct {
	// Rate is each identity's sustained rate, in requests per second, where
	// an append costs one per entry (an AppendBatch of 100 costs 100) and
	// any other call costs one. Burst is the bucket size (at least the
	// largest batch, which would otherwise never pass).
	Rate  float64
	Burst int
	// MaxConcurrent caps each identity's RPCs and HTTP requests in flight
	// (a stream counts as one while open).
	MaxConcurrent int
	// MaxInflightAppends caps the append RPCs in flight on the node, all
	// callers together. It is checked when a call's headers arrive, before
	// its body is read, so it bounds the memory appends can hold.
	MaxInflightAppends int
	// Timeout is the deadline given to a unary RPC that has none (default
	// DefaultTimeout); StreamTimeout the one for streams (default
	// DefaultStreamTimeout). Negative: none.
	Timeout, StreamTimeout time.Duration
	// MaxIdentities bounds the identities tracked (default
	// DefaultMaxIdentities); idle ones are forgotten beyond it.
	MaxIdentities int
	// Metrics, if set, counts the refusals no gRPC interceptor sees (the
	// tap's, and HTTP's).
	Metrics *metrics.Metrics
	// Logger receives refusals at debug level. Default slog.Default().
	Logger *slog.Logger
}

// Limiter enforces a Config. It is safe for concurrent use.
type Limiter struct {
	cfg Config
	log *slog.Logger

	mu  sync.Mutex
	ids map[string]*identity

	appends atomic.Int64
}

type identity struct {
	lim      *rate.Limiter
	inflight int
}

// New returns a Limiter for cfg.
func New(cfg Config) (*Limiter, error) {
	switch {
	case cfg.Rate < 0 || cfg.Burst < 0 || cfg.MaxConcurrent < 0 || cfg.MaxInflightAppends < 0 || cfg.MaxIdentities < 0:
		return nil, fmt.Errorf("limits config: negative limit in %+v", cfg)
	case cfg.Rate > 0 && cfg.Burst == 0:
		return nil, errors.New("limits config: Rate needs a positive Burst")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.StreamTimeout == 0 {
		cfg.StreamTimeout = DefaultStreamTimeout
	}
	if cfg.MaxIdentities == 0 {
		cfg.MaxIdentities = DefaultMaxIdentities
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Limiter{cfg: cfg, log: cfg.Logger.With("component", "limits"), ids: map[string]*identity{}}, nil
}

// InflightAppends returns the append RPCs in flight (for tests and
// diagnostics).
func (l *Limiter) InflightAppends() int64 { return l.appends.Load() }

func isAppend(method string) bool {
	return strings.HasPrefix(method, "/"+provledgerpb.Ledger_ServiceDesc.ServiceName+"/Append")
}

// TapHandle is a grpc.InTapHandle: it refuses an append when
// MaxInflightAppends are in flight, before the request is read. The slot
// is released when the call's context ends (the call finished).
func (l *Limiter) TapHandle(ctx context.Context, info *tap.Info) (context.Context, error) {
	if l.cfg.MaxInflightAppends == 0 || !isAppend(info.FullMethodName) {
		return ctx, nil
	}
	if n := l.appends.Add(1); n > int64(l.cfg.MaxInflightAppends) {
		l.appends.Add(-1)
		if l.cfg.Metrics != nil {
			l.cfg.Metrics.Reject(metrics.ReasonOverloaded)
		}
		return ctx, status.Errorf(codes.ResourceExhausted, "%v: %d appends in flight on this node (provd --max-inflight-appends); retry with backoff", ErrOverloaded, l.cfg.MaxInflightAppends)
	}
	context.AfterFunc(ctx, func() { l.appends.Add(-1) })
	return ctx, nil
}

// exempt reports whether a request is free of the per-identity limits:
// admins (operators, and the nodes of a cluster forwarding appends to the
// leader on behalf of their callers, who were limited there).
func exempt(ctx context.Context) bool {
	p := auth.FromContext(ctx)
	return p != nil && p.Has(auth.RoleAdmin)
}

// key names the identity of a request: its principal, else its IP.
func key(ctx context.Context, remote string) string {
	if p := auth.FromContext(ctx); p != nil {
		return "principal:" + p.Name
	}
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return "ip:" + host
	}
	return "ip:" + remote
}

func grpcKey(ctx context.Context) string {
	remote := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		remote = p.Addr.String()
	}
	return key(ctx, remote)
}

// admit takes cost tokens and one concurrency slot for id; release gives
// the slot back. The error wraps ErrRateLimited or ErrConcurrency.
func (l *Limiter) admit(id string, cost int) (release func(), retryAfter time.Duration, err error) {
	if l.cfg.Rate == 0 && l.cfg.MaxConcurrent == 0 {
		return func() {}, 0, nil
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.ids[id]
	if e == nil {
		if len(l.ids) >= l.cfg.MaxIdentities {
			l.forgetIdle(now)
		}
		e = &identity{}
		if l.cfg.Rate > 0 {
			e.lim = rate.NewLimiter(rate.Limit(l.cfg.Rate), l.cfg.Burst)
		}
		l.ids[id] = e
	}
	if l.cfg.MaxConcurrent > 0 && e.inflight >= l.cfg.MaxConcurrent {
		return nil, 0, fmt.Errorf("%w: %s has %d requests in flight (provd --max-concurrent); wait for some to finish", ErrConcurrency, id, e.inflight)
	}
	if e.lim != nil {
		r := e.lim.ReserveN(now, min(cost, l.cfg.Burst))
		if d := r.DelayFrom(now); !r.OK() || d > 0 {
			r.CancelAt(now)
			return nil, d, fmt.Errorf("%w: %s may send %g requests per second (burst %d; an append costs one per entry; provd --rate-limit); retry in %v", ErrRateLimited, id, l.cfg.Rate, l.cfg.Burst, d.Round(time.Millisecond))
		}
	}
	e.inflight++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			e.inflight--
			l.mu.Unlock()
		})
	}, 0, nil
}

// forgetIdle drops identities with nothing in flight and a full bucket
// (they would start the same way); if none qualifies, it drops idle ones
// whatever their bucket. Called with mu held.
func (l *Limiter) forgetIdle(now time.Time) {
	for k, e := range l.ids {
		if e.inflight == 0 && (e.lim == nil || e.lim.TokensAt(now) >= float64(l.cfg.Burst)) {
			delete(l.ids, k)
		}
	}
	if len(l.ids) >= l.cfg.MaxIdentities {
		for k, e := range l.ids {
			if e.inflight == 0 {
				delete(l.ids, k)
			}
		}
	}
}

func cost(req any) int {
	if b, ok := req.(*provledgerpb.AppendBatchRequest); ok {
		return max(len(b.GetRequests()), 1)
	}
	return 1
}

func (l *Limiter) refuse(ctx context.Context, method string, err error) error {
	reason := metrics.ReasonRateLimited
	if errors.Is(err, ErrConcurrency) {
		reason = metrics.ReasonConcurrency
	}
	metrics.SetReason(ctx, reason)
	l.log.DebugContext(ctx, "request refused", "method", method, "err", err)
	return status.Error(codes.ResourceExhausted, err.Error())
}

// UnaryInterceptor applies the rate and concurrency limits and the default
// deadline. Install it after auth's interceptor (it keys by principal).
func (l *Limiter) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !exempt(ctx) {
		release, _, err := l.admit(grpcKey(ctx), cost(req))
		if err != nil {
			return nil, l.refuse(ctx, info.FullMethod, err)
		}
		defer release()
	}
	if _, ok := ctx.Deadline(); !ok && l.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.cfg.Timeout)
		defer cancel()
	}
	return handler(ctx, req)
}

// StreamInterceptor is UnaryInterceptor for streams: opening one takes a
// slot and a token; each AppendStream request takes another token, waiting
// for it (a stream is slowed down, not refused, by the rate limit).
func (l *Limiter) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	id := grpcKey(ctx)
	if !exempt(ctx) {
		release, _, err := l.admit(id, 1)
		if err != nil {
			return l.refuse(ctx, info.FullMethod, err)
		}
		defer release()
	}
	if _, ok := ctx.Deadline(); !ok && l.cfg.StreamTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.cfg.StreamTimeout)
		defer cancel()
	}
	var lim *rate.Limiter
	if l.cfg.Rate > 0 && !exempt(ctx) {
		l.mu.Lock()
		if e := l.ids[id]; e != nil {
			lim = e.lim
		}
		l.mu.Unlock()
	}
	return handler(srv, &limitedStream{ServerStream: ss, ctx: ctx, lim: lim})
}

type limitedStream struct {
	grpc.ServerStream
	ctx context.Context
	lim *rate.Limiter
}

func (s *limitedStream) Context() context.Context { return s.ctx }

func (s *limitedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if _, ok := m.(*provledgerpb.AppendRequest); ok && s.lim != nil {
		if err := s.lim.Wait(s.ctx); err != nil {
			return status.Errorf(codes.DeadlineExceeded, "append stream: waiting for the rate limit: %v", err)
		}
	}
	return nil
}

// HTTPMiddleware applies the rate and concurrency limits to HTTP requests
// (429 Too Many Requests with Retry-After). Install it inside auth's
// middleware (it keys by principal).
func (l *Limiter) HTTPMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if exempt(r.Context()) {
			next.ServeHTTP(w, r)
			return
		}
		release, retry, err := l.admit(key(r.Context(), r.RemoteAddr), 1)
		if err != nil {
			if retry > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
			}
			l.log.DebugContext(r.Context(), "request refused", "path", r.URL.Path, "err", err)
			if l.cfg.Metrics != nil {
				reason := metrics.ReasonRateLimited
				if errors.Is(err, ErrConcurrency) {
					reason = metrics.ReasonConcurrency
				}
				l.cfg.Metrics.Reject(reason)
			}
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}
