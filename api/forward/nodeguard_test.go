package forward_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/forward"
	"github.com/provledger/provledger/api/tlsreload"
	"github.com/provledger/provledger/api/tlsreload/certgen"
)

// TestNodeGuard serves a gRPC API with TLS for clients of the client CA
// and nodes of the cluster CA, guarded by NodeGuard: only a node may send
// the forwarded header; anyone may call without it.
func TestNodeGuard(t *testing.T) {
	dir := t.TempDir()
	clusterCA, err := certgen.NewAuthority("cluster CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := certgen.NewAuthority("client CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	issue := func(ca *certgen.Authority, name string, server bool) (string, string) {
		c, k, err := ca.Issue(certgen.Request{CommonName: name, Hosts: []string{"127.0.0.1"}, Server: server, Client: true, ValidFor: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".crt", c), write(name+".key", k)
	}
	clusterCAFile, clientCAFile := write("cluster-ca.pem", clusterCA.CertPEM()), write("client-ca.pem", clientCA.CertPEM())
	n1Cert, n1Key := issue(clusterCA, "n1", true)
	n2Cert, n2Key := issue(clusterCA, "n2", true)
	cliCert, cliKey := issue(clientCA, "client", false)

	// n1's API: its node certificate, clients of the client CA, and (joined
	// in) the other nodes.
	api, err := tlsreload.New(tlsreload.Config{CertFile: n1Cert, KeyFile: n1Key, ClientCAFile: clientCAFile, ClientCertOptional: true, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	peer1, err := tlsreload.New(tlsreload.Config{CertFile: n1Cert, KeyFile: n1Key, ClientCAFile: clusterCAFile, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	api.AcceptClientsOf(peer1)
	g := forward.NewNodeGuard(peer1.VerifyPeer, logger())
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(api.ServerConfig())), grpc.UnaryInterceptor(g.UnaryInterceptor), grpc.StreamInterceptor(g.StreamInterceptor))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	// n2 dials as provd does: the forward pool with its peer credentials.
	peer2, err := tlsreload.New(tlsreload.Config{CertFile: n2Cert, KeyFile: n2Key, ClientCAFile: clusterCAFile, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := peer2.GRPCCredentials()
	if err != nil {
		t.Fatal(err)
	}
	nodePool := forward.NewPool(nil, grpc.WithTransportCredentials(creds))
	t.Cleanup(func() { nodePool.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(clusterCA.Cert)
	clientPool := func(withCert bool) *forward.Pool {
		cfg := &tls.Config{RootCAs: roots}
		if withCert {
			c, err := tls.LoadX509KeyPair(cliCert, cliKey)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		p := forward.NewPool(nil, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		t.Cleanup(func() { p.Close() })
		return p
	}

	for _, tc := range []struct {
		name      string
		pool      *forward.Pool
		forwarded bool
		want      codes.Code
	}{
		{"node, forwarded", nodePool, true, codes.OK},
		{"node, not forwarded", nodePool, false, codes.OK},
		{"client certificate, forwarded", clientPool(true), true, codes.PermissionDenied},
		{"client certificate, not forwarded", clientPool(true), false, codes.OK},
		{"no certificate, forwarded", clientPool(false), true, codes.PermissionDenied},
		{"no certificate, not forwarded", clientPool(false), false, codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tc.pool.Conn(lis.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if tc.forwarded {
				ctx = metadata.AppendToOutgoingContext(ctx, forward.ForwardedHeader, "n9")
			}
			_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			if got := status.Code(err); got != tc.want {
				t.Fatalf("Check: %v; want %v", err, tc.want)
			}
			// Streams are guarded alike.
			st, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = st.Recv()
			}
			if got := status.Code(err); got != tc.want {
				t.Fatalf("Watch: %v; want %v", err, tc.want)
			}
		})
	}
}
