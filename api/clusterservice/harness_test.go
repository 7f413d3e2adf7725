package clusterservice_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/provledger/provledger/api/clusterservice"
	"github.com/provledger/provledger/api/forward"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/badgerstore"
	"github.com/provledger/provledger/raft/cluster"
)

const origin = "test/clusterservice"

// tnode is one node: ledger, Raft over TCP on 127.0.0.1, and its Cluster
// service served over real gRPC on 127.0.0.1.
type tnode struct {
	id     string
	api    string
	node   *cluster.Node
	svc    *clusterservice.Service
	client provledgerpb.ClusterClient
	// stop shuts the node down (API, Raft, ledger); idempotent.
	stop func()
}

// newCluster starts n nodes: n1 bootstraps, the others join through n1's
// Cluster service over gRPC (so each join goes through the leader's
// checks, the reachability probe included). mod, if set, adjusts every
// node's service configuration.
func newCluster(t testing.TB, n int, mod func(*clusterservice.Config)) []*tnode {
	t.Helper()
	lg := slog.New(slog.DiscardHandler)
	s, err := checkpoint.NewSigner(origin, ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir() // before the Cleanup below, so removed after it ran
	var (
		ns    []*tnode
		stops []func()
	)
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, stop := range stops {
			wg.Add(1)
			go func() { defer wg.Done(); stop() }()
		}
		wg.Wait()
	})
	for i := range n {
		tn := &tnode{id: fmt.Sprintf("n%d", i+1)}
		dir := filepath.Join(root, tn.id)
		l, err := ledger.Open(filepath.Join(dir, "ledger"), ledger.Options{Origin: origin, Signer: s, Logger: lg})
		if err != nil {
			t.Fatal(err)
		}
		gl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		rl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tn.api = gl.Addr().String()
		tn.node, err = cluster.Open(cluster.Config{NodeID: tn.id, Dir: filepath.Join(dir, "raft"), Log: l, APIAddr: tn.api, Listener: rl, Logger: lg,
			HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond, LeaderLeaseTimeout: 150 * time.Millisecond,
			CommitTimeout: 5 * time.Millisecond, Store: badgerstore.Options{MemTableSize: 16 << 20, GCInterval: -1}})
		if err != nil {
			t.Fatal(err)
		}
		pool := forward.NewPool(nil)
		cfg := clusterservice.Config{Node: tn.node, Pool: pool, PeerTimeout: time.Second, ProbeTimeout: 500 * time.Millisecond, Logger: lg}
		if mod != nil {
			mod(&cfg)
		}
		if tn.svc, err = clusterservice.New(cfg); err != nil {
			t.Fatal(err)
		}
		g := grpc.NewServer()
		provledgerpb.RegisterClusterServer(g, tn.svc)
		go g.Serve(gl)
		conn, err := grpc.NewClient(tn.api, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		tn.client = provledgerpb.NewClusterClient(conn)
		var once sync.Once
		tn.stop = func() {
			once.Do(func() {
				conn.Close()
				g.Stop()
				pool.Close()
				tn.node.Shutdown()
				l.Close()
			})
		}
		stops = append(stops, tn.stop)
		ns = append(ns, tn)
	}
	if err := ns[0].node.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 30*time.Second)
	if _, err := ns[0].node.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tn := range ns[1:] {
		if _, err := ns[0].client.Join(ctx, &provledgerpb.JoinRequest{NodeId: tn.id, RaftAddress: tn.node.RaftAddr(), ApiAddress: tn.api}); err != nil {
			t.Fatalf("join %s: %v", tn.id, err)
		}
	}
	for _, tn := range ns {
		waitFor(t, tn.id+" knows the leader's API address", func() bool { l, ok := tn.node.Leader(); return ok && l.APIAddr != "" })
	}
	return ns
}

// oneNode is a one-voter cluster with its Cluster service.
func oneNode(t testing.TB) (*clusterservice.Service, *cluster.Node) {
	t.Helper()
	ns := newCluster(t, 1, nil)
	return ns[0].svc, ns[0].node
}

// leaderOf waits for a leader among ns and returns it and the others.
func leaderOf(t testing.TB, ns []*tnode) (*tnode, []*tnode) {
	t.Helper()
	var l *tnode
	waitFor(t, "a leader", func() bool {
		for _, tn := range ns {
			if tn.node.IsLeader() {
				l = tn
				return true
			}
		}
		return false
	})
	var fs []*tnode
	for _, tn := range ns {
		if tn != l {
			fs = append(fs, tn)
		}
	}
	return l, fs
}

// members is the configuration as the leader sees it, API addresses
// included, as comparable strings.
func members(t testing.TB, ns []*tnode) []string {
	t.Helper()
	l, _ := leaderOf(t, ns)
	ms, err := l.node.Members(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("members: %v", err)
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprintf("%s raft=%s api=%s voter=%v", m.ID, m.RaftAddr, m.APIAddr, m.Voter)
	}
	return out
}

// closedAddr is a 127.0.0.1 address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
