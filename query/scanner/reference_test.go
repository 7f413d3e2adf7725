package scanner_test

import (
	"bytes"
	"context"
	"flag"
	"testing"

	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/scanner"
	"github.com/provledger/provledger/query/scanner/synth"
)

var (
	cmpJobs = flag.Int("scanner.cmp.jobs", 60, "jobs of the stream TestFastPathMatchesReference compares on (-scanner.cmp.jobs 100 -scanner.cmp.days 90: the evaluation stream)")
	cmpDays = flag.Int("scanner.cmp.days", 90, "days of that stream")
)

// scanFindings scans l from a fresh state up to n and returns each
// finding's log index and signed payload.
func scanFindings(t *testing.T, l *ledger.Log, st *synth.Stream, n uint64, mod func(*scanner.Options)) ([]uint64, [][]byte, *scanner.Pass) {
	t.Helper()
	if err := l.DB().DeleteRange([]byte{'s'}, []byte{'t'}, nil); err != nil {
		t.Fatal(err)
	}
	s, _ := newScanner(t, l, st.Trust, mod)
	p, err := s.Scan(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	if p.To != n {
		t.Fatalf("scanned to %d, want %d", p.To, n)
	}
	idx := make([]uint64, len(p.Findings))
	out := make([][]byte, len(p.Findings))
	for i, f := range p.Findings {
		b, err := f.Finding.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		idx[i], out[i] = f.Index, b
	}
	return idx, out, p
}

// TestFastPathMatchesReference scans one labelled stream with the default
// read and decode path and with the reference path (a point read of every
// envelope, the strict parsers for every payload) and requires the same
// findings, byte for byte, at the same indexes — with and without the
// re-verification of signatures.
func TestFastPathMatchesReference(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a synthetic log")
	}
	l := openLog(t)
	st, err := synth.Generate(l, synth.Config{Jobs: *cmpJobs, Days: *cmpDays, PerKind: min(5, *cmpJobs/4), Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, verify := range []bool{true, false} {
		refIdx, ref, refPass := scanFindings(t, l, st, st.Entries, func(o *scanner.Options) {
			o.Integrity.VerifySignatures = verify
			scanner.UseReferencePath(o)
		})
		gotIdx, got, gotPass := scanFindings(t, l, st, st.Entries, func(o *scanner.Options) { o.Integrity.VerifySignatures = verify })
		t.Logf("verify=%v: %d entries, %d findings; strict parser: %d payloads on the reference path, %d on the default path", verify, st.Entries, len(ref), refPass.StrictParsed, gotPass.StrictParsed)
		// The lean decoder must take every valid payload of the stream (the
		// comparison would be vacuous otherwise): the strict parser sees the
		// unparseable ones only.
		bad := 0
		for _, f := range gotPass.Findings {
			if f.Finding.Kind == "integrity.payload" {
				bad++
			}
		}
		if bad == 0 || gotPass.StrictParsed != bad || refPass.StrictParsed < 10*bad {
			t.Errorf("strict parser ran on %d payloads (reference path %d), want the %d unparseable ones", gotPass.StrictParsed, refPass.StrictParsed, bad)
		}
		if len(ref) == 0 {
			t.Fatal("no findings on the reference path")
		}
		if len(got) != len(ref) {
			t.Errorf("verify=%v: %d findings, the reference path %d", verify, len(got), len(ref))
		}
		for i := range min(len(got), len(ref)) {
			if gotIdx[i] != refIdx[i] || !bytes.Equal(got[i], ref[i]) {
				t.Fatalf("verify=%v: finding %d differs:\n got %d %s\nwant %d %s", verify, i, gotIdx[i], got[i], refIdx[i], ref[i])
			}
		}
	}
}
