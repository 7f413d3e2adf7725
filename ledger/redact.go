package ledger

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger/redaction"
)

// policyPayloadType is the payload type of policy entries, which cannot be
// redacted.
const policyPayloadType = "application/vnd.provledger.policy+json"

// ErrNotAdmin: a redaction entry not signed by an admin key in force at
// its index (the api layer answers PermissionDenied).
var ErrNotAdmin = errors.New("not signed by an admin key")

// AdminKeys says which signing keys may sign redactions. The log asks it
// while it applies a batch, so every replica must answer the same for the
// same arguments. Today provd builds it from a file of PEM keys
// (--admin-keys); policy kept in the log (crypto/policy) can implement it
// later and answer per index.
type AdminKeys interface {
	// IsAdmin reports whether the key with this id (SHA-256 of its DER
	// public key) is an admin key for an entry at log index index.
	IsAdmin(keyID [32]byte, index uint64) bool
}

// AdminKeySet is AdminKeys for a fixed set of key ids, valid at every
// index.
type AdminKeySet map[[32]byte]struct{}

// NewAdminKeySet returns the set of ids.
func NewAdminKeySet(ids ...[32]byte) AdminKeySet {
	s := make(AdminKeySet, len(ids))
	for _, id := range ids {
		s[id] = struct{}{}
	}
	return s
}

// IsAdmin implements AdminKeys.
func (s AdminKeySet) IsAdmin(id [32]byte, _ uint64) bool {
	_, ok := s[id]
	return ok
}

// Redactor is implemented by an Indexer that can forget what it indexed
// from an entry. When a batch holds redaction entries, the log calls
// Redact once, after IndexBatch, with every entry the batch redacts, in
// the same Pebble batch: the index must delete what it derived from the
// targets and nothing that other entries assert. Like IndexBatch it must
// be deterministic, and return errors only for storage failures.
type Redactor interface {
	Redact(b *pebble.Batch, r *Redactions) error
}

// RedactedEntry is an entry a batch redacts, as it was appended (its
// Envelope is the one being deleted).
type RedactedEntry struct {
	IndexedEntry
	// By is the index of the redaction entry.
	By uint64
	// Reason is the redaction's reason.
	Reason string
}

// Redactions is what one batch redacts, handed to a Redactor. Its methods
// read the log as it will be once the batch commits, except that the
// targets' envelopes are already hidden: they serve entries below the end
// of the batch, including those of the batch itself and of a batch staged
// before it.
type Redactions struct {
	// Targets are the redacted entries, in the order the batch names them.
	Targets []RedactedEntry

	l       *Log
	start   uint64         // first index of the batch
	batch   []IndexedEntry // the batch's new entries, from start
	targets map[uint64]struct{}
}

// IsTarget reports whether entry i is redacted by this batch.
func (r *Redactions) IsTarget(i uint64) bool {
	_, ok := r.targets[i]
	return ok
}

// BatchStart is the index of the batch's first entry; every target is
// below it.
func (r *Redactions) BatchStart() uint64 { return r.start }

// End is the index after the batch's last entry.
func (r *Redactions) End() uint64 { return r.start + uint64(len(r.batch)) }

// Entry returns entry i (below End) with its envelope, which is nil when
// the entry is redacted (before or by this batch).
func (r *Redactions) Entry(i uint64) (IndexedEntry, error) {
	if i >= r.start {
		if i >= r.End() {
			return IndexedEntry{}, fmt.Errorf("%w: entry %d is not below %d", ErrOutOfRange, i, r.End())
		}
		return r.batch[i-r.start], nil
	}
	raw, err := r.l.get(u64Key(prefixRecord, i))
	if err != nil {
		return IndexedEntry{}, fmt.Errorf("redaction: read record %d: %w", i, err)
	}
	return r.stored(i, raw)
}

func (r *Redactions) stored(i uint64, raw []byte) (IndexedEntry, error) {
	rec, err := record.Unmarshal(raw)
	if err != nil {
		return IndexedEntry{}, fmt.Errorf("%w: record %d: %v", ErrCorrupt, i, err)
	}
	e := IndexedEntry{Index: i, LeafHash: proof.LeafHash(raw), Record: rec, RawRecord: raw}
	if r.IsTarget(i) {
		return e, nil
	}
	v, err := r.l.get(u64Key(prefixEnvelopeAt, i))
	if err != nil && !errors.Is(err, ErrNotFound) { // not found: redacted
		return IndexedEntry{}, fmt.Errorf("redaction: read envelope of entry %d: %w", i, err)
	}
	e.Envelope = v
	return e, nil
}

