package cluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/cluster"
	"github.com/provledger/provledger/raft/fsm"
)

// TestLeaderKilled: the leader stops (no snapshot, ledger closed) during
// sustained appends; a new leader takes over; every acknowledged entry is
// at the same index on the survivors; the killed node restarts and
// converges; then all nodes restart at once and recover the same log.
func TestLeaderKilled(t *testing.T) {
	c := newCluster(t, 3, false, nil)
	c.bootstrap()
	h := newHistory()
	stop := make(chan struct{})
	var killedAt, firstAckAfter atomic.Int64
	var oldLeader atomic.Pointer[tnode]
	wg, acked := c.load(h, 8, stop, func(via *tnode, now time.Time) {
		if killedAt.Load() != 0 && via != oldLeader.Load() {
			firstAckAfter.CompareAndSwap(0, now.UnixNano())
		}
	})
	// A copy of the leader's ledger as it is now stands for what a crash
	// would leave of it: the later batches were applied without syncing
	// Pebble, so the restarted node must replay them from its Raft log.
	waitFor(t, "appends before the ledger copy", 20*time.Second, func() bool { return acked.Load() >= 150 })
	old := c.leader(time.Second)
	stale := filepath.Join(t.TempDir(), "ledger")
	if err := old.log.DB().Checkpoint(stale); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "appends before the kill", 20*time.Second, func() bool { return acked.Load() >= 300 })
	if l := c.leader(time.Second); l != old {
		t.Fatalf("leadership moved from %s to %s before the kill", old.id, l.id)
	}
	oldLeader.Store(old)
	killedAt.Store(time.Now().UnixNano())
	c.stop(old)
	nl := c.leader(10 * time.Second)
	before := acked.Load()
	waitFor(t, "appends on the new leader", 20*time.Second, func() bool { return acked.Load() >= before+300 })
	close(stop)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	failover := time.Duration(firstAckAfter.Load() - killedAt.Load())
	t.Logf("leader %s killed; %s took over; first acknowledged append %v after the kill", old.id, nl.id, failover)

	c.converge(uint64(len(h.acked)), 15*time.Second)
	c.checkHistory(h)

	// The killed node restarts with the stale ledger and its own Raft
	// state, replays and catches up.
	if err := os.RemoveAll(filepath.Join(old.dir, "ledger")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(stale, filepath.Join(old.dir, "ledger")); err != nil {
		t.Fatal(err)
	}
	c.start(old)
	staleApplied := old.log.AppliedIndex()
	size := nl.log.Latest().Size
	c.converge(size, 20*time.Second)
	c.checkHistory(h)
	t.Logf("%s restarted from a ledger at raft index %d and replayed to %d", old.id, staleApplied, old.log.AppliedIndex())

	// All nodes restart at once.
	c.stopAll()
	for _, tn := range c.nodes {
		c.start(tn)
	}
	c.leader(15 * time.Second)
	if _, err := c.submit(ctxT(t, 20*time.Second), newEntries(2)); err != nil {
		t.Fatalf("append after restarting every node: %v", err)
	}
	c.converge(size+2, 20*time.Second)
	c.checkHistory(h)
}

