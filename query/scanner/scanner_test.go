package scanner_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/scanner"
	"github.com/provledger/provledger/query/scanner/synth"
)

var smallStream = synth.Config{Jobs: 40, Days: 70, PerKind: 3, Seed: 3}

// payloads returns the findings' JSON in order.
func payloads(t *testing.T, fs []scanner.StoredFinding) []string {
	t.Helper()
	out := make([]string, len(fs))
	for i, f := range fs {
		b, err := f.Finding.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out
}

// countFindingEntries counts the finding entries in the log.
func countFindingEntries(t *testing.T, l *ledger.Log) int {
	t.Helper()
	n := 0
	err := l.Records(0, l.Latest().Size, func(_ uint64, rec []byte) error {
		r, err := record.Unmarshal(rec)
		if err != nil {
			return err
		}
		if r.PayloadType == scanner.TypeFinding {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestResumeIsDeterministic scans a log in one pass, and an identical log
// in small chunks with a restart (a new Scanner from the stored state) in
// the middle: the findings are the same, in the same order, and each is
// in the log once.
func TestResumeIsDeterministic(t *testing.T) {
	l1 := openLog(t)
	st, err := synth.Generate(l1, smallStream)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := newScanner(t, l1, st.Trust, nil)
	p1, err := s1.Scan(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Findings) == 0 {
		t.Fatal("no findings on a stream with anomalies")
	}

	dir := filepath.Join(t.TempDir(), "ledger")
	l2 := openLogDir(t, dir)
	if _, err := synth.Generate(l2, smallStream); err != nil {
		t.Fatal(err)
	}
	small := func(o *scanner.Options) { o.ChunkSize = 333; o.Workers = 3; o.CommitEvery = 1000 }
	s2, seq := newScanner(t, l2, st.Trust, small)
	half := l2.Latest().Size / 2
	pa, err := s2.Scan(context.Background(), half)
	if err != nil {
		t.Fatal(err)
	}
	if pa.To != half || s2.Cursor() != half {
		t.Fatalf("first pass ended at %d (cursor %d), want %d", pa.To, s2.Cursor(), half)
	}
	// Restart: a new scanner on the same store.
	s3, err := scanner.New(l2, seq, s2.Options())
	if err != nil {
		t.Fatal(err)
	}
	if s3.Cursor() != half {
		t.Fatalf("restarted cursor %d, want %d", s3.Cursor(), half)
	}
	pb, err := s3.Scan(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := append(payloads(t, pa.Findings), payloads(t, pb.Findings)...)
	want := payloads(t, p1.Findings)
	if !slices.Equal(got, want) {
		t.Fatalf("resumed scan found %d findings, one pass %d; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
	// A third pass finds nothing new: its own findings are skipped.
	pc, err := s3.Scan(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pc.Findings) != 0 || pc.Skipped == 0 {
		t.Fatalf("pass over the scanner's own findings: %d findings, %d skipped", len(pc.Findings), pc.Skipped)
	}
	if n := countFindingEntries(t, l2); n != len(want) {
		t.Fatalf("%d finding entries in the log, want %d", n, len(want))
	}
	stored, err := s3.Findings(scanner.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(want) {
		t.Fatalf("Findings lists %d, want %d", len(stored), len(want))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// crashSeq appends, then fails once: as a node that dies after its
// findings are durable and before its cursor is.
type crashSeq struct {
	ledger.Sequencer
	fail bool
}

var errCrash = errors.New("crash after append")

func (c *crashSeq) Submit(ctx context.Context, es []ledger.Entry) ([]ledger.Receipt, error) {
	rs, err := c.Sequencer.Submit(ctx, es)
	if err == nil && c.fail {
		c.fail = false
		return nil, errCrash
	}
	return rs, err
}

// TestCrashAfterAppendReportsOnce: findings appended but cursor not
// committed; the rescan signs the same envelopes, the log deduplicates
// them, and every finding is in the log once.
func TestCrashAfterAppendReportsOnce(t *testing.T) {
	l := openLog(t)
	st, err := synth.Generate(l, smallStream)
	if err != nil {
		t.Fatal(err)
	}
	s, seq := newScanner(t, l, st.Trust, nil)
	cs := &crashSeq{Sequencer: seq, fail: true}
	s2, err := scanner.New(l, cs, s.Options())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Scan(context.Background(), 0); !errors.Is(err, errCrash) {
		t.Fatalf("scan: %v, want the crash", err)
	}
	if c := s2.Cursor(); c >= st.Entries {
		t.Fatalf("cursor %d after the failed chunk, want below %d", c, st.Entries)
	}
	appended := countFindingEntries(t, l)
	if appended == 0 {
		t.Fatal("nothing appended before the crash")
	}
	p, err := s2.Scan(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := countFindingEntries(t, l); n != len(p.Findings) {
		t.Fatalf("%d finding entries in the log, %d findings reported", n, len(p.Findings))
	}
}

func TestOptionsValidate(t *testing.T) {
	sg := mustSigner(t)
	tests := []struct {
		name string
		mod  func(*scanner.Options)
		ok   bool
	}{
		{"defaults", func(*scanner.Options) {}, true},
		{"no signer", func(o *scanner.Options) { o.Signer = nil }, false},
		{"negative chunk", func(o *scanner.Options) { o.ChunkSize = -1 }, false},
		{"band min points above window", func(o *scanner.Options) { o.Volume.Band = scanner.BandOptions{Window: 3, MinPoints: 4} }, false},
		{"negative k", func(o *scanner.Options) { o.Cost.Band.K = -1 }, false},
		{"freshness factor below 1", func(o *scanner.Options) { o.Freshness.Factor = 0.5 }, false},
		{"cost history too short", func(o *scanner.Options) { o.Cost.History = 7 }, false},
		{"forecast horizon", func(o *scanner.Options) { o.Forecast.Horizon = 400 }, false},
		{"bad interval", func(o *scanner.Options) { o.Freshness.Intervals = map[string]time.Duration{"a:b": -1} }, false},
		{"custom ok", func(o *scanner.Options) {
			o.Cost.Band = scanner.BandOptions{K: 3, Window: 12, MinPoints: 6, NotWeekly: true}
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := scanner.Options{Signer: sg}
			tc.mod(&o)
			err := o.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && tc.name != "no signer" && !errors.Is(err, scanner.ErrOptions) {
				t.Fatalf("error %v does not wrap ErrOptions", err)
			}
		})
	}
}

func TestFindingsPagingEdges(t *testing.T) {
	l := openLog(t)
	st, err := synth.Generate(l, synth.Config{Jobs: 20, Days: 60, PerKind: 1, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newScanner(t, l, st.Trust, nil)
	p, err := s.Scan(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Findings) < 2 {
		t.Fatalf("%d findings", len(p.Findings))
	}
	last := ^uint64(0)
	tests := []struct {
		name string
		f    scanner.Filter
		want int
	}{
		{"all", scanner.Filter{}, len(p.Findings)},
		{"limit", scanner.Filter{Limit: 1}, 1},
		{"after first", scanner.Filter{After: &p.Findings[0].Index}, len(p.Findings) - 1},
		{"after max", scanner.Filter{After: &last}, 0},
		{"critical", scanner.Filter{MinSeverity: scanner.SeverityCritical}, countSev(p.Findings, scanner.SeverityCritical)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Findings(tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Fatalf("%d findings, want %d", len(got), tc.want)
			}
		})
	}
}

func countSev(fs []scanner.StoredFinding, min scanner.Severity) int {
	n := 0
	for _, f := range fs {
		if f.Finding.Severity >= min {
			n++
		}
	}
	return n
}

// TestMigrateJSONState: a state of format 1 (JSON values, before the
// binary format) left half-way through a log is migrated when a scanner
// opens it, and the scan resumes to the findings of one pass, each in the
// log once; a state of an unknown format is refused with ErrState.
func TestMigrateJSONState(t *testing.T) {
	l := openLog(t)
	st, err := synth.Generate(l, synth.Config{Jobs: 20, Days: 60, PerKind: 1, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	s1, seq := newScanner(t, l, st.Trust, nil)
	p1, err := s1.Scan(context.Background(), st.Entries)
	if err != nil {
		t.Fatal(err)
	}
	want := payloads(t, p1.Findings)
	if err := l.DB().DeleteRange([]byte{'s'}, []byte{'t'}, nil); err != nil {
		t.Fatal(err)
	}
	s2, err := scanner.New(l, seq, s1.Options())
	if err != nil {
		t.Fatal(err)
	}
	half := st.Entries / 2
	pa, err := s2.Scan(context.Background(), half)
	if err != nil {
		t.Fatal(err)
	}
	if err := scanner.DowngradeStateToJSON(l); err != nil {
		t.Fatal(err)
	}
	s3, err := scanner.New(l, seq, s1.Options())
	if err != nil {
		t.Fatalf("open a format-1 state: %v", err)
	}
	if s3.Cursor() != half {
		t.Fatalf("migrated cursor %d, want %d", s3.Cursor(), half)
	}
	pb, err := s3.Scan(context.Background(), st.Entries)
	if err != nil {
		t.Fatal(err)
	}
	got := append(payloads(t, pa.Findings), payloads(t, pb.Findings)...)
	if !slices.Equal(got, want) {
		t.Fatalf("migrated scan found %d findings, one pass %d; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
	if n := countFindingEntries(t, l); n != len(want) {
		t.Fatalf("%d finding entries in the log, want %d", n, len(want))
	}
	// An unknown format is refused, saying what to do.
	if err := l.DB().Set([]byte("smformat"), []byte{0, 0, 0, 0, 0, 0, 0, 9}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := scanner.New(l, seq, s1.Options()); !errors.Is(err, scanner.ErrState) || !strings.Contains(err.Error(), "to rescan") {
		t.Fatalf("format 9: %v, want ErrState saying how to rescan", err)
	}
}
