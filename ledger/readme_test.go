package ledger_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMESnippetCompiles type-checks the Go snippet of README.md's
// "Using the ledger as a library" with go build, so the README cannot drift
// from the API. The snippet is placed, through a build overlay, in a
// package that does not exist on disk (nothing is written to the tree),
// after declarations of the names it takes as given.
func TestREADMESnippetCompiles(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	snippet := goBlockAfter(t, string(readme), "## Using the ledger as a library")
	src := `package main

import (
	"context"
	"crypto/ed25519"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/ledger"
)

func main() {
	var (
		seed      = make([]byte, ed25519.SeedSize)
		dir       = "data"
		ctx       = context.Background()
		env       = &envelope.Envelope{PayloadType: "application/vnd.in-toto+json"}
		signerIDs [][32]byte
	)
` + snippet + `
	_, _, _, _ = l, seq, receipts, err
}
`
	tmp := t.TempDir()
	file := filepath.Join(tmp, "main.go")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	pkgDir := filepath.Join(wd, "internal", "readmesnippet")
	overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(pkgDir, "main.go"): file}})
	overlayPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(overlayPath, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-overlay", overlayPath, "-o", os.DevNull, "./internal/readmesnippet")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("README.md's library snippet does not compile against the API (%v):\n%s\nthe program checked:\n%s", err, &out, src)
	}
}

// goBlockAfter returns the body of the first ```go block after heading.
func goBlockAfter(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, heading)
	if i < 0 {
		t.Fatalf("README.md has no %q section", heading)
	}
	rest := doc[i:]
	start := strings.Index(rest, "```go\n")
	if start < 0 {
		t.Fatalf("README.md's %q section has no ```go block", heading)
	}
	rest = rest[start+len("```go\n"):]
	end := strings.Index(rest, "```")
	if end < 0 {
		t.Fatalf("README.md's %q go block is not closed", heading)
	}
	return rest[:end]
}
