package scanner_test

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/scanner"
	"github.com/provledger/provledger/query/scanner/synth"
)

var (
	evalJobs = flag.Int("scanner.jobs", 100, "jobs in the evaluation stream")
	evalDays = flag.Int("scanner.days", 90, "days in the evaluation stream")
	evalSeed = flag.Uint64("scanner.seed", 7, "seed of the evaluation stream")
)

// scannerKey is the deterministic scanner key of the tests.
var scannerKey = ed25519.NewKeyFromSeed(seed("scanner test key"))

// newScanner opens a scanner over l with a local sequencer.
func newScanner(t testing.TB, l *ledger.Log, trust *keys.Keyring, mod func(*scanner.Options)) (*scanner.Scanner, *ledger.LocalSequencer) {
	t.Helper()
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seq.Close() })
	sg, err := keys.NewSigner(scannerKey)
	if err != nil {
		t.Fatal(err)
	}
	// The test logs are written straight into the ledger, past the append
	// path's signature checks (synth forges signatures on purpose), so the
	// tests re-verify them like an auditor would.
	o := scanner.Options{Signer: sg, Trust: trust, Logger: discard}
	o.Integrity.VerifySignatures = true
	if mod != nil {
		mod(&o)
	}
	s, err := scanner.New(l, seq, o)
	if err != nil {
		t.Fatal(err)
	}
	return s, seq
}

type score struct{ tp, fp, found, total int }

// evaluate scores findings against labels per finding kind: a finding is
// a true positive when it cites an entry of an anomaly labelled with its
// kind; an anomaly is found when a finding of one of its kinds cites one
// of its entries.
func evaluate(labels []synth.Label, fs []scanner.StoredFinding) (map[string]*score, []string) {
	byEntry := map[string]map[uint64][]int{} // kind → entry → labels
	for i, lb := range labels {
		for _, k := range lb.Kinds {
			if byEntry[k] == nil {
				byEntry[k] = map[uint64][]int{}
			}
			for _, e := range lb.Entries {
				byEntry[k][e] = append(byEntry[k][e], i)
			}
		}
	}
	sc := map[string]*score{}
	get := func(k string) *score {
		if sc[k] == nil {
			sc[k] = &score{}
		}
		return sc[k]
	}
	found := map[[2]string]bool{}
	var fps []string
	for _, f := range fs {
		k := f.Finding.Kind
		hit := false
		for _, e := range f.Finding.Entries {
			for _, li := range byEntry[k][e] {
				hit = true
				found[[2]string{k, fmt.Sprint(li)}] = true
			}
		}
		if hit {
			get(k).tp++
		} else {
			get(k).fp++
			fps = append(fps, fmt.Sprintf("%s %s: %s", k, f.Finding.Subject, f.Finding.Message))
		}
	}
	for i, lb := range labels {
		for _, k := range lb.Kinds {
			s := get(k)
			s.total++
			if found[[2]string{k, fmt.Sprint(i)}] {
				s.found++
			}
		}
	}
	return sc, fps
}

func (s *score) precision() float64 {
	if s.tp+s.fp == 0 {
		return 1
	}
	return float64(s.tp) / float64(s.tp+s.fp)
}

func (s *score) recall() float64 {
	if s.total == 0 {
		return 1
	}
	return float64(s.found) / float64(s.total)
}

// TestEvaluation runs the scanner over the labelled synthetic stream and
// requires precision and recall ≥ 0.9 for every finding kind (and so every
// detector).
func TestEvaluation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a synthetic log")
	}
	l := openLog(t)
	t0 := time.Now()
	st, err := synth.Generate(l, synth.Config{Jobs: *evalJobs, Days: *evalDays, Seed: *evalSeed})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newScanner(t, l, st.Trust, nil)
	t1 := time.Now()
	pass, err := s.Scan(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d entries in %v; scanned in %v (%.0f entries/s, signatures verified)", st.Entries, t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond), float64(st.Entries)/time.Since(t1).Seconds())
	if pass.To != st.Entries {
		t.Fatalf("scanned to %d, log has %d", pass.To, st.Entries)
	}
	sc, fps := evaluate(st.Labels, pass.Findings)
	kinds := slices.Clone(synth.Kinds)
	for k := range sc {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "stream: %d entries, %d jobs, %d days, %d anomalies; %d findings\n", st.Entries, *evalJobs, *evalDays, len(st.Labels), len(pass.Findings))
	fmt.Fprintf(&b, "%-26s %6s %6s %6s %6s %9s %7s\n", "kind", "TP", "FP", "found", "total", "precision", "recall")
	det := map[string]*score{}
	for _, k := range kinds {
		s := sc[k]
		if s == nil {
			s = &score{}
		}
		fmt.Fprintf(&b, "%-26s %6d %6d %6d %6d %9.3f %7.3f\n", k, s.tp, s.fp, s.found, s.total, s.precision(), s.recall())
		d := strings.SplitN(k, ".", 2)[0]
		if det[d] == nil {
			det[d] = &score{}
		}
		det[d].tp += s.tp
		det[d].fp += s.fp
		det[d].found += s.found
		det[d].total += s.total
		if s.precision() < 0.9 || s.recall() < 0.9 {
			t.Errorf("%s: precision %.3f recall %.3f, want both ≥ 0.9", k, s.precision(), s.recall())
		}
	}
	fmt.Fprintf(&b, "per detector:\n")
	for _, d := range sortedMapKeys(det) {
		s := det[d]
		fmt.Fprintf(&b, "%-26s %6d %6d %6d %6d %9.3f %7.3f\n", d, s.tp, s.fp, s.found, s.total, s.precision(), s.recall())
	}
	t.Log("\n" + b.String())
	for i, fp := range fps {
		if i == 20 {
			t.Logf("… %d more false positives", len(fps)-20)
			break
		}
		t.Logf("false positive: %s", fp)
	}
}

func sortedMapKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