// TestPartitionedLeader: with the in-memory transport the leader is cut
// off from both followers. Its appends are never acknowledged and never
// reach the log; the majority elects a leader and goes on; after healing,
// every node agrees on every index and checkpoint.
func TestPartitionedLeader(t *testing.T) {
	c := newCluster(t, 3, true, nil)
	c.bootstrap()
	h := newHistory()
	stop := make(chan struct{})
	wg, acked := c.load(h, 4, stop, nil)
	waitFor(t, "appends before the partition", 20*time.Second, func() bool { return acked.Load() >= 100 })
	old := c.leader(time.Second)
	c.partition(old)

	// Appends sent straight to the isolated leader fail.
	isolated := newEntries(5)
	var iwg sync.WaitGroup
	var isolatedAcks, lost, notLeader atomic.Int32
	for i := range isolated {
		iwg.Add(1)
		go func() {
			defer iwg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := old.seq.Submit(ctx, isolated[i:i+1])
			switch {
			case err == nil:
				isolatedAcks.Add(1)
			case errors.Is(err, cluster.ErrLeadershipLost):
				lost.Add(1) // proposed, never committed
			case errors.Is(err, cluster.ErrNotLeader):
				notLeader.Add(1) // refused before proposing
			default:
				t.Errorf("isolated leader: %v", err)
			}
		}()
	}
	// The majority elects a new leader and keeps acknowledging.
	waitFor(t, "a new leader on the majority side", 10*time.Second, func() bool {
		for _, tn := range c.nodes {
			if tn != old && tn.node.IsLeader() {
				return true
			}
		}
		return false
	})
	before := acked.Load()
	waitFor(t, "appends on the majority side", 20*time.Second, func() bool { return acked.Load() >= before+100 })
	iwg.Wait()
	if n := isolatedAcks.Load(); n != 0 {
		t.Fatalf("the partitioned leader acknowledged %d appends", n)
	}
	if old.node.IsLeader() {
		t.Fatal("the partitioned leader still believes it leads")
	}
	t.Logf("isolated leader %s: %d appends proposed and lost, %d refused", old.id, lost.Load(), notLeader.Load())

	c.connectAll()
	close(stop)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	c.converge(uint64(len(h.acked)), 20*time.Second)
	c.checkHistory(h)
	// The isolated leader's uncommitted proposals were dropped everywhere.
	for _, tn := range c.nodes {
		for _, e := range isolated {
			if _, err := tn.log.IndexOfEnvelope(e.Digest()); !errors.Is(err, ledger.ErrNotFound) {
				t.Fatalf("%s: an unacknowledged append of the isolated leader is in the log (%v)", tn.id, err)
			}
		}
	}
}

// TestSnapshotCatchUp: a node removed and re-added with an empty data
// directory catches up by snapshot, since the leader truncated its Raft log
// past what the node would need; it then restarts from its own snapshot.
func TestSnapshotCatchUp(t *testing.T) {
	c := newCluster(t, 3, false, func(cfg *cluster.Config) {
		cfg.TrailingLogs = 4
		cfg.SnapshotThreshold = 1 << 20 // snapshots only when asked
		cfg.SnapshotInterval = time.Hour
	})
	l := c.bootstrap()
	ctx := ctxT(t, 60*time.Second)
	v := verifier(t)
	h := newHistory()
	for range 40 {
		rs, err := c.submit(ctx, newEntries(7))
		if err != nil {
			t.Fatal(err)
		}
		h.add(t, v, rs)
	}
	gone := removeAndWipe(ctx, t, c, l)
	for range 40 {
		rs, err := c.submit(ctx, newEntries(5))
		if err != nil {
			t.Fatal(err)
		}
		h.add(t, v, rs)
	}
	for _, tn := range c.running() {
		if err := tn.node.Snapshot(); err != nil {
			t.Fatalf("%s: Snapshot: %v", tn.id, err)
		}
	}
	if first, _ := l.node.Raft().Stats()["last_snapshot_index"]; first == "0" {
		t.Fatal("no snapshot taken")
	}

	c.start(gone) // empty ledger, empty raft state
	if err := l.node.Join(ctx, gone.id, gone.raftAddr, gone.apiAddr); err != nil {
		t.Fatalf("re-Join: %v", err)
	}
	size := l.log.Latest().Size
	c.converge(size, 20*time.Second)
	// The ledger holds the restored entries as soon as the FSM's Restore
	// returns; Raft records the installed snapshot's index just after:
	// give it a moment under load.
	st := gone.node.Status()
	for deadline := time.Now().Add(5 * time.Second); st.LastSnapshotIndex == 0 && time.Now().Before(deadline); st = gone.node.Status() {
		time.Sleep(10 * time.Millisecond)
	}
	if st.LastSnapshotIndex == 0 {
		t.Fatalf("the re-added node caught up without a snapshot: %+v", st)
	}
	c.checkHistory(h)

	// More appends reach it by the log; then it restarts from its own
	// snapshot (only the snapshot's header is read) and stays in step.
	if _, err := c.submit(ctx, newEntries(3)); err != nil {
		t.Fatal(err)
	}
	c.converge(size+3, 10*time.Second)
	// Its own snapshot is a reference to its ledger (fsm/snapref.go), which
	// the restart restores by checking the ledger holds it.
	if err := gone.node.Snapshot(); err != nil {
		t.Fatalf("%s: Snapshot: %v", gone.id, err)
	}
	c.stop(gone)
	c.start(gone)
	if _, err := c.submit(ctx, newEntries(3)); err != nil {
		t.Fatal(err)
	}
	c.converge(size+6, 15*time.Second)
	c.checkHistory(h)

	// Its ledger directory is lost while raft/ is kept: its newest
	// snapshot is a reference to a ledger it no longer has, and an older
	// one is the full snapshot it installed. It refuses to start with
	// ErrNotHeld and says what to do, instead of letting raft fall back to
	// the older snapshot (whose following logs it may have truncated).
	c.stop(gone)
	if err := os.RemoveAll(filepath.Join(gone.dir, "ledger")); err != nil {
		t.Fatal(err)
	}
	err := c.tryStart(gone)
	if !errors.Is(err, fsm.ErrNotHeld) || !strings.Contains(err.Error(), "empty its whole data directory") {
		t.Fatalf("restart without its ledger: %v, want fsm.ErrNotHeld saying what to do", err)
	}
	if _, err := c.submit(ctx, newEntries(3)); err != nil { // the other two go on
		t.Fatal(err)
	}
}

