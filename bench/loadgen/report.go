package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// DefaultOut is the default result file of a scenario started at t:
// bench/results/<scenario>-<UTC timestamp>.json, relative to the working
// directory (bench/results/ is git-ignored except curated baselines).
func DefaultOut(scenario string, t time.Time) string {
	return filepath.Join("bench", "results", scenario+"-"+t.UTC().Format("20060102T150405Z")+".json")
}

// WriteJSON writes v, indented, to path, creating its directory.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("result directory: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// PrintAppend writes the human summary of an append report.
func PrintAppend(w io.Writer, r *AppendReport) {
	s, res := &r.Settings, &r.Results
	shape := ""
	switch s.Mode {
	case ModeStream:
		shape = fmt.Sprintf(", %d in flight per stream", s.Inflight)
	case ModeBatch:
		shape = fmt.Sprintf(", %d per batch", s.BatchSize)
	}
	conns := s.Conns
	if conns == 0 {
		conns = s.Clients
	}
	fmt.Fprintf(w, "\nprovbench append — %s mode%s, %d clients on %d connections, %s, %d-byte payloads, %.3gs after %.3gs warmup\n",
		s.Mode, shape, s.Clients, conns, s.Alg, s.Size, res.WindowS, s.Warmup.Seconds())
	if r.Target.Spawned {
		fmt.Fprintf(w, "node: spawned %s --dev (pid %d) on %s\n", r.Target.Provd, r.Target.PID, r.Target.Addr)
	} else {
		fmt.Fprintf(w, "node: %s (not spawned: its CPU is not measured)\n", r.Target.Addr)
	}
	fmt.Fprintf(w, "durability: every batch is fsynced before acknowledgement\n\n")

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(format, args...)) }
	eps := thousands(res.EntriesPerS)
	if r.Limits != nil && res.FractionOfEd25519Limit > 0 {
		eps += fmt.Sprintf("   = %.0f%% of the Ed25519 verification limit (%s/s on %d cores, measured in this run)",
			100*res.FractionOfEd25519Limit, thousands(r.Limits.Ed25519VerifyPerS), r.Machine.GOMAXPROCS)
		if res.FractionOfAlgLimit > 0 {
			eps += fmt.Sprintf("; %.0f%% of the %s limit (%s/s)", 100*res.FractionOfAlgLimit, s.Alg, thousands(r.Limits.AlgVerifyPerS))
		}
	}
	row("entries/s", "%s", eps)
	row("envelope MB/s", "%.2f   (%.0f-byte canonical DSSE envelopes; payload %.2f MB/s)", res.EnvelopeMBPerS, res.EnvelopeBytes, res.PayloadMBPerS)
	l := res.Latency
	row("latency ms", "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s)", msStr(l.P50), msStr(l.P90), msStr(l.P99), msStr(l.P999), msStr(l.Max), msStr(l.Mean))
	row("entries", "%s in %.2f s; %s acknowledged in the whole run", thousands(float64(res.Entries)), res.WindowS, thousands(float64(res.AckedTotal)))
	if res.ErrorsTotal == 0 {
		row("errors", "none")
	} else {
		codes := make([]string, 0, len(res.Errors))
		for c, n := range res.Errors {
			codes = append(codes, fmt.Sprintf("%s %d", c, n))
		}
		slices.Sort(codes)
		row("errors", "%d: %s", res.ErrorsTotal, strings.Join(codes, ", "))
	}
	dist := "every acknowledged index distinct"
	if !res.DistinctIndexes {
		dist = "SOME ACKNOWLEDGED INDEXES REPEAT"
	}
	row("duplicates", "%d; %s", res.Duplicates, dist)
	v := res.Verify
	switch v.Mode {
	case VerifyNone:
		row("receipts", "not verified (--verify=none)")
	default:
		how := "all"
		if v.Mode == VerifySample {
			how = fmt.Sprintf("1 in %d", v.Every)
		}
		sig := "checkpoint signatures NOT checked (no log key)"
		if v.SignatureChecked {
			sig = "checkpoint signatures checked with " + v.LogKey
		}
		verdict := "all passed"
		if v.Failed > 0 {
			verdict = fmt.Sprintf("%d FAILED (%s)", v.Failed, v.FirstFailure)
		}
		row("receipts", "%s of %s verified after the clock (%s; %s): %s", thousands(float64(v.Verified)), thousands(float64(v.Sampled)), how, sig, verdict)
	}
	cpu := fmt.Sprintf("provbench %.2f s = %.2f cores", res.CPU.LoadgenS, res.CPU.LoadgenCores)
	if res.CPU.NodeS != nil {
		cpu += fmt.Sprintf("; provd %.2f s = %.2f cores", *res.CPU.NodeS, *res.CPU.NodeCores)
	}
	if res.CPU.NodeS != nil {
		cpu += fmt.Sprintf("; other processes %.2f cores", res.CPU.OtherCores)
	} else {
		cpu += fmt.Sprintf("; all other processes (the node included) %.2f cores", res.CPU.OtherCores)
	}
	row("CPU in window", "%s; the machine has %d", cpu, res.CPU.Cores)
	if c := res.CPU; c.NodeUsPerEntry != nil && c.CPUBoundEntriesPerS != nil {
		row("CPU per entry", "provbench %.0f µs + provd %.0f µs: %s entries/s if both had all %d cores and CPU were the only limit",
			c.LoadgenUsPerEntry, *c.NodeUsPerEntry, thousands(*c.CPUBoundEntriesPerS), c.Cores)
	}
	row("pre-signed", "%s envelopes in %.1f s, before the clock%s", thousands(float64(res.Presigned)), res.PresignS, map[bool]string{true: " (RAN OUT)", false: ""}[res.PoolExhausted])
	row("machine", "%s", machineLine(&r.Machine))
	row("code", "%s", provenanceLine(&r.Provenance))
	tw.Flush()
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	if r.OK {
		fmt.Fprintf(w, "result: OK\n")
	} else {
		fmt.Fprintf(w, "result: FAILED\n")
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  - %s\n", f)
		}
	}
}

