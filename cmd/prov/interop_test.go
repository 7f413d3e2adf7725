package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"os"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	fproof "github.com/transparency-dev/formats/proof"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/cosignature"
)

// TestBundleInterop: a cosigned bundle is read by transparency-dev/formats'
// tlog-proof parser, its inclusion proof checks with x/mod/sumdb/tlog, and
// its checkpoint opens with x/mod's note.Open with the log key and formats'
// cosignature verifier.
func TestBundleInterop(t *testing.T) {
	b, err := os.ReadFile("testdata/bundle/entry3-cosigned.tlog-proof")
	if err != nil {
		t.Fatal(err)
	}
	var p fproof.TLogProof
	if err := p.Unmarshal(b); err != nil {
		t.Fatalf("formats/proof: %v", err)
	}
	seed := sha256.Sum256([]byte("prov audit test log key"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	lv, _ := checkpoint.NewVerifier(fixtureOrigin, priv.Public().(ed25519.PublicKey))
	wkey, _ := cosignature.VerifierKey("witness.test/w1", priv.Public().(ed25519.PublicKey))
	wv, err := fnote.NewVerifierForCosignatureV1(wkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(p.Checkpoint, note.VerifierList(lv, wv))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("note.Open: %v", err)
	}
	cp, err := checkpoint.ParseBody([]byte(n.Text))
	if err != nil {
		t.Fatal(err)
	}
	rp := make(tlog.RecordProof, len(p.Hashes))
	for i, h := range p.Hashes {
		rp[i] = tlog.Hash(h)
	}
	if err := tlog.CheckRecord(rp, int64(cp.Size), tlog.Hash(cp.Hash), int64(p.Index), tlog.RecordHash(p.ExtraData)); err != nil {
		t.Fatalf("tlog.CheckRecord: %v", err)
	}
	if !strings.HasPrefix(string(b), "c2sp.org/tlog-proof@v1\nextra ") {
		t.Fatal("header")
	}
}
