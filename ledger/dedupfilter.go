package ledger

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// digestFilter is an in-memory Bloom filter over the envelope digests in the
// log. Apply consults it before looking a digest up in Pebble: a new
// envelope (the common case) then costs ~100 ns instead of a Pebble point
// lookup through the memtables and every L0 file. It only ever answers
// "maybe" or "no", so it affects speed, never results.
//
// Digests are SHA-256, already uniform, so the filter takes its bit positions
// straight from the digest (double hashing over two 64-bit words) instead of
// hashing again. Ten bits per entry and seven probes give ~1% false
// positives. When the log outgrows the filter's capacity it is rebuilt at
// twice the size from the stored digests.
type digestFilter struct {
	bits     []uint64
	m        uint64 // number of bits
	n        uint64 // digests added
	capacity uint64
}

const (
	filterBitsPerEntry = 10
	filterProbes       = 7
	filterMinCapacity  = 1 << 20
)

func newDigestFilter(capacity uint64) *digestFilter {
	capacity = max(capacity, filterMinCapacity)
	words := (capacity*filterBitsPerEntry + 63) / 64
	return &digestFilter{bits: make([]uint64, words), m: words * 64, capacity: capacity}
}

func (f *digestFilter) positions(d *[32]byte, fn func(word uint64, mask uint64) bool) bool {
	h1 := binary.LittleEndian.Uint64(d[0:8])
	h2 := binary.LittleEndian.Uint64(d[8:16]) | 1
	for i := uint64(0); i < filterProbes; i++ {
		bit := (h1 + i*h2) % f.m
		if !fn(bit/64, 1<<(bit%64)) {
			return false
		}
	}
	return true
}

func (f *digestFilter) add(d [32]byte) {
	f.positions(&d, func(w, mask uint64) bool { f.bits[w] |= mask; return true })
	f.n++
}

func (f *digestFilter) mayContain(d [32]byte) bool {
	return f.positions(&d, func(w, mask uint64) bool { return f.bits[w]&mask != 0 })
}

func (f *digestFilter) full() bool { return f.n >= f.capacity }

// buildDigestFilter scans the stored envelope keys into a filter sized for
// twice their number (at least filterMinCapacity).
func buildDigestFilter(db *pebble.DB, size uint64) (*digestFilter, error) {
	f := newDigestFilter(2 * size)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEnvelope}, UpperBound: []byte{prefixEnvelope + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 33 {
			return nil, fmt.Errorf("%w: envelope key of %d bytes", ErrCorrupt, len(k))
		}
		f.add([32]byte(k[1:]))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("build dedup filter: %w", err)
	}
	return f, nil
}
