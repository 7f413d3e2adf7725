package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hashicorp/raft"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/forward"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/tlsreload/certgen"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
)

// tlsCluster is 3 in-process provd nodes with node-to-node TLS, API mTLS
// and authentication, with the certificates of `provd certs`.
type tlsCluster struct {
	dir   string // certificates
	nodes []*tlsNode
	sec   client.Security // the client's
}

type tlsNode struct {
	id, grpc, raft string
	proc           *inProc
}

// makeTestCerts runs what `provd certs` runs, into dir.
func makeTestCerts(t *testing.T, dir string, nodes, clients []string) {
	t.Helper()
	if err := makeCerts(dir, nodes, clients, []string{"127.0.0.1", "localhost"}, time.Hour, "provledger.test", io.Discard); err != nil {
		t.Fatal(err)
	}
}

// nodeTLSArgs are the TLS and auth flags of node id.
func nodeTLSArgs(dir, id string) []string {
	crt, key := filepath.Join(dir, id+".crt"), filepath.Join(dir, id+".key")
	return []string{"--tls-cert", crt, "--tls-key", key, "--tls-client-ca", filepath.Join(dir, "client-ca.crt"),
		"--peer-tls-cert", crt, "--peer-tls-key", key, "--peer-tls-ca", filepath.Join(dir, "cluster-ca.crt"),
		"--auth-tokens", filepath.Join(dir, "tokens")}
}

func newTLSCluster(t *testing.T) *tlsCluster {
	t.Helper()
	dir := t.TempDir()
	ids := []string{"n1", "n2", "n3"}
	makeTestCerts(t, dir, ids, []string{"client"})
	tokens := "n1 mtls:uri:spiffe://provledger.test/node/n1 roles=admin\n" +
		"n2 mtls:uri:spiffe://provledger.test/node/n2 roles=admin\n" +
		"n3 mtls:uri:spiffe://provledger.test/node/n3 roles=admin\n" +
		"client mtls:uri:spiffe://provledger.test/client/client roles=appender,reader ns=*\n"
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	priv, err := keys.Generate("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	logKey, err := keys.MarshalPrivatePEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	c := &tlsCluster{dir: dir, sec: client.Security{CAFile: filepath.Join(dir, "cluster-ca.crt"), CertFile: filepath.Join(dir, "client.crt"), KeyFile: filepath.Join(dir, "client.key")}}
	for i, id := range ids {
		n := &tlsNode{id: id, grpc: freeAddr(t), raft: freeAddr(t)}
		data := t.TempDir()
		if err := os.WriteFile(filepath.Join(data, "log.key"), logKey, 0o600); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"--dev", "--data", data, "--node-id", id, "--grpc-addr", n.grpc, "--http-addr", "127.0.0.1:0",
			"--raft-addr", n.raft, "--raft-timeout", "500ms", "--admin-addr", "", "--log-level", "warn"}, nodeTLSArgs(dir, id)...)
		if i == 0 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", c.nodes[0].grpc)
		}
		n.proc = startRun(t, args...)
		c.nodes = append(c.nodes, n)
	}
	return c
}

func (c *tlsCluster) dial(t *testing.T, addr string, sec client.Security) *client.Client {
	t.Helper()
	opts, err := sec.DialOptions(addr)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.Dial(context.Background(), addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// clusterClient is a Cluster service client of addr with sec.
func clusterClient(t *testing.T, addr string, sec client.Security) provledgerpb.ClusterClient {
	t.Helper()
	opts, err := sec.DialOptions(addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return provledgerpb.NewClusterClient(conn)
}

func (c *tlsCluster) logs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "--- %s:\n%s\n", n.id, n.proc.stderr.String())
	}
	return b.String()
}

// waitMembers waits until a node reports a leader and 3 answering members;
// it returns the leader's and a follower's node.
func (c *tlsCluster) waitMembers(t *testing.T) (leader, follower *tlsNode) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			st, err := clusterClient(t, n.grpc, c.sec).Status(ctx, &provledgerpb.ClusterStatusRequest{})
			cancel()
			if err != nil {
				last = err
				continue
			}
			ok := st.GetLeader().GetId() != "" && len(st.GetMembers()) == 3
			for _, m := range st.GetMembers() {
				ok = ok && m.GetStatus() != nil
			}
			if !ok {
				last = fmt.Errorf("status %v", st)
				continue
			}
			for _, m := range c.nodes {
				if m.id == st.GetLeader().GetId() {
					leader = m
				} else if follower == nil {
					follower = m
				}
			}
			return leader, follower
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no TLS cluster of 3 within 30 s: %v\n%s", last, c.logs())
	return nil, nil
}

