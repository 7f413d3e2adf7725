package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/ledger/tiles"
)

// Record returns the entry record at index, which must be below the latest
// checkpoint's size.
func (l *Log) Record(index uint64) ([]byte, error) {
	if size := l.latest.Load().Size; index >= size {
		return nil, fmt.Errorf("%w: index %d is not below the log size %d", ErrOutOfRange, index, size)
	}
	v, err := l.get(u64Key(prefixRecord, index))
	if err != nil {
		return nil, fmt.Errorf("record %d: %w", index, err)
	}
	return v, nil
}

// Records calls fn for each record in [start, end), in order; end must not
// exceed the latest checkpoint's size. fn must not keep rec.
func (l *Log) Records(start, end uint64, fn func(index uint64, rec []byte) error) error {
	if size := l.latest.Load().Size; end > size || start > end {
		return fmt.Errorf("%w: range [%d, %d) is not within the log size %d", ErrOutOfRange, start, end, size)
	}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: u64Key(prefixRecord, start), UpperBound: u64Key(prefixRecord, end)})
	if err != nil {
		return err
	}
	defer it.Close()
	want := start
	for ok := it.First(); ok; ok = it.Next() {
		idx := binary.BigEndian.Uint64(it.Key()[1:])
		if idx != want {
			return fmt.Errorf("%w: record %d missing", ErrCorrupt, want)
		}
		if err := fn(idx, it.Value()); err != nil {
			return err
		}
		want++
	}
	if err := it.Error(); err != nil {
		return err
	}
	if want != end {
		return fmt.Errorf("%w: record %d missing", ErrCorrupt, want)
	}
	return nil
}

// Envelope returns the canonical envelope JSON with the given SHA-256, or
// ErrRedacted (wrapped with the redaction's index) or ErrNotFound.
func (l *Log) Envelope(digest [32]byte) ([]byte, error) {
	v, err := l.get(hashKey(prefixEnvelope, digest))
	if err != nil {
		return nil, fmt.Errorf("envelope %x: %w", digest, err)
	}
	if len(v) < 8 {
		return nil, fmt.Errorf("%w: envelope %x value has %d bytes", ErrCorrupt, digest, len(v))
	}
	idx := beUint64(v[:8])
	if idx >= l.latest.Load().Size {
		return nil, fmt.Errorf("envelope %x: %w", digest, ErrNotFound)
	}
	env, err := l.get(u64Key(prefixEnvelopeAt, idx))
	if errors.Is(err, ErrNotFound) {
		by, reason, rerr := l.redactionOf(digest)
		if rerr != nil {
			return nil, fmt.Errorf("envelope %x: %w", digest, ErrRedacted)
		}
		return nil, redactedError(digest, by, reason)
	}
	if err != nil {
		return nil, fmt.Errorf("envelope %x: %w", digest, err)
	}
	return env, nil
}

// Envelopes calls fn, in index order, with the stored envelope of every
// entry in [start, end) that has one (a redacted entry has none; read it
// with Envelope for the redaction). It reads the envelopes in the order
// they are stored, with one iterator: far cheaper than Envelope per entry
// for a range. env is valid only during the call. fn's error stops the
// scan and is returned.
func (l *Log) Envelopes(start, end uint64, fn func(index uint64, env []byte) error) error {
	if size := l.latest.Load().Size; end > size {
		end = size
	}
	if start >= end {
		return nil
	}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: u64Key(prefixEnvelopeAt, start), UpperBound: u64Key(prefixEnvelopeAt, end)})
	if err != nil {
		return fmt.Errorf("read envelopes [%d, %d): %w", start, end, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 9 {
			return fmt.Errorf("%w: envelope key %x", ErrCorrupt, k)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("read envelope %d: %w", beUint64(k[1:]), err)
		}
		if err := fn(beUint64(k[1:]), v); err != nil {
			return err
		}
	}
	return it.Error()
}

// IndexOfLeaf returns the index of the entry with the given leaf hash.
func (l *Log) IndexOfLeaf(leaf [32]byte) (uint64, error) {
	return l.indexBy(prefixLeaf, leaf, "leaf hash")
}

// IndexOfEnvelope returns the index of the entry whose envelope has the
// given SHA-256.
func (l *Log) IndexOfEnvelope(digest [32]byte) (uint64, error) {
	return l.indexBy(prefixEnvelope, digest, "envelope")
}

func (l *Log) indexBy(prefix byte, h [32]byte, what string) (uint64, error) {
	v, err := l.get(hashKey(prefix, h))
	if err != nil {
		return 0, fmt.Errorf("%s %x: %w", what, h, err)
	}
	if len(v) < 8 {
		return 0, fmt.Errorf("%w: %s %x index has %d bytes", ErrCorrupt, what, h, len(v))
	}
	idx := beUint64(v[:8])
	if idx >= l.latest.Load().Size {
		// Committed by a batch whose checkpoint is not published yet.
		return 0, fmt.Errorf("%s %x: %w", what, h, ErrNotFound)
	}
	return idx, nil
}

// CheckpointAt returns the signed checkpoint published for the given size.
// Every size the log ever published has one.
func (l *Log) CheckpointAt(size uint64) (*Checkpoint, error) {
	if err := l.checkSize(size); err != nil {
		return nil, err
	}
	v, err := l.get(u64Key(prefixCheckpoint, size))
	if err != nil {
		return nil, fmt.Errorf("checkpoint of size %d: %w", size, err)
	}
	return l.parseStoredCheckpoint(v)
}

// Tile returns the level-8·level node hashes at positions 256·index …
// 256·index+width−1, as C2SP tlog-tiles serves them. The tile must lie within
// the latest checkpoint (else ErrNotFound).
func (l *Log) Tile(level uint8, index uint64, width int) ([]byte, error) {
	if !tiles.Available(level, index, width, l.latest.Load().Size) {
		return nil, fmt.Errorf("tile %d/%d width %d: %w", level, index, width, ErrNotFound)
	}
	v, err := l.get(tileKey(level, index))
	if err != nil {
		return nil, fmt.Errorf("tile %d/%d: %w", level, index, err)
	}
	if len(v) < width*tiles.HashSize {
		return nil, fmt.Errorf("%w: tile %d/%d holds %d hashes, want %d", ErrCorrupt, level, index, len(v)/tiles.HashSize, width)
	}
	return v[:width*tiles.HashSize], nil
}

// EntryBundle returns entries 256·index … 256·index+width−1 as a C2SP
// tlog-tiles entry bundle: each record prefixed by its big-endian uint16
// length.
func (l *Log) EntryBundle(index uint64, width int) ([]byte, error) {
	if !tiles.Available(0, index, width, l.latest.Load().Size) {
		return nil, fmt.Errorf("entry bundle %d width %d: %w", index, width, ErrNotFound)
	}
	var b []byte
	start := index * tiles.Width
	err := l.Records(start, start+uint64(width), func(_ uint64, rec []byte) error {
		b = binary.BigEndian.AppendUint16(b, uint16(len(rec)))
		b = append(b, rec...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("entry bundle %d: %w", index, err)
	}
	return b, nil
}