// EntriesAfter calls fn for every entry above index i and below End, in
// order, until fn returns false. Only entries for which want (given the
// record) returns true are read in full and passed to fn.
func (r *Redactions) EntriesAfter(i uint64, want func(record.Record) bool, fn func(IndexedEntry) (bool, error)) error {
	if i+1 < r.start {
		it, err := r.l.db.NewIter(&pebble.IterOptions{LowerBound: u64Key(prefixRecord, i+1), UpperBound: u64Key(prefixRecord, r.start)})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			idx := beUint64(it.Key()[1:])
			rec, err := record.Unmarshal(it.Value())
			if err != nil {
				return fmt.Errorf("%w: record %d: %v", ErrCorrupt, idx, err)
			}
			if !want(rec) {
				continue
			}
			e, err := r.stored(idx, append([]byte(nil), it.Value()...))
			if err != nil {
				return err
			}
			if more, err := fn(e); err != nil || !more {
				return err
			}
		}
		if err := it.Error(); err != nil {
			return fmt.Errorf("redaction: read records after %d: %w", i, err)
		}
	}
	for j := range r.batch {
		e := r.batch[j]
		if e.Index <= i || !want(e.Record) {
			continue
		}
		if more, err := fn(e); err != nil || !more {
			return err
		}
	}
	return nil
}

// redactionBatch collects the redaction entries of a batch being
// integrated.
type redactionBatch struct {
	pending []pendingRedaction
	// targets maps each index redacted by the batch to its redaction.
	targets map[uint64]uint64
}

type pendingRedaction struct {
	by      uint64
	payload redaction.Payload
}

// checkRedaction validates a redaction entry that would take index at in
// a batch starting at batchStart. Errors wrap ErrInvalidEntry, ErrNotAdmin
// or ErrOutOfRange and say what to fix; nothing is written.
func (l *Log) checkRedaction(e *Entry, at, batchStart uint64, rb *redactionBatch) (redaction.Payload, error) {
	env, err := envelope.Parse(e.Envelope)
	if err != nil {
		return redaction.Payload{}, fmt.Errorf("%w: redaction envelope: %v", ErrInvalidEntry, err)
	}
	p, err := redaction.Decode(env.Payload)
	if err != nil {
		return redaction.Payload{}, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}
	if l.opts.AdminKeys == nil {
		return redaction.Payload{}, fmt.Errorf("%w: this log has no admin keys, so it accepts no redaction (start provd with --admin-keys)", ErrNotAdmin)
	}
	admin := false
	for _, s := range e.Signers {
		if l.opts.AdminKeys.IsAdmin(s, at) {
			admin = true
			break
		}
	}
	if !admin {
		ids := make([]string, len(e.Signers))
		for i, s := range e.Signers {
			ids[i] = fmt.Sprintf("%x", s)
		}
		return redaction.Payload{}, fmt.Errorf("%w: the redaction is signed by %s, none of which is an admin key at index %d; sign it with an admin key (provd --admin-keys)", ErrNotAdmin, strings.Join(ids, ", "), at)
	}
	for _, t := range p.Targets {
		switch {
		case t.Index >= at:
			return redaction.Payload{}, fmt.Errorf("%w: redaction target %d is not in the log (the redaction would be entry %d); check the index", ErrOutOfRange, t.Index, at)
		case t.Index >= batchStart:
			return redaction.Payload{}, fmt.Errorf("%w: redaction target %d is appended in the same batch; redact it once its append is acknowledged", ErrInvalidEntry, t.Index)
		}
		if by, ok := rb.targets[t.Index]; ok {
			return redaction.Payload{}, fmt.Errorf("%w: entry %d is already redacted by entry %d", ErrInvalidEntry, t.Index, by)
		}
		raw, err := l.get(u64Key(prefixRecord, t.Index))
		if err != nil {
			return redaction.Payload{}, fmt.Errorf("redaction target %d: read record: %w", t.Index, err)
		}
		rec, err := record.Unmarshal(raw)
		if err != nil {
			return redaction.Payload{}, fmt.Errorf("%w: record %d: %v", ErrCorrupt, t.Index, err)
		}
		switch rec.PayloadType {
		case redaction.PayloadType:
			return redaction.Payload{}, fmt.Errorf("%w: entry %d is itself a redaction; redactions stay readable (they are the erasure's audit trail)", ErrInvalidEntry, t.Index)
		case policyPayloadType:
			return redaction.Payload{}, fmt.Errorf("%w: entry %d is a policy entry; policy stays readable (every entry is re-checked against the policy of its time)", ErrInvalidEntry, t.Index)
		}
		if rec.EnvelopeDigest != t.EnvelopeDigest {
			return redaction.Payload{}, fmt.Errorf("%w: entry %d's envelope is %s, the redaction names %s; check the index (prov get %d)",
				ErrInvalidEntry, t.Index, redaction.FormatDigest(rec.EnvelopeDigest), redaction.FormatDigest(t.EnvelopeDigest), t.Index)
		}
		by, _, err := l.redactionOf(rec.EnvelopeDigest)
		switch {
		case err == nil:
			return redaction.Payload{}, fmt.Errorf("%w: entry %d is already redacted by entry %d", ErrInvalidEntry, t.Index, by)
		case !errors.Is(err, ErrNotFound):
			return redaction.Payload{}, fmt.Errorf("redaction target %d: %w", t.Index, err)
		}
	}
	return p, nil
}

// add records a redaction entry accepted at index by.
func (rb *redactionBatch) add(by uint64, p redaction.Payload) {
	if rb.targets == nil {
		rb.targets = map[uint64]uint64{}
	}
	for _, t := range p.Targets {
		rb.targets[t.Index] = by
	}
	rb.pending = append(rb.pending, pendingRedaction{by: by, payload: p})
}

