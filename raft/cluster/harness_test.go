package cluster_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/badgerstore"
	"github.com/provledger/provledger/raft/cluster"
)

type badgerOpts = badgerstore.Options

const origin = "test.provledger/cluster"

var logKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))

func testLogger() *slog.Logger {
	if os.Getenv("RAFT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

func verifier(t testing.TB) note.Verifier {
	v, err := checkpoint.NewVerifier(origin, logKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// tnode is one in-process node: its own ledger and raft state directories.
type tnode struct {
	id        string
	dir       string // holds ledger/ and raft/
	raftAddr  string
	apiAddr   string
	inmem     *raft.InmemTransport // set for in-memory transport nodes
	log       *ledger.Log
	node      *cluster.Node
	seq       *cluster.Sequencer
	isRunning atomic.Bool
}

type tcluster struct {
	t     testing.TB
	nodes []*tnode
	mod   func(*cluster.Config)
	inmem bool
}

func newCluster(t testing.TB, n int, inmem bool, mod func(*cluster.Config)) *tcluster {
	c := &tcluster{t: t, mod: mod, inmem: inmem}
	for i := range n {
		tn := &tnode{id: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), apiAddr: fmt.Sprintf("api-n%d.test:7443", i+1)}
		if inmem {
			addr, tr := raft.NewInmemTransport(raft.ServerAddress(tn.id + ".raft"))
			tn.raftAddr, tn.inmem = string(addr), tr
		}
		c.nodes = append(c.nodes, tn)
	}
	if inmem {
		c.connectAll()
	}
	t.Cleanup(c.stopAll)
	return c
}

func (c *tcluster) connectAll() {
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a != b {
				a.inmem.Connect(raft.ServerAddress(b.raftAddr), b.inmem)
			}
		}
	}
}

// partition cuts every link between tn and the others, both ways.
func (c *tcluster) partition(tn *tnode) {
	for _, o := range c.nodes {
		if o != tn {
			tn.inmem.Disconnect(raft.ServerAddress(o.raftAddr))
			o.inmem.Disconnect(raft.ServerAddress(tn.raftAddr))
		}
	}
}

// start opens tn's ledger and raft node (creating or reusing its state).
func (c *tcluster) start(tn *tnode) {
	c.t.Helper()
	if err := c.tryStart(tn); err != nil {
		c.t.Fatalf("%s: %v", tn.id, err)
	}
}

// tryStart is start returning cluster.Open's error (the node's ledger
// closed again) instead of failing the test.
func (c *tcluster) tryStart(tn *tnode) error {
	t := c.t
	t.Helper()
	s, err := checkpoint.NewSigner(origin, logKey)
	if err != nil {
		t.Fatal(err)
	}
	tn.log, err = ledger.Open(filepath.Join(tn.dir, "ledger"), ledger.Options{Origin: origin, Signer: s, Logger: testLogger()})
	if err != nil {
		t.Fatalf("%s: open ledger: %v", tn.id, err)
	}
	cfg := cluster.Config{
		NodeID:             tn.id,
		Dir:                filepath.Join(tn.dir, "raft"),
		Log:                tn.log,
		APIAddr:            tn.apiAddr,
		HeartbeatTimeout:   300 * time.Millisecond,
		ElectionTimeout:    300 * time.Millisecond,
		LeaderLeaseTimeout: 300 * time.Millisecond, // = HeartbeatTimeout, as provd: a loaded machine stalls a leader for 150 ms
		CommitTimeout:      5 * time.Millisecond,
		Logger:             testLogger().With("test_node", tn.id),
		Store:              smallStore(),
	}
	if c.inmem {
		// A restarted node needs a fresh transport (raft closed the old one).
		if !tn.isRunning.Load() && tn.node != nil {
			addr, tr := raft.NewInmemTransport(raft.ServerAddress(tn.raftAddr))
			tn.raftAddr, tn.inmem = string(addr), tr
			c.connectAll()
		}
		cfg.Transport = tn.inmem
	} else {
		addr := tn.raftAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		var ln net.Listener
		for try := 0; ; try++ { // the port of a restarted node may linger briefly
			ln, err = net.Listen("tcp", addr)
			if err == nil || try == 50 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%s: listen: %v", tn.id, err)
		}
		tn.raftAddr = ln.Addr().String()
		cfg.Listener = ln
	}
	if c.mod != nil {
		c.mod(&cfg)
	}
	tn.node, err = cluster.Open(cfg)
	if err != nil {
		tn.log.Close()
		return fmt.Errorf("open node: %w", err)
	}
	tn.seq, err = tn.node.NewSequencer(cluster.SequencerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tn.isRunning.Store(true)
	return nil
}

// stop shuts tn down without a snapshot and closes its ledger, as a
// killed process would leave them (minus unsynced Pebble writes, which the
// Raft log replays).
func (c *tcluster) stop(tn *tnode) {
	if !tn.isRunning.CompareAndSwap(true, false) {
		return
	}
	tn.seq.Close()
	if err := tn.node.Shutdown(); err != nil && !errors.Is(err, raft.ErrRaftShutdown) {
		c.t.Logf("%s: shutdown: %v", tn.id, err)
	}
	tn.log.Close()
}

func (c *tcluster) stopAll() {
	var wg sync.WaitGroup
	for _, tn := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop(tn) }()
	}
	wg.Wait()
}

