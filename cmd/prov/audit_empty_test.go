package main

import (
	"path/filepath"
	"testing"
)

func TestAuditEmptyLog(t *testing.T) {
	f := newLogFixture(t, t.TempDir())
	state := filepath.Join(t.TempDir(), "state")
	for range 2 {
		if code, rep := auditJSON(t, f.logPub, f.url, state, "--trust", f.trust); code != 0 || rep.TreeSize != 0 {
			t.Fatalf("empty log: exit %d %+v", code, rep)
		}
	}
	f.append(t, 3, 3, "")
	if code, rep := auditJSON(t, f.logPub, f.url, state); code != 0 || rep.Stats.Entries != 3 {
		t.Fatalf("after the first entries: exit %d %+v", code, rep)
	}
	if code, _ := monitorOnce(t, f, f.url, filepath.Join(t.TempDir(), "m"), filepath.Join(t.TempDir(), "e")); code != 0 {
		t.Fatal("monitor")
	}
}
