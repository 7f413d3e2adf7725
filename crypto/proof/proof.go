// Package proof holds the RFC 6962 hashing and proof verification provledger
// uses, on github.com/transparency-dev/merkle: leaf hash =
// SHA-256(0x00 || record), interior = SHA-256(0x01 || left || right).
package proof

import (
	"errors"
	"fmt"

	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ErrInvalidProof is wrapped by every verification failure.
var ErrInvalidProof = errors.New("invalid proof")

var hasher = rfc6962.DefaultHasher

// LeafHash returns SHA-256(0x00 || record), the RFC 6962 leaf hash.
func LeafHash(record []byte) [32]byte {
	return [32]byte(hasher.HashLeaf(record))
}

// HashChildren returns SHA-256(0x01 || l || r), the RFC 6962 interior hash.
func HashChildren(l, r [32]byte) [32]byte {
	return [32]byte(hasher.HashChildren(l[:], r[:]))
}

// EmptyRoot returns the root of the empty tree, SHA-256 of nothing.
func EmptyRoot() [32]byte {
	return [32]byte(hasher.EmptyRoot())
}

// VerifyInclusion checks that leaf is at index in the tree of the given size
// and root. The error wraps ErrInvalidProof.
func VerifyInclusion(index, size uint64, leaf [32]byte, proof [][]byte, root [32]byte) error {
	if err := mproof.VerifyInclusion(hasher, index, size, leaf[:], proof, root[:]); err != nil {
		return fmt.Errorf("%w: inclusion of %d in tree of size %d: %v", ErrInvalidProof, index, size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size1 and root1 is a prefix of
// the tree of size2 and root2. The error wraps ErrInvalidProof.
func VerifyConsistency(size1, size2 uint64, proof [][]byte, root1, root2 [32]byte) error {
	if err := mproof.VerifyConsistency(hasher, size1, size2, proof, root1[:], root2[:]); err != nil {
		return fmt.Errorf("%w: consistency of sizes %d and %d: %v", ErrInvalidProof, size1, size2, err)
	}
	return nil
}
