package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAppendWarnsWhatTheIndexSkips: an OpenLineage event the lineage index
// cannot read (a runId that is not a UUID) is still appended, and prov
// says on stderr that lineage answers will not include it, naming the
// field; a well-formed event gets no warning.
func TestAppendWarnsWhatTheIndexSkips(t *testing.T) {
	ts := startServer(t)
	dir := t.TempDir()
	mustProv(t, "keygen", "--out", dir)
	key := filepath.Join(dir, "signer.key")
	for _, tc := range []struct {
		file, warn string
	}{
		{"12-bad-uuid.json", "run.runId"},
		{"02-extract-start.json", ""},
	} {
		r := mustProv(t, ts.args("append", "--key", key, "--type", "openlineage", "--receipts", filepath.Join(dir, "r"),
			filepath.Join("..", "..", "query", "testdata", "shop", tc.file))...)
		if !strings.Contains(r.stdout, "index") {
			t.Fatalf("%s: not appended: %s\nstderr: %s", tc.file, r.stdout, r.stderr)
		}
		switch {
		case tc.warn == "" && r.stderr != "":
			t.Errorf("%s: unexpected stderr: %s", tc.file, r.stderr)
		case tc.warn != "" && (!strings.Contains(r.stderr, "lineage index skips it") || !strings.Contains(r.stderr, tc.warn)):
			t.Errorf("%s: stderr %q does not warn about %s", tc.file, r.stderr, tc.warn)
		}
	}
}
