package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/proof"
)

// The cluster fault tests of issue 3, with real provd processes on
// 127.0.0.1: SIGKILL the leader during concurrent appends sent to every
// node, and restart every node at once.

// cnode is one provd process of a test cluster; its addresses stay the
// same across restarts (a restarted node gets them from DATA/cluster.json).
type cnode struct {
	id                   string
	data                 string
	grpc, http, raftAddr string
	proc                 *provdProc
	conn                 *grpc.ClientConn
	ledger               provledgerpb.LedgerClient
	clus                 provledgerpb.ClusterClient
}

// start runs the node's provd. The first start passes the addresses and
// extra (--bootstrap or --join); a restart passes only --dev, --data and
// --node-id.
func (n *cnode) start(t *testing.T, first bool, extra ...string) {
	t.Helper()
	args := []string{"--dev", "--data", n.data, "--node-id", n.id, "--log-level", "warn", "--admin-addr", ""}
	if first {
		args = append(args, "--grpc-addr", n.grpc, "--http-addr", n.http, "--raft-addr", n.raftAddr)
		args = append(args, extra...)
	}
	p := &provdProc{grpcAddr: n.grpc, httpAddr: n.http, exited: make(chan struct{})}
	p.cmd = exec.Command(provdBinary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	n.proc = p
	waitServing(t, n.grpc, 30*time.Second, p.exited, &p.stderr)
}

func (n *cnode) running() bool {
	if n.proc == nil {
		return false
	}
	select {
	case <-n.proc.exited:
		return false
	default:
		return true
	}
}

// clusterEnv is a 3-node cluster of provd processes sharing one log key.
type clusterEnv struct {
	t     *testing.T
	nodes []*cnode
	v     note.Verifier

	mu  sync.Mutex
	cps map[string]bool // every checkpoint note a receipt carried
}

func newClusterEnv(t *testing.T) *clusterEnv {
	t.Helper()
	pem, v := sharedLogKey(t)
	e := &clusterEnv{t: t, v: v}
	for i := range 3 {
		e.nodes = append(e.nodes, newCnode(t, fmt.Sprintf("n%d", i+1), pem))
	}
	e.nodes[0].start(t, true, "--bootstrap")
	for _, n := range e.nodes[1:] {
		n.start(t, true, "--join", e.nodes[0].grpc)
	}
	e.waitMembers(3)
	return e
}

// sharedLogKey makes the log key every node of a test cluster signs with.
func sharedLogKey(t *testing.T) (pem []byte, v note.Verifier) {
	t.Helper()
	priv, err := keys.Generate("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	if pem, err = keys.MarshalPrivatePEM(priv); err != nil {
		t.Fatal(err)
	}
	if v, err = checkpoint.NewVerifier(devOrigin, priv.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	return pem, v
}

// newCnode makes node id's data directory, holding the shared log key
// where provd looks for it by default (restarts need no --log-key), free
// addresses, and clients of its API; start runs it.
func newCnode(t *testing.T, id string, pem []byte) *cnode {
	t.Helper()
	n := &cnode{id: id, data: t.TempDir(), grpc: freeAddr(t), http: freeAddr(t), raftAddr: freeAddr(t)}
	if err := os.WriteFile(filepath.Join(n.data, "log.key"), pem, 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if n.conn, err = grpc.NewClient(n.grpc, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.conn.Close() })
	n.ledger, n.clus = provledgerpb.NewLedgerClient(n.conn), provledgerpb.NewClusterClient(n.conn)
	return n
}

// waitMembers waits until a running node reports a leader and want
// members, all of which answer with their status.
func (e *clusterEnv) waitMembers(want int) *provledgerpb.ClusterStatusResponse {
	t := e.t
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		for _, n := range e.nodes {
			if !n.running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			st, err := n.clus.Status(ctx, &provledgerpb.ClusterStatusRequest{})
			cancel()
			if err != nil {
				last = err.Error()
				continue
			}
			ok := st.GetLeader().GetId() != "" && len(st.GetMembers()) == want
			for _, m := range st.GetMembers() {
				ok = ok && m.GetStatus() != nil
			}
			if ok {
				return st
			}
			last = fmt.Sprintf("%v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.fatal("no leader with %d answering members within 30 s; last: %s", want, last)
	return nil
}

func (e *clusterEnv) fatal(format string, args ...any) {
	e.t.Helper()
	for _, n := range e.nodes {
		if n.proc != nil {
			e.t.Logf("%s log:\n%s", n.id, &n.proc.stderr)
		}
	}
	e.t.Fatalf(format, args...)
}

func (e *clusterEnv) byID(id string) *cnode {
	for _, n := range e.nodes {
		if n.id == id {
			return n
		}
	}
	e.fatal("no node %q", id)
	return nil
}

// ack is an acknowledged append whose receipt verified.
type ack struct {
	index uint64
	leaf  [32]byte
}

// load runs clients that append through every running node in turn until
// stop closes; a client whose node fails with Unavailable or a deadline
// retries the same envelope at the next node (safe: dedup). Acks go to
// acks; onAck sees when each acknowledged append was sent and answered.
type load struct {
	mu    sync.Mutex
	acks  map[uint64][32]byte
	count atomic.Int64
	errs  atomic.Int64
}

func (e *clusterEnv) runLoad(clients int, stop <-chan struct{}, onAck func(sent, acked time.Time)) (*load, *sync.WaitGroup) {
	t := e.t
	l := &load{acks: map[uint64][32]byte{}}
	var wg sync.WaitGroup
	for c := range clients {
		s := newTestSigner(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				env, err := s.statement(fmt.Sprintf("client-%d-%d", c, k))
				if err != nil {
					t.Error(err)
					return
				}
				req := s.appendRequest(env, true)
				for try := 0; ; try++ {
					n := e.nodes[(c+k+try)%len(e.nodes)]
					if !n.running() {
						continue
					}
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					sent := time.Now()
					resp, err := n.ledger.Append(ctx, req)
					cancel()
					if err == nil {
						if verr := client.VerifyReceipt(resp, env.Marshal(), e.v); verr != nil {
							t.Errorf("receipt from %s does not verify: %v", n.id, verr)
							return
						}
						l.mu.Lock()
						if old, ok := l.acks[resp.GetIndex()]; ok && old != [32]byte(resp.GetLeafHash()) {
							t.Errorf("index %d acknowledged with two different leaves", resp.GetIndex())
						}
						l.acks[resp.GetIndex()] = [32]byte(resp.GetLeafHash())
						l.mu.Unlock()
						e.mu.Lock()
						if e.cps == nil {
							e.cps = map[string]bool{}
						}
						e.cps[string(resp.GetCheckpoint())] = true
						e.mu.Unlock()
						l.count.Add(1)
						if onAck != nil {
							onAck(sent, time.Now())
						}
						break
					}
					if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
						t.Errorf("append through %s: %v", n.id, err)
						return
					}
					l.errs.Add(1)
					if try > 50 {
						t.Errorf("append failed 50 times; last through %s: %v", n.id, err)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	return l, &wg
}

func waitCount(e *clusterEnv, what string, c *atomic.Int64, want int64) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for c.Load() < want {
		if time.Now().After(deadline) || e.t.Failed() {
			e.fatal("%s: %d of %d acknowledged", what, c.Load(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// converge waits until every running node serves the same latest
// checkpoint of at least minSize, then checks every acknowledged entry on
// every running node and that the checkpoints are consistent. It returns
// the common checkpoint.
func (e *clusterEnv) converge(minSize uint64, acks map[uint64][32]byte) *provledgerpb.Checkpoint {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ref *provledgerpb.Checkpoint
	for {
		ref = nil
		same := true
		for _, n := range e.nodes {
			if !n.running() {
				continue
			}
			cp, err := n.ledger.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{})
			if err != nil {
				same = false
				break
			}
			if _, err := checkpoint.Open(cp.GetNote(), e.v); err != nil {
				e.fatal("%s: checkpoint does not verify: %v", n.id, err)
			}
			if ref == nil {
				ref = cp
			}
			same = same && cp.GetSize() >= minSize && bytes.Equal(cp.GetNote(), ref.GetNote())
		}
		if same && ref != nil {
			break
		}
		if ctx.Err() != nil {
			e.fatal("the running nodes did not converge on one checkpoint of size ≥ %d", minSize)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// History check: every checkpoint a receipt carried is, on every
	// running node, the checkpoint published at its size, and consistent
	// with the common latest one (RFC 6962 consistency proof, verified
	// with transparency-dev/merkle through crypto/proof).
	refCP, err := checkpoint.Open(ref.GetNote(), e.v)
	if err != nil {
		e.fatal("latest checkpoint: %v", err)
	}
	e.mu.Lock()
	notes := make([][]byte, 0, len(e.cps))
	for n := range e.cps {
		notes = append(notes, []byte(n))
	}
	e.mu.Unlock()
	for _, n := range e.nodes {
		if !n.running() {
			continue
		}
		for _, nt := range notes {
			old, err := checkpoint.Open(nt, e.v)
			if err != nil {
				e.fatal("a receipt's checkpoint does not verify: %v", err)
			}
			at, err := n.ledger.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{Size: old.Size})
			if err != nil || !bytes.Equal(at.GetNote(), nt) {
				e.fatal("%s: the checkpoint of size %d differs from the one a receipt carried (%v)", n.id, old.Size, err)
			}
			cons, err := n.ledger.GetConsistencyProof(ctx, &provledgerpb.GetConsistencyProofRequest{OldSize: old.Size, NewSize: refCP.Size})
			if err != nil {
				e.fatal("%s: consistency proof %d→%d: %v", n.id, old.Size, refCP.Size, err)
			}
			if err := proof.VerifyConsistency(old.Size, refCP.Size, cons.GetHashes(), old.Hash, refCP.Hash); err != nil {
				e.fatal("%s: checkpoint %d is not consistent with %d: %v", n.id, old.Size, refCP.Size, err)
			}
		}
	}
	t.Logf("history: %d receipt checkpoints consistent with size %d on every running node", len(notes), refCP.Size)
	for _, n := range e.nodes {
		if !n.running() {
			continue
		}
		for idx, leaf := range acks {
			ent, err := n.ledger.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: idx})
			if err != nil {
				e.fatal("%s: acknowledged entry %d: %v", n.id, idx, err)
			}
			if [32]byte(ent.GetLeafHash()) != leaf || proof.LeafHash(ent.GetRecord()) != leaf {
				e.fatal("%s: index %d holds another entry than the one acknowledged", n.id, idx)
			}
		}
	}
	return ref
}

// TestClusterLeaderKilled: three provd processes; appends sent to every
// node (followers forward them); the leader is SIGKILLed during the load;
// a new leader takes over; every acknowledged entry is at its index on
// both survivors; the killed node restarts with only --data and --node-id
// and converges to the same checkpoint.
func TestClusterLeaderKilled(t *testing.T) {
	t0 := time.Now()
	e := newClusterEnv(t)
	t.Logf("cluster up in %v", time.Since(t0).Round(time.Millisecond))
	st := e.waitMembers(3)
	leader := e.byID(st.GetLeader().GetId())

	// One append through a follower first.
	var follower *cnode
	for _, n := range e.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	s := newTestSigner(t)
	env, err := s.statement("through-a-follower")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := follower.ledger.Append(ctx, s.appendRequest(env, true))
	cancel()
	if err != nil {
		e.fatal("append through follower %s: %v", follower.id, err)
	}
	if err := client.VerifyReceipt(resp, env.Marshal(), e.v); err != nil {
		t.Fatalf("receipt through follower %s: %v", follower.id, err)
	}

	stop := make(chan struct{})
	// The failover ends with the first ack of an append sent after the
	// leader's process died (earlier answers may be the old leader's).
	var killedAt, deadAt, firstAfter atomic.Int64
	l, wg := e.runLoad(8, stop, func(sent, now time.Time) {
		if d := deadAt.Load(); d != 0 && sent.UnixNano() > d {
			firstAfter.CompareAndSwap(0, now.UnixNano())
		}
	})
	waitCount(e, "appends before the kill", &l.count, 200)
	killedAt.Store(time.Now().UnixNano())
	leader.proc.kill(t)
	deadAt.Store(time.Now().UnixNano())
	before := l.count.Load()
	waitCount(e, "appends after the kill", &l.count, before+200)
	close(stop)
	wg.Wait()
	if t.Failed() {
		e.fatal("load failed")
	}
	t.Logf("leader %s SIGKILLed; first acknowledged append %v later; %d acknowledged, %d retried",
		leader.id, time.Duration(firstAfter.Load()-killedAt.Load()).Round(time.Millisecond), len(l.acks), l.errs.Load())
	l.acks[resp.GetIndex()] = [32]byte(resp.GetLeafHash())
	var maxIdx uint64
	for idx := range l.acks {
		maxIdx = max(maxIdx, idx)
	}
	cp := e.converge(maxIdx+1, l.acks)
	t.Logf("load, kill and survivors checked at %v", time.Since(t0).Round(time.Millisecond))

	// The killed node restarts from its data directory alone.
	leader.start(t, false)
	e.waitMembers(3)
	t.Logf("killed node back at %v", time.Since(t0).Round(time.Millisecond))
	final := e.converge(cp.GetSize(), l.acks)
	if !bytes.Equal(final.GetNote(), cp.GetNote()) {
		t.Fatalf("the checkpoint moved without appends:\n%s\n%s", cp.GetNote(), final.GetNote())
	}
}

// TestClusterRestartAll: every node is SIGKILLed at once after appends,
// then all restart together (only --data and --node-id); the cluster
// elects a leader, has the same log, and takes appends.
func TestClusterRestartAll(t *testing.T) {
	e := newClusterEnv(t)
	stop := make(chan struct{})
	l, wg := e.runLoad(8, stop, nil)
	waitCount(e, "appends", &l.count, 200)
	close(stop)
	wg.Wait()
	if t.Failed() {
		e.fatal("load failed")
	}
	var maxIdx uint64
	for idx := range l.acks {
		maxIdx = max(maxIdx, idx)
	}
	before := e.converge(maxIdx+1, l.acks)

	for _, n := range e.nodes {
		if err := n.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range e.nodes {
		<-n.proc.exited
	}
	var swg sync.WaitGroup
	for _, n := range e.nodes {
		swg.Add(1)
		go func() { defer swg.Done(); n.start(t, false) }()
	}
	swg.Wait()
	e.waitMembers(3)
	after := e.converge(before.GetSize(), l.acks)
	if !bytes.Equal(after.GetNote(), before.GetNote()) {
		t.Fatalf("after restarting every node the latest checkpoint differs:\n%s\n%s", before.GetNote(), after.GetNote())
	}
	stop2 := make(chan struct{})
	l2, wg2 := e.runLoad(4, stop2, nil)
	waitCount(e, "appends after the restart", &l2.count, 20)
	close(stop2)
	wg2.Wait()
	for idx, leaf := range l2.acks {
		l.acks[idx] = leaf
	}
	e.converge(before.GetSize()+20, l.acks)
}

// TestClusterFlagErrors: cluster flags that do not fit together, or a data
// directory that belongs to another node, stop provd with a message that
// names what to fix.
func TestClusterFlagErrors(t *testing.T) {
	owned := t.TempDir() // a data directory of cluster node n1
	if err := os.WriteFile(filepath.Join(owned, "cluster.json"), []byte(`{"node_id":"n1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bootstrap and join", []string{"--node-id", "n1", "--bootstrap", "--join", "127.0.0.1:1"}, 2, "--bootstrap and --join exclude each other"},
		{"peers malformed", []string{"--node-id", "n1", "--bootstrap", "--peers", "n2=127.0.0.1:1"}, 2, "each peer is id=raftaddr=apiaddr"},
		{"raft addr without port", []string{"--node-id", "n1", "--raft-addr", "localhost"}, 2, "--raft-addr"},
		{"raft timeout too short", []string{"--node-id", "n1", "--raft-timeout", "1ms"}, 2, "--raft-timeout 1ms: must be between"},
		{"node id with a space", []string{"--node-id", "n 1"}, 2, `--node-id: invalid cluster member: node id "n 1": byte 1 (' ') is not a letter`},
		{"peer with a wildcard address", []string{"--node-id", "n1", "--bootstrap", "--peers", "n2=0.0.0.0:7402=127.0.0.1:2"}, 2, `--peers: invalid cluster member: raft address of n2 "0.0.0.0:7402"`},
		{"join without the log key", []string{"--node-id", "n2", "--join", "127.0.0.1:1"}, 2, "--join needs the cluster's log key"},
		{"bootstrap without node id", []string{"--bootstrap"}, 1, "--bootstrap needs --node-id"},
		{"peers without bootstrap", []string{"--node-id", "n1", "--peers", "n2=127.0.0.1:1=127.0.0.1:2"}, 1, "--peers is only used with --bootstrap"},
		{"api address not dialable", []string{"--node-id", "n1", "--grpc-addr", "0.0.0.0:0"}, 1, `--api-advertise (default --grpc-addr) "0.0.0.0:0": port "0" must be a number from 1 to 65535: the other nodes forward to it`},
		{"raft port zero", []string{"--node-id", "n1", "--grpc-addr", "127.0.0.1:7999"}, 1, "give a fixed port"},
		{"cluster data without node id", []string{"--data", owned}, 1, `belongs to cluster node "n1": start it with --node-id n1`},
		{"cluster data with another node id", []string{"--data", owned, "--node-id", "n2"}, 1, `belongs to cluster node "n1", not --node-id "n2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--dev", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0", "--admin-addr", ""}, tc.args...)
			if !slicesContain(tc.args, "--data") {
				args = append(args, "--data", t.TempDir())
			}
			var stdout, stderr bytes.Buffer
			if code := runOnce(t, args, &stdout, &stderr); code != tc.code {
				t.Fatalf("provd %q exited %d, want %d; stderr:\n%s", tc.args, code, tc.code, &stderr)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("provd %q: stderr does not say %q:\n%s", tc.args, tc.want, &stderr)
			}
		})
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestClusterBootstrapPeers: three nodes started alike with --bootstrap
// --peers form one cluster; each records its own API address, and appends
// through every node are acknowledged.
func TestClusterBootstrapPeers(t *testing.T) {
	e := &clusterEnv{t: t}
	pem, v := sharedLogKey(t)
	e.v = v
	peers := ""
	for i := range 3 {
		n := newCnode(t, fmt.Sprintf("p%d", i+1), pem)
		e.nodes = append(e.nodes, n)
		if peers != "" {
			peers += ","
		}
		peers += n.id + "=" + n.raftAddr + "=" + n.grpc
	}
	admin := map[string]string{}
	for _, n := range e.nodes {
		admin[n.id] = freeAddr(t)
		n.start(t, true, "--bootstrap", "--peers", peers, "--admin-addr", admin[n.id])
	}
	st := e.waitMembers(3)
	for _, m := range st.GetMembers() {
		if m.GetApiAddress() != e.byID(m.GetId()).grpc {
			t.Fatalf("member %s has API address %q, want %s", m.GetId(), m.GetApiAddress(), e.byID(m.GetId()).grpc)
		}
	}
	s := newTestSigner(t)
	acks := map[uint64][32]byte{}
	for i, n := range e.nodes {
		env, err := s.statement(fmt.Sprintf("peers-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		resp, err := n.ledger.Append(ctx, s.appendRequest(env, true))
		cancel()
		if err != nil {
			e.fatal("append through %s: %v", n.id, err)
		}
		if err := client.VerifyReceipt(resp, env.Marshal(), e.v); err != nil {
			t.Fatalf("receipt through %s: %v", n.id, err)
		}
		acks[resp.GetIndex()] = [32]byte(resp.GetLeafHash())
	}
	e.converge(3, acks)

	// The leader reports each follower's replication lag; followers none.
	leader := e.waitMembers(3).GetLeader().GetId()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := scrape(t, "http://"+admin[leader]+"/metrics")
		n := 0
		for _, f := range e.nodes {
			if v, ok := got[`provledger_raft_replication_lag_entries{peer="`+f.id+`"}`]; ok && f.id != leader && v < 1000 {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader %s: replication lag of %d followers reported after 20 s, want 2", leader, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, f := range e.nodes {
		if f.id == leader {
			continue
		}
		for series := range scrape(t, "http://"+admin[f.id]+"/metrics") {
			if strings.HasPrefix(series, "provledger_raft_replication_lag_entries") && e.waitMembers(3).GetLeader().GetId() != f.id {
				t.Errorf("follower %s reports %s", f.id, series)
			}
		}
	}
}

// TestClusterJoinRefused: a node whose --join the leader refuses for good
// (its --node-id is a member's at another Raft address) stops with the
// leader's reason instead of retrying for ever; the cluster is unchanged.
func TestClusterJoinRefused(t *testing.T) {
	pem, _ := sharedLogKey(t)
	n1 := newCnode(t, "n1", pem)
	n1.start(t, true, "--bootstrap")
	clash := newCnode(t, "n1", pem) // same id, its own addresses
	args := []string{"--dev", "--data", clash.data, "--node-id", clash.id, "--log-level", "warn", "--admin-addr", "",
		"--grpc-addr", clash.grpc, "--http-addr", clash.http, "--raft-addr", clash.raftAddr, "--join", n1.grpc}
	var stderr syncBuffer
	cmd := exec.Command(provdBinary(t), args...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("provd with a clashing --node-id exited 0; stderr:\n%s", stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("provd with a clashing --node-id still runs after 60 s; stderr:\n%s", stderr.String())
	}
	for _, want := range []string{"cluster join through " + n1.grpc + " refused", "n1 is already a member at raft address " + n1.raftAddr} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := n1.clus.Status(ctx, &provledgerpb.ClusterStatusRequest{})
	if err != nil || len(st.GetMembers()) != 1 || st.GetMembers()[0].GetRaftAddress() != n1.raftAddr {
		t.Fatalf("members after the refused join: %v, %v", st.GetMembers(), err)
	}
}