// TestSnapshotUnderLoad: snapshots are taken every few batches while
// clients append (each a reference to the node's ledger), and a node
// re-added with an empty data directory catches up by a snapshot that the
// leader expands from its ledger while appends go on, so the state it
// installs is newer than the snapshot's Raft index and the batches raft
// then sends after that index are partly ones the state already holds
// (skipped). Every node ends with the same records and checkpoints and
// every acknowledged entry in place, also after the re-added node restarts
// from its own snapshot.
func TestSnapshotUnderLoad(t *testing.T) {
	c := newCluster(t, 3, false, func(cfg *cluster.Config) {
		cfg.TrailingLogs = 4
		cfg.SnapshotThreshold = 8
		cfg.SnapshotInterval = 50 * time.Millisecond
	})
	l := c.bootstrap()
	ctx := ctxT(t, 90*time.Second)
	h := newHistory()
	stop := make(chan struct{})
	wg, acked := c.load(h, 4, stop, nil)
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("a snapshot under load", func() bool { return l.node.Status().LastSnapshotIndex > 0 })

	gone := removeAndWipe(ctx, t, c, l)
	// The leader snapshots and truncates past what the node would need.
	after := l.node.Status().LastSnapshotIndex
	waitFor("a later snapshot", func() bool { return l.node.Status().LastSnapshotIndex > after+8 })

	c.start(gone) // empty ledger, empty raft state
	if err := l.node.Join(ctx, gone.id, gone.raftAddr, gone.apiAddr); err != nil {
		t.Fatalf("re-Join: %v", err)
	}
	waitFor("the re-added node to install a snapshot", func() bool { return gone.node.Status().LastSnapshotIndex > 0 })
	n := acked.Load()
	waitFor("appends after the install", func() bool { return acked.Load() > n+20 })
	stopLoad()
	if t.Failed() {
		return
	}
	c.converge(l.log.Latest().Size, 30*time.Second)
	c.checkHistory(h)

	if err := gone.node.Snapshot(); err != nil {
		t.Fatalf("%s: Snapshot: %v", gone.id, err)
	}
	c.stop(gone)
	c.start(gone)
	rs, err := c.submit(ctx, newEntries(3))
	if err != nil {
		t.Fatal(err)
	}
	h.add(t, verifier(t), rs)
	c.converge(rs[2].Index+1, 20*time.Second)
	c.checkHistory(h)
}

// removeAndWipe removes a follower of leader l from the cluster, stops it
// and deletes its data directory, as an operator replacing a lost disk
// would; it returns the node, to be re-added.
func removeAndWipe(ctx context.Context, t *testing.T, c *tcluster, l *tnode) *tnode {
	t.Helper()
	gone := c.nodes[2]
	if gone == l {
		gone = c.nodes[1]
	}
	if err := l.node.Remove(ctx, gone.id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	c.stop(gone)
	if err := os.RemoveAll(gone.dir); err != nil {
		t.Fatal(err)
	}
	return gone
}
