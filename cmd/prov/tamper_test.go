package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/witness"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/cosignature"
)

// witnessFor starts a witness (api/witness, file state) following the
// fixture's log.
func witnessFor(t *testing.T, f *logFixture) *witness.Client {
	t.Helper()
	seed := sha256.Sum256([]byte("tamper test witness"))
	ws, err := cosignature.NewSigner("witness.test/w1", ed25519.NewKeyFromSeed(seed[:]), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := client.LoadLogKey(f.logPub)
	lv, _ := checkpoint.NewVerifier(fixtureOrigin, pub)
	s, err := witness.New(witness.Config{Signer: ws, Store: witness.FileStore{Dir: t.TempDir()}, Logs: []witness.Log{{Origin: fixtureOrigin, Verifier: lv}},
		Logger: fixtureLogger, EvidenceDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &witness.Client{URL: hs.URL}
}

// submit does what a log operator does: it sends the checkpoint served at
// url to the witness with a consistency proof built from the served tiles.
func submit(t *testing.T, wc *witness.Client, url string) error {
	t.Helper()
	src, err := newHTTPSource(url, 10*time.Second, 4)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n, err := src.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := checkpoint.ParseBody(n[:strings.Index(string(n), "\n\n")+1])
	if err != nil {
		t.Fatal(err)
	}
	_, err = wc.Cosign(ctx, n, cp.Size, 0, func(ctx context.Context, old, new uint64) ([][]byte, error) {
		_, p, err := frontier(ctx, src, cp, old)
		return p, err
	})
	return err
}

func monitorOnce(t *testing.T, f *logFixture, url, state, evidence string, extra ...string) (int, map[string]any) {
	t.Helper()
	// --trust: the new entries' envelopes (read 256 at a time from
	// /envelopes/<N>) and signatures are checked too.
	args := append([]string{"--log-key", f.logPub, "--json", "monitor", "--once", "--url", url, "--state", state, "--evidence", evidence, "--trust", f.trust}, extra...)
	r := prov(t, "", args...)
	var out map[string]any
	json.Unmarshal([]byte(r.stdout), &out)
	return r.code, out
}

// TestTamperDetection runs every tamper case of issue 6 against a real
// ledger served over HTTP and checks that prov monitor and the witness
// each detect and name it (prov audit's table is TestAuditTamper). The
// stored-data cases (flip, drop, swap) do not change any signed
// checkpoint, so a witness, which sees only checkpoints, cannot see them;
// its row is the operator's cover-up instead: re-signing a tree rebuilt
// from the tampered data, which the witness refuses.
func TestTamperDetection(t *testing.T) {
	salted := func(k uint64) func(uint64) string {
		return func(i uint64) string {
			if i == k {
				return "tampered"
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name string
		// monitorAt600 makes the monitor verify the grown log (600) before
		// the tampering; otherwise its last state is 300 and the tampered
		// entries are new to it.
		monitorAt600 bool
		// tamper changes the stored log a, or returns another log (same
		// key) that the server serves from now on.
		tamper func(t *testing.T, a *logFixture) *logFixture
		// coverUp is the history the operator submits to the witness
		// (nil: the served one).
		coverUp      func(t *testing.T) *logFixture
		monitorKind  string
		monitorEntry string // the entry the monitor must name ("" for checkpoint-level cases)
		evidenceOK   bool   // prov verify --evidence-file proves it
		witnessError string // reason (409) or sentinel text
	}{
		{name: "flip a byte in a stored entry", tamper: func(t *testing.T, a *logFixture) *logFixture { a.flipByte(t, 450); return nil },
			coverUp: func(t *testing.T) *logFixture {
				b := newLogFixture(t, t.TempDir())
				b.appendIndexes(t, seq(0, 600), salted(450))
				return b
			}, monitorKind: kindModified, monitorEntry: "entry 450:", witnessError: "fork"},
		{name: "drop an entry", tamper: func(t *testing.T, a *logFixture) *logFixture { a.dropEntry(t, 450); return nil },
			coverUp: func(t *testing.T) *logFixture {
				b := newLogFixture(t, t.TempDir())
				b.appendIndexes(t, append(seq(0, 450), seq(451, 600)...), noSalt)
				return b
			}, monitorKind: kindDropped, monitorEntry: "entry 450:", witnessError: "stale"},
		{name: "swap two entries", tamper: func(t *testing.T, a *logFixture) *logFixture { a.swapEntries(t, 400, 500); return nil },
			coverUp: func(t *testing.T) *logFixture {
				b := newLogFixture(t, t.TempDir())
				idx := seq(0, 600)
				idx[400], idx[500] = 500, 400
				b.appendIndexes(t, idx, noSalt)
				return b
			}, monitorKind: kindSwapped, monitorEntry: "entry 400:", witnessError: "fork"},
		{name: "forked checkpoint", monitorAt600: true, tamper: func(t *testing.T, a *logFixture) *logFixture {
			b := newLogFixture(t, t.TempDir())
			b.appendIndexes(t, seq(0, 600), salted(599))
			return b
		}, monitorKind: kindFork, evidenceOK: true, witnessError: "fork"},
		{name: "stale checkpoint after a newer one", monitorAt600: true, tamper: func(t *testing.T, a *logFixture) *logFixture {
			b := newLogFixture(t, t.TempDir())
			b.appendIndexes(t, seq(0, 300), noSalt)
			return b
		}, monitorKind: kindRollback, evidenceOK: true, witnessError: "stale"},
		{name: "rewritten tree re-signed with the right key", monitorAt600: true, tamper: func(t *testing.T, a *logFixture) *logFixture {
			b := newLogFixture(t, t.TempDir())
			b.appendIndexes(t, seq(0, 800), salted(100))
			return b
		}, monitorKind: kindInconsistent, evidenceOK: true, witnessError: "does not verify (422)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newLogFixture(t, t.TempDir())
			a.appendIndexes(t, seq(0, 300), noSalt)
			sw, url := newSwitch(t, a)
			dir := t.TempDir()
			state, evidence, alerted := filepath.Join(dir, "state"), filepath.Join(dir, "evidence.json"), filepath.Join(dir, "alerted")
			if code, out := monitorOnce(t, a, url, state, evidence); code != 0 {
				t.Fatalf("monitor on the honest log: exit %d %v", code, out)
			}
			a.appendIndexes(t, seq(300, 600), noSalt)
			wc := witnessFor(t, a)
			if err := submit(t, wc, url); err != nil {
				t.Fatalf("witness on the honest log: %v", err)
			}
			if tc.monitorAt600 {
				if code, out := monitorOnce(t, a, url, state, evidence); code != 0 {
					t.Fatalf("monitor on the grown log: exit %d %v", code, out)
				}
			}
			if b := tc.tamper(t, a); b != nil {
				sw.set(b.srv.Config.Handler)
			}

			// prov monitor.
			code, out := monitorOnce(t, a, url, state, evidence, "--on-alert", "echo $PROV_ALERT_KIND > "+alerted)
			if code != exitFailed || out["kind"] != tc.monitorKind {
				t.Fatalf("monitor: exit %d %v, want kind %s", code, out, tc.monitorKind)
			}
			if d, _ := out["detail"].(string); tc.monitorEntry != "" && !strings.HasPrefix(d, tc.monitorEntry) {
				t.Fatalf("monitor: detail %q does not name %q", d, tc.monitorEntry)
			}
			if b, err := os.ReadFile(alerted); err != nil || strings.TrimSpace(string(b)) != tc.monitorKind {
				t.Fatalf("--on-alert: %q %v", b, err)
			}
			r := prov(t, "", "--log-key", a.logPub, "verify", "--evidence-file", evidence)
			if (r.code == 0) != tc.evidenceOK {
				t.Fatalf("verify --evidence-file: exit %d, want proven=%v", r.code, tc.evidenceOK)
			}

			// The witness.
			target := url
			if tc.coverUp != nil {
				target = tc.coverUp(t).url
			}
			err := submit(t, wc, target)
			var ce *witness.ConflictError
			switch {
			case err == nil:
				t.Fatal("the witness cosigned")
			case errors.As(err, &ce):
				if ce.Reason != tc.witnessError {
					t.Fatalf("witness: %v, want %s", err, tc.witnessError)
				}
			case !strings.Contains(err.Error(), tc.witnessError):
				t.Fatalf("witness: %v, want %s", err, tc.witnessError)
			}
		})
	}
}

// TestMonitorFollows: without --once the monitor keeps following a
// growing log and exits 1 by itself when the log forks.
func TestMonitorFollows(t *testing.T) {
	a := newLogFixture(t, t.TempDir())
	a.appendIndexes(t, seq(0, 100), noSalt)
	sw, url := newSwitch(t, a)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errb := &syncBuf{}, &syncBuf{}
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, []string{"--log-key", a.logPub, "monitor", "--url", url, "--interval", "20ms",
			"--state", filepath.Join(dir, "state"), "--evidence", filepath.Join(dir, "ev.json")}, nil, out, errb)
	}()
	waitFor := func(what string) {
		for !strings.Contains(errb.String(), what) {
			select {
			case code := <-done:
				t.Fatalf("monitor exited %d early: %s", code, errb.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitFor("size=100")
	a.appendIndexes(t, seq(100, 250), noSalt)
	waitFor("size=250")
	b := newLogFixture(t, t.TempDir())
	b.appendIndexes(t, seq(0, 300), func(i uint64) string { return map[bool]string{true: "x"}[i == 5] })
	sw.set(b.srv.Config.Handler)
	select {
	case code := <-done:
		if code != exitFailed || !strings.Contains(errb.String(), "kind=inconsistent") {
			t.Fatalf("monitor: exit %d: %s", code, errb.String())
		}
	case <-ctx.Done():
		t.Fatal("the monitor did not notice the fork")
	}
}
