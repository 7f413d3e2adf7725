package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/forward"
	"github.com/provledger/provledger/api/limits"
	"github.com/provledger/provledger/api/metrics"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/api/tlsreload"
	"github.com/provledger/provledger/ledger"
)

// securityConfig holds the flags of TLS, authentication and limits.
type securityConfig struct {
	tlsCert, tlsKey, tlsClientCA string
	tlsClientCertOptional        bool
	authTokens                   string
	authPrivateAudit             bool
	rateLimit                    float64
	rateBurst                    int
	maxConcurrent                int
	maxInflightAppends           int
	rpcTimeout, streamTimeout    time.Duration
}

func addSecurityFlags(fs *flag.FlagSet, c *securityConfig) {
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve gRPC and HTTP over TLS; re-read when the file changes (with --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of --tls-cert; re-read when the file changes")
	fs.StringVar(&c.tlsClientCA, "tls-client-ca", "", "PEM CA bundle: require client certificates that chain to it (mutual TLS); re-read when it changes")
	fs.BoolVar(&c.tlsClientCertOptional, "tls-client-cert-optional", false, "with --tls-client-ca: accept clients without a certificate too (bearer tokens, public audit)")
	fs.StringVar(&c.authTokens, "auth-tokens", "", "require authentication: principals file of lines \"<name> sha256:<hex>|mtls:<identity> [roles=…] [ns=…] [types=…] [keys=…]\" (see docs/security.md; provd token new makes entries); off when unset")
	fs.BoolVar(&c.authPrivateAudit, "auth-private-audit", false, "with --auth-tokens: checkpoints, tiles and proofs need the auditor role (public otherwise)")
	fs.Float64Var(&c.rateLimit, "rate-limit", 0, "requests per second per identity (principal, else client IP); an append costs one per entry (0: unlimited)")
	fs.IntVar(&c.rateBurst, "rate-burst", 2000, "burst of --rate-limit, in requests (a batch larger than the burst costs the burst)")
	fs.IntVar(&c.maxConcurrent, "max-concurrent", 256, "requests in flight per identity (a stream counts as one); 0: unlimited")
	fs.IntVar(&c.maxInflightAppends, "max-inflight-appends", 128, "append RPCs in flight on the node, refused before their body is read beyond it (bounds memory: about this many times the largest request); 0: unlimited")
	fs.DurationVar(&c.rpcTimeout, "rpc-timeout", limits.DefaultTimeout, "deadline of a unary RPC whose client set none")
	fs.DurationVar(&c.streamTimeout, "stream-timeout", limits.DefaultStreamTimeout, "deadline of a streaming RPC whose client set none")
}

// validate checks each value; how the flags combine is checked when the
// node starts (combine), so that each can be set alone in the environment.
func (c *securityConfig) validate() error {
	switch {
	case c.rateLimit < 0:
		return fmt.Errorf("--rate-limit %g: must not be negative", c.rateLimit)
	case c.rateBurst <= 0:
		return fmt.Errorf("--rate-burst %d: must be positive", c.rateBurst)
	case c.maxConcurrent < 0:
		return fmt.Errorf("--max-concurrent %d: must not be negative", c.maxConcurrent)
	case c.maxInflightAppends < 0:
		return fmt.Errorf("--max-inflight-appends %d: must not be negative", c.maxInflightAppends)
	case c.rpcTimeout <= 0 || c.streamTimeout <= 0:
		return fmt.Errorf("--rpc-timeout %v and --stream-timeout %v must be positive", c.rpcTimeout, c.streamTimeout)
	}
	return nil
}

// combine checks that the flags that go together were given together.
func (c *securityConfig) combine() error {
	switch {
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case c.tlsClientCA != "" && c.tlsCert == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	case c.tlsClientCertOptional && c.tlsClientCA == "":
		return errors.New("--tls-client-cert-optional needs --tls-client-ca")
	case c.authPrivateAudit && c.authTokens == "":
		return errors.New("--auth-private-audit needs --auth-tokens")
	}
	return nil
}

// guard is a node's metrics, admin listener, TLS, authentication and
// limits (admin.go, security.go).
type guard struct {
	metrics *metrics.Metrics
	admin   *adminServer
	tls     *tlsreload.Reloader
	// peer is the node-to-node certificate (--peer-tls-*, peertls.go),
	// nodeGuard keeps the forwarded header to its nodes; both nil
	// without node TLS.
	peer      *tlsreload.Reloader
	nodeGuard *forward.NodeGuard
	auth      *auth.Authenticator
	limits    *limits.Limiter
	// unregister removes the Raft metrics hook (admin_raft.go).
	unregister func()
	// stopReload ends the SIGHUP handler that reloads --auth-tokens.
	stopReload chan struct{}
	reloadDone chan struct{}
}

// newGuard builds the guard from the flags; nothing listens yet.
func newGuard(c *config, lg *slog.Logger) (*guard, error) {
	sc := &c.security
	if err := sc.combine(); err != nil {
		return nil, err
	}
	g := &guard{metrics: metrics.New(metrics.Options{})}
	var err error
	if sc.tlsCert != "" {
		g.tls, err = tlsreload.New(tlsreload.Config{CertFile: sc.tlsCert, KeyFile: sc.tlsKey, ClientCAFile: sc.tlsClientCA, ClientCertOptional: sc.tlsClientCertOptional, Logger: lg})
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
	}
	if g.peer, err = newPeerTLS(c, lg); err != nil {
		return nil, err
	}
	if g.peer != nil {
		// The API also takes the other nodes' certificates (forwarded
		// appends, joins); only they may send the forwarded header.
		g.tls.AcceptClientsOf(g.peer)
		g.nodeGuard = forward.NewNodeGuard(g.peer.VerifyPeer, lg)
	}
	if sc.authTokens != "" {
		ps, err := auth.LoadFile(sc.authTokens)
		if err != nil {
			return nil, fmt.Errorf("--auth-tokens: %w", err)
		}
		if g.auth, err = auth.New(auth.Config{Principals: ps, PrivateAudit: sc.authPrivateAudit, Logger: lg, OnHTTPRefusal: g.metrics.Reject}); err != nil {
			return nil, fmt.Errorf("--auth-tokens: %w", err)
		}
		lg.Info("authentication on", "principals", len(ps), "public_audit", !sc.authPrivateAudit)
	} else if !c.dev {
		lg.Warn("authentication is off: anyone who reaches the API may append with a trusted key's signature and read everything (set --auth-tokens)")
	}
	g.limits, err = limits.New(limits.Config{
		Rate: sc.rateLimit, Burst: sc.rateBurst, MaxConcurrent: sc.maxConcurrent, MaxInflightAppends: sc.maxInflightAppends,
		Timeout: sc.rpcTimeout, StreamTimeout: sc.streamTimeout, Metrics: g.metrics, Logger: lg,
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// observer is the ledger's batch observer (metrics).
func (g *guard) observer() ledger.Observer { return g.metrics }

// serverConfig adds the interceptors (metrics, node guard, auth, limits,
// in that order), the HTTP middleware and TLS to sc.
func (g *guard) serverConfig(sc server.Config) server.Config {
	sc.UnaryInterceptors = append(sc.UnaryInterceptors, g.metrics.UnaryInterceptor)
	sc.StreamInterceptors = append(sc.StreamInterceptors, g.metrics.StreamInterceptor)
	if g.nodeGuard != nil {
		sc.UnaryInterceptors = append(sc.UnaryInterceptors, g.nodeGuard.UnaryInterceptor)
		sc.StreamInterceptors = append(sc.StreamInterceptors, g.nodeGuard.StreamInterceptor)
	}
	if g.auth != nil {
		sc.UnaryInterceptors = append(sc.UnaryInterceptors, g.auth.UnaryInterceptor)
		sc.StreamInterceptors = append(sc.StreamInterceptors, g.auth.StreamInterceptor)
	}
	sc.UnaryInterceptors = append(sc.UnaryInterceptors, g.limits.UnaryInterceptor)
	sc.StreamInterceptors = append(sc.StreamInterceptors, g.limits.StreamInterceptor)
	sc.ServerOptions = append(sc.ServerOptions, grpc.InTapHandle(g.limits.TapHandle))
	sc.HTTPMiddleware = func(h http.Handler) http.Handler {
		h = g.limits.HTTPMiddleware(h)
		if g.auth != nil {
			h = g.auth.HTTPMiddleware(h)
		}
		return httpRequestID(g.metrics.HTTPMiddleware(h))
	}
	if g.tls != nil {
		sc.TLSConfig = g.tls.ServerConfig()
	}
	return sc
}

// start serves the admin listener, once the node is otherwise up.
func (g *guard) start(c *config, l *ledger.Log, seq sequencer, lg *slog.Logger) error {
	g.metrics.ObserveLog(l)
	g.unregister = registerRaftMetrics(seq) // admin_raft.go
	if g.auth != nil {
		g.reloadOnHangup(c.security.authTokens, lg)
	}
	var err error
	g.admin, err = startAdmin(&c.admin, g.metrics, lg)
	return err
}

func (g *guard) stop(ctx context.Context) {
	if g != nil {
		g.admin.stop(ctx)
		if g.unregister != nil {
			g.unregister()
		}
		if g.stopReload != nil {
			close(g.stopReload)
			<-g.reloadDone
		}
	}
}

// reloadOnHangup re-reads the tokens file on SIGHUP, so tokens are added
// and revoked without a restart; a file that does not parse leaves the
// principals in force unchanged.
func (g *guard) reloadOnHangup(path string, lg *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	g.stopReload, g.reloadDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(g.reloadDone)
		defer signal.Stop(hup)
		for {
			select {
			case <-g.stopReload:
				return
			case <-hup:
				ps, err := auth.LoadFile(path)
				if err == nil {
					err = g.auth.Reload(ps)
				}
				if err != nil {
					lg.Error("SIGHUP: tokens file not reloaded; the previous principals stay in force", "file", path, "err", err)
					continue
				}
				lg.Info("SIGHUP: reloaded the tokens file", "file", path, "principals", len(ps))
			}
		}
	}()
}

// scheme is "https" with TLS, for the banner.
func (g *guard) scheme() string {
	if g.tls != nil {
		return "https"
	}
	return "http"
}

// httpRequestID gives every HTTP request a request id, as the gRPC
// server does for RPCs: the client's X-Request-Id when it is sane, else a
// new one; it is echoed in the response and carried in the context (so
// logs quote it).
func httpRequestID(next http.Handler) http.Handler {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	prefix := "h" + hex.EncodeToString(rnd[:]) + "-"
	var seq atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(server.RequestIDHeader)
		if !saneRequestID(id) {
			id = prefix + strconv.FormatUint(seq.Add(1), 10)
		}
		w.Header().Set(server.RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(service.WithRequestID(r.Context(), id)))
	})
}

// saneRequestID is the gRPC server's rule: 1..128 printable ASCII bytes.
func saneRequestID(id string) bool {
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

// requestIDHandler adds the request id of the context (set by the API
// server's interceptor) to every record logged with one.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := service.RequestID(ctx); id != "" {
		has := false
		r.Attrs(func(a slog.Attr) bool {
			has = a.Key == "request_id"
			return !has
		})
		if !has {
			r.AddAttrs(slog.String("request_id", id))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

const tokenUsage = `provd token — make entries of a tokens file (provd --auth-tokens).

  provd token new NAME [roles=…] [ns=…] [types=…] [keys=…]
      makes a random bearer token for NAME and prints it with the line to
      add to the tokens file (only the token's SHA-256 is stored there)
  provd token hash [TOKEN]
      prints sha256:<hex> of TOKEN (read from stdin when not given)

See docs/security.md for the file format and the roles.
`

// tokenCmd runs "provd token …".
func tokenCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, tokenUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "hash":
		var tok string
		switch len(args) {
		case 1:
			s, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && err != io.EOF {
				fmt.Fprintf(stderr, "provd token hash: read stdin: %v\n", err)
				return 1
			}
			tok = strings.TrimRight(s, "\r\n")
		case 2:
			tok = args[1]
		default:
			fmt.Fprint(stderr, tokenUsage)
			return 2
		}
		if tok == "" {
			fmt.Fprintln(stderr, "provd token hash: empty token")
			return 2
		}
		fmt.Fprintln(stdout, auth.HashToken(tok))
		return 0
	case "new":
		if len(args) < 2 {
			fmt.Fprint(stderr, tokenUsage)
			return 2
		}
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			fmt.Fprintf(stderr, "provd token new: %v\n", err)
			return 1
		}
		tok := "plt_" + base64.RawURLEncoding.EncodeToString(raw[:])
		line := strings.Join(append([]string{args[1], auth.HashToken(tok)}, args[2:]...), " ")
		if _, err := auth.ParseFile([]byte(line)); err != nil {
			fmt.Fprintf(stderr, "provd token new: %v\n", err)
			return 2
		}
		fmt.Fprintf(stdout, "# the token (give it to %s; it is stored nowhere):\n%s\n# the line for the tokens file:\n%s\n", args[1], tok, line)
		return 0
	}
	fmt.Fprintf(stderr, "provd token: unknown command %q\n\n%s", args[0], tokenUsage)
	return 2
}