// dialStream is a raft.StreamLayer that only dials, with TLS as cfg says,
// and remembers the certificate the last server presented.
type dialStream struct {
	net.Listener
	cfg    *tls.Config
	served *x509.Certificate
}

func (d *dialStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), d.cfg)
	if err != nil {
		return nil, err
	}
	d.served = c.ConnectionState().PeerCertificates[0]
	return c, nil
}

// raftCall sends one harmless Raft RPC (an AppendEntries of term 0, which
// every node rejects as stale) to addr over TLS as cfg says, with raft's
// own transport. It returns the certificate the node served and the RPC's
// error: nil when the node accepted the connection and answered.
func raftCall(t *testing.T, addr string, cfg *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st := &dialStream{Listener: ln, cfg: cfg}
	trans := raft.NewNetworkTransport(st, 1, 10*time.Second, io.Discard)
	defer trans.Close()
	var resp raft.AppendEntriesResponse
	err = trans.AppendEntries("probe", raft.ServerAddress(addr), &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax}}, &resp)
	if err == nil && resp.Success {
		t.Errorf("%s accepted an AppendEntries of term 0", addr)
	}
	return st.served, err
}

func keyPair(t *testing.T, dir, name string) []tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return []tls.Certificate{c}
}

func certPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatalf("%s: no certificate", file)
	}
	return p
}

func fileSerial(t *testing.T, file string) *big.Int {
	t.Helper()
	c, err := tls.LoadX509KeyPair(file, strings.TrimSuffix(file, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber
}

// TestClusterTLS: 3 provd nodes with node-to-node TLS on 127.0.0.1. An
// append through a follower is forwarded to the leader over mutual TLS
// and authorized as the forwarding node; a client cannot claim to be a
// node; nothing without a cluster CA certificate talks Raft; a rotated
// node certificate is served without a restart.
func TestClusterTLS(t *testing.T) {
	c := newTLSCluster(t)
	leader, follower := c.waitMembers(t)
	s := newTestSigner(t)
	v, err := checkpoint.NewVerifier(devOrigin, mustLogPub(t, leader))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("append through a follower", func(t *testing.T) {
		resp, err := appendOne(t, c.dial(t, follower.grpc, c.sec), v, s, "via-follower", true)
		if err != nil {
			t.Fatalf("append via follower %s: %v\n%s", follower.id, err, c.logs())
		}
		// The leader has it at that index.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e, err := c.dial(t, leader.grpc, c.sec).GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: resp.GetIndex()})
		if err != nil {
			t.Fatalf("leader GetEntry(%d): %v", resp.GetIndex(), err)
		}
		if !bytes.Equal(e.GetRecord(), resp.GetRecord()) {
			t.Error("the leader holds another record at the acknowledged index")
		}
	})

	t.Run("a client cannot claim to be a node", func(t *testing.T) {
		env, err := s.statement("spoofed")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, forward.ForwardedHeader, follower.id)
		_, err = c.dial(t, leader.grpc, c.sec).AppendBatch(ctx, &provledgerpb.AppendBatchRequest{Requests: []*provledgerpb.AppendRequest{s.appendRequest(env, true)}})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), forward.ForwardedHeader) {
			t.Errorf("AppendBatch with the forwarded header from a client: %v; want PermissionDenied naming the header", err)
		}
	})

	stranger := t.TempDir()
	makeTestCerts(t, stranger, []string{"n1"}, []string{"client"}) // another CA, same names
	clusterRoots := certPool(t, filepath.Join(c.dir, "cluster-ca.crt"))
	t.Run("raft handshakes", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cert []tls.Certificate
			ok   bool
		}{
			{"node certificate of the cluster CA", keyPair(t, c.dir, "n2"), true},
			{"node certificate of another CA", keyPair(t, stranger, "n1"), false},
			{"client certificate of the client CA", keyPair(t, c.dir, "client"), false},
			{"no certificate", nil, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := raftCall(t, leader.raft, &tls.Config{RootCAs: clusterRoots, ServerName: "127.0.0.1", Certificates: tc.cert})
				if (err == nil) != tc.ok {
					t.Errorf("handshake with %s's Raft port: %v; want ok=%v", leader.id, err, tc.ok)
				}
			})
		}
		// A stranger's Raft listener is refused by the dialing side too:
		// the node would not accept a peer whose server certificate is
		// not of the cluster CA.
		_, err := raftCall(t, leader.raft, &tls.Config{RootCAs: certPool(t, filepath.Join(stranger, "cluster-ca.crt")), ServerName: "127.0.0.1", Certificates: keyPair(t, stranger, "n1")})
		if err == nil {
			t.Error("a dialer trusting another CA completed a handshake")
		}
		// Plain TCP speaking Raft's framing gets nothing back.
		conn, err := net.DialTimeout("tcp", leader.raft, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(15 * time.Second))
		// rpcAppendEntries and a msgpack map: not a TLS record header.
		conn.Write(append([]byte{0, 0x81, 0xa4}, make([]byte, 16)...))
		if n, err := io.ReadFull(conn, make([]byte, 64)); err == nil {
			t.Errorf("plaintext Raft got %d bytes of answer", n)
		}
	})

	t.Run("a stranger cannot join", func(t *testing.T) {
		sec := client.Security{CAFile: filepath.Join(c.dir, "cluster-ca.crt"), CertFile: filepath.Join(stranger, "n1.crt"), KeyFile: filepath.Join(stranger, "n1.key")}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := clusterClient(t, leader.grpc, sec).Join(ctx, &provledgerpb.JoinRequest{NodeId: "n9", RaftAddress: "127.0.0.1:1", ApiAddress: "127.0.0.1:2"})
		if err == nil {
			t.Fatal("Join with a certificate of another CA succeeded")
		}
	})

	t.Run("rotation", func(t *testing.T) {
		target := follower
		old := fileSerial(t, filepath.Join(c.dir, target.id+".crt"))
		makeTestCerts(t, c.dir, []string{target.id}, nil) // new key and certificate, same CA
		now := fileSerial(t, filepath.Join(c.dir, target.id+".crt"))
		if old.Cmp(now) == 0 {
			t.Fatal("the rotation made the same serial")
		}
		srv, err := raftCall(t, target.raft, &tls.Config{RootCAs: clusterRoots, ServerName: "127.0.0.1", Certificates: keyPair(t, c.dir, leader.id)})
		if err != nil {
			t.Fatalf("raft handshake after rotation: %v", err)
		}
		if srv.SerialNumber.Cmp(now) != 0 {
			t.Errorf("Raft port of %s serves serial %v after the rotation; want the new %v", target.id, srv.SerialNumber, now)
		}
		// The cluster still takes appends through the rotated node.
		if _, err := appendOne(t, c.dial(t, target.grpc, c.sec), v, s, "after-rotation", true); err != nil {
			t.Fatalf("append via %s after rotation: %v\n%s", target.id, err, c.logs())
		}
	})
}

