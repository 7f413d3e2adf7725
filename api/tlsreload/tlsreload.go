// Package tlsreload serves TLS with a certificate, key and optional client
// CA bundle read from files, and re-reads them when they change on disk, so
// a certificate can be rotated without restarting the node.
//
// Every handshake stats the files (three stat calls, microseconds); when
// one changed, the files are loaded again and, if they form a valid pair,
// used from that handshake on. A half-written rotation (a new certificate
// beside the old key) fails to load and the previous pair stays in use
// until the files agree again, so a rotation never takes the node down.
//
// ServerConfig is for the gRPC and HTTP listeners. Listener and Dialer wrap
// plain TCP for other protocols (Raft's transport): both sides present the
// node's certificate and verify the other against the client CA bundle
// (the cluster's CA).
package tlsreload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"
)

// ErrNoCertificate is returned when Config lacks the certificate or key.
var ErrNoCertificate = errors.New("tlsreload: a certificate file and a key file are required")

// ErrNoClientCA is returned by Listener and Dialer when no client CA bundle
// is configured: node-to-node TLS must verify both ends.
var ErrNoClientCA = errors.New("tlsreload: node-to-node TLS needs a CA bundle (ClientCAFile) to verify the other node")

// Config names the files.
type Config struct {
	// CertFile and KeyFile are the PEM certificate chain and private key.
	// Required.
	CertFile, KeyFile string
	// ClientCAFile, if set, is a PEM bundle of the CAs client certificates
	// must chain to (mutual TLS).
	ClientCAFile string
	// ClientCertOptional accepts clients without a certificate (a
	// certificate that is sent is still verified); otherwise, with
	// ClientCAFile, every client must present one.
	ClientCertOptional bool
	// Logger receives reload messages. Default slog.Default().
	Logger *slog.Logger
}

type stamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func statFile(path string) (stamp, error) {
	if path == "" {
		return stamp{}, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	s := stamp{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = uint64(st.Ino)
	}
	return s, nil
}

type loaded struct {
	cert   *tls.Certificate
	pool   *x509.CertPool
	stamps [3]stamp
}

// Reloader holds the current certificate and CA pool. It is safe for
// concurrent use.
type Reloader struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	cur     *loaded
	failed  [3]stamp // stamps of the last load that failed (not retried until they change)
	reloads int
}

// New loads the files once; it fails if they do not form a valid pair.
func New(cfg Config) (*Reloader, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, ErrNoCertificate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Reloader{cfg: cfg, log: cfg.Logger.With("component", "tls")}
	st, err := r.stamps()
	if err != nil {
		return nil, err
	}
	l, err := r.load(st)
	if err != nil {
		return nil, err
	}
	r.cur = l
	return r, nil
}

func (r *Reloader) stamps() ([3]stamp, error) {
	var out [3]stamp
	for i, p := range []string{r.cfg.CertFile, r.cfg.KeyFile, r.cfg.ClientCAFile} {
		s, err := statFile(p)
		if err != nil {
			return out, fmt.Errorf("tls: %w", err)
		}
		out[i] = s
	}
	return out, nil
}

func (r *Reloader) load(st [3]stamp) (*loaded, error) {
	cert, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s and key %s: %w", r.cfg.CertFile, r.cfg.KeyFile, err)
	}
	l := &loaded{cert: &cert, stamps: st}
	if r.cfg.ClientCAFile != "" {
		b, err := os.ReadFile(r.cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client CA bundle: %w", err)
		}
		l.pool = x509.NewCertPool()
		if !l.pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("tls: client CA bundle %s holds no PEM certificate", r.cfg.ClientCAFile)
		}
	}
	return l, nil
}

// current returns the pair in use, reloading it first if a file changed.
func (r *Reloader) current() *loaded {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stamps()
	if err != nil || st == r.cur.stamps || st == r.failed {
		if err != nil && st != r.failed {
			r.log.Warn("cannot stat the TLS files; serving the previous certificate", "err", err)
			r.failed = st
		}
		return r.cur
	}
	l, err := r.load(st)
	if err != nil {
		r.failed = st
		r.log.Warn("TLS files changed but do not load; serving the previous certificate until they do", "err", err)
		return r.cur
	}
	r.cur = l
	r.reloads++
	r.log.Info("reloaded the TLS certificate", "cert", r.cfg.CertFile, "not_after", l.cert.Leaf.NotAfter)
	return l
}

