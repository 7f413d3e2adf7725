package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/cosignature"
	"github.com/provledger/provledger/crypto/tlogproof"
)

func fuzzLogKey() ed25519.PublicKey {
	seed := sha256.Sum256([]byte("prov audit test log key"))
	return ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
}

// FuzzCheckEvidence: the evidence decoder never panics, and never proves
// anything about checkpoints the log key did not sign.
func FuzzCheckEvidence(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/evidence/*.json")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Add([]byte(`{"format":"provledger-evidence/v1"}`))
	pub := fuzzLogKey()
	v, _ := checkpoint.NewVerifier(fixtureOrigin, pub)
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, _, err := checkEvidence(pub, "", b)
		if err != nil {
			return
		}
		for _, n := range []string{ev.OldCheckpoint, ev.NewCheckpoint} {
			if _, err := checkpoint.Open([]byte(n), v); err != nil {
				t.Fatalf("proven with a checkpoint the log did not sign: %v", err)
			}
		}
	})
}

// FuzzBundle: parsing a bundle and checking its proof and cosignatures
// never panics; whatever verifies re-marshals to the same bytes.
func FuzzBundle(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bundle/*")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\nx\n1\nAAAA\n\n— x AAAAAAAA\n"))
	pub := fuzzLogKey()
	w, _ := cosignature.NewVerifier("witness.test/w1", pub)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := tlogproof.Parse(b)
		if err != nil {
			return
		}
		cosignature.Verify(p.Checkpoint, []*cosignature.Verifier{w})
		v, err := client.VerifierForCheckpoint(pub, "", p.Checkpoint)
		if err != nil {
			return
		}
		if _, _, err := client.VerifyProof(p, v); err == nil && string(p.Marshal()) != string(b) {
			t.Fatal("a verified bundle does not re-marshal to itself")
		}
	})
}

// FuzzSplitBundle: the entry-bundle decoder never panics, and what it
// accepts re-encodes to the same bytes.
func FuzzSplitBundle(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c', 0, 0}, 2)
	f.Add([]byte{0, 5, 'a'}, 1)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 256 {
			return
		}
		recs, err := splitBundle(b, n)
		if err != nil {
			return
		}
		var out []byte
		for _, r := range recs {
			out = append(out, byte(len(r)>>8), byte(len(r)))
			out = append(out, r...)
		}
		if string(out) != string(b) || len(recs) != n {
			t.Fatalf("round trip %x -> %x", b, out)
		}
	})
}
