package metrics

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/provledger/provledger/ledger"
)

func exposition(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestHooks(t *testing.T) {
	m := New(Options{NoProcessMetrics: true})
	if s := exposition(t, m); strings.Contains(s, "provledger_raft_") || strings.Contains(s, "provledger_scanner_") {
		t.Fatalf("raft or scanner series without hooks:\n%s", s)
	}
	RegisterRaft(func() RaftStats {
		return RaftStats{State: "leader", Term: 3, LastLogIndex: 10, CommitIndex: 9, AppliedIndex: 8, ReplicationLag: map[string]uint64{"n2": 4}}
	})
	RegisterScanner(func() ScannerStats { return ScannerStats{Scanned: 5, LogSize: 12, Findings: 2} })
	t.Cleanup(func() { RegisterRaft(nil); RegisterScanner(nil) })
	s := exposition(t, m)
	for _, want := range []string{
		`provledger_raft_state{state="leader"} 1`,
		`provledger_raft_state{state="follower"} 0`,
		`provledger_raft_term 3`,
		`provledger_raft_commit_index 9`,
		`provledger_raft_applied_index 8`,
		`provledger_raft_last_log_index 10`,
		`provledger_raft_replication_lag_entries{peer="n2"} 4`,
		`provledger_scanner_scanned_size 5`,
		`provledger_scanner_lag_entries 7`,
		`provledger_scanner_findings_total 2`,
	} {
		if !strings.Contains(s, want+"\n") {
			t.Errorf("missing %q", want)
		}
	}
}

func TestBatchObserver(t *testing.T) {
	now := time.Unix(1000, 0)
	m := New(Options{NoProcessMetrics: true, Now: func() time.Time { return now }})
	now = now.Add(90 * time.Second)
	m.BatchApplied(ledger.BatchStats{Entries: 4, Added: 0, Size: 0, Apply: time.Millisecond, Commit: time.Millisecond, Sync: true})
	if s := exposition(t, m); !strings.Contains(s, "provledger_checkpoint_age_seconds 90\n") {
		t.Errorf("a batch that added nothing reset the checkpoint age:\n%s", s)
	}
	m.BatchApplied(ledger.BatchStats{Entries: 4, Added: 3, Size: 3, Apply: time.Millisecond, Commit: time.Millisecond, Sync: false})
	s := exposition(t, m)
	for _, want := range []string{
		"provledger_checkpoint_age_seconds 0\n",
		"provledger_log_size 3\n",
		"provledger_batch_entries_count 2\n",
		`provledger_batch_apply_duration_seconds_count{sync="false"} 1` + "\n",
		`provledger_batch_commit_duration_seconds_count{sync="true"} 1` + "\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q", want)
		}
	}
}

func TestNames(t *testing.T) {
	for c, want := range map[codes.Code]string{codes.InvalidArgument: "invalid_argument", codes.PermissionDenied: "permission_denied", codes.ResourceExhausted: "resource_exhausted", codes.OK: "ok"} {
		if got := ReasonForCode(c); got != want {
			t.Errorf("ReasonForCode(%v) = %q; want %q", c, got, want)
		}
	}
	for path, want := range map[string]string{
		"/checkpoint": "checkpoint", "/log/checkpoint": "checkpoint", "/tile/0/000": "tile", "/tile/entries/000.p/3": "entries",
		"/envelope/sha256/ab": "envelope", "/api/v1/lineage/batch": "lineage", "/": "other",
	} {
		if got := Route(path); got != want {
			t.Errorf("Route(%q) = %q; want %q", path, got, want)
		}
	}
}

// TestDashboardNamesExist: every provledger_ metric the Grafana dashboard
// and docs/operations.md name is one this package exports.
func TestDashboardNamesExist(t *testing.T) {
	m := New(Options{NoProcessMetrics: true})
	RegisterRaft(func() RaftStats { return RaftStats{State: "leader", ReplicationLag: map[string]uint64{"n": 1}} })
	RegisterScanner(func() ScannerStats { return ScannerStats{Findings: 1} })
	t.Cleanup(func() { RegisterRaft(nil); RegisterScanner(nil) })
	// Vectors are exported once they have a series.
	m.grpcRequests.WithLabelValues("m", "OK").Inc()
	m.grpcDuration.WithLabelValues("m").Observe(1)
	m.httpRequests.WithLabelValues("r", "200").Inc()
	m.httpDuration.WithLabelValues("r").Observe(1)
	m.entries.WithLabelValues("appended").Inc()
	m.Reject("x")
	m.BatchApplied(ledger.BatchStats{Entries: 1})
	exported := exposition(t, m)
	for _, file := range []string{"../../docs/grafana/provledger.json", "../../docs/operations.md"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(file, ".json") && !json.Valid(b) {
			t.Fatalf("%s is not valid JSON", file)
		}
		names := regexp.MustCompile(`provledger_[a-z_]+[a-z]`).FindAllString(string(b), -1)
		if len(names) < 10 {
			t.Fatalf("%s names only %d metrics", file, len(names))
		}
		for _, n := range names {
			base := n
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suf)
			}
			if !strings.Contains(exported, "# TYPE "+base+" ") && !strings.Contains(exported, "# TYPE "+n+" ") {
				// "provledger_raft_term, _last_log_index" style lists name the prefix only.
				if !strings.Contains(exported, "# TYPE "+base+"_") {
					t.Errorf("%s names %s, which is not exported", file, n)
				}
			}
		}
	}
}