// PrintLimits writes the human summary of a limits report.
func PrintLimits(w io.Writer, r *LimitsReport) {
	l := &r.Limits
	fmt.Fprintf(w, "\nprovbench limits — %.3gs each, %d goroutines for the CPU-bound ones\n\n", l.EachS, l.Goroutines)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  SHA-256\t%s MB/s\t(64 KiB buffers, all cores)\n", thousands(l.SHA256MBps))
	fmt.Fprintf(tw, "  Ed25519 verify\t%s /s\t(DSSE PAE of a %d-byte payload, all cores)\n", thousands(l.Ed25519VerifyPerS), l.MessageSize)
	fmt.Fprintf(tw, "  keys.VerifyEd25519\t%s /s\t(curve25519-voi with crypto/ed25519 semantics, what provd uses; all cores)\n", thousands(l.KeysEd25519VerifyPerS))
	fmt.Fprintf(tw, "  ECDSA P-256 verify\t%s /s\t(same message, SHA-256 included, all cores)\n", thousands(l.ECDSAP256VerifyPerS))
	fmt.Fprintf(tw, "  4 KiB write+fsync\t%s /s\t(%.2f ms each, one at a time, in %s)\n", thousands(l.FsyncPerS), l.FsyncMeanMs, l.FsyncDir)
	fmt.Fprintf(tw, "  Pebble synced batch\t%s /s\t(one 1 KiB Set per batch, Commit with Sync, one at a time, in %s)\n", thousands(l.PebbleSyncedPerS), l.FsyncDir)
	fmt.Fprintf(tw, "  other processes\t%.2f cores\t(CPU they used meanwhile; high values understate the limits)\n", l.OtherCores)
	tw.Flush()
	fmt.Fprintf(w, "  machine: %s\n  code:    %s\n", machineLine(&r.Machine), provenanceLine(&r.Provenance))
}

func machineLine(m *Machine) string {
	s := fmt.Sprintf("%s, %d CPUs, %.1f GiB, GOMAXPROCS %d, %s/%s %s",
		orUnknown(m.CPUModel), m.NProc, float64(m.MemTotalBytes)/(1<<30), m.GOMAXPROCS, m.OS, m.Arch, m.Kernel)
	if m.Nice != 0 {
		s += fmt.Sprintf(", nice %d", m.Nice)
	}
	return s
}

func provenanceLine(p *Provenance) string {
	c := p.GitCommit
	if c == "" {
		c = "commit unknown"
	} else if len(c) > 12 {
		c = c[:12]
	}
	if p.GitDirty {
		c += " (uncommitted changes)"
	}
	return fmt.Sprintf("%s, %s, %s", c, p.GoVersion, p.Timestamp)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown CPU"
	}
	return s
}

func msStr(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// thousands formats v with no decimals (one below 100) and comma groups.
func thousands(v float64) string {
	if v < 100 && v != float64(int64(v)) {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(v+0.5), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
