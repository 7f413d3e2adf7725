package query

import (
	"errors"
	"fmt"

	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/answer"
)

// prove attaches, for every entry the answer rests on, its record and
// inclusion proof against one checkpoint: the latest when the query
// began, whose size is at least the answer's.
func (s *session) prove() error {
	cp := s.cp
	p := &answer.Proof{Checkpoint: string(cp.Note), Entries: make([]answer.ProvenEntry, 0, len(s.ans.Entries))}
	for _, idx := range s.ans.Entries {
		if err := s.canceled(); err != nil {
			return err
		}
		rec, err := s.e.log.Record(idx)
		if err != nil {
			return fmt.Errorf("prove entry %d: %w", idx, err)
		}
		hashes, err := s.e.log.InclusionProof(idx, cp.Size)
		if err != nil {
			return fmt.Errorf("prove entry %d: %w", idx, err)
		}
		pe := answer.ProvenEntry{Index: idx, Record: rec, Hashes: hashes}
		if !s.req.NoEnvelopes {
			r, err := record.Unmarshal(rec)
			if err != nil {
				return fmt.Errorf("prove entry %d: %w: %v", idx, ledger.ErrCorrupt, err)
			}
			env, err := s.e.log.Envelope(r.EnvelopeDigest)
			switch {
			case errors.Is(err, ledger.ErrRedacted):
				pe.Redacted = true
			case err != nil:
				return fmt.Errorf("prove entry %d: %w", idx, err)
			default:
				pe.Envelope = env
			}
		}
		p.Entries = append(p.Entries, pe)
	}
	s.ans.Proof = p
	return nil
}
