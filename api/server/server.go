// Package server runs the provledger API: the Ledger gRPC service (with the
// gRPC health and reflection services) and the HTTP read API (C2SP
// tlog-tiles, see package httpapi), each on its own listener.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/httpapi"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/service"
)

// MaxRecvMsgSize caps any gRPC request (an AppendBatch of many envelopes
// included); a single Append of a maximal envelope always fits.
const MaxRecvMsgSize = 64 << 20

// RequestIDHeader is the gRPC metadata key (and HTTP header) carrying the
// request id: taken from the client when it sends a sane one, else made up,
// and echoed in the response headers.
const RequestIDHeader = "x-request-id"

// HTTP server timeouts (no slowloris: every phase of a request is bounded).
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 2 * time.Minute
	IdleTimeout       = 2 * time.Minute
)

// Config configures a Server.
type Config struct {
	// Service configures the Ledger gRPC service.
	Service service.Config
	// GRPCListener and HTTPListener are where the gRPC and HTTP APIs are
	// served. At least one is required; a nil one is not served.
	GRPCListener, HTTPListener net.Listener
	// HTTPPrefix mounts the HTTP read API under a path (e.g. "/log").
	HTTPPrefix string
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
	// UnaryInterceptors and StreamInterceptors run after the server's own
	// (request id, logging), in order: metrics, authentication, limits.
	UnaryInterceptors  []grpc.UnaryServerInterceptor
	StreamInterceptors []grpc.StreamServerInterceptor
	// ServerOptions are added to the gRPC server's (e.g. grpc.InTapHandle).
	ServerOptions []grpc.ServerOption
	// HTTPMiddleware, if set, wraps the whole HTTP handler (the read API
	// and whatever is added to Mux).
	HTTPMiddleware func(http.Handler) http.Handler
	// TLSConfig, if set, serves gRPC and HTTP over TLS with it (it must
	// carry a certificate or GetCertificate; see package tlsreload).
	TLSConfig *tls.Config
}

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	if c.GRPCListener == nil && c.HTTPListener == nil {
		return errors.New("server config: set GRPCListener, HTTPListener or both")
	}
	return c.Service.Validate()
}

// Server serves the API until Stop.
type Server struct {
	cfg    Config
	logger *slog.Logger
	svc    *service.Service
	grpc   *grpc.Server
	health *health.Server
	mux    *http.ServeMux
	http   *http.Server

	idPrefix string
	idSeq    atomic.Uint64
}