func mustLogPub(t *testing.T, n *tlsNode) ed25519.PublicKey {
	t.Helper()
	b, err := os.ReadFile(n.proc.logPubPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.ParsePublicPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return pub.(ed25519.PublicKey)
}

// TestPeerTLSStartErrors: node-to-node TLS flags that cannot work stop
// the node at start with a message that says what to fix.
func TestPeerTLSStartErrors(t *testing.T) {
	dir := t.TempDir()
	makeTestCerts(t, dir, []string{"n1"}, []string{"client"})
	other := t.TempDir()
	makeTestCerts(t, other, []string{"n1"}, nil)
	crt, key, ca := filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key"), filepath.Join(dir, "cluster-ca.crt")
	api := []string{"--tls-cert", crt, "--tls-key", key}
	peer := []string{"--peer-tls-cert", crt, "--peer-tls-key", key, "--peer-tls-ca", ca}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"cert alone", []string{"--node-id", "n1", "--peer-tls-cert", crt}, "go together"},
		{"not in cluster mode", cat(api, peer), "needs --node-id"},
		{"API without TLS", cat([]string{"--node-id", "n1"}, peer), "needs --tls-cert"},
		{"cluster API TLS without node TLS", cat([]string{"--node-id", "n1"}, api), "needs --peer-tls-cert"},
		{"missing file", cat([]string{"--node-id", "n1"}, api, []string{"--peer-tls-cert", filepath.Join(dir, "missing.crt"), "--peer-tls-key", key, "--peer-tls-ca", ca}), "no such file"},
		{"CA bundle without a certificate", cat([]string{"--node-id", "n1"}, api, []string{"--peer-tls-cert", crt, "--peer-tls-key", key, "--peer-tls-ca", key}), "holds no PEM certificate"},
		{"certificate of another CA", cat([]string{"--node-id", "n1"}, api, []string{"--peer-tls-cert", filepath.Join(other, "n1.crt"), "--peer-tls-key", filepath.Join(other, "n1.key"), "--peer-tls-ca", ca}), "the other nodes would refuse it"},
		{"client certificate as node certificate", cat([]string{"--node-id", "n1"}, api, []string{"--peer-tls-cert", filepath.Join(dir, "client.crt"), "--peer-tls-key", filepath.Join(dir, "client.key"), "--peer-tls-ca", filepath.Join(dir, "client-ca.crt")}), "Raft address"},
		{"Raft address not in the certificate", cat([]string{"--node-id", "n1", "--raft-advertise", "10.9.9.9:7402"}, api, peer), "Raft address at 10.9.9.9"},
		{"API certificate of another CA", cat([]string{"--node-id", "n1", "--tls-cert", filepath.Join(other, "n1.crt"), "--tls-key", filepath.Join(other, "n1.key")}, peer), "forward appends to this node's API"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := cat([]string{"--dev", "--data", t.TempDir(), "--grpc-addr", freeAddr(t), "--http-addr", "127.0.0.1:0", "--raft-addr", freeAddr(t), "--admin-addr", "", "--log-level", "error"}, tc.args)
			var stdout, stderr bytes.Buffer
			code := runOnce(t, args, &stdout, &stderr)
			if code == 0 {
				t.Fatalf("provd started; stdout:\n%s", &stdout)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, &stderr)
			}
		})
	}
}

