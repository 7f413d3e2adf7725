// Package metrics exposes a provledger node's Prometheus metrics: gRPC and
// HTTP requests (count by method and code, latency), appended entries,
// rejected requests by reason, the ledger's batches (size, apply and commit
// latency), log size and checkpoint age, and — through small registration
// hooks — Raft state and replication lag and the scanner's lag. Handler
// serves them with pprof on the admin listener (see docs/operations.md).
package metrics

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/provledger/provledger/ledger"
)

// Namespace prefixes every metric name.
const Namespace = "provledger"

// Rejection reasons set by the limits and auth layers (SetReason); other
// rejections are named after their gRPC code (see ReasonForCode).
const (
	ReasonUnauthenticated = "unauthenticated"
	ReasonForbidden       = "forbidden"
	ReasonRateLimited     = "rate_limited"
	ReasonConcurrency     = "concurrency_limit"
	ReasonOverloaded      = "overloaded"
)

// Options configure New.
type Options struct {
	// Now is the clock of the checkpoint age. Default time.Now.
	Now func() time.Time
	// NoProcessMetrics leaves out the Go runtime and process collectors
	// (for tests that build many Metrics).
	NoProcessMetrics bool
}

// Metrics holds a node's metrics in their own registry. It implements
// ledger.Observer. All methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	grpcRequests *prometheus.CounterVec
	grpcDuration *prometheus.HistogramVec
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	entries      *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	batchEntries prometheus.Histogram
	applyDur     *prometheus.HistogramVec
	commitDur    *prometheus.HistogramVec

	size       atomic.Uint64
	lastSigned atomic.Int64 // unix nanoseconds of the last batch that grew the log
	logSize    atomic.Pointer[func() uint64]
}

// New returns Metrics registered in a new registry.
func New(o Options) *Metrics {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Metrics{reg: prometheus.NewRegistry(), now: o.Now}
	m.lastSigned.Store(o.Now().UnixNano())
	latency := prometheus.ExponentialBuckets(0.0005, 2, 16) // 0.5ms .. 16s
	m.grpcRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "grpc_requests_total",
		Help: "gRPC requests handled, by full method and status code."}, []string{"method", "code"})
	m.grpcDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "grpc_request_duration_seconds",
		Help: "gRPC request latency (for streams, the stream's lifetime), by full method.", Buckets: latency}, []string{"method"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "http_requests_total",
		Help: "HTTP requests handled, by route (checkpoint, tile, entries, envelope, lineage, other) and status code."}, []string{"route", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
		Help: "HTTP request latency, by route.", Buckets: latency}, []string{"route"})
	m.entries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "append_entries_total",
		Help: "Appends acknowledged over gRPC, by result: appended (grew the log) or duplicate (answered with the first index)."}, []string{"result"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rejected_total",
		Help: "Rejected appends (each item of a batch or stream counts) and requests refused by authentication or limits, by reason."}, []string{"reason"})
	m.batchEntries = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "batch_entries",
		Help: "Entries per batch applied to the ledger (one group commit or one Raft command).", Buckets: prometheus.ExponentialBuckets(1, 2, 12)})
	m.applyDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "batch_apply_duration_seconds",
		Help:    "Time to apply one batch to the ledger (integrate, sign the checkpoint, commit), by sync (true: local group commit, false: Raft FSM).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"sync"})
	m.commitDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "batch_commit_duration_seconds",
		Help:    "Time to commit (and with sync=true, fsync) one batch's Pebble write.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"sync"})
	m.reg.MustRegister(m.grpcRequests, m.grpcDuration, m.httpRequests, m.httpDuration, m.entries, m.rejected,
		m.batchEntries, m.applyDur, m.commitDur,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "log_size",
			Help: "Entries in the log: the size of the latest checkpoint this node holds."}, func() float64 { return float64(m.LogSize()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "checkpoint_age_seconds",
			Help: "Seconds since this node last applied a batch that grew the log (since start if none)."}, func() float64 {
			return m.now().Sub(time.Unix(0, m.lastSigned.Load())).Seconds()
		}),
		hookCollector{},
	)
	if !o.NoProcessMetrics {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the registry, to add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveLog makes log_size read l's latest checkpoint (before the first
// batch too).
func (m *Metrics) ObserveLog(l *ledger.Log) {
	f := func() uint64 { return l.Latest().Size }
	m.logSize.Store(&f)
}

// LogSize returns the log size the log_size gauge reports.
func (m *Metrics) LogSize() uint64 {
	if f := m.logSize.Load(); f != nil {
		return (*f)()
	}
	return m.size.Load()
}

// BatchApplied implements ledger.Observer.
func (m *Metrics) BatchApplied(s ledger.BatchStats) {
	sync := "false"
	if s.Sync {
		sync = "true"
	}
	m.batchEntries.Observe(float64(s.Entries))
	m.applyDur.WithLabelValues(sync).Observe(s.Apply.Seconds())
	m.commitDur.WithLabelValues(sync).Observe(s.Commit.Seconds())
	m.size.Store(s.Size)
	if s.Added > 0 {
		m.lastSigned.Store(m.now().UnixNano())
	}
}

// Reject counts one rejection for reason (for refusals that happen before
// any interceptor runs, e.g. in a gRPC tap handle).
func (m *Metrics) Reject(reason string) { m.rejected.WithLabelValues(reason).Inc() }

// Handler serves /metrics and, under /debug/pprof/, the Go profiler: mount
// it on the admin listener only.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, MaxRequestsInFlight: 4}))
	addPprof(mux)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("provledger admin: /metrics (Prometheus), /debug/pprof/ (Go profiler)\n"))
	})
	return mux
}

type reasonKey struct{}

// SetReason names why a request was refused, for rejected_total; the
// interceptors of packages auth and limits call it before returning their
// error. It does nothing outside a request that the metrics interceptors
// saw.
func SetReason(ctx context.Context, reason string) {
	if p, ok := ctx.Value(reasonKey{}).(*atomic.Pointer[string]); ok {
		p.Store(&reason)
	}
}

func withReasonSlot(ctx context.Context) (context.Context, *atomic.Pointer[string]) {
	p := new(atomic.Pointer[string])
	return context.WithValue(ctx, reasonKey{}, p), p
}

// Route classifies an HTTP request path for the route label.
func Route(path string) string {
	switch {
	case strings.HasSuffix(path, "/checkpoint") || path == "checkpoint":
		return "checkpoint"
	case strings.Contains(path, "/tile/entries/"):
		return "entries"
	case strings.Contains(path, "/tile/"):
		return "tile"
	case strings.Contains(path, "/envelope/"):
		return "envelope"
	case strings.HasPrefix(path, "/api/v1/lineage"):
		return "lineage"
	}
	return "other"
}
