package graph

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// DefaultAdjacencyCacheSize is the default size of the decoded adjacency
// cache (Options.AdjacencyCacheSize).
const DefaultAdjacencyCacheSize = 128 << 20

// adjCache keeps decoded adjacency lists (a node's edges of one relation
// in one direction) in memory, shared by all readers of one indexer, so a
// traversal step that was taken before costs a map lookup instead of a
// Pebble seek.
//
// A list is cached with upTo: it holds every edge asserted below log size
// upTo (it was read from a Pebble iterator opened after the checkpoint of
// that size was published, and committed entries never change). A reader
// at size N ≤ upTo can always use it. For N > upTo it is still complete
// when no entry in [upTo, N) wrote an edge of the list: the indexer
// records, in touched, for a hash bucket of lists, the highest entry index
// (plus one) that added an edge to one of them, before the batch commits
// — so before any reader can ask for a size that includes it. Buckets
// only over-report (collisions, batches that fail to commit), which costs
// a re-read, never a wrong answer.
//
// Touches are known only for the entries this indexer indexed itself,
// [start, next): a store that moved behind its back (a snapshot restored)
// has entries beyond next, and the indexer resets start when it notices.
type adjCache struct {
	shards        [adjShards]adjShard
	maxShardBytes int64
	touched       []atomic.Uint64
	start, next   atomic.Uint64
}

const (
	adjShards       = 64
	touchBucketBits = 20
)

type adjKey struct {
	id  ID
	tag byte
	rel Rel
}

// adjShard is one shard of the cache. Readers take no lock: they load
// the shard's current state and read it; writers (put, reset) serialize
// on mu and never change what a published state shows — they append past
// its arena's length, store slots atomically, or publish a new state —
// so a reader never waits, and nothing orders its loads but their
// addresses (see Reader.Warm). The table holds no pointers, and the lists
// live in the arena, so the garbage collector has nothing to scan.
type adjShard struct {
	mu    sync.Mutex
	state atomic.Pointer[adjState]
	// hits and misses count lookups (per shard: concurrent queries do not
	// fight over one counter).
	hits, misses atomic.Uint64
	_            [64]byte // keep shards on their own cache lines
}

// adjState is what a reader of a shard sees: an open-addressing table
// (linear probing, a power of two, at most half full) of slots, each the
// tag of a list's key hash and the list's offset in arena, where the list
// starts with its header (key, upTo, edge count: listHeaderSize bytes).
// Slots may be stored after the state was published: one pointing past
// len(arena) is for a newer state, and reads as a miss.
type adjState struct {
	slots []adjSlot
	arena []byte
	used  int // slots in use (writers only)
}

type adjSlot struct {
	tag atomic.Uint64 // adjKey.hash()|1; 0: empty
	off atomic.Uint64 // the list's header in the arena
}

// listHeaderSize is the size of a list's header in the arena: the key's
// id, tag and relation, the edge count (4 bytes at 20) and upTo (8 bytes
// at 24).
const listHeaderSize = 32

// edgeRecSize is the arena size of one edge record: the far end's id, the
// index, and the ends of its name and attrs in the list's byte area.
const edgeRecSize = IDSize + 8 + 4 + 4

// minAdjSlots is a shard's first table size.
const minAdjSlots = 1 << 10

// adjList is a decoded adjacency list: n edge records, then the names and
// attrs they point into. It is immutable: readers share it.
type adjList struct {
	upTo uint64
	recs []byte // n × edgeRecSize
	buf  []byte // names and attrs
}

func (l *adjList) len() int { return len(l.recs) / edgeRecSize }

// edge returns edge i: the far end, the index, and the name and attrs.
func (l *adjList) edge(i int) (other ID, idx uint64, name, attrs []byte) {
	r := l.recs[i*edgeRecSize : (i+1)*edgeRecSize]
	copy(other[:], r)
	idx = binary.LittleEndian.Uint64(r[IDSize:])
	ne := binary.LittleEndian.Uint32(r[IDSize+8:])
	ae := binary.LittleEndian.Uint32(r[IDSize+12:])
	ns := uint32(0)
	if i > 0 {
		ns = binary.LittleEndian.Uint32(l.recs[i*edgeRecSize-4:])
	}
	return other, idx, l.buf[ns:ne:ne], l.buf[ne:ae:ae]
}

// appendEdge adds an edge record to a list being built.
func (l *adjList) appendEdge(other ID, idx uint64, name, attrs []byte) {
	l.buf = append(l.buf, name...)
	ne := uint32(len(l.buf))
	l.buf = append(l.buf, attrs...)
	l.recs = append(l.recs, other[:]...)
	l.recs = binary.LittleEndian.AppendUint64(l.recs, idx)
	l.recs = binary.LittleEndian.AppendUint32(l.recs, ne)
	l.recs = binary.LittleEndian.AppendUint32(l.recs, uint32(len(l.buf)))
}

func newAdjCache(size int64) *adjCache {
	return &adjCache{maxShardBytes: max(size/adjShards, 1), touched: make([]atomic.Uint64, 1<<touchBucketBits)}
}

