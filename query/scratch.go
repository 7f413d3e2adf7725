package query

import (
	"math/bits"
	"slices"
	"sync"

	"github.com/provledger/provledger/query/graph"
)

// scratch is the working memory of a session that no answer keeps: the
// pending nodes and edges, the node positions, the entries and the
// traversal buffers. A large answer needs megabytes of it; sessions
// borrow it from a pool, so a query reuses memory that earlier ones
// faulted in and grew instead of allocating, zeroing and growing it again
// (which was a tenth of a large query's CPU, and most of its variance).
type scratch struct {
	order   []pendingNode
	pedges  []pendingEdge
	pos     posTable
	entries entrySet
	ebuf    []graph.Edge
	hbuf    []hop
	level   []levelItem
	next    []levelItem
	hashes  []uint64 // render's key hashes
	keys    []uint64 // a level's sort keys
	tmp     []uint64 // radixSort's second buffer
	names   []byte   // the nodes' encoded names
}

// levelItem is a node of a traversal level.
type levelItem struct {
	id    graph.ID
	depth int
	pos   int32 // in session.order
}

var scratchPool = sync.Pool{New: func() any { return &scratch{} }}

// maxPooled caps what a scratch keeps when it goes back to the pool (in
// elements of its largest slices): a rare giant answer does not pin its
// memory for ever.
const maxPooled = 1 << 17

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

// release clears what sc holds (nothing it returns to the pool points
// into the adjacency cache or an answer) and returns it to the pool.
func (sc *scratch) release() {
	if cap(sc.order) > maxPooled || cap(sc.pedges) > maxPooled || len(sc.pos.slots) > 4*maxPooled || cap(sc.hashes) > maxPooled || cap(sc.keys) > maxPooled || cap(sc.tmp) > maxPooled || cap(sc.names) > 64*maxPooled {
		return
	}
	clear(sc.order)
	clear(sc.pedges)
	clear(sc.ebuf)
	clear(sc.hbuf)
	sc.order, sc.pedges, sc.ebuf, sc.hbuf = sc.order[:0], sc.pedges[:0], sc.ebuf[:0], sc.hbuf[:0]
	sc.level, sc.next, sc.hashes, sc.keys, sc.tmp, sc.names = sc.level[:0], sc.next[:0], sc.hashes[:0], sc.keys[:0], sc.tmp[:0], sc.names[:0]
	sc.pos.reset()
	sc.entries.reset()
	scratchPool.Put(sc)
}

// entrySet collects the entries an answer rests on. Below maxDenseEntries
// it is a bitset over the log (words reused across queries; only the
// words set are visited and cleared), so adding an entry costs a few
// instructions and listing them sorts the words touched, not every
// mention; above, a list sorted at the end.
type entrySet struct {
	words   []uint64
	touched []uint32
	// list holds the entries at or above maxDenseEntries.
	list []uint64
}

// maxDenseEntries bounds the bitset (512 KiB).
const maxDenseEntries = 1 << 22

func (e *entrySet) add(idx uint64) {
	if idx >= maxDenseEntries {
		e.list = append(e.list, idx)
		return
	}
	w := idx >> 6
	if w >= uint64(len(e.words)) {
		n := min(max(int(w)+1, 2*len(e.words)), maxDenseEntries/64)
		e.words = append(e.words, make([]uint64, n-len(e.words))...)
	}
	if e.words[w] == 0 {
		e.touched = append(e.touched, uint32(w))
	}
	e.words[w] |= 1 << (idx & 63)
}

// sorted returns the entries, ascending, each once, in a new slice.
func (e *entrySet) sorted() []uint64 {
	n := 0
	for _, w := range e.touched {
		n += bits.OnesCount64(e.words[w])
	}
	slices.Sort(e.list)
	e.list = slices.Compact(e.list)
	out := make([]uint64, 0, n+len(e.list))
	slices.Sort(e.touched)
	for _, w := range e.touched {
		for b := e.words[w]; b != 0; b &= b - 1 {
			out = append(out, uint64(w)<<6|uint64(bits.TrailingZeros64(b)))
		}
	}
	return append(out, e.list...)
}

// reset empties the set, clearing only the words it set.
func (e *entrySet) reset() {
	for _, w := range e.touched {
		e.words[w] = 0
	}
	e.touched, e.list = e.touched[:0], e.list[:0]
}

// scratch returns the session's scratch, a new one if it has none.
func (s *session) scratch() *scratch {
	if s.sc == nil {
		s.sc = &scratch{}
	}
	return s.sc
}

// words lends n words of the scratch buffer *buf.
func (s *session) words(buf *[]uint64, n int) []uint64 {
	*buf = slices.Grow((*buf)[:0], n)[:n]
	return *buf
}
