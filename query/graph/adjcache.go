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

// adjShard holds its lists in an arena, and its map holds no pointers,
// so the garbage collector neither scans the map nor follows the lists:
// a cache of a million edges costs it nothing.
type adjShard struct {
	mu    sync.RWMutex
	m     map[uint64]adjRef // by adjKey.hash; the ref holds its key
	arena []byte
	// hits and misses count lookups (per shard: concurrent queries do not
	// fight over one counter).
	hits, misses atomic.Uint64
	_            [64]byte // keep shards on their own cache lines
}

// adjRef locates a list in its shard's arena: n edge records of
// edgeRecSize bytes at off, then the names and attrs (the last record's
// attrsEnd bytes).
type adjRef struct {
	key  adjKey // a list whose key has the same hash is another list
	upTo uint64
	off  uint32
	n    uint32
}

// edgeRecSize is the arena size of one edge record: the far end's id, the
// index, and the ends of its name and attrs in the list's byte area.
const edgeRecSize = IDSize + 8 + 4 + 4

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
	c := &adjCache{maxShardBytes: max(size/adjShards, 1), touched: make([]atomic.Uint64, 1<<touchBucketBits)}
	for i := range c.shards {
		c.shards[i].m = map[uint64]adjRef{}
	}
	return c
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

// get returns the list for k if it is complete for a reader at size n.
func (c *adjCache) get(k *adjKey, n uint64) (adjList, bool) {
	h := k.hash()
	s := c.shard(h)
	s.mu.RLock()
	ref, ok := s.m[h]
	arena := s.arena
	s.mu.RUnlock()
	if !ok || ref.key != *k {
		s.misses.Add(1)
		return adjList{}, false
	}
	valid := n <= ref.upTo
	if !valid {
		// next before start: a reset stores start, then next.
		next := c.next.Load()
		start := c.start.Load()
		valid = ref.upTo >= start && n <= next && c.bucket(h).Load() <= ref.upTo
	}
	if !valid {
		s.misses.Add(1)
		return adjList{}, false
	}
	s.hits.Add(1)
	recEnd := ref.off + ref.n*edgeRecSize
	l := adjList{upTo: ref.upTo, recs: arena[ref.off:recEnd:recEnd]}
	bufEnd := recEnd
	if ref.n > 0 {
		bufEnd += binary.LittleEndian.Uint32(arena[recEnd-4:])
	}
	l.buf = arena[recEnd:bufEnd:bufEnd]
	return l, true
}

func (c *adjCache) put(k *adjKey, l *adjList) {
	size := int64(len(l.recs) + len(l.buf))
	if size > c.maxShardBytes/4 || size >= 1<<31 {
		return // a giant list would crowd out the rest
	}
	if l.upTo < c.start.Load() {
		return // read before a reset (e.g. a redaction): maybe stale
	}
	h := k.hash()
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[h]; ok && old.key == *k && old.upTo >= l.upTo {
		return
	}
	if int64(len(s.arena))+size > c.maxShardBytes {
		// Full: start the shard over with a new arena (readers keep the
		// old one as long as they use it). Hot lists come back on their
		// next use.
		clear(s.m)
		s.arena = make([]byte, 0, min(c.maxShardBytes, 1<<20))
	}
	// Appending never moves bytes a reader holds: it writes past them, or
	// copies into a new array and leaves the old one to its readers.
	off := uint32(len(s.arena))
	s.arena = append(s.arena, l.recs...)
	s.arena = append(s.arena, l.buf...)
	s.m[h] = adjRef{key: *k, upTo: l.upTo, off: off, n: uint32(l.len())}
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
		clear(s.m)
		s.arena = nil
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
