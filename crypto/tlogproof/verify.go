package tlogproof

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/proof"
)

// Verify checks p against the log key v: the checkpoint must carry a valid
// signature by v and name v's origin, and the inclusion proof must lead
// from leaf(p.Extra) at p.Index to the checkpoint's root. leaf computes the
// entry's leaf hash from the extra data (for provledger receipts:
// proof.LeafHash of the entry record, after checking it decodes); it may
// return an error to reject the extra data. Verify returns the verified
// checkpoint.
func Verify(p *Proof, v note.Verifier, leaf func(extra []byte) ([32]byte, error)) (checkpoint.Checkpoint, error) {
	if p == nil {
		return checkpoint.Checkpoint{}, errors.New("verify tlog-proof: nil proof")
	}
	if v == nil {
		return checkpoint.Checkpoint{}, errors.New("verify tlog-proof: no log key to check the checkpoint signature with")
	}
	if leaf == nil {
		return checkpoint.Checkpoint{}, errors.New("verify tlog-proof: no leaf function")
	}
	cp, err := checkpoint.Open(p.Checkpoint, v)
	if err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("verify tlog-proof: %w", err)
	}
	if cp.Origin != v.Name() {
		return checkpoint.Checkpoint{}, fmt.Errorf("verify tlog-proof: checkpoint is for log %q, the key is for %q", cp.Origin, v.Name())
	}
	if p.Index >= cp.Size {
		return checkpoint.Checkpoint{}, fmt.Errorf("verify tlog-proof: index %d is not below the checkpoint's tree size %d", p.Index, cp.Size)
	}
	lh, err := leaf(p.Extra)
	if err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("verify tlog-proof: extra data: %w", err)
	}
	if err := proof.VerifyInclusion(p.Index, cp.Size, lh, p.Hashes, cp.Hash); err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("verify tlog-proof: inclusion of entry %d in the tree of size %d: %w", p.Index, cp.Size, err)
	}
	return cp, nil
}