// New builds a Server; Serve starts it.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Service.Logger == nil {
		cfg.Service.Logger = cfg.Logger
	}
	svc, err := service.New(cfg.Service)
	if err != nil {
		return nil, err
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	s := &Server{cfg: cfg, logger: cfg.Logger.With("component", "server"), svc: svc, idPrefix: hex.EncodeToString(rnd[:]) + "-"}

	sc := svc.Config()
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(RecvMsgSize(sc.MaxEnvelopeSize, sc.MaxBatch)),
		grpc.MaxConcurrentStreams(1024),
		// Serve RPCs on long-lived goroutines (their stacks already grown)
		// instead of a new goroutine per RPC; beyond them, grpc still
		// starts one per RPC.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.ForceServerCodecV2(newRequestCodec()), // undecodable requests: InvalidArgument (codec.go)
		grpc.ChainUnaryInterceptor(append([]grpc.UnaryServerInterceptor{s.unaryInterceptor}, cfg.UnaryInterceptors...)...),
		grpc.ChainStreamInterceptor(append([]grpc.StreamServerInterceptor{s.streamInterceptor}, cfg.StreamInterceptors...)...),
	}
	if cfg.TLSConfig != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLSConfig)))
	}
	s.grpc = grpc.NewServer(append(opts, cfg.ServerOptions...)...)
	provledgerpb.RegisterLedgerServer(s.grpc, svc)
	s.health = health.NewServer()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(provledgerpb.Ledger_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)

	s.mux = http.NewServeMux()
	prefix := cfg.HTTPPrefix
	h := httpapi.New(cfg.Service.Log, httpapi.Options{Prefix: prefix, Logger: cfg.Logger})
	if prefix == "" || prefix == "/" {
		s.mux.Handle("/", h)
	} else {
		p := "/" + trimSlashes(prefix)
		s.mux.Handle(p+"/", h)
	}
	var handler http.Handler = s.mux
	if cfg.HTTPMiddleware != nil {
		handler = cfg.HTTPMiddleware(s.mux)
	}
	s.http = &http.Server{
		Handler:           handler,
		TLSConfig:         cfg.TLSConfig,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

func trimSlashes(p string) string {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// RecvMsgSize is the gRPC receive limit for the given envelope and batch
// limits: room for a batch of maxBatch envelopes of maxEnvelope bytes (as
// DSSE JSON, with public keys), capped at MaxRecvMsgSize but never below
// what one maximal Append needs.
func RecvMsgSize(maxEnvelope, maxBatch int) int {
	per := 2*maxEnvelope + 64<<10
	n := per * max(maxBatch, 1)
	if n/max(maxBatch, 1) != per || n > MaxRecvMsgSize { // overflow or above the cap
		n = MaxRecvMsgSize
	}
	return max(n, per)
}

// Service returns the Ledger service.
func (s *Server) Service() *service.Service { return s.svc }

// GRPC returns the gRPC server, to register more services before Serve.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Mux returns the HTTP mux, to add handlers before Serve.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// Serve serves gRPC and HTTP until Stop, and returns nil then. If either
// fails, it stops the other and returns the error.
func (s *Server) Serve() error {
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	if l := s.cfg.GRPCListener; l != nil {
		wg.Add(1)
		s.logger.Info("serving gRPC", "addr", l.Addr().String())
		go func() {
			defer wg.Done()
			if err := s.grpc.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errs <- fmt.Errorf("grpc: %w", err)
				s.http.Close()
			}
		}()
	}
	if l := s.cfg.HTTPListener; l != nil {
		wg.Add(1)
		s.logger.Info("serving HTTP", "addr", l.Addr().String(), "prefix", s.cfg.HTTPPrefix)
		go func() {
			defer wg.Done()
			serve := s.http.Serve
			if s.cfg.TLSConfig != nil {
				serve = func(l net.Listener) error { return s.http.ServeTLS(l, "", "") }
			}
			if err := serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("http: %w", err)
				s.grpc.Stop()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(c <-chan error) []error {
	var out []error
	for err := range c {
		out = append(out, err)
	}
	return out
}

// Stop stops accepting connections and waits for the requests in flight,
// until ctx ends; then it closes what remains and returns ctx's error.
func (s *Server) Stop(ctx context.Context) error {
	s.health.Shutdown() // health checks now answer NOT_SERVING
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	herr := s.http.Shutdown(ctx)
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
	}
	if herr != nil {
		s.http.Close()
		return herr
	}
	return ctx.Err()
}

// requestID picks the request id: the client's x-request-id if sane, else a
// new one.
func (s *Server) requestID(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(RequestIDHeader); len(v) > 0 && saneID(v[0]) {
			return v[0]
		}
	}
	return s.idPrefix + strconv.FormatUint(s.idSeq.Add(1), 10)
}

func saneID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	id := s.requestID(ctx)
	ctx = service.WithRequestID(ctx, id)
	grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))
	if msg, bad := undecodable(req); bad {
		err := status.Errorf(codes.InvalidArgument, "the request is not a valid %T: %s", req, msg)
		s.logCall(ctx, info.FullMethod, id, start, err)
		return nil, err
	}
	resp, err := handler(ctx, req)
	s.logCall(ctx, info.FullMethod, id, start, err)
	return resp, err
}

type idStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w idStream) Context() context.Context { return w.ctx }

// RecvMsg refuses a stream message that did not decode (see requestCodec).
func (w idStream) RecvMsg(m any) error {
	if err := w.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if msg, bad := undecodable(m); bad {
		return status.Errorf(codes.InvalidArgument, "a stream message is not a valid %T: %s", m, msg)
	}
	return nil
}

func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	id := s.requestID(ss.Context())
	ctx := service.WithRequestID(ss.Context(), id)
	ss.SetHeader(metadata.Pairs(RequestIDHeader, id))
	err := handler(srv, idStream{ServerStream: ss, ctx: ctx})
	s.logCall(ctx, info.FullMethod, id, start, err)
	return err
}

func (s *Server) logCall(ctx context.Context, method, id string, start time.Time, err error) {
	if !s.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	s.logger.LogAttrs(ctx, slog.LevelDebug, "rpc",
		slog.String("method", method),
		slog.String("code", status.Code(err).String()),
		slog.Duration("duration", time.Since(start)),
		slog.String("request_id", id))
}
