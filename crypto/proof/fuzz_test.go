package proof

import (
	"bytes"
	"errors"
	"testing"
)

// splitProof turns fuzz bytes into proof elements: each element is a length
// byte (mod 40, so wrong lengths are explored) followed by that many bytes.
func splitProof(b []byte) [][]byte {
	var p [][]byte
	for len(b) > 0 && len(p) < 70 {
		n := int(b[0]) % 40
		b = b[1:]
		if n > len(b) {
			n = len(b)
		}
		p = append(p, b[:n])
		b = b[n:]
	}
	return p
}

// FuzzVerifyInclusion decodes arbitrary proofs: it must never panic, every
// error wraps ErrInvalidProof, and against a real tree only the real proof
// (or none at all) is accepted for a given leaf.
func FuzzVerifyInclusion(f *testing.F) {
	tr := buildTree(f, 21)
	f.Fuzz(func(t *testing.T, index, size uint64, raw []byte) {
		proof := splitProof(raw)
		s := size % 22
		var leaf, root [32]byte
		if s > 0 {
			root = tr.roots[s]
			leaf = tr.leafs[index%s]
		}
		err := VerifyInclusion(index, s, leaf, proof, root)
		if err != nil {
			if !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("error %v does not wrap ErrInvalidProof", err)
			}
			return
		}
		if index >= s {
			t.Fatalf("accepted index %d for size %d", index, s)
		}
		want := tr.inclusion(t, index, s)
		if len(want) != len(proof) {
			t.Fatalf("accepted a proof of length %d, want %d", len(proof), len(want))
		}
		for i := range want {
			if !bytes.Equal(want[i], proof[i]) {
				t.Fatalf("accepted a proof that differs from the real one at %d", i)
			}
		}
		// Arbitrary sizes must not panic either.
		_ = VerifyInclusion(index, size, leaf, proof, root)
	})
}

func FuzzVerifyConsistency(f *testing.F) {
	tr := buildTree(f, 21)
	f.Fuzz(func(t *testing.T, size1, size2 uint64, raw []byte) {
		proof := splitProof(raw)
		s1, s2 := size1%22, size2%22
		err := VerifyConsistency(s1, s2, proof, tr.roots[s1], tr.roots[s2])
		if err != nil {
			if !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("error %v does not wrap ErrInvalidProof", err)
			}
		} else if s1 > s2 {
			t.Fatalf("accepted %d→%d", s1, s2)
		}
		var r [32]byte
		_ = VerifyConsistency(size1, size2, proof, r, r)
	})
}
