package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func auditJSON(t *testing.T, logPub, url, state string, extra ...string) (int, auditReport) {
	t.Helper()
	args := append([]string{"--log-key", logPub, "--json", "audit", "--url", url, "--state", state}, extra...)
	r := prov(t, "", args...)
	var rep auditReport
	if r.stdout != "" {
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("audit --json output: %v\n%s", err, r.stdout)
		}
	}
	return r.code, rep
}

func TestAuditCleanFullAndIncremental(t *testing.T) {
	f := newLogFixture(t, t.TempDir())
	f.append(t, 700, 100, "")
	state := filepath.Join(t.TempDir(), "state")
	code, rep := auditJSON(t, f.logPub, f.url, state, "--trust", f.trust)
	if code != 0 || !rep.OK || rep.Mode != "full" || rep.Stats.Entries != 700 || rep.Stats.SigsVerified != 700 || !rep.FirstAudit {
		t.Fatalf("first audit: exit %d %+v", code, rep)
	}
	f.append(t, 333, 111, "")
	code, rep = auditJSON(t, f.logPub, f.url, state, "--trust", f.trust)
	if code != 0 || rep.Mode != "incremental" || rep.AuditedFrom != 700 || rep.Stats.Entries != 333 || rep.TreeSize != 1033 {
		t.Fatalf("incremental audit: exit %d %+v", code, rep)
	}
	if !strings.Contains(rep.Consistency, "size 700") {
		t.Fatalf("consistency: %q", rep.Consistency)
	}
	code, rep = auditJSON(t, f.logPub, f.url, state, "--full")
	if code != 0 || rep.Mode != "full" || rep.Stats.Entries != 1033 || rep.SigsChecked {
		t.Fatalf("full audit: exit %d %+v", code, rep)
	}
	// Nothing new: an incremental audit checks the checkpoint only.
	code, rep = auditJSON(t, f.logPub, f.url, state)
	if code != 0 || rep.Stats.Entries != 0 {
		t.Fatalf("audit with nothing new: exit %d %+v", code, rep)
	}
	// Text output.
	r := mustProv(t, "--log-key", f.logPub, "audit", "--url", f.url, "--state", state, "--full", "--trust", f.trust)
	if !strings.HasPrefix(r.stdout, "audit OK:") || !strings.Contains(r.stdout, "full audit of 1033") || !strings.Contains(r.stdout, "1033 signature(s) verified") {
		t.Fatalf("text output: %s", r.stdout)
	}
}

func TestAuditExitCodes(t *testing.T) {
	f := newLogFixture(t, t.TempDir())
	f.append(t, 10, 10, "")
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no log key", []string{"audit", "--url", f.url, "--state", filepath.Join(dir, "a")}, exitUsage},
		{"bad url", []string{"--log-key", f.logPub, "audit", "--url", "ftp://x", "--state", filepath.Join(dir, "b")}, exitUsage},
		{"unreachable", []string{"--log-key", f.logPub, "--timeout", "2s", "audit", "--url", "http://127.0.0.1:1", "--state", filepath.Join(dir, "c")}, exitUnreachable},
		{"argument", []string{"--log-key", f.logPub, "audit", "--url", f.url, "x"}, exitUsage},
		{"wrong log key", []string{"--log-key", f.trust, "audit", "--url", f.url, "--state", filepath.Join(dir, "d")}, exitFailed},
		{"ok", []string{"--log-key", f.logPub, "audit", "--url", f.url, "--state", filepath.Join(dir, "e")}, exitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := prov(t, "", tc.args...); r.code != tc.code {
				t.Fatalf("exit %d, want %d", r.code, tc.code)
			}
		})
	}
}

