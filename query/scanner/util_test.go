package scanner_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
)

const testOrigin = "test.provledger/scanner"

var (
	testLogKey = ed25519.NewKeyFromSeed(seed("scanner test log key"))
	discard    = slog.New(slog.NewTextHandler(io.Discard, nil))
)

func seed(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// openLog opens a new ledger in a temporary directory (no indexer).
func openLog(t testing.TB) *ledger.Log {
	t.Helper()
	return openLogDir(t, filepath.Join(t.TempDir(), "ledger"))
}

// openLogDir opens (or reopens) the ledger in dir; the caller closes it
// or leaves it to the cleanup.
func openLogDir(t testing.TB, dir string) *ledger.Log {
	t.Helper()
	s, err := checkpoint.NewSigner(testOrigin, testLogKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(dir, ledger.Options{Origin: testOrigin, Signer: s, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustSigner(t testing.TB) signature.Signer {
	t.Helper()
	s, err := keys.NewSigner(scannerKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
