package ledger

import (
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/provledger/provledger/crypto/record"
)

// Entry is one verified envelope to append. The caller (the api layer) has
// already checked its size, payload type, signatures and policy; the log
// checks only what it needs to build a valid record.
type Entry struct {
	// Namespace owns the entry (1..255 bytes of UTF-8).
	Namespace string
	// PayloadType is the envelope's DSSE payload type.
	PayloadType string
	// Envelope is the canonical DSSE JSON (crypto/envelope.Envelope.Marshal).
	Envelope []byte
	// Signers are the key ids of the verified signatures, in signature order.
	Signers [][32]byte
	// Prepared, if set, is what the log's Indexer computed from this
	// entry's payload before it was sequenced (see Preparer), handed back
	// to it in IndexedEntry.Prepared. It is never stored or replicated:
	// entries applied without it (replays, Raft followers) are indexed
	// from their envelope, with the same result.
	Prepared any
}

// Validate checks e against the record format and the envelope size limit.
// Errors wrap ErrInvalidEntry or ErrTooLarge and say what to fix.
func (e *Entry) Validate(maxEnvelopeSize int) error {
	if len(e.Envelope) == 0 {
		return fmt.Errorf("%w: empty envelope", ErrInvalidEntry)
	}
	if maxEnvelopeSize > 0 && len(e.Envelope) > maxEnvelopeSize {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(e.Envelope), maxEnvelopeSize)
	}
	r := e.record(time.Unix(0, 0), [32]byte{})
	if err := r.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}
	return nil
}

func (e *Entry) record(t time.Time, digest [32]byte) record.Record {
	return record.Record{
		IntegratedTime: t,
		Namespace:      e.Namespace,
		PayloadType:    e.PayloadType,
		EnvelopeDigest: digest,
		EnvelopeSize:   uint32(len(e.Envelope)),
		Signers:        e.Signers,
	}
}

// Digest is the SHA-256 of the envelope: its content address and dedup key.
func (e Entry) Digest() [32]byte { return sha256.Sum256(e.Envelope) }

// Batch is a group of entries integrated atomically, in order, with one
// integration time. The sequencer assigns Time when it proposes the batch.
type Batch struct {
	Time    time.Time
	Entries []Entry
}

// Result says where one entry of a batch landed.
type Result struct {
	// Index is the entry's position in the log.
	Index uint64
	// LeafHash is SHA-256(0x00 || Record).
	LeafHash [32]byte
	// Record is the entry record hashed into the leaf.
	Record []byte
	// Duplicate is set when the envelope was already in the log: Index,
	// LeafHash and Record are then those of the first append.
	Duplicate bool
	// Err is set when the entry was rejected (it then takes no index).
	Err error
}
