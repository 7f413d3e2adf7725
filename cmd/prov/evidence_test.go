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
	htm, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	for _, want := range []string{revName, idx.Entries[0].Bundle, "## Sources", "## Jobs", "## Code versions", "## Signers", "## Costs", "## Scanner findings", "## Runs", "| 0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a01 | airflow-prod daily_orders.extract | START |", idx.Entries[0].Signers[0]} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, want := range []string{"<h2>Sources</h2>", "<h2>Code versions</h2>", "<h2>Costs</h2>", `<a href="` + idx.Entries[0].Bundle + `">`} {
		if !strings.Contains(string(htm), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("report.md:\n%s\nreport.html:\n%s", md, htm)
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
		{"report.md leaves out a source", "report.md", func(b []byte) []byte {
			i := strings.Index(string(b), "## Sources\n\n- ")
			j := strings.Index(string(b)[i+13:], "\n")
			return append(b[:i+12:i+12], b[i+13+j+1:]...)
		}},
		{"report.html names another signer", "report.html", func(b []byte) []byte {
			return []byte(strings.Replace(string(b), idx.Entries[0].Signers[0], strings.Repeat("0", 64), 1))
		}},
		{"answer.json loses an edge", "answer.json", func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"rel": "input"`, `"rel": "output"`, 1))
		}},
		{"answer.json swapped for nonsense", "answer.json", func([]byte) []byte { return []byte(`{"format":1,"nonsense":true}`) }},
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

// TestEvidencePackOfVersion writes the pack of one dataset version (the
// DATASET@version form: version NS NAME VERSION) and re-checks it offline.
func TestEvidencePackOfVersion(t *testing.T) {
	ts := startQueryServer(t)
	keyDir := appendShop(t, ts)
	dir := filepath.Join(t.TempDir(), "pack")
	const modelVersion = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	r := mustProv(t, ts.args("evidence", "version", "s3://models", "churn/model.onnx", modelVersion, "--out", dir)...)
	if !strings.Contains(r.stdout, "wrote the evidence pack") {
		t.Fatalf("evidence: %s", r.stdout)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "churn/model.onnx") {
		t.Errorf("report.md does not name the dataset:\n%s", md)
	}
	off := prov(t, "", "--server", "127.0.0.1:1", "--log-key", ts.logPub, "verify", "--evidence", dir, "--trust", filepath.Join(keyDir, "signer.pub"))
	if off.code != 0 {
		t.Fatalf("verify --evidence: %d %s %s", off.code, off.stdout, off.stderr)
	}
	// An unknown version is an error that names it, and writes nothing.
	bad := filepath.Join(t.TempDir(), "bad")
	if r := prov(t, "", ts.args("evidence", "version", "s3://models", "churn/model.onnx", "sha256:00", "--out", bad)...); r.code == 0 {
		t.Fatalf("evidence of an unknown version succeeded: %s", r.stdout)
	}
}
