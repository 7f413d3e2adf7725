package graph

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/query/payload"
)

// Reader reads the graph as of a log size: it sees exactly what the
// entries below that size asserted. A Reader is not safe for concurrent
// use; make one per query and Close it.
type Reader struct {
	db   *pebble.DB
	size uint64
	it   *pebble.Iterator
	// nit reads node records only: the lookups of one adjacency list come
	// in increasing key order, which Pebble serves by stepping forward
	// instead of seeking from the top (TrySeekUsingNext).
	nit *pebble.Iterator
	// Reads counts the keys the reader visited (a cost measure).
	Reads int
	// adj, when set, caches adjacency lists complete below complete.
	adj      *adjCache
	complete uint64
	sink     uint64 // see Warm
}

// NewReader returns a reader of db's graph as of log size size (entries
// [0, size)). The caller picks a size at or below the latest checkpoint's,
// whose index keys are all committed.
func NewReader(db *pebble.DB, size uint64) (*Reader, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return nil, fmt.Errorf("query index: %w", err)
	}
	nit, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix, tagNode}, UpperBound: []byte{prefix, tagNode + 1}})
	if err != nil {
		it.Close()
		return nil, fmt.Errorf("query index: %w", err)
	}
	return &Reader{db: db, size: size, it: it, nit: nit}, nil
}

// Close releases the reader. Closing it again does nothing (a Pebble
// iterator closed twice would go back to Pebble's pool twice, and two
// later iterators would share it).
func (r *Reader) Close() error {
	if r.it == nil {
		return nil
	}
	err := errors.Join(r.it.Close(), r.nit.Close())
	r.it, r.nit = nil, nil
	return err
}

// Size is the log size the reader sees the graph at.
func (r *Reader) Size() uint64 { return r.size }

