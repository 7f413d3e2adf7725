package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseAppendDefaults(t *testing.T) {
	c, err := ParseAppend(nil, envMap(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultAppendConfig()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Server != "127.0.0.1:7400" || c.Clients != 64 || c.Duration != 10*time.Second || c.Size != 1024 ||
		c.Alg != "ed25519" || c.Mode != ModeUnary || c.Inflight != 8 || c.Warmup != 2*time.Second ||
		c.Verify != VerifySample || c.VerifyEvery != 100 || c.Spawn || c.Count != 0 || c.Out != "" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestParseAppendEnvAndFlags(t *testing.T) {
	env := envMap(map[string]string{
		"PROVLEDGER_BENCH_CLIENTS":    "16",
		"PROVLEDGER_BENCH_MODE":       "batch",
		"PROVLEDGER_BENCH_BATCH_SIZE": "32",
		"PROVLEDGER_BENCH_SPAWN":      "true",
		"PROVLEDGER_BENCH_DURATION":   "3s",
		"PROVLEDGER_BENCH_PROVD_ARGS": "--max-batch 512",
		"PROVLEDGER_BENCH_SIZE":       "256",
		"PROVLEDGER_SIZE":             "999", // not ours: ignored
	})
	c, err := ParseAppend([]string{"--clients", "8", "--alg=ecdsa-p256", "--out", "x.json"}, env, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Clients != 8 {
		t.Errorf("the command line must win over the environment: clients %d, want 8", c.Clients)
	}
	if c.Mode != ModeBatch || c.BatchSize != 32 || !c.Spawn || c.Duration != 3*time.Second || c.Size != 256 {
		t.Errorf("environment not applied: %+v", c)
	}
	if c.Alg != "ecdsa-p256" || c.Out != "x.json" {
		t.Errorf("flags not applied: %+v", c)
	}
	if !slices.Equal(c.ProvdArgs, []string{"--max-batch", "512"}) {
		t.Errorf("provd args %q", c.ProvdArgs)
	}
	if c.DurationS != 3 || c.WarmupS != 2 {
		t.Errorf("seconds for the JSON: %v %v", c.DurationS, c.WarmupS)
	}
}

func TestParseAppendErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--mode", "bulk"}, want: "--mode"},
		{args: []string{"--clients", "0"}, want: "--clients"},
		{args: []string{"--inflight", "300"}, want: "--inflight"},
		{args: []string{"--batch-size", "1001"}, want: "--batch-size"},
		{args: []string{"--alg", "rsa-2048"}, want: "--alg"},
		{args: []string{"--verify", "some"}, want: "--verify"},
		{args: []string{"--size", "10"}, want: "--size"},
		{args: []string{"--duration", "0s"}, want: "--duration"},
		{args: []string{"--conns", "65"}, want: "--conns"},
		{args: []string{"--spawn", "--provd", ""}, want: "--provd"},
		{args: []string{"extra"}, want: "unexpected arguments"},
		{args: []string{"--nope"}, want: "not defined"},
		{env: map[string]string{"PROVLEDGER_BENCH_CLIENTS": "many"}, want: "PROVLEDGER_BENCH_CLIENTS"},
		{env: map[string]string{"PROVLEDGER_BENCH_MODE": "bulk"}, want: "--mode"},
	} {
		_, err := ParseAppend(tc.args, envMap(tc.env), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("args %q env %v: error %v, want one mentioning %q", tc.args, tc.env, err, tc.want)
		}
	}
	// --count replaces --duration.
	if _, err := ParseAppend([]string{"--duration", "0s", "--count", "100"}, envMap(nil), &bytes.Buffer{}); err != nil {
		t.Errorf("--count without --duration: %v", err)
	}
}

// Every flag is documented in --help, and --help names the env prefix.
func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if _, err := ParseAppend([]string{"--help"}, envMap(nil), &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("--help: %v, want ErrHelp", err)
	}
	help := out.String()
	for _, name := range []string{"server", "spawn", "provd", "provd-args", "data-root", "keep-data", "log-key", "clients", "conns",
		"duration", "count", "warmup", "size", "alg", "keys", "mode", "inflight", "batch-size", "namespace", "payload-type",
		"verify", "verify-every", "presign", "calibrate", "out"} {
		if !strings.Contains(help, "-"+name+" ") && !strings.Contains(help, "-"+name+"\n") {
			t.Errorf("--help does not document -%s", name)
		}
	}
	if !strings.Contains(help, "PROVLEDGER_BENCH_<FLAG>") {
		t.Error("--help does not mention PROVLEDGER_BENCH_<FLAG>")
	}
	out.Reset()
	if _, err := ParseLimits([]string{"-h"}, envMap(nil), &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("limits -h: %v", err)
	}
	for _, name := range []string{"each", "dir", "size", "out"} {
		if !strings.Contains(out.String(), "-"+name) {
			t.Errorf("limits --help does not document -%s", name)
		}
	}
}

func TestParseLimits(t *testing.T) {
	c, err := ParseLimits([]string{"--size", "256"}, envMap(map[string]string{
		"PROVLEDGER_BENCH_LIMITS_EACH": "500ms",
		"PROVLEDGER_BENCH_LIMITS_SIZE": "4096", // the flag wins
		"PROVLEDGER_BENCH_EACH":        "9s",   // the append prefix: not for limits
		"PROVLEDGER_BENCH_LIMITS_DIR":  "/var/tmp",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Each != 500*time.Millisecond || c.Size != 256 || c.Dir != "/var/tmp" {
		t.Errorf("limits config %+v", c)
	}
	if _, err := ParseLimits([]string{"--each", "0s"}, envMap(nil), &bytes.Buffer{}); err == nil {
		t.Error("--each 0s accepted")
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName(AppendEnvPrefix, "batch-size"); got != "PROVLEDGER_BENCH_BATCH_SIZE" {
		t.Errorf("EnvName = %q", got)
	}
}

func TestPayloadExactDistinctJSON(t *testing.T) {
	for _, size := range []int{MinPayloadSize, 100, 255, 256, 1024, 16 << 10} {
		seen := map[string]bool{}
		for i := uint64(0); i < 50; i++ {
			p := payload(size, "0123456789abcdef", i*1_000_003)
			if len(p) != size {
				t.Fatalf("size %d: payload has %d bytes", size, len(p))
			}
			if !json.Valid(p) {
				t.Fatalf("size %d: payload is not JSON: %s", size, p)
			}
			if seen[string(p)] {
				t.Fatalf("size %d: payload %d repeats", size, i)
			}
			seen[string(p)] = true
		}
	}
	// The largest index still fits the minimum size.
	if p := payload(MinPayloadSize, "0123456789abcdef", ^uint64(0)); len(p) != MinPayloadSize {
		t.Fatalf("max index: %d bytes", len(p))
	}
	if p := payload(1024, "n", 1); !bytes.Contains(p, []byte(`"_type":"https://in-toto.io/Statement/v1"`)) {
		t.Errorf("1 KiB payload is not an in-toto Statement: %s", p)
	}
}

func TestProcParsers(t *testing.T) {
	stat := []byte("1234 (prov d) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 0 0\n")
	d, err := parseProcStatCPU(stat)
	if err != nil || d != 3*time.Second {
		t.Errorf("parseProcStatCPU = %v, %v; want 3s", d, err)
	}
	if _, err := parseProcStatCPU([]byte("garbage")); err == nil {
		t.Error("garbage /proc/pid/stat accepted")
	}
	if n, err := parseProcStatNice(stat); err != nil || n != 0 {
		t.Errorf("parseProcStatNice = %d, %v; want 0", n, err)
	}
	if n, _ := parseProcStatNice([]byte("1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 30 -10 1 0")); n != -10 {
		t.Errorf("parseProcStatNice = %d, want -10", n)
	}
	busy, err := parseProcStatBusy([]byte("cpu  100 10 50 9999 77 5 5 30 0 0\ncpu0 1 2 3\n"))
	if err != nil || busy != 2*time.Second { // 100+10+50+5+5+30 = 200 ticks
		t.Errorf("parseProcStatBusy = %v, %v; want 2s", busy, err)
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 18234.4: "18,234", 1234567: "1,234,567", 12.5: "12.5"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}
