package forward_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/clusterservice"
	"github.com/provledger/provledger/api/forward"
	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/badgerstore"
	"github.com/provledger/provledger/raft/cluster"
)

// tnode is one in-process provd: ledger, Raft node over TCP, and the gRPC
// API (Ledger + Cluster services) on loopback.
type tnode struct {
	id     string
	dir    string
	api    string // gRPC address
	log    *ledger.Log
	node   *cluster.Node
	seq    *cluster.Sequencer
	pool   *forward.Pool
	srv    *server.Server
	served chan error
	conn   *grpc.ClientConn
	ledger provledgerpb.LedgerClient
	clus   provledgerpb.ClusterClient
	up     bool
}

func logger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func verifier(t testing.TB) note.Verifier {
	v, err := checkpoint.NewVerifier(apitest.Origin, apitest.LogKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// start opens (or reopens) tn. The TOFU keyring starts empty on every
// node: forwarded entries carry their signers' public keys.
func start(t *testing.T, tn *tnode) {
	t.Helper()
	signer, err := checkpoint.NewSigner(apitest.Origin, apitest.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	tn.log, err = ledger.Open(filepath.Join(tn.dir, "ledger"), ledger.Options{Origin: apitest.Origin, Signer: signer, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", tn.api)
	if err != nil {
		t.Fatal(err)
	}
	tn.api = gl.Addr().String()
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tn.node, err = cluster.Open(cluster.Config{
		NodeID: tn.id, Dir: filepath.Join(tn.dir, "raft"), Log: tn.log, APIAddr: tn.api, Listener: rl,
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
		LeaderLeaseTimeout: 150 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
		Store: badgerstore.Options{MemTableSize: 16 << 20, GCInterval: -1}, Logger: logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if tn.seq, err = tn.node.NewSequencer(cluster.SequencerOptions{}); err != nil {
		t.Fatal(err)
	}
	kr, err := keys.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	tn.pool = forward.NewPool(nil)
	fs, err := forward.New(forward.Config{Node: tn.node, Local: tn.seq, Pool: tn.pool, Keyring: kr, Verifier: verifier(t), Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	tn.srv, err = server.New(server.Config{
		Service:      service.Config{Log: tn.log, Sequencer: fs, Verifier: &envelope.Verifier{Keyring: kr, TrustOnFirstUse: true}, Logger: logger()},
		GRPCListener: gl, Logger: logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := clusterservice.New(clusterservice.Config{Node: tn.node, Pool: tn.pool, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	provledgerpb.RegisterClusterServer(tn.srv.GRPC(), cs)
	tn.served = make(chan error, 1)
	go func() { tn.served <- tn.srv.Serve() }()
	tn.conn, err = grpc.NewClient(tn.api, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	tn.ledger, tn.clus = provledgerpb.NewLedgerClient(tn.conn), provledgerpb.NewClusterClient(tn.conn)
	tn.up = true
}

// stop shuts tn down as provd does: API, sequencer, Raft, ledger.
func stop(t *testing.T, tn *tnode) {
	if !tn.up {
		return
	}
	tn.up = false
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tn.conn.Close()
	tn.srv.Stop(ctx)
	<-tn.served
	tn.seq.Close()
	tn.node.Shutdown()
	tn.pool.Close()
	tn.log.Close()
}

// newCluster starts three nodes: n1 bootstraps, n2 joins through n1's
// Cluster service, n3 through n2's (a follower: forwarded to the leader).
func newCluster(t *testing.T) []*tnode {
	var ns []*tnode
	for i := range 3 {
		tn := &tnode{id: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), api: "127.0.0.1:0"}
		start(t, tn)
		ns = append(ns, tn)
	}
	t.Cleanup(func() {
		for _, tn := range ns {
			stop(t, tn)
		}
	})
	if err := ns[0].node.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 20*time.Second)
	if _, err := ns[0].node.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for i, via := range []*tnode{ns[0], ns[1]} {
		j := ns[i+1]
		if _, err := via.clus.Join(ctx, &provledgerpb.JoinRequest{NodeId: j.id, RaftAddress: j.node.RaftAddr(), ApiAddress: j.api}); err != nil {
			t.Fatalf("join %s through %s: %v", j.id, via.id, err)
		}
		waitFor(t, j.id+" knows the leader's API address", func() bool { l, ok := j.node.Leader(); return ok && l.APIAddr != "" })
	}
	for _, a := range ns {
		for _, b := range ns {
			waitFor(t, a.id+" knows "+b.id+"'s API address", func() bool { addr, ok := a.node.FSM().APIAddr(b.id); return ok && addr == b.api })
		}
	}
	return ns
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func leaderOf(t *testing.T, ns []*tnode) (leader *tnode, followers []*tnode) {
	t.Helper()
	waitFor(t, "a leader", func() bool {
		for _, tn := range ns {
			if tn.up && tn.node.IsLeader() {
				return true
			}
		}
		return false
	})
	for _, tn := range ns {
		switch {
		case !tn.up:
		case tn.node.IsLeader():
			leader = tn
		default:
			followers = append(followers, tn)
		}
	}
	return leader, followers
}

var signerKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// request returns an append request for i (DSSE JSON, with the signer's
// public key for the TOFU nodes) and the canonical envelope JSON.
func request(t *testing.T, i int) (*provledgerpb.AppendRequest, []byte) {
	t.Helper()
	payload := apitest.Payload(i)
	sig := ed25519.Sign(signerKey, apitest.PAE(apitest.PayloadType, payload))
	raw, err := json.Marshal(map[string]any{
		"payloadType": apitest.PayloadType,
		"payload":     base64.StdEncoding.EncodeToString(payload),
		"signatures":  []map[string]string{{"keyid": apitest.KeyID(signerKey).String(), "sig": base64.StdEncoding.EncodeToString(sig)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := keys.MarshalPublicPEM(signerKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &provledgerpb.AppendRequest{Namespace: "team-a", Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: raw}, PublicKeys: [][]byte{pem}, RequestId: uint64(i)}, env.Marshal()
}

// TestAppendThroughFollower: appends sent to a follower (unary, batch,
// stream) are forwarded to the leader, acknowledged once, and the
// receipts verify with the log key; every node then holds them.
func TestAppendThroughFollower(t *testing.T) {
	ns := newCluster(t)
	v := verifier(t)
	ctx := ctxT(t, 30*time.Second)
	_, fs := leaderOf(t, ns)
	f := fs[0]
	acked := map[uint64][]byte{}

	req, canon := request(t, 1)
	resp, err := f.ledger.Append(ctx, req)
	if err != nil {
		t.Fatalf("Append to follower %s: %v", f.id, err)
	}
	if err := client.VerifyReceipt(resp, canon, v); err != nil {
		t.Fatalf("receipt from the follower does not verify: %v", err)
	}
	acked[resp.GetIndex()] = resp.GetLeafHash()

	// The same envelope again through the other follower: a duplicate.
	dup, err := fs[1].ledger.Append(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !dup.GetDuplicate() || dup.GetIndex() != resp.GetIndex() {
		t.Fatalf("re-append through %s: duplicate=%v index %d, want duplicate of %d", fs[1].id, dup.GetDuplicate(), dup.GetIndex(), resp.GetIndex())
	}

	batch := &provledgerpb.AppendBatchRequest{}
	var canons [][]byte
	for i := 10; i < 20; i++ {
		r, c := request(t, i)
		batch.Requests, canons = append(batch.Requests, r), append(canons, c)
	}
	bad, _ := request(t, 99)
	bad.Namespace = "" // refused on the follower, before forwarding
	batch.Requests = append(batch.Requests, bad)
	br, err := f.ledger.AppendBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range br.GetResponses()[:10] {
		if err := client.VerifyReceipt(r, canons[i], v); err != nil {
			t.Fatalf("batch item %d: %v", i, err)
		}
		acked[r.GetIndex()] = r.GetLeafHash()
	}
	if e := br.GetResponses()[10].GetError(); e == nil || codes.Code(e.GetCode()) != codes.InvalidArgument {
		t.Fatalf("bad batch item: got %v, want InvalidArgument", e)
	}

	st, err := fs[1].ledger.AppendStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sc := map[uint64][]byte{}
	for i := 30; i < 40; i++ {
		r, c := request(t, i)
		sc[uint64(i)] = c
		if err := st.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	st.CloseSend()
	for range 10 {
		r, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if err := client.VerifyReceipt(r, sc[r.GetRequestId()], v); err != nil {
			t.Fatalf("stream item %d: %v", r.GetRequestId(), err)
		}
		acked[r.GetIndex()] = r.GetLeafHash()
	}
	if len(acked) != 21 {
		t.Fatalf("%d distinct indexes acknowledged, want 21", len(acked))
	}
	// Every node holds every acknowledged entry at its index.
	for _, tn := range ns {
		waitFor(t, tn.id+" applies everything", func() bool { return tn.log.Latest().Size >= 21 })
		for idx, leaf := range acked {
			e, err := tn.ledger.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: idx})
			if err != nil {
				t.Fatalf("%s: entry %d: %v", tn.id, idx, err)
			}
			if string(e.GetLeafHash()) != string(leaf) {
				t.Fatalf("%s: entry %d holds another leaf", tn.id, idx)
			}
		}
	}
}

// TestForwardAfterLeaderChange: after a leadership transfer (through a
// follower's Cluster service) and after the leader stops, appends to any
// running node still succeed.
func TestForwardAfterLeaderChange(t *testing.T) {
	ns := newCluster(t)
	v := verifier(t)
	ctx := ctxT(t, 60*time.Second)
	l, fs := leaderOf(t, ns)
	tr, err := fs[0].clus.TransferLeadership(ctx, &provledgerpb.TransferLeadershipRequest{NodeId: fs[1].id})
	if err != nil {
		t.Fatalf("TransferLeadership through follower %s: %v", fs[0].id, err)
	}
	if tr.GetLeader().GetId() != fs[1].id {
		t.Fatalf("leader after transfer: %q, want %s", tr.GetLeader().GetId(), fs[1].id)
	}
	// The old leader is a follower now: it forwards.
	req, canon := request(t, 1)
	resp, err := l.ledger.Append(ctx, req)
	if err != nil {
		t.Fatalf("Append to the old leader %s: %v", l.id, err)
	}
	if err := client.VerifyReceipt(resp, canon, v); err != nil {
		t.Fatal(err)
	}

	// Stop the leader; a follower's next append waits for the new leader.
	nl, _ := leaderOf(t, ns)
	stop(t, nl)
	for i, tn := range ns {
		if !tn.up {
			continue
		}
		req, canon := request(t, 100+i)
		resp, err := tn.ledger.Append(ctx, req)
		if err != nil {
			t.Fatalf("Append to %s after the leader %s stopped: %v", tn.id, nl.id, err)
		}
		if err := client.VerifyReceipt(resp, canon, v); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNoSecondHop: a request another node forwarded is not forwarded
// again: a follower answers Unavailable naming the leader.
func TestNoSecondHop(t *testing.T) {
	ns := newCluster(t)
	l, fs := leaderOf(t, ns)
	req, _ := request(t, 1)
	ctx := metadata.AppendToOutgoingContext(ctxT(t, 10*time.Second), forward.ForwardedHeader, "n9")
	_, err := fs[0].ledger.Append(ctx, req)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), l.api) {
		t.Fatalf("forwarded append to a follower: %v; want Unavailable naming %s", err, l.api)
	}
	if _, err := l.ledger.Append(ctx, req); err != nil {
		t.Fatalf("forwarded append to the leader: %v", err)
	}
}

// TestLinearizableReads: CONSISTENCY_LINEARIZABLE on the leader sees every
// acknowledged append; on a follower it is refused with FailedPrecondition
// naming the leader; stale reads work anywhere.
func TestLinearizableReads(t *testing.T) {
	ns := newCluster(t)
	ctx := ctxT(t, 20*time.Second)
	l, fs := leaderOf(t, ns)
	var last uint64
	for i := range 5 {
		req, _ := request(t, i)
		resp, err := fs[0].ledger.Append(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		last = resp.GetIndex()
	}
	lin := provledgerpb.Consistency_CONSISTENCY_LINEARIZABLE
	cp, err := l.ledger.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{Consistency: lin})
	if err != nil {
		t.Fatal(err)
	}
	if cp.GetSize() <= last {
		t.Fatalf("linearizable checkpoint of size %d misses acknowledged index %d", cp.GetSize(), last)
	}
	for _, tc := range []struct {
		name string
		call func(provledgerpb.LedgerClient) error
	}{
		{"GetCheckpoint", func(c provledgerpb.LedgerClient) error {
			_, err := c.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{Consistency: lin})
			return err
		}},
		{"GetEntry", func(c provledgerpb.LedgerClient) error {
			_, err := c.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: 0, WithProof: true, Consistency: lin})
			return err
		}},
		{"GetInclusionProof", func(c provledgerpb.LedgerClient) error {
			_, err := c.GetInclusionProof(ctx, &provledgerpb.GetInclusionProofRequest{Leaf: &provledgerpb.GetInclusionProofRequest_Index{Index: 0}, Consistency: lin})
			return err
		}},
		{"GetConsistencyProof", func(c provledgerpb.LedgerClient) error {
			_, err := c.GetConsistencyProof(ctx, &provledgerpb.GetConsistencyProofRequest{OldSize: 1, Consistency: lin})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(l.ledger); err != nil {
				t.Fatalf("on the leader: %v", err)
			}
			err := tc.call(fs[0].ledger)
			if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), l.api) {
				t.Fatalf("on a follower: %v; want FailedPrecondition naming %s", err, l.api)
			}
		})
	}
	if _, err := fs[0].ledger.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{Consistency: provledgerpb.Consistency_CONSISTENCY_STALE}); err != nil {
		t.Fatalf("stale read on a follower: %v", err)
	}
	_, err = l.ledger.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{Consistency: 7})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown consistency: %v; want InvalidArgument", err)
	}
}

// TestClusterService: Status through a follower lists every member with
// its own status; membership errors have precise codes; Remove through a
// follower takes it out of the configuration.
func TestClusterService(t *testing.T) {
	ns := newCluster(t)
	ctx := ctxT(t, 30*time.Second)
	l, fs := leaderOf(t, ns)
	st, err := fs[0].clus.Status(ctx, &provledgerpb.ClusterStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetLeader().GetId() != l.id || st.GetLeader().GetApiAddress() != l.api {
		t.Fatalf("status leader %v, want %s at %s", st.GetLeader(), l.id, l.api)
	}
	if len(st.GetMembers()) != 3 {
		t.Fatalf("%d members, want 3", len(st.GetMembers()))
	}
	for _, m := range st.GetMembers() {
		if m.GetStatus() == nil || m.GetStatus().GetId() != m.GetId() || m.GetApiAddress() == "" {
			t.Fatalf("member %s: status %v (%s), api %q", m.GetId(), m.GetStatus(), m.GetStatusError(), m.GetApiAddress())
		}
		if m.GetLeader() != (m.GetId() == l.id) || (m.GetStatus().GetState() == "Leader") != (m.GetId() == l.id) {
			t.Fatalf("member %s: leader=%v state %s", m.GetId(), m.GetLeader(), m.GetStatus().GetState())
		}
	}

	for _, tc := range []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"join without addresses", func() error {
			_, err := fs[0].clus.Join(ctx, &provledgerpb.JoinRequest{NodeId: "n9"})
			return err
		}, codes.InvalidArgument},
		{"join with the leader's address", func() error {
			_, err := fs[0].clus.Join(ctx, &provledgerpb.JoinRequest{NodeId: "n9", RaftAddress: l.node.RaftAddr(), ApiAddress: "127.0.0.1:1"})
			return err
		}, codes.AlreadyExists},
		{"remove without id", func() error {
			_, err := fs[0].clus.Remove(ctx, &provledgerpb.RemoveRequest{})
			return err
		}, codes.InvalidArgument},
		{"remove unknown", func() error {
			_, err := fs[0].clus.Remove(ctx, &provledgerpb.RemoveRequest{NodeId: "n9"})
			return err
		}, codes.NotFound},
		{"transfer to unknown", func() error {
			_, err := fs[0].clus.TransferLeadership(ctx, &provledgerpb.TransferLeadershipRequest{NodeId: "n9"})
			return err
		}, codes.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); status.Code(err) != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}

	gone := fs[1]
	rr, err := fs[0].clus.Remove(ctx, &provledgerpb.RemoveRequest{NodeId: gone.id})
	if err != nil {
		t.Fatalf("Remove %s through %s: %v", gone.id, fs[0].id, err)
	}
	if len(rr.GetMembers()) != 2 {
		t.Fatalf("%d members after remove, want 2", len(rr.GetMembers()))
	}
	// A removed follower is not told (the leader stops replicating to it):
	// its operator stops it. Its API address is forgotten at once.
	if _, ok := l.node.FSM().APIAddr(gone.id); ok {
		t.Fatalf("the removed node's API address is still recorded")
	}
	stop(t, gone)
	// The other two still take appends.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, tn := range []*tnode{l, fs[0]} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := request(t, 500+i)
			if _, err := tn.ledger.Append(ctx, req); err != nil {
				errs <- fmt.Errorf("%s: %w", tn.id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
