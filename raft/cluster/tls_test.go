package cluster_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/provledger/provledger/raft/cluster"
)

// testPKI is a CA and one certificate it issued for 127.0.0.1 (server and
// client use), made with the standard library (raft/ imports no api).
type testPKI struct {
	pool *x509.CertPool
	cert tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "raft test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{pool: x509.NewCertPool(), cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
	p.pool.AddCert(ca)
	return p
}

func (p *testPKI) server() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.cert}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}

func (p *testPKI) client(host string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.cert}, RootCAs: p.pool, ServerName: host, MinVersion: tls.VersionTLS12}
}

// TestTLSTransport runs a 3-node cluster whose Raft traffic goes through
// the caller's Listener and Dial, wrapped in mutual TLS (what provd does
// with --peer-tls-*): it replicates, every node agrees, and a dialer with
// a certificate of another CA gets no Raft answer.
func TestTLSTransport(t *testing.T) {
	pki := newTestPKI(t)
	var dials, accepts atomic.Int64
	c := newCluster(t, 3, false, func(cfg *cluster.Config) {
		cfg.Listener = &countingListener{Listener: tls.NewListener(cfg.Listener, pki.server()), n: &accepts}
		cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			dials.Add(1)
			d := tls.Dialer{Config: pki.client(host)}
			return d.DialContext(ctx, "tcp", addr)
		}
	})
	l := c.bootstrap()
	ctx := ctxT(t, 30*time.Second)
	h := newHistory()
	for range 5 {
		rs, err := c.submit(ctx, newEntries(4))
		if err != nil {
			t.Fatal(err)
		}
		h.add(t, verifier(t), rs)
	}
	c.converge(20, 20*time.Second)
	c.checkAgree()
	c.checkHistory(h)
	if dials.Load() == 0 || accepts.Load() == 0 {
		t.Fatalf("raft dialed %d and accepted %d connections through the caller's TLS dialer and listener", dials.Load(), accepts.Load())
	}

	// A stranger: a certificate of another CA (it trusts the cluster's, so
	// the refusal is the node's).
	other := newTestPKI(t)
	scfg := other.client("127.0.0.1")
	scfg.RootCAs = pki.pool
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trans := raft.NewNetworkTransport(&strangerStream{Listener: ln, cfg: scfg}, 1, 5*time.Second, io.Discard)
	defer trans.Close()
	var resp raft.AppendEntriesResponse
	err = trans.AppendEntries("stranger", raft.ServerAddress(l.raftAddr), &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax}}, &resp)
	if err == nil {
		t.Fatal("a node with a certificate of another CA got a Raft answer")
	}
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// strangerStream dials with TLS as cfg says (a raft.StreamLayer).
type strangerStream struct {
	net.Listener
	cfg *tls.Config
}

func (s *strangerStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), s.cfg)
}
