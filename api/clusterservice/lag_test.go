package clusterservice_test

import (
	"testing"
	"time"
)

// TestReplicationLag: on a real 3-node cluster the leader reports every
// follower, caught up (lag 0) once idle; a stopped follower's lag grows
// with every entry the other two commit; a follower reports nothing.
func TestReplicationLag(t *testing.T) {
	ns := newCluster(t, 3, nil)
	l, fs := leaderOf(t, ns)
	ctx := ctxT(t, 60*time.Second)
	if _, ok := fs[0].svc.ReplicationLag(ctx); ok {
		t.Fatal("a follower reported replication lag")
	}
	waitFor(t, "both followers caught up", func() bool {
		lag, ok := l.svc.ReplicationLag(ctx)
		return ok && len(lag) == 2 && lag[fs[0].id] == 0 && lag[fs[1].id] == 0
	})

	down := fs[0]
	down.stop()
	const entries = 5
	for range entries { // each barrier is one committed Raft entry
		if err := l.node.Barrier(ctx); err != nil {
			t.Fatalf("barrier with %s down: %v", down.id, err)
		}
	}
	waitFor(t, "the stopped follower's lag", func() bool {
		lag, ok := l.svc.ReplicationLag(ctx)
		return ok && lag[down.id] >= entries && lag[fs[1].id] == 0
	})
}