// applyRedactions writes the batch's redactions into pb: each target's
// envelope is cut down to its index (the dedup mapping keeps no payload),
// the redaction is recorded under 'x', and the Indexer, if it is a
// Redactor, forgets the targets. indexed are the batch's new entries.
func (l *Log) applyRedactions(pb *pebble.Batch, rb *redactionBatch, indexed []IndexedEntry) error {
	if len(rb.pending) == 0 {
		return nil
	}
	rs := &Redactions{l: l, batch: indexed, targets: make(map[uint64]struct{}, len(rb.targets))}
	if len(indexed) > 0 {
		rs.start = indexed[0].Index
	}
	for i := range rb.targets {
		rs.targets[i] = struct{}{}
	}
	for _, pr := range rb.pending {
		for _, t := range pr.payload.Targets {
			raw, err := l.get(u64Key(prefixRecord, t.Index))
			if err != nil {
				return fmt.Errorf("redact entry %d: read record: %w", t.Index, err)
			}
			rec, err := record.Unmarshal(raw)
			if err != nil {
				return fmt.Errorf("%w: record %d: %v", ErrCorrupt, t.Index, err)
			}
			ek := u64Key(prefixEnvelopeAt, t.Index)
			env, err := l.get(ek)
			if err != nil {
				return fmt.Errorf("redact entry %d: read envelope: %w", t.Index, err)
			}
			if err := pb.Delete(ek, nil); err != nil {
				return err
			}
			xv := append(u64Value(pr.by), pr.payload.Reason...)
			if err := pb.Set(hashKey(prefixRedaction, rec.EnvelopeDigest), xv, nil); err != nil {
				return err
			}
			rs.Targets = append(rs.Targets, RedactedEntry{
				IndexedEntry: IndexedEntry{Index: t.Index, LeafHash: proof.LeafHash(raw), Record: rec, RawRecord: raw, Envelope: env},
				By:           pr.by, Reason: pr.payload.Reason,
			})
			l.log.Info("redacting an entry's envelope", "entry", t.Index, "by", pr.by, "reason", pr.payload.Reason)
		}
	}
	for _, rd := range redactors(l.opts.Indexer) {
		if err := rd.Redact(pb, rs); err != nil {
			return fmt.Errorf("indexer: %w", err)
		}
	}
	return nil
}

// redactors returns the Redactors among ix and the indexers it chains: an
// Indexer that calls another exposes it with Unwrap() Indexer (as the
// policy index chains the lineage index). Each is called once, so a
// wrapper that is a Redactor itself must not forward Redact.
func redactors(ix Indexer) []Redactor {
	var out []Redactor
	for depth := 0; ix != nil && depth < 16; depth++ {
		if r, ok := ix.(Redactor); ok {
			out = append(out, r)
		}
		u, ok := ix.(interface{ Unwrap() Indexer })
		if !ok {
			break
		}
		ix = u.Unwrap()
	}
	return out
}

// redactionOf returns the redaction that removed the envelope with the
// given digest: the redaction entry's index and its reason, or
// ErrNotFound when the envelope was not redacted.
func (l *Log) redactionOf(digest [32]byte) (uint64, string, error) {
	v, err := l.get(hashKey(prefixRedaction, digest))
	if err != nil {
		return 0, "", err
	}
	if len(v) < 8 {
		return 0, "", fmt.Errorf("%w: redaction of envelope %x has %d bytes", ErrCorrupt, digest, len(v))
	}
	return beUint64(v[:8]), string(v[8:]), nil
}

// Redaction describes the redaction of an entry's envelope.
type Redaction struct {
	// By is the index of the redaction entry.
	By uint64
	// Reason is the redaction's reason (its payload has the rest).
	Reason string
}

// RedactionOf returns how entry index was redacted, or ErrNotFound when
// its envelope is still there (ErrOutOfRange beyond the latest
// checkpoint).
func (l *Log) RedactionOf(index uint64) (Redaction, error) {
	raw, err := l.Record(index)
	if err != nil {
		return Redaction{}, err
	}
	rec, err := record.Unmarshal(raw)
	if err != nil {
		return Redaction{}, fmt.Errorf("%w: record %d: %v", ErrCorrupt, index, err)
	}
	by, reason, err := l.redactionOf(rec.EnvelopeDigest)
	if err != nil {
		return Redaction{}, fmt.Errorf("redaction of entry %d: %w", index, err)
	}
	if by >= l.latest.Load().Size {
		// Committed by a batch whose checkpoint is not published yet.
		return Redaction{}, fmt.Errorf("redaction of entry %d: %w", index, ErrNotFound)
	}
	return Redaction{By: by, Reason: reason}, nil
}

// redactedError is the error Envelope returns for a redacted envelope.
func redactedError(digest [32]byte, by uint64, reason string) error {
	if reason == "" {
		return fmt.Errorf("envelope %x: %w by entry %d", digest, ErrRedacted, by)
	}
	return fmt.Errorf("envelope %x: %w by entry %d (reason: %s)", digest, ErrRedacted, by, reason)
}
