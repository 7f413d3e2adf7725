package graph

import (
	"bytes"
	"hash/maphash"

	"github.com/cockroachdb/pebble/v2"
)

// keyFilter is an in-memory Bloom filter of the node and forward-edge keys
// the index holds, so that writing a node or edge for the first time — the
// common case — costs no store lookup: only a "maybe" goes to Pebble
// (10 bits a key, 7 probes, ~1% false positives).
//
// It speeds the indexer up and never changes what it writes, as long as
// it has no false negatives. Keys of a batch are added before the batch
// commits, so a failed commit only leaves extra keys (false positives).
// Keys the store gains behind the indexer's back (a Raft snapshot
// restored) would be false negatives: the filter remembers the index
// position it belongs to, and the indexer rebuilds it whenever the store's
// position is another.
type keyFilter struct {
	seed     maphash.Seed
	bits     []uint64
	n, limit int
	// next is the index position (qmnext) the filter describes.
	next uint64
	// known holds keys found to exist (the index never deletes a key),
	// and latest datasets' latest completed versions: both describe the
	// same position as the filter and are dropped with it.
	known  map[string]struct{}
	latest map[ID]string
}

// maxCached bounds known and latest; each is emptied when it fills.
const maxCached = 1 << 20

func (f *keyFilter) remember(key []byte) {
	if len(f.known) >= maxCached {
		clear(f.known)
	}
	f.known[string(key)] = struct{}{}
}

func (f *keyFilter) setLatest(d ID, v string) {
	if len(f.latest) >= maxCached {
		clear(f.latest)
	}
	f.latest[d] = v
}

const filterProbes = 7

func newKeyFilter(capacity int) *keyFilter {
	capacity = max(capacity, 1<<16)
	words := (capacity*10 + 63) / 64
	return &keyFilter{seed: maphash.MakeSeed(), bits: make([]uint64, words), limit: capacity, known: map[string]struct{}{}, latest: map[ID]string{}}
}

func (f *keyFilter) probes(key []byte) (uint64, uint64) {
	h := maphash.Bytes(f.seed, key)
	return h, h>>33 | h<<31 | 1
}

func (f *keyFilter) add(key []byte) {
	h, d := f.probes(key)
	m := uint64(len(f.bits) * 64)
	for i := 0; i < filterProbes; i++ {
		b := h % m
		f.bits[b/64] |= 1 << (b % 64)
		h += d
	}
	f.n++
}

func (f *keyFilter) mayContain(key []byte) bool {
	h, d := f.probes(key)
	m := uint64(len(f.bits) * 64)
	for i := 0; i < filterProbes; i++ {
		b := h % m
		if f.bits[b/64]&(1<<(b%64)) == 0 {
			return false
		}
		h += d
	}
	return true
}

func (f *keyFilter) full() bool { return f.n >= f.limit }

// buildKeyFilter scans the node and forward-edge keys of db into a filter
// with room for twice as many.
func buildKeyFilter(db *pebble.DB, next uint64) (*keyFilter, error) {
	count := func(lo, hi []byte, fn func([]byte)) error {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi, KeyTypes: pebble.IterKeyTypePointsOnly})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			fn(it.Key())
		}
		return it.Error()
	}
	n := 0
	for _, r := range [][2][]byte{{{prefix, tagNode}, {prefix, tagNode + 1}}, {{prefix, tagOut}, {prefix, tagOut + 1}}} {
		if err := count(r[0], r[1], func([]byte) { n++ }); err != nil {
			return nil, err
		}
	}
	f := newKeyFilter(2 * n)
	for _, r := range [][2][]byte{{{prefix, tagNode}, {prefix, tagNode + 1}}, {{prefix, tagOut}, {prefix, tagOut + 1}}} {
		if err := count(r[0], r[1], func(k []byte) { f.add(bytes.Clone(k)) }); err != nil {
			return nil, err
		}
	}
	f.next = next
	return f, nil
}