func (k *adjKey) hash() uint64 {
	// Ids are SHA-256 prefixes: their bytes after the kind are uniform.
	h := binary.LittleEndian.Uint64(k.id[1:9]) ^ uint64(k.tag)<<56 ^ uint64(k.rel)<<48
	return h * 0x9E3779B97F4A7C15
}

func (c *adjCache) shard(h uint64) *adjShard { return &c.shards[h>>58] }

func (c *adjCache) bucket(h uint64) *atomic.Uint64 {
	return &c.touched[(h>>8)&(1<<touchBucketBits-1)]
}

// headerKey reports whether the list header at arena[off:] is k's.
func headerKey(arena []byte, off uint64, k *adjKey) bool {
	hd := arena[off : off+listHeaderSize]
	return ID(hd[:IDSize]) == k.id && hd[IDSize] == k.tag && Rel(hd[IDSize+1]) == k.rel
}

// find returns the arena offset of k's list in st (tag = k.hash()|1),
// or false. Only lists within st's arena count.
func (st *adjState) find(k *adjKey, tag uint64) (uint64, bool) {
	if len(st.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(st.slots) - 1)
	for i := tag & mask; ; i = (i + 1) & mask {
		t := st.slots[i].tag.Load()
		if t == 0 {
			return 0, false
		}
		if t != tag {
			continue
		}
		off := st.slots[i].off.Load()
		if off+listHeaderSize > uint64(len(st.arena)) {
			return 0, false // a list of a newer state
		}
		if headerKey(st.arena, off, k) {
			return off, true
		}
	}
}

// list returns the list whose header is at arena[off:], if it lies
// within the arena.
func (st *adjState) list(off uint64) (adjList, bool) {
	hd := st.arena[off : off+listHeaderSize]
	n := uint64(binary.LittleEndian.Uint32(hd[20:]))
	l := adjList{upTo: binary.LittleEndian.Uint64(hd[24:])}
	recEnd := off + listHeaderSize + n*edgeRecSize
	if recEnd > uint64(len(st.arena)) {
		return l, false
	}
	bufEnd := recEnd
	if n > 0 {
		bufEnd += uint64(binary.LittleEndian.Uint32(st.arena[recEnd-4:]))
	}
	if bufEnd > uint64(len(st.arena)) {
		return l, false
	}
	l.recs = st.arena[off+listHeaderSize : recEnd : recEnd]
	l.buf = st.arena[recEnd:bufEnd:bufEnd]
	return l, true
}

// get returns the list for k if it is complete for a reader at size n.
func (c *adjCache) get(k *adjKey, n uint64) (adjList, bool) {
	h := k.hash()
	s := c.shard(h)
	st := s.state.Load()
	var l adjList
	ok := false
	if st != nil {
		var off uint64
		if off, ok = st.find(k, h|1); ok {
			l, ok = st.list(off)
		}
	}
	if !ok {
		s.misses.Add(1)
		return adjList{}, false
	}
	valid := n <= l.upTo
	if !valid {
		// next before start: a reset stores start, then next.
		next := c.next.Load()
		start := c.start.Load()
		valid = l.upTo >= start && n <= next && c.bucket(h).Load() <= l.upTo
	}
	if !valid {
		s.misses.Add(1)
		return adjList{}, false
	}
	s.hits.Add(1)
	return l, true
}

// warm loads, for each key, the table slot, then the list's header, then
// its last record and first name: each pass's loads are independent of
// one another, so the CPU overlaps their cache misses, and get then finds
// the lines cached. It changes nothing and returns a value for a sink.
func (c *adjCache) warm(keys []adjKey) uint64 {
	var states [warmBatch]*adjState
	var offs [warmBatch]uint64
	var x uint64
	keys = keys[:min(len(keys), warmBatch)]
	for i := range keys {
		h := keys[i].hash()
		st := c.shard(h).state.Load()
		states[i], offs[i] = st, ^uint64(0)
		if st == nil || len(st.slots) == 0 {
			continue
		}
		slot := &st.slots[(h|1)&uint64(len(st.slots)-1)]
		if slot.tag.Load() == h|1 {
			offs[i] = slot.off.Load()
		}
	}
	for i := range keys {
		if st := states[i]; st != nil && offs[i]+listHeaderSize <= uint64(len(st.arena)) {
			x += uint64(st.arena[offs[i]+20])
		}
	}
	for i := range keys {
		st := states[i]
		if st == nil || offs[i]+listHeaderSize > uint64(len(st.arena)) {
			continue
		}
		recs := offs[i] + listHeaderSize
		n := uint64(binary.LittleEndian.Uint32(st.arena[offs[i]+20:]))
		if end := recs + n*edgeRecSize; n > 0 && end < uint64(len(st.arena)) {
			x += uint64(st.arena[end-1]) + uint64(st.arena[end])
		}
	}
	return x
}

// warmBatch is the most keys warm takes at once (the lines it loads stay
// in the first-level cache).
const warmBatch = 32

