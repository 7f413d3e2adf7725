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
// (the cluster's CA). A node runs two Reloaders when its cluster has its
// own CA: one for the API (--tls-*), one between nodes (--peer-tls-*);
// AcceptClientsOf lets the API also accept the other nodes' certificates,
// and VerifyPeer tells a node's certificate from a client's.
package tlsreload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
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

// ErrNotPeer is returned by VerifyPeer for a certificate that is not a
// cluster node's (missing, or not issued by the CA bundle).
var ErrNotPeer = errors.New("tlsreload: not a certificate of the cluster CA")

// DefaultHandshakeTimeout bounds the TLS handshake of a connection
// accepted by Listener, so a peer that connects and sends nothing does not
// hold a goroutine for ever.
const DefaultHandshakeTimeout = 10 * time.Second

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
	// HandshakeTimeout bounds the handshake of connections accepted by
	// Listener. Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
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
	cas    []*x509.Certificate // what pool holds
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

	// also, if set, is another Reloader whose CA bundle ServerConfig
	// accepts client certificates from (AcceptClientsOf).
	also *Reloader
	// union caches the pool of r's and also's CAs for the pair it was
	// built from.
	unionMu  sync.Mutex
	unionFor [2]*loaded
	union    *x509.CertPool
}

// New loads the files once; it fails if they do not form a valid pair.
func New(cfg Config) (*Reloader, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, ErrNoCertificate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
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
		l.cas, err = parseCerts(b)
		if err != nil {
			return nil, fmt.Errorf("tls: client CA bundle %s: %w", r.cfg.ClientCAFile, err)
		}
		if len(l.cas) == 0 {
			return nil, fmt.Errorf("tls: client CA bundle %s holds no PEM certificate", r.cfg.ClientCAFile)
		}
		l.pool = x509.NewCertPool()
		for _, c := range l.cas {
			l.pool.AddCert(c)
		}
	}
	return l, nil
}

// parseCerts returns the certificates of a PEM bundle (other blocks are
// skipped, as x509.CertPool.AppendCertsFromPEM does).
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out, nil
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
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
			c.ClientAuth = tls.RequireAndVerifyClientCert
			if r.cfg.ClientCertOptional {
				c.ClientAuth = tls.VerifyClientCertIfGiven
			}
		} else if r.also != nil {
			// Clients need no certificate; the other nodes send theirs.
			c.ClientAuth = tls.VerifyClientCertIfGiven
		}
		c.ClientCAs = r.clientPool(l)
		return c, nil
	}
	return base
}

// AcceptClientsOf makes ServerConfig also accept client certificates that
// chain to peer's CA bundle (the cluster CA), as it is at each handshake:
// the API then takes calls from the other nodes (forwarded appends)
// beside its own clients. Without a client CA bundle of its own, r then
// asks for a certificate but does not require one. Call it before
// ServerConfig.
func (r *Reloader) AcceptClientsOf(peer *Reloader) { r.also = peer }

// clientPool is the pool client certificates are verified against: l's,
// joined with also's when set.
func (r *Reloader) clientPool(l *loaded) *x509.CertPool {
	if r.also == nil {
		return l.pool
	}
	pl := r.also.current()
	r.unionMu.Lock()
	defer r.unionMu.Unlock()
	if r.union != nil && r.unionFor == [2]*loaded{l, pl} {
		return r.union
	}
	p := x509.NewCertPool()
	for _, c := range append(append([]*x509.Certificate(nil), l.cas...), pl.cas...) {
		p.AddCert(c)
	}
	r.union, r.unionFor = p, [2]*loaded{l, pl}
	return p
}

// VerifyPeer checks that chain (a TLS peer's certificates, leaf first)
// is a cluster node's: the leaf chains to r's current CA bundle and may
// be used as a client certificate. It returns an error wrapping
// ErrNotPeer otherwise.
func (r *Reloader) VerifyPeer(chain []*x509.Certificate) error {
	pool := r.current().pool
	if pool == nil {
		return ErrNoClientCA
	}
	if len(chain) == 0 {
		return fmt.Errorf("%w: no client certificate", ErrNotPeer)
	}
	opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := chain[0].Verify(opts); err != nil {
		return fmt.Errorf("%w: certificate %q: %v", ErrNotPeer, chain[0].Subject.CommonName, err)
	}
	return nil
}

// VerifyCertificate checks cert (e.g. this node's own, at start) against
// r's current CA bundle for usage, and for host when it is not empty: what
// the other end will check. It explains a certificate the other nodes
// would refuse before they refuse it.
func (r *Reloader) VerifyCertificate(cert *tls.Certificate, host string, usage x509.ExtKeyUsage) error {
	pool := r.current().pool
	if pool == nil {
		return ErrNoClientCA
	}
	leaf := cert.Leaf
	if leaf == nil {
		if len(cert.Certificate) == 0 {
			return errors.New("tlsreload: empty certificate")
		}
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("tlsreload: %w", err)
		}
	}
	opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}
	for _, der := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("tlsreload: intermediate certificate: %w", err)
		}
		opts.Intermediates.AddCert(c)
	}
	_, err := leaf.Verify(opts)
	return err
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
// client CA bundle. The handshake runs on the connection's first read or
// write, within Config.HandshakeTimeout; a failed one is logged with the
// peer's address.
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
	return &listener{Listener: inner, cfg: c, r: r}, nil
}

// listener is tls.NewListener with a bounded, logged handshake.
type listener struct {
	net.Listener
	cfg *tls.Config
	r   *Reloader
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: tls.Server(c, l.cfg), r: l.r}, nil
}

// serverConn handshakes (once, bounded) before the first read or write.
type serverConn struct {
	*tls.Conn
	r    *Reloader
	once sync.Once
	err  error
}

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.r.cfg.HandshakeTimeout)
		defer cancel()
		if err := c.Conn.HandshakeContext(ctx); err != nil {
			c.err = fmt.Errorf("tlsreload: handshake with %s: %w", c.RemoteAddr(), err)
			c.r.log.Warn("refused a node-to-node TLS connection", "remote", c.RemoteAddr().String(), "err", err)
		}
	})
	return c.err
}

func (c *serverConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *serverConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
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
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("tlsreload: node-to-node TLS to %s: %w", addr, err)
		}
		return c, nil
	}, nil
}
