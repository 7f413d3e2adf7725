package clusterservice_test

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/clusterservice"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/tlsreload"
	"github.com/provledger/provledger/api/tlsreload/certgen"
)

// issue writes a node certificate of ca for 127.0.0.1 into dir.
func issue(t *testing.T, ca *certgen.Authority, dir, name string) (certFile, keyFile string) {
	t.Helper()
	c, k, err := ca.Issue(certgen.Request{CommonName: name, Hosts: []string{"127.0.0.1"}, Server: true, Client: true, ValidFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := certgen.WritePair(certFile, keyFile, c, k); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestJoinProbeTLS: with the node's TLS Raft dialer (what provd gives a
// cluster with --peer-tls-*), the leader refuses to add an address that
// answers without TLS, or with a certificate of another CA.
func TestJoinProbeTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := certgen.NewAuthority("cluster-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "cluster-ca.crt")
	if err := ca.WriteAuthority(caFile, filepath.Join(dir, "cluster-ca.key")); err != nil {
		t.Fatal(err)
	}
	crt, key := issue(t, ca, dir, "n1")
	r, err := tlsreload.New(tlsreload.Config{CertFile: crt, KeyFile: key, ClientCAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	dial, err := r.Dialer("")
	if err != nil {
		t.Fatal(err)
	}
	ns := newCluster(t, 1, func(c *clusterservice.Config) { c.DialRaft = dial })

	other, err := certgen.NewAuthority("other-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ocrt, okey := issue(t, other, dir, "stranger")
	pair, err := tls.LoadX509KeyPair(ocrt, okey)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	strangerAddr := hangUp(t, stranger, func(c net.Conn) { c.(*tls.Conn).Handshake() })

	before := members(t, ns)
	ctx := ctxT(t, 30*time.Second)
	for _, tc := range []struct{ name, addr, says string }{
		{"plain TCP, no TLS", decoy(t), "node-to-node TLS"},
		{"certificate of another CA", strangerAddr, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ns[0].client.Join(ctx, &provledgerpb.JoinRequest{NodeId: "n2", RaftAddress: tc.addr, ApiAddress: tc.addr})
			st := status.Convert(err)
			if st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "cannot reach raft address "+tc.addr) || !strings.Contains(st.Message(), tc.says) {
				t.Fatalf("join at %s: %v; want FailedPrecondition saying %q", tc.addr, err, tc.says)
			}
			if now := members(t, ns); !slices.Equal(now, before) {
				t.Fatalf("membership changed: %q, was %q", now, before)
			}
		})
	}
}
