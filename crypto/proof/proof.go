package proof

import (
	"crypto/sha256"
	"errors"
	"fmt"

	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ErrInvalidProof is wrapped by every error from VerifyInclusion and
// VerifyConsistency: the proof does not show what was claimed.
var ErrInvalidProof = errors.New("proof: invalid proof")

// HashSize is the size of every hash in the tree.
const HashSize = sha256.Size

// LeafHash returns the RFC 6962 leaf hash SHA-256(0x00||record).
func LeafHash(record []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{rfc6962.RFC6962LeafHashPrefix})
	h.Write(record)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// HashChildren returns the RFC 6962 interior node hash SHA-256(0x01||l||r).
func HashChildren(l, r [32]byte) [32]byte {
	var buf [1 + 2*HashSize]byte
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	copy(buf[1:], l[:])
	copy(buf[1+HashSize:], r[:])
	return sha256.Sum256(buf[:])
}

// EmptyRoot returns the root hash of the empty tree, SHA-256("").
func EmptyRoot() [32]byte { return sha256.Sum256(nil) }

func checkHashes(proof [][]byte) error {
	for i, h := range proof {
		if len(h) != HashSize {
			return fmt.Errorf("%w: proof element %d has %d bytes, want %d", ErrInvalidProof, i, len(h), HashSize)
		}
	}
	return nil
}

// VerifyInclusion checks that leaf is the leaf hash at index in the tree of
// the given size whose root is root, using the RFC 6962 audit path proof.
// It returns nil only if the proof is valid; otherwise the error wraps
// ErrInvalidProof (index ≥ size, wrong proof length, element not 32 bytes,
// or root mismatch).
func VerifyInclusion(index, size uint64, leaf [32]byte, proof [][]byte, root [32]byte) error {
	if err := checkHashes(proof); err != nil {
		return fmt.Errorf("inclusion of leaf %d in tree of size %d: %w", index, size, err)
	}
	if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leaf[:], proof, root[:]); err != nil {
		return fmt.Errorf("%w: inclusion of leaf %d in tree of size %d: %v", ErrInvalidProof, index, size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size1 with root root1 is a
// prefix of the tree of size2 with root root2, using the RFC 6962
// consistency proof. size1 = 0 needs an empty proof and is consistent with
// any tree; size1 = size2 needs an empty proof and equal roots. It returns
// nil only if the proof is valid; otherwise the error wraps ErrInvalidProof.
func VerifyConsistency(size1, size2 uint64, proof [][]byte, root1, root2 [32]byte) error {
	if err := checkHashes(proof); err != nil {
		return fmt.Errorf("consistency of sizes %d and %d: %w", size1, size2, err)
	}
	if size1 > size2 {
		return fmt.Errorf("%w: consistency of sizes %d and %d: old size is larger than new size", ErrInvalidProof, size1, size2)
	}
	if err := mproof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, proof, root1[:], root2[:]); err != nil {
		return fmt.Errorf("%w: consistency of sizes %d and %d: %v", ErrInvalidProof, size1, size2, err)
	}
	return nil
}