func (c *adjCache) put(k *adjKey, l *adjList) {
	edges := int64(len(l.recs) + len(l.buf))
	size := listHeaderSize + edges
	if edges > c.maxShardBytes/4 || size > c.maxShardBytes || size >= 1<<31 {
		return // a giant list would crowd out the rest
	}
	if l.upTo < c.start.Load() {
		return // read before a reset (e.g. a redaction): maybe stale
	}
	h := k.hash()
	tag := h | 1
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state.Load()
	if st == nil {
		st = &adjState{}
	}
	if off, ok := st.find(k, tag); ok {
		if old, ok := st.list(off); ok && old.upTo >= l.upTo {
			return
		}
	}
	next := &adjState{slots: st.slots, arena: st.arena, used: st.used}
	if int64(len(next.arena))+size > c.maxShardBytes {
		// Full: start the shard over (readers keep the old state as
		// long as they use it). Hot lists come back on their next use.
		next = &adjState{}
	}
	if (next.used+1)*2 > len(next.slots) {
		next.grow()
	}
	if int64(cap(next.arena)-len(next.arena)) < size {
		// A new array: readers keep the old one.
		grown := make([]byte, len(next.arena), min(max(2*int64(cap(next.arena)), int64(len(next.arena))+size, 64<<10), c.maxShardBytes))
		copy(grown, next.arena)
		next.arena = grown
	}
	// Bytes past a published state's length: no reader looks at them
	// before the new state is published.
	off := uint64(len(next.arena))
	var hd [listHeaderSize]byte
	copy(hd[:], k.id[:])
	hd[IDSize], hd[IDSize+1] = k.tag, byte(k.rel)
	binary.LittleEndian.PutUint32(hd[20:], uint32(l.len()))
	binary.LittleEndian.PutUint64(hd[24:], l.upTo)
	next.arena = append(next.arena, hd[:]...)
	next.arena = append(next.arena, l.recs...)
	next.arena = append(next.arena, l.buf...)
	s.state.Store(next)
	next.set(k, tag, off)
}

// set points k's slot (a new one, or the one k has) at off.
func (st *adjState) set(k *adjKey, tag, off uint64) {
	mask := uint64(len(st.slots) - 1)
	for i := tag & mask; ; i = (i + 1) & mask {
		sl := &st.slots[i]
		t := sl.tag.Load()
		if t == 0 {
			sl.off.Store(off)
			sl.tag.Store(tag)
			st.used++
			return
		}
		if t == tag {
			if o := sl.off.Load(); o+listHeaderSize <= uint64(len(st.arena)) && headerKey(st.arena, o, k) {
				sl.off.Store(off)
				return
			}
		}
	}
}

// grow gives st a table twice as large (a new array: readers of the old
// state keep the old one) holding the same lists.
func (st *adjState) grow() {
	old := st.slots
	st.slots = make([]adjSlot, max(2*len(old), minAdjSlots))
	mask := uint64(len(st.slots) - 1)
	for i := range old {
		t := old[i].tag.Load()
		if t == 0 {
			continue
		}
		j := t & mask
		for st.slots[j].tag.Load() != 0 {
			j = (j + 1) & mask
		}
		st.slots[j].off.Store(old[i].off.Load())
		st.slots[j].tag.Store(t)
	}
}

// touch records that entry idx added an edge to the list k.
func (c *adjCache) touch(k adjKey, idx uint64) {
	b := c.bucket(k.hash())
	for {
		old := b.Load()
		if old > idx || b.CompareAndSwap(old, idx+1) {
			return
		}
	}
}

// reset forgets everything: the indexer's view of the store starts at
// start (called when the store moved behind the indexer's back).
func (c *adjCache) reset(start uint64) {
	c.start.Store(start)
	c.next.Store(start)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.state.Store(nil)
		s.mu.Unlock()
	}
}

// CacheStats counts adjacency cache lookups.
type CacheStats struct {
	Hits, Misses uint64
}

// CacheStats returns the adjacency cache's counters (zero when the cache
// is off).
func (ix *Indexer) CacheStats() CacheStats {
	if ix.adj == nil {
		return CacheStats{}
	}
	var st CacheStats
	for i := range ix.adj.shards {
		st.Hits += ix.adj.shards[i].hits.Load()
		st.Misses += ix.adj.shards[i].misses.Load()
	}
	return st
}

// NewReader returns a reader of the graph as of log size size that uses
// the indexer's adjacency cache. completeBelow is the size of a
// checkpoint published before the call: every index key of the entries
// below it is committed, so lists the reader reads can be cached as
// complete below it. db is the indexer's log's store.
func (ix *Indexer) NewReader(db *pebble.DB, size, completeBelow uint64) (*Reader, error) {
	r, err := NewReader(db, size)
	if err != nil {
		return nil, err
	}
	if ix.adj != nil && completeBelow >= size {
		r.adj, r.complete = ix.adj, completeBelow
	}
	return r, nil
}
