package service

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
)

// ReadFencer is implemented by a Sequencer that can fence linearizable
// reads (api/forward in a Raft cluster). ReadFence returns once the local
// ledger holds every append acknowledged before it was called, or a status
// error (FailedPrecondition naming the leader on a follower). Without it
// (a single node) the local ledger is always linearizable.
type ReadFencer interface {
	ReadFence(ctx context.Context) error
}

// fence applies the read's consistency.
func (s *Service) fence(ctx context.Context, op string, c provledgerpb.Consistency) error {
	switch c {
	case provledgerpb.Consistency_CONSISTENCY_UNSPECIFIED, provledgerpb.Consistency_CONSISTENCY_STALE:
		return nil
	case provledgerpb.Consistency_CONSISTENCY_LINEARIZABLE:
		if f, ok := s.seq.(ReadFencer); ok {
			return s.statusError(ctx, op, f.ReadFence(ctx))
		}
		return nil
	}
	return invalid("%s: unknown consistency %d; use CONSISTENCY_STALE or CONSISTENCY_LINEARIZABLE", op, c)
}

// envelopeOf fills e.EnvelopeJson (or e.RedactedBy) from the record.
func (s *Service) envelopeOf(e *provledgerpb.Entry) error {
	r, err := record.Unmarshal(e.Record)
	if err != nil {
		return fmt.Errorf("%w: record %d: %v", ledger.ErrCorrupt, e.Index, err)
	}
	env, err := s.log.Envelope(r.EnvelopeDigest)
	if errors.Is(err, ledger.ErrRedacted) {
		if by, ok := RedactedBy(err); ok {
			e.RedactedBy = &by
			return nil
		}
	}
	if err != nil {
		return err
	}
	e.EnvelopeJson = env
	return nil
}

// GetEntry implements provledgerpb.LedgerServer.
func (s *Service) GetEntry(ctx context.Context, req *provledgerpb.GetEntryRequest) (*provledgerpb.Entry, error) {
	if err := s.fence(ctx, "get entry", req.GetConsistency()); err != nil {
		return nil, err
	}
	rec, err := s.log.Record(req.GetIndex())
	if err != nil {
		return nil, s.statusError(ctx, "get entry", err)
	}
	leaf := proof.LeafHash(rec)
	e := &provledgerpb.Entry{Index: req.GetIndex(), Record: rec, LeafHash: leaf[:]}
	if err := s.envelopeOf(e); err != nil {
		return nil, s.statusError(ctx, "get entry", err)
	}
	if req.GetWithProof() {
		cp := s.log.Latest()
		p, err := s.log.InclusionProof(req.GetIndex(), cp.Size)
		if err != nil {
			return nil, s.statusError(ctx, "get entry", err)
		}
		e.Checkpoint, e.InclusionProof = cp.Note, p
	}
	return e, nil
}

// GetEntries implements provledgerpb.LedgerServer.
func (s *Service) GetEntries(req *provledgerpb.GetEntriesRequest, stream grpc.ServerStreamingServer[provledgerpb.Entry]) error {
	ctx := stream.Context()
	start, end := req.GetStart(), req.GetEnd()
	if end == 0 {
		end = s.log.Latest().Size
	}
	if start > end && req.GetEnd() != 0 {
		return invalidRange(start, end)
	} // start beyond the latest size is OutOfRange, from Records
	err := s.log.Records(start, end, func(i uint64, rec []byte) error {
		if err := ctxErr(ctx); err != nil {
			return err
		}
		leaf := proof.LeafHash(rec)
		// rec is only valid during this call; Send marshals the message
		// before it returns, so it need not be copied.
		e := &provledgerpb.Entry{Index: i, Record: rec, LeafHash: leaf[:]}
		if err := s.envelopeOf(e); err != nil {
			return err
		}
		return stream.Send(e)
	})
	return s.statusError(ctx, "get entries", err)
}

func invalidRange(start, end uint64) error {
	return invalid("start %d is above end %d; ask for start ≤ end (end 0 means the latest size)", start, end)
}

func checkpointProto(cp *ledger.Checkpoint) *provledgerpb.Checkpoint {
	return &provledgerpb.Checkpoint{Note: cp.Note, Origin: cp.Origin, Size: cp.Size, RootHash: cp.Hash[:]}
}

