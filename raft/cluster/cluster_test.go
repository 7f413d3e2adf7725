package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/provledger/provledger/raft/cluster"
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReplicatedAppends: concurrent appends on a 3-node cluster over real
// TCP; every receipt verifies; a follower redirects to the leader's API
// address; leadership moves mid-load; all nodes converge on the same
// records and publish the same checkpoint for every size.
func TestReplicatedAppends(t *testing.T) {
	c := newCluster(t, 3, false, nil)
	l := c.bootstrap()
	ctx := ctxT(t, 60*time.Second)

	// Every node learns every API address (the leader records its own once
	// it has caught up).
	waitFor(t, "API addresses on every node", 10*time.Second, func() bool {
		for _, tn := range c.nodes {
			for _, o := range c.nodes {
				if a, ok := tn.node.FSM().APIAddr(o.id); !ok || a != o.apiAddr {
					return false
				}
			}
		}
		return true
	})
	ms, err := c.nodes[1].node.Members(ctx)
	if err != nil || len(ms) != 3 {
		t.Fatalf("Members = %+v, %v", ms, err)
	}
	for _, m := range ms {
		if !m.Voter || m.APIAddr == "" || m.Leader != (m.ID == l.id) {
			t.Fatalf("member %+v (leader is %s)", m, l.id)
		}
	}

	// A follower refuses appends and names the leader's API address.
	var f *tnode
	for _, tn := range c.nodes {
		if tn != l {
			f = tn
			break
		}
	}
	_, err = f.seq.Submit(ctx, newEntries(1))
	var le *cluster.LeaderError
	if !errors.Is(err, cluster.ErrNotLeader) || !errors.As(err, &le) || le.Leader.APIAddr != l.apiAddr || le.Leader.ID != l.id {
		t.Fatalf("Submit on a follower: %v; want ErrNotLeader naming %s", err, l.apiAddr)
	}
	if err := f.node.Barrier(ctx); !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("Barrier on a follower: %v", err)
	}
	if err := f.node.Join(ctx, "x", "127.0.0.1:1", "x:1"); !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("Join on a follower: %v", err)
	}

	// Concurrent load; leadership is transferred in the middle of it.
	h := newHistory()
	stop := make(chan struct{})
	wg, acked := c.load(h, 16, stop, nil)
	waitFor(t, "appends before the transfer", 20*time.Second, func() bool { return acked.Load() >= 400 })
	if err := l.node.TransferLeadership(ctx, f.id); err != nil {
		t.Fatalf("TransferLeadership: %v", err)
	}
	if nl := c.leader(10 * time.Second); nl != f {
		t.Fatalf("leader after transfer is %s, want %s", nl.id, f.id)
	}
	before := acked.Load()
	waitFor(t, "appends after the transfer", 20*time.Second, func() bool { return acked.Load() >= before+400 })
	close(stop)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// A linearizable read on the new leader sees every acknowledged entry.
	if err := f.node.Barrier(ctx); err != nil {
		t.Fatalf("Barrier: %v", err)
	}
	h.mu.Lock()
	var maxIdx uint64
	for i := range h.acked {
		maxIdx = max(maxIdx, i)
	}
	h.mu.Unlock()
	if f.log.Latest().Size <= maxIdx {
		t.Fatalf("after Barrier the leader's log has size %d, an acknowledged entry is at %d", f.log.Latest().Size, maxIdx)
	}
	if err := f.node.VerifyLeader(ctx); err != nil {
		t.Fatalf("VerifyLeader: %v", err)
	}

	// Appending acknowledged envelopes again returns their indexes.
	es := newEntries(3)
	first, err := c.submit(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.submit(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	for i := range es {
		if !again[i].Duplicate || again[i].Index != first[i].Index {
			t.Fatalf("resubmitted entry %d: %+v, first at %d", i, again[i].Result, first[i].Index)
		}
	}

	c.converge(uint64(len(h.acked)), 15*time.Second)
	c.checkHistory(h)
	st := f.node.Status()
	t.Logf("%d entries acknowledged, log size %d, raft last index %d, leader %s", len(h.acked), st.Checkpoint.Size, st.LastLogIndex, st.Leader.ID)
}

// TestMembership: joining again updates the API address; Bootstrap on a node
// with state is a no-op; a removed follower and its API address are gone;
// the leader can remove itself and the others elect a new one.
func TestMembership(t *testing.T) {
	c := newCluster(t, 3, false, nil)
	l := c.bootstrap()
	ctx := ctxT(t, 30*time.Second)
	if err := c.nodes[0].node.Bootstrap(); err != nil {
		t.Fatalf("Bootstrap on a node with state: %v", err)
	}
	var f1, f2 *tnode
	for _, tn := range c.nodes {
		if tn != l {
			if f1 == nil {
				f1 = tn
			} else {
				f2 = tn
			}
		}
	}
	if err := l.node.Join(ctx, f1.id, f1.raftAddr, "moved.test:9000"); err != nil {
		t.Fatalf("re-Join: %v", err)
	}
	waitFor(t, "the new API address on a follower", 5*time.Second, func() bool {
		a, _ := f2.node.FSM().APIAddr(f1.id)
		return a == "moved.test:9000"
	})
	if err := l.node.Join(ctx, "other", l.raftAddr, "x:1"); !errors.Is(err, cluster.ErrExists) {
		t.Fatalf("Join with the leader's address: %v", err)
	}

	if err := l.node.Remove(ctx, f2.id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	ms, err := l.node.Members(ctx)
	if err != nil || len(ms) != 2 {
		t.Fatalf("Members after Remove = %+v, %v", ms, err)
	}
	if _, ok := l.node.FSM().APIAddr(f2.id); ok {
		t.Fatal("removed node's API address still recorded")
	}
	c.stop(f2)

	// The leader removes itself; the remaining node leads alone.
	if err := l.node.Remove(ctx, l.id); err != nil {
		t.Fatalf("leader removing itself: %v", err)
	}
	waitFor(t, "the remaining node to lead", 10*time.Second, func() bool { return f1.node.IsLeader() })
	select {
	case <-l.node.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the node that removed itself did not shut down")
	}
	if _, err := f1.seq.Submit(ctx, newEntries(2)); err != nil {
		t.Fatalf("append on the remaining node: %v", err)
	}
	st := f1.node.Status()
	if st.State != "Leader" || st.Leader.ID != f1.id || st.Leader.APIAddr != f1.apiAddr || st.Checkpoint.Size < 2 || st.LedgerAppliedIndex == 0 {
		t.Fatalf("Status = %+v", st)
	}
}