// TestAuditTamper tampers with a real ledger's stored data (or serves
// another history signed with the right key) and checks that the audit
// fails with exit 1, names the problem and gives the first bad index.
func TestAuditTamper(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup builds the log the auditor sees; before, if set, is
		// audited first (its state carried into the audit of the other).
		setup     func(t *testing.T) (before, after *logFixture)
		full      bool
		wantKind  string
		wantIndex int64 // -1: no index
	}{
		{"flip a byte in a stored entry", func(t *testing.T) (*logFixture, *logFixture) {
			f := newLogFixture(t, t.TempDir())
			f.append(t, 600, 128, "")
			f.flipByte(t, 300)
			return nil, f
		}, true, kindModified, 300},
		{"drop an entry", func(t *testing.T) (*logFixture, *logFixture) {
			f := newLogFixture(t, t.TempDir())
			f.append(t, 600, 128, "")
			f.dropEntry(t, 257)
			return nil, f
		}, true, kindDropped, 257},
		{"swap two entries", func(t *testing.T) (*logFixture, *logFixture) {
			f := newLogFixture(t, t.TempDir())
			f.append(t, 600, 128, "")
			f.swapEntries(t, 10, 520)
			return nil, f
		}, true, kindSwapped, 10},
		{"tampered entry added after the last audit (incremental)", func(t *testing.T) (*logFixture, *logFixture) {
			f := newLogFixture(t, t.TempDir())
			f.append(t, 300, 128, "")
			return f, f
		}, false, kindModified, 450},
		{"forked checkpoint (same size, other root)", func(t *testing.T) (*logFixture, *logFixture) {
			a := newLogFixture(t, t.TempDir())
			a.append(t, 600, 128, "")
			b := newLogFixture(t, t.TempDir())
			b.append(t, 300, 128, "")
			b.append(t, 300, 128, "fork")
			return a, b
		}, false, kindFork, -1},
		{"stale checkpoint after a newer one", func(t *testing.T) (*logFixture, *logFixture) {
			a := newLogFixture(t, t.TempDir())
			a.append(t, 600, 100, "")
			b := newLogFixture(t, t.TempDir())
			b.append(t, 300, 100, "")
			return a, b
		}, false, kindRollback, -1},
		{"rewritten tree re-signed with the right key", func(t *testing.T) (*logFixture, *logFixture) {
			a := newLogFixture(t, t.TempDir())
			a.append(t, 600, 100, "")
			b := newLogFixture(t, t.TempDir())
			b.append(t, 300, 100, "")
			b.append(t, 500, 100, "rewritten")
			return a, b
		}, true, kindInconsistent, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, after := tc.setup(t)
			state := filepath.Join(t.TempDir(), "state")
			if before != nil {
				if code, rep := auditJSON(t, before.logPub, before.url, state, "--trust", before.trust); code != 0 {
					t.Fatalf("audit before tampering: exit %d %+v", code, rep)
				}
				if before == after { // grow, then tamper with a new entry
					after.append(t, 300, 128, "")
					after.flipByte(t, 450)
				}
			}
			saved, _ := os.ReadFile(state)
			args := []string{"--trust", after.trust}
			if tc.full {
				args = append(args, "--full")
			}
			code, rep := auditJSON(t, after.logPub, after.url, state, args...)
			if code != exitFailed || rep.OK {
				t.Fatalf("audit: exit %d, want %d: %+v", code, exitFailed, rep)
			}
			var kinds []string
			found := false
			for _, p := range rep.Problems {
				kinds = append(kinds, p.Kind)
				found = found || p.Kind == tc.wantKind
			}
			if !found {
				t.Fatalf("problems %v do not name %s: %+v", kinds, tc.wantKind, rep.Problems)
			}
			if tc.wantIndex >= 0 && (rep.FirstBadIndex == nil || *rep.FirstBadIndex != tc.wantIndex) {
				t.Fatalf("first bad index %v, want %d (%+v)", rep.FirstBadIndex, tc.wantIndex, rep.Problems)
			}
			if after, _ := os.ReadFile(state); string(after) != string(saved) {
				t.Fatal("a failed audit changed the state file")
			}
		})
	}
}

// TestAuditEnvelopesGRPC: --envelopes grpc reads envelopes with
// GetEntries and checks them against the records from the tiles.
func TestAuditEnvelopesGRPC(t *testing.T) {
	f := newLogFixture(t, t.TempDir())
	f.append(t, 520, 100, "")
	addr := serveGRPC(t, f)
	state := filepath.Join(t.TempDir(), "state")
	code, rep := auditJSON(t, f.logPub, f.url, state, "--full", "--trust", f.trust, "--envelopes", "grpc", "--server", addr)
	if code != 0 || rep.Stats.SigsVerified != 520 {
		t.Fatalf("audit --envelopes grpc: exit %d %+v", code, rep)
	}
	if r := prov(t, "", "--log-key", f.logPub, "audit", "--url", f.url, "--envelopes", "ftp"); r.code != exitUsage {
		t.Fatalf("bad --envelopes: exit %d", r.code)
	}
}