func (c *tcluster) running() []*tnode {
	var out []*tnode
	for _, tn := range c.nodes {
		if tn.isRunning.Load() {
			out = append(out, tn)
		}
	}
	return out
}

// leader waits for a running node to be leader and returns it.
func (c *tcluster) leader(timeout time.Duration) *tnode {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, tn := range c.running() {
			if tn.node.IsLeader() {
				return tn
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("no leader within %v", timeout)
	return nil
}

// bootstrap starts all nodes, bootstraps the first and joins the others
// through the leader (real joins, so API addresses get recorded).
func (c *tcluster) bootstrap() *tnode {
	t := c.t
	for _, tn := range c.nodes {
		c.start(tn)
	}
	if err := c.nodes[0].node.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	l := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tn := range c.nodes[1:] {
		if err := l.node.Join(ctx, tn.id, tn.raftAddr, tn.apiAddr); err != nil {
			t.Fatalf("join %s: %v", tn.id, err)
		}
	}
	return l
}

var entrySeq atomic.Int64

// newEntries returns n entries with envelopes never used before.
func newEntries(n int) []ledger.Entry {
	es := make([]ledger.Entry, n)
	for i := range es {
		k := entrySeq.Add(1)
		es[i] = ledger.Entry{
			Namespace:   fmt.Sprintf("ns-%d", k%3),
			PayloadType: "application/vnd.in-toto+json",
			Envelope:    []byte(fmt.Sprintf(`{"payload":"%010d","payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":"k","sig":"c2ln"}]}`, k)),
			Signers:     [][32]byte{sha256.Sum256([]byte("signer"))},
		}
	}
	return es
}

// submit appends through whichever node leads, as a client behind the
// forwarding API layer would: it retries on ErrNotLeader, ErrLeadershipLost
// and a stopped node (safe: dedup returns the original index).
func (c *tcluster) submit(ctx context.Context, es []ledger.Entry) ([]ledger.Receipt, error) {
	rs, _, err := c.submitVia(ctx, es)
	return rs, err
}

// submitVia is submit, also returning the node that acknowledged.
func (c *tcluster) submitVia(ctx context.Context, es []ledger.Entry) ([]ledger.Receipt, *tnode, error) {
	for {
		var target *tnode
		for _, tn := range c.running() {
			if tn.node.IsLeader() {
				target = tn
				break
			}
		}
		if target != nil {
			rs, err := target.seq.Submit(ctx, es)
			if err == nil {
				return rs, target, nil
			}
			if !errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, cluster.ErrLeadershipLost) && !errors.Is(err, ledger.ErrClosed) {
				return nil, nil, err
			}
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// history records every acknowledged (index, leaf hash).
type history struct {
	mu    sync.Mutex
	acked map[uint64][32]byte
	cps   map[uint64][]byte // every checkpoint a receipt carried
}

func newHistory() *history {
	return &history{acked: map[uint64][32]byte{}, cps: map[uint64][]byte{}}
}

func (h *history) add(t testing.TB, v note.Verifier, rs []ledger.Receipt) {
	for _, r := range rs {
		verifyReceipt(t, v, r)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range rs {
		if old, ok := h.acked[r.Index]; ok && old != r.LeafHash {
			t.Errorf("index %d acknowledged with two different leaves", r.Index)
		}
		h.acked[r.Index] = r.LeafHash
		if old, ok := h.cps[r.Checkpoint.Size]; ok && !bytes.Equal(old, r.Checkpoint.Note) {
			t.Errorf("two different checkpoints of size %d were handed out:\n%s\n%s", r.Checkpoint.Size, old, r.Checkpoint.Note)
		}
		h.cps[r.Checkpoint.Size] = r.Checkpoint.Note
	}
}

// verifyReceipt checks a receipt as a client holding only the log's public
// key would: checkpoint signature, leaf hash, inclusion proof.
func verifyReceipt(t testing.TB, v note.Verifier, r ledger.Receipt) {
	t.Helper()
	if r.Err != nil {
		t.Errorf("receipt for index %d carries error %v", r.Index, r.Err)
		return
	}
	cp, err := checkpoint.Open(r.Checkpoint.Note, v)
	if err != nil {
		t.Errorf("receipt checkpoint: %v", err)
		return
	}
	if cp.Size != r.Checkpoint.Size || cp.Hash != r.Checkpoint.Hash {
		t.Errorf("receipt checkpoint fields differ from its signed note")
	}
	if proof.LeafHash(r.Record) != r.LeafHash {
		t.Errorf("index %d: leaf hash is not the hash of the record", r.Index)
	}
	if err := proof.VerifyInclusion(r.Index, cp.Size, r.LeafHash, r.Proof, cp.Hash); err != nil {
		t.Errorf("index %d in tree %d: %v", r.Index, cp.Size, err)
	}
}

// converge waits until every running node holds the same latest
// checkpoint, at least minSize, then checks that they agree on every record
// and on every checkpoint they published.
func (c *tcluster) converge(minSize uint64, timeout time.Duration) *ledger.Checkpoint {
	t := c.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		nodes := c.running()
		ref := nodes[0].log.Latest()
		same := ref.Size >= minSize
		for _, tn := range nodes[1:] {
			same = same && bytes.Equal(tn.log.Latest().Note, ref.Note)
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			for _, tn := range nodes {
				t.Logf("%s: size %d applied %d status %+v", tn.id, tn.log.Latest().Size, tn.log.AppliedIndex(), tn.node.Status())
			}
			t.Fatalf("nodes did not converge to one checkpoint of size ≥ %d within %v", minSize, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.checkAgree()
	return c.running()[0].log.Latest()
}

// checkAgree asserts that the running nodes hold identical records and
// published identical checkpoints (same sizes, byte-identical notes).
func (c *tcluster) checkAgree() {
	t := c.t
	t.Helper()
	nodes := c.running()
	ref := nodes[0]
	size := ref.log.Latest().Size
	var recs [][]byte
	if err := ref.log.Records(0, size, func(_ uint64, rec []byte) error {
		recs = append(recs, bytes.Clone(rec))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, tn := range nodes[1:] {
		if tn.log.Latest().Size != size {
			t.Fatalf("%s has size %d, %s %d", tn.id, tn.log.Latest().Size, ref.id, size)
		}
		if err := tn.log.Records(0, size, func(i uint64, rec []byte) error {
			if !bytes.Equal(rec, recs[i]) {
				return fmt.Errorf("index %d holds different records on %s and %s", i, ref.id, tn.id)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	final := ref.log.Latest()
	for s := uint64(0); s <= size; s++ {
		refCP, refErr := ref.log.CheckpointAt(s)
		if refErr == nil {
			// Every published checkpoint is consistent with the final tree.
			p, err := ref.log.ConsistencyProof(s, final.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(s, final.Size, p, refCP.Hash, final.Hash); err != nil {
				t.Fatalf("%s: checkpoint %d is not consistent with %d: %v", ref.id, s, final.Size, err)
			}
		}
		for _, tn := range nodes[1:] {
			cp, err := tn.log.CheckpointAt(s)
			if (err == nil) != (refErr == nil) {
				t.Fatalf("checkpoint of size %d: %s: %v, %s: %v", s, ref.id, refErr, tn.id, err)
			}
			if err == nil && !bytes.Equal(cp.Note, refCP.Note) {
				t.Fatalf("%s and %s published different checkpoints of size %d", ref.id, tn.id, s)
			}
		}
	}
}

// checkHistory asserts that every acknowledged entry is at its index on
// every running node, and that every checkpoint handed out in a receipt is
// consistent with the final tree.
func (c *tcluster) checkHistory(h *history) {
	t := c.t
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, tn := range c.running() {
		final := tn.log.Latest()
		for idx, leaf := range h.acked {
			rec, err := tn.log.Record(idx)
			if err != nil {
				t.Fatalf("%s: acknowledged index %d: %v", tn.id, idx, err)
			}
			if proof.LeafHash(rec) != leaf {
				t.Fatalf("%s: acknowledged index %d holds another entry", tn.id, idx)
			}
		}
		for size, n := range h.cps {
			cp, err := tn.log.CheckpointAt(size)
			if err != nil || !bytes.Equal(cp.Note, n) {
				t.Fatalf("%s: checkpoint of size %d from a receipt: %v", tn.id, size, err)
			}
			p, err := tn.log.ConsistencyProof(size, final.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(size, final.Size, p, cp.Hash, final.Hash); err != nil {
				t.Fatalf("%s: checkpoint %d not consistent with %d: %v", tn.id, size, final.Size, err)
			}
		}
	}
}

// load runs clients submitting through the leader until stop is closed.
// Every acknowledged receipt is verified and recorded in h.
func (c *tcluster) load(h *history, clients int, stop <-chan struct{}, onAck func(*tnode, time.Time)) (*sync.WaitGroup, *atomic.Int64) {
	v := verifier(c.t)
	var wg sync.WaitGroup
	var acked atomic.Int64
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				rs, via, err := c.submitVia(ctx, newEntries(1+i%3))
				cancel()
				if err != nil {
					c.t.Errorf("client %d: %v", i, err)
					return
				}
				h.add(c.t, v, rs)
				acked.Add(int64(len(rs)))
				if onAck != nil {
					onAck(via, time.Now())
				}
			}
		}()
	}
	return &wg, &acked
}

func smallStore() (o badgerOpts) {
	o.MemTableSize = 16 << 20
	o.GCInterval = -1
	return o
}
