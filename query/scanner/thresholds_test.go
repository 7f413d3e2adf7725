package scanner_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/scanner"
)

// TestPolicyThresholds: the detectors use the scanner thresholds of the
// policy in force at each entry: a policy entry changing a threshold
// changes the findings after its index and not before, a later entry
// changes only the members it sets, and a replacing policy falls back to
// the Options. The scan is chunked one entry at a time and restarted
// after every entry (the thresholds are part of the stored state), and
// gives the findings of one pass.
func TestPolicyThresholds(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	// Each entry: a run event whose eventTime is off its integration time
	// (t0) by off, or a policy entry.
	type step struct {
		off    time.Duration
		policy string
	}
	steps := []step{
		{off: -30 * time.Hour}, // 0: behind by more than the default 24h
		{off: 3 * time.Minute}, // 1: ahead by less than the default 5m
		{policy: `"scanner": {"maxClockLag": "48h", "maxClockLead": "1m"}`}, // 2
		{off: -30 * time.Hour},                                 // 3: within 48h now
		{off: 3 * time.Minute},                                 // 4: beyond 1m now
		{off: -50 * time.Hour},                                 // 5: beyond 48h
		{policy: `"scanner": {"maxClockLead": "10m"}`},         // 6: the lag limit stays 48h
		{off: -30 * time.Hour},                                 // 7
		{off: 3 * time.Minute},                                 // 8
		{policy: `"replace": true, "scanner": {"volumeK": 3}`}, // 9: back to the Options' time limits
		{off: -30 * time.Hour},                                 // 10
		{off: 3 * time.Minute},                                 // 11
		{policy: `"scanner": {"maxClockLag": "1h", "freshnessFactor": 3}`}, // 12
		{off: -2 * time.Hour}, // 13
	}
	want := []string{"time.skew@[0]", "time.skew@[4]", "time.skew@[5]", "time.skew@[10]", "time.skew@[13]"}

	priv := testLogKey
	sg, err := keys.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := keys.IDOf(priv.Public())
	const ol = "application/vnd.openlineage.run-event+json"
	var entries []ledger.Entry
	for i, st := range steps {
		typ, ns, body := ol, "team", ""
		if st.policy != "" {
			typ, ns, body = policy.PayloadType, "provledger.policy", `{"policyVersion": 1, `+st.policy+`}`
		} else {
			body = fmt.Sprintf(`{"eventType":"COMPLETE","eventTime":%q,"producer":"https://example.test","run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a%02d"},"job":{"namespace":"team","name":"j"},"inputs":[{"namespace":"s3://x","name":"in"}]}`,
				t0.Add(st.off).Format(time.RFC3339), i)
		}
		env, err := envelope.Sign(typ, []byte(body), sg)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, ledger.Entry{Namespace: ns, PayloadType: typ, Envelope: env.Marshal(), Signers: [][32]byte{id}})
	}
	l := openLogDir(t, filepath.Join(t.TempDir(), "ledger"))
	if _, err := l.Apply(ledger.Batch{Time: t0, Entries: entries}, ledger.ApplyOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	n := uint64(len(steps))
	skews := func(fs []scanner.StoredFinding) []string {
		var out []string
		for _, f := range fs {
			if f.Finding.Detector == "time" {
				out = append(out, fmt.Sprintf("%s@%v", f.Finding.Kind, f.Finding.Entries))
			}
		}
		return out
	}
	only := func(o *scanner.Options) { o.Lineage.Disabled, o.GitOps.Disabled = true, true }

	s, seq := newScanner(t, l, nil, only)
	p, err := s.Scan(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	if got := skews(p.Findings); !slices.Equal(got, want) {
		t.Fatalf("one pass: skew findings\n got %v\nwant %v", got, want)
	}
	one := payloads(t, p.Findings)

	// The same pass with the background prefetch on (it is off while
	// signatures are re-verified) and small chunks: a policy entry ends a
	// chunk while the next one is read and prepared. Under -race this
	// caught the prefetch reading the options a policy entry replaced.
	l2 := openLogDir(t, filepath.Join(t.TempDir(), "ledger2"))
	if _, err := l2.Apply(ledger.Batch{Time: t0, Entries: entries}, ledger.ApplyOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	s2, _ := newScanner(t, l2, nil, func(o *scanner.Options) {
		only(o)
		o.Integrity.VerifySignatures, o.ChunkSize = false, 3
	})
	p2, err := s2.Scan(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	if got := skews(p2.Findings); !slices.Equal(got, want) {
		t.Fatalf("with prefetch: skew findings\n got %v\nwant %v", got, want)
	}

	// Entry by entry, a new scanner from the stored state each time.
	if err := l.DB().DeleteRange([]byte{'s'}, []byte{'t'}, nil); err != nil {
		t.Fatal(err)
	}
	o := s.Options()
	o.ChunkSize = 1
	var got []string
	for to := uint64(1); to <= n; to++ {
		sc, err := scanner.New(l, seq, o)
		if err != nil {
			t.Fatal(err)
		}
		p, err := sc.Scan(context.Background(), to)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, payloads(t, p.Findings)...)
	}
	if !slices.Equal(got, one) {
		t.Fatalf("restarted after every entry: %d findings, one pass %d; first difference at %d", len(got), len(one), firstDiff(got, one))
	}
	// The limits cited are those in force.
	for _, f := range p.Findings {
		if f.Finding.Entries[0] == 4 && !strings.Contains(f.Finding.Message, "limit 1m0s") {
			t.Fatalf("entry 4's finding does not cite the policy's limit: %s", f.Finding.Message)
		}
	}
}

// TestPolicyRunWindow: an hourly check judges runs by the run window of
// the policy in force when it runs: a run 3 h old is not late before the
// policy entry setting runWindow 2h and is reported at the first check
// after it; without the entry nothing is late within 24 h.
func TestPolicyRunWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	sg, err := keys.NewSigner(testLogKey)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := keys.IDOf(testLogKey.Public())
	entry := func(typ, ns, body string) ledger.Entry {
		env, err := envelope.Sign(typ, []byte(body), sg)
		if err != nil {
			t.Fatal(err)
		}
		return ledger.Entry{Namespace: ns, PayloadType: typ, Envelope: env.Marshal(), Signers: [][32]byte{id}}
	}
	const ol = "application/vnd.openlineage.run-event+json"
	start := func(run int, at time.Time) ledger.Entry {
		return entry(ol, "team", fmt.Sprintf(`{"eventType":"START","eventTime":%q,"producer":"https://example.test","run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a%02d"},"job":{"namespace":"team","name":"j%d"},"inputs":[{"namespace":"s3://x","name":"in"}]}`, at.Format(time.RFC3339), run, run))
	}
	policyEntry := entry(policy.PayloadType, "provledger.policy", `{"policyVersion": 1, "scanner": {"runWindow": "2h"}}`)
	batches := []ledger.Batch{
		{Time: t0, Entries: []ledger.Entry{start(0, t0)}},                                                  // 0: run 0
		{Time: t0.Add(3 * time.Hour), Entries: []ledger.Entry{start(1, t0.Add(3*time.Hour)), policyEntry}}, // 1: run 1 (run 0 is 3 h old: not late under 24h), 2: runWindow 2h
		{Time: t0.Add(4 * time.Hour), Entries: []ledger.Entry{start(2, t0.Add(4*time.Hour))}},              // 3: check: run 0 late
		{Time: t0.Add(7 * time.Hour), Entries: []ledger.Entry{start(3, t0.Add(7*time.Hour))}},              // 4: check: runs 1 and 2 late
	}
	for _, withPolicy := range []bool{true, false} {
		l := openLogDir(t, filepath.Join(t.TempDir(), "ledger"))
		for _, b := range batches {
			if !withPolicy {
				b.Entries = slices.DeleteFunc(slices.Clone(b.Entries), func(e ledger.Entry) bool { return e.PayloadType == policy.PayloadType })
			}
			if _, err := l.Apply(b, ledger.ApplyOptions{Sync: true}); err != nil {
				t.Fatal(err)
			}
		}
		s, _ := newScanner(t, l, nil, func(o *scanner.Options) { o.Time.Disabled, o.GitOps.Disabled = true, true })
		p, err := s.Scan(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range p.Findings {
			if f.Finding.Kind == "lineage.runIncomplete" {
				got = append(got, fmt.Sprintf("%s@%s", f.Finding.Subject[len(f.Finding.Subject)-2:], f.Finding.Time.Sub(t0)))
			}
		}
		want := []string{"00@4h0m0s", "01@7h0m0s", "02@7h0m0s"}
		if !withPolicy {
			want = nil
		}
		if !slices.Equal(got, want) {
			t.Fatalf("policy %v: late runs %v, want %v", withPolicy, got, want)
		}
	}
}
