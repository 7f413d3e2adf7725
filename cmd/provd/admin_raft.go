package main

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/provledger/provledger/api/metrics"
	"github.com/provledger/provledger/query/scanner"
)

// lagPollInterval is how often the leader asks its followers how far
// they are (provledger_raft_replication_lag_entries).
const lagPollInterval = 2 * time.Second

// registerRaftMetrics reports a cluster node's Raft state at each scrape
// (provledger_raft_*); a single node (no --node-id) has none. On the
// leader, a poller asks every follower its last log index every
// lagPollInterval (hashicorp/raft does not expose followers' match
// indexes) and the scrape reports the lag it found. It returns the
// function that stops the poller and unregisters it.
func registerRaftMetrics(s sequencer) (unregister func()) {
	r, ok := s.(*raftSequencer)
	if !ok || r.node == nil {
		return func() {}
	}
	var lag atomic.Pointer[map[string]uint64]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lagPollInterval)
		defer t.Stop()
		for {
			pctx, pcancel := context.WithTimeout(ctx, lagPollInterval)
			if m, ok := r.api.ReplicationLag(pctx); ok {
				lag.Store(&m)
			} else {
				lag.Store(nil)
			}
			pcancel()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	n := r.node
	metrics.RegisterRaft(func() metrics.RaftStats {
		st := n.Status()
		rs := metrics.RaftStats{
			State:        strings.ToLower(st.State),
			Term:         st.Term,
			LastLogIndex: st.LastLogIndex,
			CommitIndex:  st.CommitIndex,
			AppliedIndex: st.AppliedIndex,
		}
		if m := lag.Load(); m != nil && n.IsLeader() {
			rs.ReplicationLag = *m
		}
		return rs
	})
	return func() {
		metrics.RegisterRaft(nil)
		cancel()
		<-done
	}
}

// registerScannerMetrics reports the anomaly scanner's position at each
// scrape (provledger_scanner_scanned_size, _lag_entries); it returns the
// function that unregisters it.
func registerScannerMetrics(sc *scanner.Scanner) (unregister func()) {
	metrics.RegisterScanner(func() metrics.ScannerStats {
		return metrics.ScannerStats{Scanned: sc.Cursor(), LogSize: sc.LogSize()}
	})
	return func() { metrics.RegisterScanner(nil) }
}
