package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/provledger/provledger/api/metrics"
	"github.com/provledger/provledger/api/server"
)

// adminConfig holds the flags of the admin listener (Prometheus metrics
// and pprof).
type adminConfig struct {
	addr string
}

func addAdminFlags(fs *flag.FlagSet, c *adminConfig) {
	fs.StringVar(&c.addr, "admin-addr", "127.0.0.1:7403", "admin HTTP listen address: Prometheus metrics at /metrics and the Go profiler at /debug/pprof/ (\"\" disables it; keep it off public networks)")
}

func (c *adminConfig) validate() error {
	if c.addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return fmt.Errorf("--admin-addr %q: %w", c.addr, err)
	}
	return nil
}

// adminServer serves the admin listener.
type adminServer struct {
	lis net.Listener
	srv *http.Server
	err error // why it does not serve
}

// startAdmin listens on --admin-addr and serves m's handler (metrics and
// pprof) there; it returns nil when the listener is disabled.
func startAdmin(c *adminConfig, m *metrics.Metrics, lg *slog.Logger) (*adminServer, error) {
	if c.addr == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", c.addr)
	if err != nil {
		// Not fatal: several nodes on one machine (tests, a local
		// cluster) would otherwise fail on the default port. Prometheus
		// sees the target down.
		lg.Warn("cannot listen on --admin-addr; serving without metrics and pprof", "addr", c.addr, "err", err)
		return &adminServer{err: err}, nil
	}
	a := &adminServer{lis: lis, srv: &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: server.ReadHeaderTimeout,
		ReadTimeout:       server.ReadTimeout,
		// CPU profiles and traces run for ?seconds=N (30 by default).
		WriteTimeout:   5 * time.Minute,
		IdleTimeout:    server.IdleTimeout,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(lg.Handler(), slog.LevelDebug),
	}}
	go func() {
		if err := a.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lg.Error("admin listener failed; metrics and pprof are unavailable", "err", err)
		}
	}()
	lg.Info("serving metrics and pprof", "addr", lis.Addr().String())
	return a, nil
}

// metricsURL is the URL of the metrics, for the banner.
func (a *adminServer) metricsURL() string {
	if a == nil {
		return "off (--admin-addr \"\")"
	}
	if a.err != nil {
		return "unavailable (" + a.err.Error() + ")"
	}
	return "http://" + a.lis.Addr().String() + "/metrics"
}

func (a *adminServer) stop(ctx context.Context) {
	if a == nil || a.srv == nil {
		return
	}
	if err := a.srv.Shutdown(ctx); err != nil {
		a.srv.Close()
	}
}
