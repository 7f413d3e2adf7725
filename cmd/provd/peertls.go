package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"

	"google.golang.org/grpc"

	"github.com/provledger/provledger/api/forward"
	"github.com/provledger/provledger/api/tlsreload"
)

// peerTLSConfig holds the node-to-node TLS flags of cluster mode: the
// node's certificate and the cluster CA, for Raft (both ways) and for the
// calls one node makes to another's API (forwarded appends, joins).
type peerTLSConfig struct {
	cert, key, ca string
}

func addPeerTLSFlags(fs *flag.FlagSet, c *peerTLSConfig) {
	fs.StringVar(&c.cert, "peer-tls-cert", "", "cluster mode: PEM certificate of this node for node-to-node TLS (Raft, and the client certificate of calls to the other nodes' API); must chain to --peer-tls-ca, allow server and client use and name the --raft-advertise host; re-read when the file changes (provd certs makes one)")
	fs.StringVar(&c.key, "peer-tls-key", "", "cluster mode: PEM private key of --peer-tls-cert; re-read when the file changes")
	fs.StringVar(&c.ca, "peer-tls-ca", "", "cluster mode: PEM CA bundle of the cluster: only nodes with a certificate chaining to it talk Raft with this node or forward appends to it; re-read when it changes")
}

func (c *peerTLSConfig) on() bool { return c.cert != "" || c.key != "" || c.ca != "" }

// newPeerTLS loads the node-to-node certificate (nil without --peer-tls-*)
// and checks how the flags combine. It is called when the node starts,
// before anything listens.
func newPeerTLS(c *config, lg *slog.Logger) (*tlsreload.Reloader, error) {
	p, sc := &c.cluster.peerTLS, &c.security
	if !p.on() {
		if c.cluster.nodeID != "" && sc.tlsCert != "" {
			return nil, errors.New("cluster mode with --tls-cert needs --peer-tls-cert, --peer-tls-key and --peer-tls-ca: followers forward appends to the leader's TLS API with the node's certificate (provd certs makes them; see docs/security.md)")
		}
		return nil, nil
	}
	switch {
	case p.cert == "" || p.key == "" || p.ca == "":
		return nil, errors.New("--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together")
	case c.cluster.nodeID == "":
		return nil, errors.New("--peer-tls-cert needs --node-id (cluster mode)")
	case sc.tlsCert == "":
		return nil, fmt.Errorf("--peer-tls-cert needs --tls-cert and --tls-key: followers forward appends to the leader's API, which must then be served over TLS (the node certificate will do: --tls-cert %s --tls-key %s)", p.cert, p.key)
	}
	r, err := tlsreload.New(tlsreload.Config{CertFile: p.cert, KeyFile: p.key, ClientCAFile: p.ca, Logger: lg.With("tls", "peer")})
	if err != nil {
		return nil, fmt.Errorf("--peer-tls-cert/--peer-tls-key/--peer-tls-ca: %w", err)
	}
	if err := r.VerifyCertificate(r.Certificate(), "", x509.ExtKeyUsageClientAuth); err != nil {
		return nil, fmt.Errorf("--peer-tls-cert %s: the other nodes would refuse it: %v (it must chain to a CA of --peer-tls-ca %s, be valid now, and allow client use)", p.cert, err, p.ca)
	}
	if sc.tlsClientCA != "" && sharesCert(sc.tlsClientCA, p.ca) {
		lg.Warn("--tls-client-ca and --peer-tls-ca share a CA: a client certificate of that CA is also accepted as a cluster node's (Raft, forwarded appends); give the nodes a CA of their own", "tls_client_ca", sc.tlsClientCA, "peer_tls_ca", p.ca)
	}
	return r, nil
}

// sharesCert reports whether two PEM bundles hold a common certificate
// (an unreadable file shares nothing: the reloaders report it).
func sharesCert(a, b string) bool {
	ca, err1 := readCerts(a)
	cb, err2 := readCerts(b)
	if err1 != nil || err2 != nil {
		return false
	}
	for _, x := range ca {
		for _, y := range cb {
			if bytes.Equal(x.Raw, y.Raw) {
				return true
			}
		}
	}
	return false
}

func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out, nil
		}
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil && blk.Type == "CERTIFICATE" {
			out = append(out, c)
		}
	}
}

// peerTransport is what cluster mode dials and listens with: plain TCP
// and plaintext gRPC without --peer-tls-*, TLS with the node's
// certificate otherwise.
type peerTransport struct {
	listener net.Listener
	dial     func(ctx context.Context, addr string) (net.Conn, error)
	pool     *forward.Pool
}

// newPeerTransport wraps the Raft listener and makes the dialer and the
// forward pool. raftHost and apiHost are the hosts the other nodes dial
// (this node's certificates must be valid for them).
func newPeerTransport(c *config, g *guard, ln net.Listener, raftHost, apiHost string) (*peerTransport, error) {
	if g.peer == nil {
		return &peerTransport{listener: ln, pool: forward.NewPool(nil)}, nil
	}
	pc := &c.cluster.peerTLS
	if ip := net.ParseIP(raftHost); raftHost != "" && (ip == nil || !ip.IsUnspecified()) {
		if err := g.peer.VerifyCertificate(g.peer.Certificate(), raftHost, x509.ExtKeyUsageServerAuth); err != nil {
			return nil, fmt.Errorf("--peer-tls-cert %s: the other nodes dial this node's Raft address at %s and would refuse the certificate: %v (issue it for that host, with server use)", pc.cert, raftHost, err)
		}
	}
	if err := g.peer.VerifyCertificate(g.tls.Certificate(), apiHost, x509.ExtKeyUsageServerAuth); err != nil {
		return nil, fmt.Errorf("--tls-cert %s: the other nodes forward appends to this node's API at %s and check its certificate against --peer-tls-ca %s: %v (serve the API with the node certificate, or another of the cluster CA valid for that host)", c.security.tlsCert, apiHost, pc.ca, err)
	}
	tln, err := g.peer.Listener(ln)
	if err != nil {
		return nil, fmt.Errorf("--peer-tls-ca: %w", err)
	}
	dial, err := g.peer.Dialer("")
	if err != nil {
		return nil, fmt.Errorf("--peer-tls-ca: %w", err)
	}
	creds, err := g.peer.GRPCCredentials()
	if err != nil {
		return nil, fmt.Errorf("--peer-tls-ca: %w", err)
	}
	return &peerTransport{listener: tln, dial: dial, pool: forward.NewPool(nil, grpc.WithTransportCredentials(creds))}, nil
}