// Reloads returns how many times the files were reloaded after New.
func (r *Reloader) Reloads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloads
}

// Certificate returns the certificate in use (reloaded if its files
// changed).
func (r *Reloader) Certificate() *tls.Certificate { return r.current().cert }

// ServerConfig returns a server tls.Config that picks the current
// certificate and client CA pool at each handshake. It offers ALPN h2 and
// http/1.1 (gRPC needs h2).
func (r *Reloader) ServerConfig() *tls.Config {
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}
	base.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.Certificate(), nil }
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		l := r.current()
		c := base.Clone()
		c.GetConfigForClient = nil
		c.GetCertificate = nil
		c.Certificates = []tls.Certificate{*l.cert}
		if l.pool != nil {
			c.ClientCAs = l.pool
			c.ClientAuth = tls.RequireAndVerifyClientCert
			if r.cfg.ClientCertOptional {
				c.ClientAuth = tls.VerifyClientCertIfGiven
			}
		}
		return c, nil
	}
	return base
}

// ClientConfig returns a client tls.Config for node-to-node connections:
// it presents the current certificate and verifies the server's chain
// against the current client CA bundle, for serverName (the dialed host
// when empty, see Dialer).
func (r *Reloader) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return r.Certificate(), nil
		},
		// The roots change on reload, so verification is done here with
		// the current pool instead of a fixed RootCAs.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			pool := r.current().pool
			if pool == nil {
				return ErrNoClientCA
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tlsreload: the server sent no certificate")
			}
			name := serverName
			if name == "" {
				name = cs.ServerName // what the dialer (e.g. gRPC, from the target) asked for
			}
			opts := x509.VerifyOptions{Roots: pool, DNSName: name, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				return fmt.Errorf("tlsreload: server certificate: %w", err)
			}
			return nil
		},
	}
}

// GRPCCredentials returns gRPC transport credentials for calls from this
// node to another node's API (e.g. forwarding appends to the leader):
// the node's certificate as client certificate, the other node's verified
// against the client CA bundle and the dialed host name.
func (r *Reloader) GRPCCredentials() (credentials.TransportCredentials, error) {
	if r.cfg.ClientCAFile == "" {
		return nil, ErrNoClientCA
	}
	return credentials.NewTLS(r.ClientConfig("")), nil
}

// Listener wraps inner (e.g. Raft's TCP listener) in TLS with the current
// certificate; every peer must present a certificate that chains to the
// client CA bundle.
func (r *Reloader) Listener(inner net.Listener) (net.Listener, error) {
	if r.cfg.ClientCAFile == "" {
		return nil, ErrNoClientCA
	}
	c := r.ServerConfig()
	get := c.GetConfigForClient
	c.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		cc, err := get(h)
		if err == nil {
			cc.ClientAuth = tls.RequireAndVerifyClientCert // never optional between nodes
			cc.NextProtos = nil
		}
		return cc, err
	}
	return tls.NewListener(inner, c), nil
}

// Dialer returns a dial function for node-to-node connections (the shape
// of raft/cluster's Config.Dial): TCP, then a TLS handshake that presents
// the node's certificate and verifies the other node's against the client
// CA bundle, for serverName or, when it is empty, the dialed host.
func (r *Reloader) Dialer(serverName string) (func(ctx context.Context, addr string) (net.Conn, error), error) {
	if r.cfg.ClientCAFile == "" {
		return nil, ErrNoClientCA
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		name := serverName
		if name == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, fmt.Errorf("tlsreload: dial %q: %w", addr, err)
			}
			name = host
		}
		d := tls.Dialer{Config: r.ClientConfig(name)}
		return d.DialContext(ctx, "tcp", addr)
	}, nil
}
