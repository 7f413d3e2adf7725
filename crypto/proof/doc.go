// Package proof is provledger's RFC 6962 Merkle tree hashing and proof
// verification, built on github.com/transparency-dev/merkle.
//
// Leaf hash = SHA-256(0x00 || record), interior node = SHA-256(0x01 || left
// || right), and the root of the empty tree is SHA-256 of nothing. Proofs
// are lists of 32-byte node hashes ordered from the leaf upwards, exactly as
// transparency-dev/merkle's proof.Inclusion/proof.Consistency and
// golang.org/x/mod/sumdb/tlog produce them, so proofs served by a provledger
// node verify with those libraries and vice versa.
//
// The verifiers are strict: every proof element must be exactly 32 bytes and
// the proof must have exactly the length RFC 6962 prescribes for the given
// sizes. Every failure wraps ErrInvalidProof.
package proof