// Indexed returns the number of entries the index covers.
func (r *Reader) Indexed() (uint64, error) {
	v, ok, err := r.get(keyNext)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("query index: position has %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func (r *Reader) get(key []byte) ([]byte, bool, error) {
	r.Reads++
	if !r.it.SeekGE(key) {
		return nil, false, r.it.Error()
	}
	if !bytes.Equal(r.it.Key(), key) {
		return nil, false, nil
	}
	v, err := r.it.ValueAndErr()
	if err != nil {
		return nil, false, err
	}
	return bytes.Clone(v), true, nil
}

// scan calls fn for each key with prefix p, in order, until fn returns
// false. key and value are only valid during the call, and fn must not
// use the reader (the scan shares its iterator): the public methods
// collect what they read, then call their callbacks.
func (r *Reader) scan(p []byte, fn func(key, value []byte) (bool, error)) error {
	for ok := r.it.SeekGE(p); ok && bytes.HasPrefix(r.it.Key(), p); ok = r.it.Next() {
		r.Reads++
		v, err := r.it.ValueAndErr()
		if err != nil {
			return err
		}
		more, err := fn(r.it.Key(), v)
		if err != nil || !more {
			return err
		}
	}
	return r.it.Error()
}

// Node returns the node with id, if an entry below the reader's size
// asserted it.
func (r *Reader) Node(id ID) (NodeInfo, bool, error) {
	r.Reads++
	var k [2 + IDSize]byte
	k[0], k[1] = prefix, tagNode
	copy(k[2:], id[:])
	if !r.nit.SeekGE(k[:]) || !bytes.Equal(r.nit.Key(), k[:]) {
		return NodeInfo{}, false, r.nit.Error()
	}
	v, err := r.nit.ValueAndErr()
	if err != nil {
		return NodeInfo{}, false, err
	}
	n, err := decodeNode(id, v)
	if err != nil {
		return NodeInfo{}, false, err
	}
	if n.Index >= r.size {
		return NodeInfo{}, false, nil
	}
	return n, true, nil
}

// Edge is an edge as read: Src → Dst by Rel, first asserted by entry
// Index; Name is the encoded name of the end the read came to (Dst for
// Out, Src for In: see DecodeName); Attrs is its JSON annotation
// (DerivationAttrs, ReadAttrs) or empty.
type Edge struct {
	Src, Dst ID
	Rel      Rel
	Index    uint64
	Name     []byte
	Attrs    []byte
}

// Out calls fn for each edge src → * of relation rel visible at the
// reader's size, in order of the destination's id, until fn returns false.
func (r *Reader) Out(src ID, rel Rel, fn func(Edge) bool) error {
	return r.adjacent(tagOut, src, rel, fn)
}

// In calls fn for each edge * → dst of relation rel visible at the
// reader's size (Edge.Src is the other end), until fn returns false.
func (r *Reader) In(dst ID, rel Rel, fn func(Edge) bool) error {
	return r.adjacent(tagIn, dst, rel, fn)
}

func (r *Reader) adjacent(tag byte, a ID, rel Rel, fn func(Edge) bool) error {
	edges, err := r.appendAdjacent(nil, tag, a, rel)
	if err != nil {
		return err
	}
	for _, e := range edges {
		if !fn(e) {
			break
		}
	}
	return nil
}

// AppendOut appends to buf the edges src → * of relation rel visible at
// the reader's size, in order of the destination's id. Attrs point into
// memory the next call may reuse only when buf is reused: they are copies.
func (r *Reader) AppendOut(buf []Edge, src ID, rel Rel) ([]Edge, error) {
	return r.appendAdjacent(buf, tagOut, src, rel)
}

// AppendIn appends to buf the edges * → dst of relation rel visible at
// the reader's size (Edge.Src is the other end).
func (r *Reader) AppendIn(buf []Edge, dst ID, rel Rel) ([]Edge, error) {
	return r.appendAdjacent(buf, tagIn, dst, rel)
}

func (r *Reader) appendAdjacent(edges []Edge, tag byte, a ID, rel Rel) ([]Edge, error) {
	if r.adj != nil {
		return r.appendCached(edges, tag, a, rel)
	}
	var pb [2 + IDSize + 1]byte
	pb[0], pb[1] = prefix, tag
	copy(pb[2:], a[:])
	pb[2+IDSize] = byte(rel)
	p := pb[:]
	err := r.scan(p, func(k, v []byte) (bool, error) {
		idx, name, attrs, ok := decodeEdgeValue(v)
		if len(k) != len(p)+IDSize || !ok {
			return false, fmt.Errorf("query index: malformed edge %x", k)
		}
		if idx >= r.size {
			return true, nil
		}
		e := Edge{Rel: rel, Index: idx}
		var other ID
		copy(other[:], k[len(p):])
		if tag == tagOut {
			e.Src, e.Dst = a, other
		} else {
			e.Src, e.Dst = other, a
		}
		// One allocation for both: the far end's name, then the attrs.
		buf := make([]byte, len(name)+len(attrs))
		copy(buf, name)
		copy(buf[len(name):], attrs)
		e.Name = buf[:len(name):len(name)]
		if len(attrs) > 0 {
			e.Attrs = buf[len(name):]
		}
		edges = append(edges, e)
		return true, nil
	})
	return edges, err
}

// HasOut reports whether src has any visible edge of relation rel.
func (r *Reader) HasOut(src ID, rel Rel) (bool, error) {
	found := false
	err := r.Out(src, rel, func(Edge) bool { found = true; return false })
	return found, err
}

// collect scans prefix p, decoding each key with dec (which says whether
// to keep the item and whether to go on), then calls fn on the items.
func collect[T any](r *Reader, p []byte, dec func(k, v []byte) (item T, keep, more bool, err error), fn func(T) bool) error {
	var items []T
	err := r.scan(p, func(k, v []byte) (bool, error) {
		it, keep, more, err := dec(k, v)
		if err != nil {
			return false, err
		}
		if keep {
			items = append(items, it)
		}
		return more, nil
	})
	if err != nil {
		return err
	}
	for _, it := range items {
		if !fn(it) {
			break
		}
	}
	return nil
}

// VersionRecord is one history record of a dataset.
type VersionRecord struct {
	Index uint64
	VersionFacts
}

// History calls fn for each version record of dataset ds below the
// reader's size, in log order.
func (r *Reader) History(ds ID, fn func(idx uint64, f VersionFacts) bool) error {
	p := idPrefix(tagHistory, ds)
	return collect(r, p, func(k, v []byte) (VersionRecord, bool, bool, error) {
		if len(k) != len(p)+10 {
			return VersionRecord{}, false, false, fmt.Errorf("query index: malformed history key %x", k)
		}
		rec := VersionRecord{Index: binary.BigEndian.Uint64(k[len(p):])}
		if rec.Index >= r.size {
			return rec, false, false, nil
		}
		if err := json.Unmarshal(v, &rec.VersionFacts); err != nil {
			return rec, false, false, fmt.Errorf("query index: history %x at %d: %w", ds, rec.Index, err)
		}
		return rec, true, true, nil
	}, func(rec VersionRecord) bool { return fn(rec.Index, rec.VersionFacts) })
}

// LatestVersion returns the version of dataset ds's latest completed
// output below the reader's size, and the entry that recorded it.
func (r *Reader) LatestVersion(ds ID) (string, uint64, bool, error) {
	r.Reads++
	p := idPrefix(tagLatest, ds)
	if !r.it.SeekLT(idxKey(tagLatest, ds, r.size)) || !bytes.HasPrefix(r.it.Key(), p) {
		return "", 0, false, r.it.Error()
	}
	k := r.it.Key()
	if len(k) != len(p)+8 {
		return "", 0, false, fmt.Errorf("query index: malformed latest-version key %x", k)
	}
	v, err := r.it.ValueAndErr()
	if err != nil {
		return "", 0, false, err
	}
	return string(v), binary.BigEndian.Uint64(k[len(p):]), true, nil
}

type runRecord struct {
	idx uint64
	f   RunFacts
}

// RunFacts calls fn for each event recorded for run below the reader's
// size, in log order.
func (r *Reader) RunFacts(run ID, fn func(idx uint64, f RunFacts) bool) error {
	p := idPrefix(tagRun, run)
	return collect(r, p, func(k, v []byte) (runRecord, bool, bool, error) {
		if len(k) != len(p)+8 {
			return runRecord{}, false, false, fmt.Errorf("query index: malformed run key %x", k)
		}
		rec := runRecord{idx: binary.BigEndian.Uint64(k[len(p):])}
		if rec.idx >= r.size {
			return rec, false, false, nil
		}
		if err := json.Unmarshal(v, &rec.f); err != nil {
			return rec, false, false, fmt.Errorf("query index: run %x at %d: %w", run, rec.idx, err)
		}
		return rec, true, true, nil
	}, func(rec runRecord) bool { return fn(rec.idx, rec.f) })
}

// CostRef names one cost row: the entry and its position in the payload.
type CostRef struct {
	Index uint64
	Row   int
}

type costRecord struct {
	ref CostRef
	row payload.CostRow
}

// Costs calls fn for every cost row below the reader's size, in log order.
func (r *Reader) Costs(fn func(ref CostRef, row payload.CostRow) bool) error {
	p := []byte{prefix, tagCost}
	return collect(r, p, func(k, v []byte) (costRecord, bool, bool, error) {
		if len(k) != 12 {
			return costRecord{}, false, false, fmt.Errorf("query index: malformed cost key %x", k)
		}
		c := costRecord{ref: CostRef{Index: binary.BigEndian.Uint64(k[2:]), Row: int(binary.BigEndian.Uint16(k[10:]))}}
		if c.ref.Index >= r.size {
			return c, false, false, nil
		}
		if err := json.Unmarshal(v, &c.row); err != nil {
			return c, false, false, fmt.Errorf("query index: cost %d/%d: %w", c.ref.Index, c.ref.Row, err)
		}
		return c, true, true, nil
	}, func(c costRecord) bool { return fn(c.ref, c.row) })
}

// CostsOf calls fn for each cost row linked to target (a run, job or tag)
// below the reader's size, in log order.
func (r *Reader) CostsOf(target ID, fn func(ref CostRef) bool) error {
	p := idPrefix(tagCostBy, target)
	return collect(r, p, func(k, _ []byte) (CostRef, bool, bool, error) {
		if len(k) != len(p)+10 {
			return CostRef{}, false, false, fmt.Errorf("query index: malformed cost link key %x", k)
		}
		ref := CostRef{Index: binary.BigEndian.Uint64(k[len(p):]), Row: int(binary.BigEndian.Uint16(k[len(p)+8:]))}
		if ref.Index >= r.size {
			return ref, false, false, nil
		}
		return ref, true, true, nil
	}, fn)
}

// Cost returns one cost row.
func (r *Reader) Cost(ref CostRef) (payload.CostRow, bool, error) {
	if ref.Index >= r.size {
		return payload.CostRow{}, false, nil
	}
	v, ok, err := r.get(costKey(ref.Index, ref.Row))
	if err != nil || !ok {
		return payload.CostRow{}, false, err
	}
	var row payload.CostRow
	if err := json.Unmarshal(v, &row); err != nil {
		return payload.CostRow{}, false, fmt.Errorf("query index: cost %d/%d: %w", ref.Index, ref.Row, err)
	}
	return row, true, nil
}

// Skip is an entry the index did not index, and why.
type Skip struct {
	Index  uint64
	Class  byte
	Reason string
}

// Skipped calls fn for each entry below the reader's size whose payload
// was not indexed (malformed, not lineage, redacted), in log order.
func (r *Reader) Skipped(fn func(Skip) bool) error {
	p := []byte{prefix, tagSkip}
	return collect(r, p, func(k, v []byte) (Skip, bool, bool, error) {
		if len(k) != 10 || len(v) < 1 {
			return Skip{}, false, false, fmt.Errorf("query index: malformed skip key %x", k)
		}
		s := Skip{Index: binary.BigEndian.Uint64(k[2:]), Class: v[0], Reason: string(v[1:])}
		if s.Index >= r.size {
			return s, false, false, nil
		}
		return s, true, true, nil
	}, fn)
}

// SkipOf returns why entry idx was not indexed, if it was not.
func (r *Reader) SkipOf(idx uint64) (Skip, bool, error) {
	if idx >= r.size {
		return Skip{}, false, nil
	}
	v, ok, err := r.get(skipKey(idx))
	if err != nil || !ok || len(v) < 1 {
		return Skip{}, false, err
	}
	return Skip{Index: idx, Class: v[0], Reason: string(v[1:])}, true, nil
}

// ListKey names an adjacency list: the edges of relation Rel leaving
// node ID (Out) or entering it.
type ListKey struct {
	ID  ID
	Out bool
	Rel Rel
}

// WarmBatch is the most keys Warm takes at once.
const WarmBatch = warmBatch

// Warm prepares reading the adjacency lists of keys (at most WarmBatch;
// AppendOut or AppendIn next): it loads what the adjacency cache holds of
// them with loads independent of one another, so the CPU overlaps their
// cache misses instead of waiting for each list in turn. It changes
// nothing an answer sees.
func (r *Reader) Warm(keys []ListKey) {
	if r.adj == nil {
		return
	}
	var ks [warmBatch]adjKey
	n := min(len(keys), warmBatch)
	for i, k := range keys[:n] {
		ks[i] = adjKey{id: k.ID, tag: tagIn, rel: k.Rel}
		if k.Out {
			ks[i].tag = tagOut
		}
	}
	r.sink += r.adj.warm(ks[:n])
}

// appendCached is appendAdjacent through the adjacency cache: a cached
// list complete at the reader's size, else the list read from the store
// (every edge, whatever its index) and cached as complete below
// r.complete.
func (r *Reader) appendCached(edges []Edge, tag byte, a ID, rel Rel) ([]Edge, error) {
	k := adjKey{a, tag, rel}
	l, ok := r.adj.get(&k, r.size)
	if !ok {
		nl, err := r.readList(tag, a, rel)
		if err != nil {
			return edges, err
		}
		r.adj.put(&k, nl)
		l = *nl
	}
	n := l.len()
	r.Reads += n
	for i := 0; i < n; i++ {
		other, idx, name, attrs := l.edge(i)
		if idx >= r.size {
			continue
		}
		e := Edge{Rel: rel, Index: idx, Name: name}
		if len(attrs) > 0 {
			e.Attrs = attrs
		}
		if tag == tagOut {
			e.Src, e.Dst = a, other
		} else {
			e.Src, e.Dst = other, a
		}
		edges = append(edges, e)
	}
	return edges, nil
}

// readList reads a's whole adjacency list of rel in direction tag.
func (r *Reader) readList(tag byte, a ID, rel Rel) (*adjList, error) {
	var pb [2 + IDSize + 1]byte
	pb[0], pb[1] = prefix, tag
	copy(pb[2:], a[:])
	pb[2+IDSize] = byte(rel)
	p := pb[:]
	l := &adjList{upTo: r.complete}
	err := r.scan(p, func(k, v []byte) (bool, error) {
		idx, name, attrs, ok := decodeEdgeValue(v)
		if len(k) != len(p)+IDSize || !ok {
			return false, fmt.Errorf("query index: malformed edge %x", k)
		}
		r.Reads-- // counted once, when the edge is used
		var other ID
		copy(other[:], k[len(p):])
		l.appendEdge(other, idx, name, attrs)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}
