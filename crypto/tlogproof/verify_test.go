package tlogproof

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/proof"
)

// mth is the RFC 6962 Merkle tree hash of leaves.
func mth(leaves [][32]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return proof.EmptyRoot()
	case 1:
		return leaves[0]
	}
	k := split(len(leaves))
	return proof.HashChildren(mth(leaves[:k]), mth(leaves[k:]))
}

func split(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

// path is the RFC 6962 audit path of leaf m.
func path(m int, leaves [][32]byte) [][]byte {
	if len(leaves) <= 1 {
		return nil
	}
	k := split(len(leaves))
	if m < k {
		h := mth(leaves[k:])
		return append(path(m, leaves[:k]), h[:])
	}
	h := mth(leaves[:k])
	return append(path(m-k, leaves[k:]), h[:])
}

type fixture struct {
	records [][]byte
	leaves  [][32]byte
	signed  []byte
	pub     ed25519.PublicKey
	priv    ed25519.PrivateKey
}

const origin = "example.test/log"

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	f := &fixture{}
	for i := range n {
		r := []byte(fmt.Sprintf("record %d", i))
		f.records = append(f.records, r)
		f.leaves = append(f.leaves, proof.LeafHash(r))
	}
	seed := make([]byte, ed25519.SeedSize)
	f.priv = ed25519.NewKeyFromSeed(seed)
	f.pub = f.priv.Public().(ed25519.PublicKey)
	s, err := checkpoint.NewSigner(origin, f.priv)
	if err != nil {
		t.Fatal(err)
	}
	f.signed, err = checkpoint.Sign(s, checkpoint.Checkpoint{Origin: origin, Size: uint64(n), Hash: mth(f.leaves)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) proof(i int) *Proof {
	return &Proof{Extra: f.records[i], Index: uint64(i), Hashes: path(i, f.leaves), Checkpoint: f.signed}
}

func leafOfExtra(extra []byte) ([32]byte, error) {
	if len(extra) == 0 {
		return [32]byte{}, errors.New("no extra")
	}
	return proof.LeafHash(extra), nil
}

func TestVerify(t *testing.T) {
	f := newFixture(t, 7)
	v, err := checkpoint.NewVerifier(origin, f.pub)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		p := f.proof(i)
		// Through the text form, as a saved receipt would be.
		q, err := Parse(p.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		cp, err := Verify(q, v, leafOfExtra)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if cp.Size != 7 || cp.Origin != origin {
			t.Fatalf("checkpoint %+v", cp)
		}
	}

	otherPub, _, _ := ed25519.GenerateKey(nil)
	wrongKey, _ := checkpoint.NewVerifier(origin, otherPub)
	wrongName, _ := checkpoint.NewVerifier("other.test/log", f.pub)
	for _, tc := range []struct {
		name   string
		mutate func(p *Proof)
		v      note.Verifier
	}{
		{"extra changed", func(p *Proof) { p.Extra = []byte("record 4") }, v},
		{"extra missing", func(p *Proof) { p.Extra = nil }, v},
		{"index changed", func(p *Proof) { p.Index = 2 }, v},
		{"index beyond size", func(p *Proof) { p.Index = 7 }, v},
		{"hash flipped", func(p *Proof) { p.Hashes[0] = append([]byte{}, p.Hashes[0]...); p.Hashes[0][0] ^= 1 }, v},
		{"hash dropped", func(p *Proof) { p.Hashes = p.Hashes[1:] }, v},
		{"hash added", func(p *Proof) { p.Hashes = append(p.Hashes, make([]byte, 32)) }, v},
		{"checkpoint size changed", func(p *Proof) {
			p.Checkpoint = []byte(strings.Replace(string(p.Checkpoint), "\n7\n", "\n8\n", 1))
		}, v},
		{"wrong key", func(p *Proof) {}, wrongKey},
		{"wrong origin", func(p *Proof) {}, wrongName},
		{"no key", func(p *Proof) {}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := f.proof(3)
			tc.mutate(p)
			if _, err := Verify(p, tc.v, leafOfExtra); err == nil {
				t.Fatal("Verify accepted a bad proof")
			}
		})
	}
}
