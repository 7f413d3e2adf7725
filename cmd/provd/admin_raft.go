package main

import (
	"strings"

	"github.com/provledger/provledger/api/metrics"
	"github.com/provledger/provledger/query/scanner"
)

// registerRaftMetrics reports a cluster node's Raft state at each scrape
// (provledger_raft_*); a single node (no --node-id) has none. It returns
// the function that unregisters it.
func registerRaftMetrics(s sequencer) (unregister func()) {
	r, ok := s.(*raftSequencer)
	if !ok || r.node == nil {
		return func() {}
	}
	n := r.node
	metrics.RegisterRaft(func() metrics.RaftStats {
		st := n.Status()
		// Per-follower replication lag is not exposed by hashicorp/raft;
		// every node exports its last log index, and the dashboard takes
		// the difference to the largest one.
		return metrics.RaftStats{
			State:        strings.ToLower(st.State),
			Term:         st.Term,
			LastLogIndex: st.LastLogIndex,
			CommitIndex:  st.CommitIndex,
			AppliedIndex: st.AppliedIndex,
		}
	})
	return func() { metrics.RegisterRaft(nil) }
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