// TestCertsCommand: provd certs makes both CAs once, node and client
// certificates that chain to the right one, and reissues on a second run.
func TestCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"certs", "--out", dir, "--nodes", "a,b", "--clients", "ci", "--hosts", "127.0.0.1,node.example"}, &out, &errb); code != 0 {
		t.Fatalf("provd certs: exit %d\n%s", code, &errb)
	}
	for _, want := range []string{"--peer-tls-ca " + dir + "/cluster-ca.crt", "a mtls:uri:spiffe://provledger.local/node/a roles=admin", "ci mtls:uri:spiffe://provledger.local/client/ci"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
	clusterPool, clientPool := certPool(t, filepath.Join(dir, "cluster-ca.crt")), certPool(t, filepath.Join(dir, "client-ca.crt"))
	for _, tc := range []struct {
		name  string
		pool  *x509.CertPool
		host  string
		usage x509.ExtKeyUsage
		ok    bool
	}{
		{"a", clusterPool, "node.example", x509.ExtKeyUsageServerAuth, true},
		{"b", clusterPool, "127.0.0.1", x509.ExtKeyUsageServerAuth, true},
		{"b", clusterPool, "", x509.ExtKeyUsageClientAuth, true},
		{"b", clientPool, "", x509.ExtKeyUsageClientAuth, false},
		{"ci", clientPool, "", x509.ExtKeyUsageClientAuth, true},
		{"ci", clusterPool, "", x509.ExtKeyUsageClientAuth, false},
		{"ci", clientPool, "127.0.0.1", x509.ExtKeyUsageServerAuth, false},
	} {
		c := keyPair(t, dir, tc.name)[0]
		_, err := c.Leaf.Verify(x509.VerifyOptions{Roots: tc.pool, DNSName: tc.host, KeyUsages: []x509.ExtKeyUsage{tc.usage}})
		if (err == nil) != tc.ok {
			t.Errorf("%s against %v for %q: %v; want ok=%v", tc.name, tc.usage, tc.host, err, tc.ok)
		}
	}
	caBefore, _ := os.ReadFile(filepath.Join(dir, "cluster-ca.crt"))
	serial := fileSerial(t, filepath.Join(dir, "a.crt"))
	out.Reset()
	if code := run(context.Background(), []string{"certs", "--out", dir, "--nodes", "a", "--clients", ""}, &out, &errb); code != 0 {
		t.Fatalf("second provd certs: exit %d\n%s", code, &errb)
	}
	caAfter, _ := os.ReadFile(filepath.Join(dir, "cluster-ca.crt"))
	if !bytes.Equal(caBefore, caAfter) || !strings.Contains(out.String(), "kept") {
		t.Error("the second run replaced the CA")
	}
	if fileSerial(t, filepath.Join(dir, "a.crt")).Cmp(serial) == 0 {
		t.Error("the second run did not reissue a.crt")
	}
	if _, err := certgen.LoadAuthority(filepath.Join(dir, "cluster-ca.crt"), filepath.Join(dir, "cluster-ca.key")); err != nil {
		t.Errorf("cluster CA files: %v", err)
	}
	for _, bad := range [][]string{
		{"certs", "--nodes", "../x"},
		{"certs", "--nodes", "a,a"},
		{"certs", "--nodes", "", "--clients", ""},
		{"certs", "--days", "0"},
		{"certs", "--hosts", "", "--nodes", "a"},
		{"certs", "stray"},
	} {
		var o, e bytes.Buffer
		if code := run(context.Background(), append(bad, "--out", t.TempDir()), &o, &e); code != 2 {
			t.Errorf("provd %q: exit %d; want 2 (stderr %s)", bad, code, &e)
		}
	}
}