// GetCheckpoint implements provledgerpb.LedgerServer.
func (s *Service) GetCheckpoint(ctx context.Context, req *provledgerpb.GetCheckpointRequest) (*provledgerpb.Checkpoint, error) {
	if err := s.fence(ctx, "get checkpoint", req.GetConsistency()); err != nil {
		return nil, err
	}
	if req.GetSize() == 0 {
		return checkpointProto(s.log.Latest()), nil
	}
	cp, err := s.log.CheckpointAt(req.GetSize())
	if err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			err = fmt.Errorf("%w (the log publishes one checkpoint per committed batch, not one per size; ask for size 0 for the latest)", err)
		}
		return nil, s.statusError(ctx, "get checkpoint", err)
	}
	return checkpointProto(cp), nil
}

// treeCheckpoint returns the checkpoint of size (0: the latest). For a size
// the log never published a checkpoint at, it returns a nil note: proofs for
// it still verify against that tree's root, which the client must hold.
func (s *Service) treeCheckpoint(size uint64) (uint64, []byte, error) {
	if size == 0 {
		cp := s.log.Latest()
		return cp.Size, cp.Note, nil
	}
	cp, err := s.log.CheckpointAt(size)
	if errors.Is(err, ledger.ErrNotFound) {
		return size, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	return size, cp.Note, nil
}

// GetInclusionProof implements provledgerpb.LedgerServer.
func (s *Service) GetInclusionProof(ctx context.Context, req *provledgerpb.GetInclusionProofRequest) (*provledgerpb.InclusionProof, error) {
	if err := s.fence(ctx, "inclusion proof", req.GetConsistency()); err != nil {
		return nil, err
	}
	var (
		index uint64
		leaf  [32]byte
		err   error
	)
	switch l := req.GetLeaf().(type) {
	case *provledgerpb.GetInclusionProofRequest_Index:
		index = l.Index
	case *provledgerpb.GetInclusionProofRequest_LeafHash:
		if len(l.LeafHash) != 32 {
			return nil, invalid("leaf_hash is %d bytes; send the 32-byte SHA-256 leaf hash", len(l.LeafHash))
		}
		leaf = [32]byte(l.LeafHash)
		if index, err = s.log.IndexOfLeaf(leaf); err != nil {
			return nil, s.statusError(ctx, "inclusion proof", err)
		}
	default:
		return nil, invalid("set index or leaf_hash")
	}
	size, note, err := s.treeCheckpoint(req.GetTreeSize())
	if err != nil {
		return nil, s.statusError(ctx, "inclusion proof", err)
	}
	hashes, err := s.log.InclusionProof(index, size)
	if err != nil {
		return nil, s.statusError(ctx, "inclusion proof", err)
	}
	if req.GetLeaf() != nil {
		if _, byIndex := req.GetLeaf().(*provledgerpb.GetInclusionProofRequest_Index); byIndex {
			rec, err := s.log.Record(index)
			if err != nil {
				return nil, s.statusError(ctx, "inclusion proof", err)
			}
			leaf = proof.LeafHash(rec)
		}
	}
	return &provledgerpb.InclusionProof{Index: index, TreeSize: size, LeafHash: leaf[:], Hashes: hashes, Checkpoint: note}, nil
}

// GetConsistencyProof implements provledgerpb.LedgerServer.
func (s *Service) GetConsistencyProof(ctx context.Context, req *provledgerpb.GetConsistencyProofRequest) (*provledgerpb.ConsistencyProof, error) {
	if err := s.fence(ctx, "consistency proof", req.GetConsistency()); err != nil {
		return nil, err
	}
	newSize, newNote, err := s.treeCheckpoint(req.GetNewSize())
	if err != nil {
		return nil, s.statusError(ctx, "consistency proof", err)
	}
	oldSize := req.GetOldSize()
	if oldSize > newSize {
		return nil, s.statusError(ctx, "consistency proof", fmt.Errorf("%w: old size %d is above new size %d", ledger.ErrOutOfRange, oldSize, newSize))
	}
	hashes, err := s.log.ConsistencyProof(oldSize, newSize)
	if err != nil {
		return nil, s.statusError(ctx, "consistency proof", err)
	}
	var oldNote []byte
	if cp, err := s.log.CheckpointAt(oldSize); err == nil {
		oldNote = cp.Note
	} else if !errors.Is(err, ledger.ErrNotFound) {
		return nil, s.statusError(ctx, "consistency proof", err)
	}
	return &provledgerpb.ConsistencyProof{OldSize: oldSize, NewSize: newSize, Hashes: hashes, OldCheckpoint: oldNote, NewCheckpoint: newNote}, nil
}
