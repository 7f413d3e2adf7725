package report_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provledger/provledger/bench/report"
	"github.com/provledger/provledger/bench/suite"
)

func loadRun(t *testing.T) *suite.Run {
	t.Helper()
	run, err := suite.Load(filepath.Join("testdata", "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := run.FillFractions(); err != nil {
		t.Fatal(err)
	}
	return run
}

// TestWrite renders testdata/run.json and checks the report's sections,
// the fraction table, the failure, the published peer and the plots.
func TestWrite(t *testing.T) {
	run := loadRun(t)
	dir := t.TempDir()
	path, err := report.Write(dir, run)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{
		"# provledger benchmark suite — short",
		"abcdef0123456789abcdef0123456789abcdef01 (with uncommitted changes), go1.26.8",
		"AMD EPYC, 2 CPUs (GOMAXPROCS 2), 23.5 GiB, linux/amd64 6.18, nice -10",
		"- durability: every batch is fsynced before acknowledgement",
		"**1 scenario(s) failed:**",
		"| keys_verify_ed25519_per_s | 48,000 verifications/s | crypto/keys.VerifyEd25519",
		// 3,100 / 48,000 = 6.5 %; ECDSA 4,000 / 20,000 = 20 %.
		"| 3 | append/nodes=1/mode=unary/clients=64/size=1024/alg=ed25519 | 3,100 entries/s | 48,000 verifications/s (keys_verify_ed25519_per_s) | 6.5 % |",
		"| append/nodes=1/mode=batch/clients=64/size=1024/alg=ecdsa-p256 | 4,000 entries/s | 20,000 verifications/s (ecdsa_p256_verify_per_s) | 20.0 % |",
		"## Appends, one node (provd --dev)",
		"## Appends, 3-node Raft cluster on 127.0.0.1 (appends to the leader)",
		"| unary | 256 | 1024 | ed25519 | 3,300 | 5.28 | 70 | 160 |",
		"FAILED: 2 appends failed / Unavailable",
		"![Latency vs throughput, 1 node(s)](latency-throughput-1node.svg)",
		"![Fraction of the bounding limit](fraction-of-limit.svg)",
		"## restart",
		"| restart | after_kill_s | 1.1 s | ok |",
		"| etcd v2.2.0 | writes/s | 4,581 writes/s | **published**, not measured here | three GCE n1-highcpu-2 | etcd.io |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// The cluster has one OK cell only: no curve, no plot.
	if strings.Contains(md, "latency-throughput-3node.svg") {
		t.Error("a 3-node curve was plotted from one point")
	}
	for _, f := range []string{"latency-throughput-1node.svg", "fraction-of-limit.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("<?xml")) || !bytes.Contains(b, []byte("<svg")) {
			t.Errorf("%s is not an SVG: %.80q", f, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "latency-throughput-3node.svg")); !os.IsNotExist(err) {
		t.Errorf("3-node plot written: %v", err)
	}
}

// TestWriteEmpty: a run with no result renders a report with no plots.
func TestWriteEmpty(t *testing.T) {
	dir := t.TempDir()
	run := &suite.Run{Schema: suite.Schema, Profile: "short"}
	plots, err := report.WritePlots(dir, run)
	if err != nil || len(plots) != 0 {
		t.Fatalf("plots %v, err %v; want none", plots, err)
	}
	var b bytes.Buffer
	report.Markdown(&b, run, nil)
	if !strings.Contains(b.String(), "unknown commit") || strings.Contains(b.String(), "## Machine limits") {
		t.Errorf("empty report:\n%s", b.String())
	}
}

func TestNumber(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 1.2345: "1.23", 99.94: "99.9", 100: "100", 1234.5: "1,235", -1234567: "-1,234,567", 0.000123: "0.000123",
	} {
		if got := report.Number(v); got != want {
			t.Errorf("Number(%v) = %q, want %q", v, got, want)
		}
	}
}
