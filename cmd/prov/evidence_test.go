package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvidencePack writes the evidence pack of a dataset's upstream
// lineage and re-checks it offline; tampered packs fail.
func TestEvidencePack(t *testing.T) {
	ts := startQueryServer(t)
	keyDir := appendShop(t, ts)
	dir := filepath.Join(t.TempDir(), "pack")
	r := mustProv(t, ts.args("evidence", "dataset", revNS, revName, "--out", dir)...)
	if !strings.Contains(r.stdout, "wrote the evidence pack") {
		t.Fatalf("evidence: %s", r.stdout)
	}
	for _, f := range []string{"index.json", "answer.json", "report.md", "report.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	var idx packIndex
	b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Entries) == 0 {
		t.Fatalf("index.json: %v %d entries", err, len(idx.Entries))
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(md), revName) || !strings.Contains(string(md), idx.Entries[0].Bundle) {
		t.Fatalf("report.md:\n%s", md)
	}
	off := func(args ...string) result {
		return prov(t, "", append([]string{"--server", "127.0.0.1:1", "--log-key", ts.logPub}, args...)...)
	}
	if r := off("verify", "--evidence", dir, "--trust", filepath.Join(keyDir, "signer.pub")); r.code != 0 || !strings.Contains(r.stdout, "DSSE signature(s) verified") {
		t.Fatalf("verify --evidence: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// A pack written into a non-empty directory is refused.
	if r := prov(t, "", ts.args("evidence", "dataset", revNS, revName, "--out", dir)...); r.code != exitUsage {
		t.Fatalf("non-empty --out: exit %d", r.code)
	}
	// Tampering: an envelope, a bundle, the index.
	e0 := idx.Entries[0]
	for _, tc := range []struct {
		name string
		file string
		edit func([]byte) []byte
	}{
		{"envelope changed", e0.Envelope, func(b []byte) []byte { return []byte(strings.Replace(string(b), "payload", "payload ", 1)) }},
		{"bundle index changed", e0.Bundle, func(b []byte) []byte {
			return []byte(strings.Replace(string(b), "\nindex ", "\nindex 9", 1))
		}},
		{"index lies about a namespace", "index.json", func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"namespace": "airflow-prod"`, `"namespace": "other"`, 1))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.file)
			orig, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(p, orig, 0o644)
			os.WriteFile(p, tc.edit(orig), 0o644)
			if r := off("verify", "--evidence", dir); r.code != exitFailed {
				t.Fatalf("tampered pack: exit %d", r.code)
			}
		})
	}
}
