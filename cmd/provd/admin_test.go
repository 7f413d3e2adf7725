package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
)

var reMetrics = regexp.MustCompile(`(?m)^\s+metrics:\s+(http://\S+/metrics)$`)

// scrape fetches a Prometheus text exposition and returns each sample by
// its series (name and labels as printed).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsScrape runs provd, scrapes its admin listener, appends, and
// checks the series exist and move.
func TestMetricsScrape(t *testing.T) {
	n := startRun(t, "--dev", "--data", t.TempDir(), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-level", "warn")
	m := reMetrics.FindStringSubmatch(n.stdout.String())
	if m == nil {
		t.Fatalf("banner has no metrics URL:\n%s", n.stdout.String())
	}
	url := m[1]
	c := n.dial(t)
	v := n.verifier(t)
	s := newTestSigner(t)

	const (
		appendOK   = `provledger_grpc_requests_total{code="OK",method="/provledger.v1.Ledger/Append"}`
		appended   = `provledger_append_entries_total{result="appended"}`
		duplicate  = `provledger_append_entries_total{result="duplicate"}`
		rejInvalid = `provledger_rejected_total{reason="invalid_argument"}`
		batches    = `provledger_batch_entries_count`
		applyCount = `provledger_batch_apply_duration_seconds_count{sync="true"}`
		commitCnt  = `provledger_batch_commit_duration_seconds_count{sync="true"}`
		size       = `provledger_log_size`
		latency    = `provledger_grpc_request_duration_seconds_count{method="/provledger.v1.Ledger/Append"}`
	)
	before := scrape(t, url)
	for _, name := range []string{size, `provledger_checkpoint_age_seconds`, batches, `go_goroutines`, `process_resident_memory_bytes`} {
		if _, ok := before[name]; !ok {
			t.Errorf("series %s missing before any append", name)
		}
	}

	const appends = 3
	var envs [][]byte
	for i := range appends {
		if _, err := appendOne(t, c, v, s, fmt.Sprintf("metrics-%d", i), i == 0); err != nil {
			t.Fatal(err)
		}
		env, _ := s.statement(fmt.Sprintf("metrics-%d", i))
		envs = append(envs, env.Marshal())
	}
	// A duplicate and a rejected append.
	if _, err := appendOne(t, c, v, s, "metrics-0", false); err != nil {
		t.Fatal(err)
	}
	bad := &provledgerpb.AppendRequest{Namespace: "provd-test", Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: []byte("not json")}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Append(ctx, bad); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad append: %v", err)
	}

	after := scrape(t, url)
	for _, tc := range []struct {
		series string
		delta  float64
	}{
		{appendOK, appends + 1},
		{appended, appends},
		{duplicate, 1},
		{rejInvalid, 1},
		{size, appends},
		{latency, appends + 2},
	} {
		if d := after[tc.series] - before[tc.series]; d != tc.delta {
			t.Errorf("%s moved by %g; want %g (before %g, after %g)", tc.series, d, tc.delta, before[tc.series], after[tc.series])
		}
	}
	for _, series := range []string{batches, applyCount, commitCnt} {
		if d := after[series] - before[series]; d < 1 || d > appends+1 {
			t.Errorf("%s moved by %g; want 1..%d batches", series, d, appends+1)
		}
	}
	if after[`provledger_checkpoint_age_seconds`] < 0 {
		t.Errorf("negative checkpoint age")
	}

	// pprof is on the admin listener, and only there.
	for _, tc := range []struct {
		url  string
		want int
	}{
		{strings.TrimSuffix(url, "/metrics") + "/debug/pprof/", 200},
		{strings.TrimSuffix(url, "/metrics") + "/debug/pprof/goroutine?debug=1", 200},
		{"http://" + n.httpAddr + "/debug/pprof/", 404},
		{"http://" + n.httpAddr + "/metrics", 404},
	} {
		resp, err := http.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %d; want %d", tc.url, resp.StatusCode, tc.want)
		}
	}
}

func TestAdminDisabled(t *testing.T) {
	n := startRun(t, "--dev", "--data", t.TempDir(), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "", "--log-level", "warn")
	if !strings.Contains(n.stdout.String(), `metrics:    off`) {
		t.Errorf("banner with --admin-addr \"\":\n%s", n.stdout.String())
	}
}

// TestRaftMetrics: a one-node cluster reports its Raft state; its log
// size and batches (applied by the Raft FSM, sync="false") move too.
func TestRaftMetrics(t *testing.T) {
	n := startRun(t, "--dev", "--data", t.TempDir(), "--node-id", "n1", "--bootstrap", "--grpc-addr", freeAddr(t), "--http-addr", "127.0.0.1:0",
		"--raft-addr", freeAddr(t), "--admin-addr", "127.0.0.1:0", "--log-level", "warn")
	m := reMetrics.FindStringSubmatch(n.stdout.String())
	if m == nil {
		t.Fatalf("banner has no metrics URL:\n%s", n.stdout.String())
	}
	c := n.dial(t)
	s := newTestSigner(t)
	var resp *provledgerpb.AppendResponse
	deadline := time.Now().Add(20 * time.Second)
	for { // the node elects itself first
		var err error
		if resp, err = appendOne(t, c, n.verifier(t), s, "raft-metrics", true); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("append to a one-node cluster: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := scrape(t, m[1])
	for series, want := range map[string]float64{
		`provledger_raft_state{state="leader"}`:   1,
		`provledger_raft_state{state="follower"}`: 0,
		`provledger_log_size`:                     float64(resp.GetIndex() + 1),
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v); want %v", series, v, ok, want)
		}
	}
	for _, series := range []string{`provledger_raft_term`, `provledger_raft_commit_index`, `provledger_raft_applied_index`, `provledger_raft_last_log_index`, `provledger_batch_apply_duration_seconds_count{sync="false"}`} {
		if got[series] < 1 {
			t.Errorf("%s = %v; want at least 1", series, got[series])
		}
	}
}

// TestScannerMetrics: with --scan, the scanner's position is reported and
// catches up with the log.
func TestScannerMetrics(t *testing.T) {
	n := startRun(t, "--dev", "--data", t.TempDir(), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--scan", "--scan-interval", "50ms", "--log-level", "warn")
	m := reMetrics.FindStringSubmatch(n.stdout.String())
	if m == nil {
		t.Fatalf("banner has no metrics URL:\n%s", n.stdout.String())
	}
	if _, err := appendOne(t, n.dial(t), n.verifier(t), newTestSigner(t), "scanned", true); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := scrape(t, m[1])
		scanned, ok := got[`provledger_scanner_scanned_size`]
		if ok && scanned >= 1 && got[`provledger_scanner_lag_entries`] == got[`provledger_log_size`]-scanned {
			if got[`provledger_scanner_lag_entries`] == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("scanner series after 30 s: scanned %v (present %v), lag %v, log size %v", scanned, ok, got[`provledger_scanner_lag_entries`], got[`provledger_log_size`])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
