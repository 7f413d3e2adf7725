package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// RaftStats is what a Raft node reports at each scrape (see RegisterRaft).
type RaftStats struct {
	// State is "leader", "follower", "candidate" or "shutdown".
	State string
	// Term is the current term.
	Term uint64
	// LastLogIndex, CommitIndex and AppliedIndex are the node's Raft log
	// positions.
	LastLogIndex, CommitIndex, AppliedIndex uint64
	// ReplicationLag is, on the leader, how many log entries each follower
	// (by server id) is behind the leader's last index. Empty elsewhere.
	ReplicationLag map[string]uint64
}

// ScannerStats is what the anomaly scanner reports at each scrape (see
// RegisterScanner).
type ScannerStats struct {
	// Scanned is the log size the scanner has looked at; LogSize the
	// log's size now. Their difference is the scanner's lag.
	Scanned, LogSize uint64
	// Findings is how many findings it has written so far (0: not
	// reported; the series is then left out).
	Findings uint64
}

var (
	raftHook    atomic.Pointer[func() RaftStats]
	scannerHook atomic.Pointer[func() ScannerStats]
)

// RegisterRaft makes every Metrics report fn's stats at each scrape:
// provledger_raft_state{state}, _term, _last_log_index, _commit_index,
// _applied_index and _replication_lag_entries{peer}. fn is called on the
// scrape's goroutine and must be quick. RegisterRaft(nil) removes it.
func RegisterRaft(fn func() RaftStats) { storeHook(&raftHook, fn) }

// RegisterScanner makes every Metrics report fn's stats at each scrape:
// provledger_scanner_scanned_size, _lag_entries and _findings_total. fn must be
// quick. RegisterScanner(nil) removes it.
func RegisterScanner(fn func() ScannerStats) { storeHook(&scannerHook, fn) }

func storeHook[T any](p *atomic.Pointer[func() T], fn func() T) {
	if fn == nil {
		p.Store(nil)
		return
	}
	p.Store(&fn)
}

var (
	raftStateDesc = prometheus.NewDesc(Namespace+"_raft_state", "1 for this node's current Raft state.", []string{"state"}, nil)
	raftTermDesc  = prometheus.NewDesc(Namespace+"_raft_term", "Current Raft term.", nil, nil)
	raftLastDesc  = prometheus.NewDesc(Namespace+"_raft_last_log_index", "Last index in this node's Raft log.", nil, nil)
	raftComDesc   = prometheus.NewDesc(Namespace+"_raft_commit_index", "Raft commit index known to this node.", nil, nil)
	raftAppDesc   = prometheus.NewDesc(Namespace+"_raft_applied_index", "Last Raft index applied to this node's ledger.", nil, nil)
	raftLagDesc   = prometheus.NewDesc(Namespace+"_raft_replication_lag_entries", "On the leader: Raft entries each follower is behind.", []string{"peer"}, nil)
	scanSizeDesc  = prometheus.NewDesc(Namespace+"_scanner_scanned_size", "Log size the anomaly scanner has scanned.", nil, nil)
	scanLagDesc   = prometheus.NewDesc(Namespace+"_scanner_lag_entries", "Entries the anomaly scanner is behind the log.", nil, nil)
	scanFindDesc  = prometheus.NewDesc(Namespace+"_scanner_findings_total", "Findings the anomaly scanner has written.", nil, nil)
)

// raftStates are reported with 0 or 1, so that a dashboard sees every state.
var raftStates = []string{"leader", "follower", "candidate", "shutdown"}

// hookCollector reports the registered hooks' stats. It is an unchecked
// collector (it describes nothing), since what it reports depends on
// which hooks are registered.
type hookCollector struct{}

func (hookCollector) Describe(chan<- *prometheus.Desc) {}

func (hookCollector) Collect(ch chan<- prometheus.Metric) {
	if p := raftHook.Load(); p != nil {
		s := (*p)()
		for _, st := range raftStates {
			v := 0.0
			if st == s.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(raftStateDesc, prometheus.GaugeValue, v, st)
		}
		ch <- prometheus.MustNewConstMetric(raftTermDesc, prometheus.GaugeValue, float64(s.Term))
		ch <- prometheus.MustNewConstMetric(raftLastDesc, prometheus.GaugeValue, float64(s.LastLogIndex))
		ch <- prometheus.MustNewConstMetric(raftComDesc, prometheus.GaugeValue, float64(s.CommitIndex))
		ch <- prometheus.MustNewConstMetric(raftAppDesc, prometheus.GaugeValue, float64(s.AppliedIndex))
		for peer, lag := range s.ReplicationLag {
			ch <- prometheus.MustNewConstMetric(raftLagDesc, prometheus.GaugeValue, float64(lag), peer)
		}
	}
	if p := scannerHook.Load(); p != nil {
		s := (*p)()
		lag := uint64(0)
		if s.LogSize > s.Scanned {
			lag = s.LogSize - s.Scanned
		}
		ch <- prometheus.MustNewConstMetric(scanSizeDesc, prometheus.GaugeValue, float64(s.Scanned))
		ch <- prometheus.MustNewConstMetric(scanLagDesc, prometheus.GaugeValue, float64(lag))
		if s.Findings > 0 { // reported only by scanners that count them
			ch <- prometheus.MustNewConstMetric(scanFindDesc, prometheus.CounterValue, float64(s.Findings))
		}
	}
}
