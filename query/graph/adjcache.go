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

	hits, misses atomic.Uint64
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

type adjShard struct {
	mu    sync.RWMutex
	m     map[adjKey]*adjList
	bytes int64
}

// adjList is an immutable decoded adjacency list: edges in key order;
// names and attrs in buf.
type adjList struct {
	upTo  uint64
	edges []cachedEdge
	buf   []byte
}

type cachedEdge struct {
	other             ID
	idx               uint64
	nameEnd, attrsEnd uint32 // in buf; the name starts where the previous attrs end
}

func newAdjCache(size int64) *adjCache {
	c := &adjCache{maxShardBytes: max(size/adjShards, 1), touched: make([]atomic.Uint64, 1<<touchBucketBits)}
	for i := range c.shards {
		c.shards[i].m = map[adjKey]*adjList{}
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
func (c *adjCache) get(k *adjKey, n uint64) *adjList {
	h := k.hash()
	s := c.shard(h)
	s.mu.RLock()
	l := s.m[*k]
	s.mu.RUnlock()
	if l == nil {
		c.misses.Add(1)
		return nil
	}
	if n <= l.upTo {
		c.hits.Add(1)
		return l
	}
	// next before start: a reset stores start, then next.
	next := c.next.Load()
	start := c.start.Load()
	if l.upTo >= start && n <= next && c.bucket(h).Load() <= l.upTo {
		c.hits.Add(1)
		return l
	}
	c.misses.Add(1)
	return nil
}

func (c *adjCache) put(k *adjKey, l *adjList) {
	h := k.hash()
	s := c.shard(h)
	size := int64(len(l.edges))*int64(40) + int64(len(l.buf)) + 96
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.m[*k]; old != nil {
		if old.upTo >= l.upTo {
			return
		}
		s.bytes -= int64(len(old.edges))*40 + int64(len(old.buf)) + 96
	}
	if s.bytes+size > c.maxShardBytes {
		// Full: start the shard over (cheap, and bounded; hot lists come
		// back on their next use).
		clear(s.m)
		s.bytes = 0
	}
	s.m[*k] = l
	s.bytes += size
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
		s.bytes = 0
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
	return CacheStats{Hits: ix.adj.hits.Load(), Misses: ix.adj.misses.Load()}
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
