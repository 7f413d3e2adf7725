package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/bench/loadgen"
)

func noEnv(string) (string, bool) { return "", false }

// buildProvd builds cmd/provd into a temporary directory.
func buildProvd(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build provd with")
	}
	out := filepath.Join(t.TempDir(), "provd")
	cmd := exec.Command(goBin, "build", "-o", out, "github.com/provledger/provledger/cmd/provd")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/provd: %v\n%s", err, b)
	}
	return out
}

// TestAppendSpawned runs provbench append in-process against a spawned
// provd --dev for ~2 s with 4 clients in each mode, and checks that
// entries were appended, none failed, and every sampled receipt verified
// with the log key.
func TestAppendSpawned(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs provd")
	}
	provd := buildProvd(t)
	dir := t.TempDir()
	for _, mode := range []string{"unary", "stream", "batch"} {
		t.Run(mode, func(t *testing.T) {
			out := filepath.Join(dir, mode+".json")
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			code := run(ctx, []string{"append", "--spawn", "--provd", provd, "--data-root", dir,
				"--clients", "4", "--mode", mode, "--inflight", "4", "--batch-size", "16",
				"--duration", "2s", "--warmup", "300ms", "--calibrate", "200ms", "--presign", "15000",
				"--verify-every", "10", "--out", out}, noEnv, &stdout, &stderr)
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var rep loadgen.AppendReport
			if err := json.Unmarshal(b, &rep); err != nil {
				t.Fatal(err)
			}
			res := rep.Results
			switch {
			case !rep.OK || len(rep.Failures) > 0:
				t.Errorf("run not OK: %v", rep.Failures)
			case res.Entries == 0 || res.EntriesPerS <= 0 || res.EnvelopeMBPerS <= 0:
				t.Errorf("no throughput: %+v", res)
			case res.ErrorsTotal != 0 || len(res.Errors) != 0:
				t.Errorf("errors: %v %v", res.Errors, res.ErrorExamples)
			case res.Duplicates != 0 || !res.DistinctIndexes:
				t.Errorf("duplicates %d, distinct indexes %v", res.Duplicates, res.DistinctIndexes)
			case res.Verify.Sampled == 0 || res.Verify.Verified != res.Verify.Sampled || res.Verify.Failed != 0:
				t.Errorf("receipts: %+v", res.Verify)
			case !res.Verify.SignatureChecked:
				t.Errorf("checkpoint signatures were not checked: %+v", res.Verify)
			case res.Latency.Count != res.Entries || res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 || res.Latency.Max < res.Latency.P999:
				t.Errorf("latency: %+v for %d entries", res.Latency, res.Entries)
			case res.CPU.NodeS == nil || *res.CPU.NodeS <= 0 || res.CPU.LoadgenS <= 0 || res.CPU.NodeUsPerEntry == nil || res.CPU.CPUBoundEntriesPerS == nil:
				t.Errorf("cpu: %+v", res.CPU)
			case rep.Limits == nil || rep.Limits.Ed25519VerifyPerS <= 0 || res.FractionOfEd25519Limit <= 0:
				t.Errorf("limits: %+v, fraction %v", rep.Limits, res.FractionOfEd25519Limit)
			case res.KeysPrimed != 4 || res.Presigned != 15000:
				t.Errorf("keys primed %d, presigned %d", res.KeysPrimed, res.Presigned)
			case rep.Durability == "" || rep.Settings.Mode != mode || !rep.Target.Spawned || rep.Machine.NProc == 0 || rep.Provenance.GoVersion == "":
				t.Errorf("report metadata: %+v %+v %+v", rep.Target, rep.Machine, rep.Provenance)
			}
			if !strings.Contains(stdout.String(), "entries/s") || !strings.Contains(stdout.String(), "result: OK") {
				t.Errorf("summary:\n%s", stdout.String())
			}
			t.Logf("%s: %.0f entries/s, p50 %.2f ms, p99 %.2f ms, %d receipts verified",
				mode, res.EntriesPerS, res.Latency.P50, res.Latency.P99, res.Verify.Verified)
		})
	}
	// The spawned nodes' data directories are gone.
	if left, _ := filepath.Glob(filepath.Join(dir, "provbench-node-*")); len(left) > 0 {
		t.Errorf("data directories left behind: %v", left)
	}
}

func TestUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), nil, noEnv, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "provbench append") {
		t.Errorf("no args: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"bogus"}, noEnv, &stdout, &stderr); code != 2 {
		t.Errorf("unknown scenario: exit %d", code)
	}
	if code := run(context.Background(), []string{"append", "--clients", "0"}, noEnv, &stdout, &stderr); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
	if code := run(context.Background(), []string{"append", "--help"}, noEnv, &stdout, &stderr); code != 0 {
		t.Errorf("--help: exit %d", code)
	}
}

func TestLimitsQuick(t *testing.T) {
	out := filepath.Join(t.TempDir(), "limits.json")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"limits", "--each", "100ms", "--dir", t.TempDir(), "--out", out}, noEnv, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep loadgen.LimitsReport
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	l := rep.Limits
	if l.SHA256MBps <= 0 || l.Ed25519VerifyPerS <= 0 || l.ECDSAP256VerifyPerS <= 0 || l.FsyncPerS <= 0 {
		t.Errorf("limits: %+v", l)
	}
}
