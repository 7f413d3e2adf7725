package ledger

import (
	"fmt"

	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// InclusionProof returns the RFC 6962 inclusion proof of leaf index in the
// tree of the given size, which must not exceed the latest checkpoint's.
// The proof verifies with transparency-dev/merkle's proof.VerifyInclusion.
func (l *Log) InclusionProof(index, size uint64) ([][]byte, error) {
	if err := l.checkSize(size); err != nil {
		return nil, err
	}
	if index >= size {
		return nil, fmt.Errorf("%w: index %d is not below tree size %d", ErrOutOfRange, index, size)
	}
	nodes, err := mproof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof (%d, %d): %w", index, size, err)
	}
	return l.proofHashes(nodes)
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of size1 and size2 (size1 ≤ size2 ≤ the latest checkpoint's size).
func (l *Log) ConsistencyProof(size1, size2 uint64) ([][]byte, error) {
	if err := l.checkSize(size2); err != nil {
		return nil, err
	}
	if size1 > size2 {
		return nil, fmt.Errorf("%w: old size %d is above new size %d", ErrOutOfRange, size1, size2)
	}
	nodes, err := mproof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("consistency proof (%d, %d): %w", size1, size2, err)
	}
	return l.proofHashes(nodes)
}

func (l *Log) checkSize(size uint64) error {
	if latest := l.latest.Load().Size; size > latest {
		return fmt.Errorf("%w: tree size %d is beyond the latest checkpoint (size %d)", ErrOutOfRange, size, latest)
	}
	return nil
}

// proofHashes fetches the nodes a proof needs and folds the ephemeral ones.
func (l *Log) proofHashes(nodes mproof.Nodes) ([][]byte, error) {
	hashes := make([][]byte, len(nodes.IDs))
	l.cacheMu.Lock()
	for i, id := range nodes.IDs {
		h, err := l.cache.node(id.Level, id.Index)
		if err != nil {
			l.cacheMu.Unlock()
			return nil, err
		}
		hashes[i] = h[:]
	}
	l.cacheMu.Unlock()
	return nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
}
