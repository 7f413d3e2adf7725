package query

import "slices"

// Memory-level parallelism. A large answer is bound by memory latency,
// not by instructions: each node reached probes the node-position table
// in a line other work has long evicted. One at a time, each of those
// loads waits for the one before (a find depends on the probe, the next
// node's work waits for this one's). A short loop that only loads the
// lines a batch of nodes will need issues the loads independently, so the
// CPU overlaps their misses; the work that follows then finds them in
// the cache. The loaded values go to a sink so the loads are kept. The
// adjacency lists of a traversal level are warmed the same way
// (graph.Reader.Warm).

// warmHops loads the position-table slots of the nodes hops reach.
func (t *posTable) warmHops(hops []hop) {
	if len(t.slots) == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	var x uint64
	for i := range hops {
		x += t.slots[posHash(&hops[i].next)&mask]
	}
	t.sink += x
}

// radixSort sorts keys ascending with tmp (at least len(keys) words) as
// its second buffer and returns the sorted words (keys or tmp): a
// least-significant-digit radix sort, a byte a pass, skipping the bytes
// every key shares (a level's kind byte). Unlike a comparison sort it
// takes no unpredictable branch per comparison, which on the random bits
// of node ids cost more than the comparisons themselves.
func radixSort(keys, tmp []uint64) []uint64 {
	if len(keys) < 64 {
		slices.Sort(keys)
		return keys
	}
	var count [8][256]uint32
	for _, k := range keys {
		for b := range 8 {
			count[b][byte(k>>(8*b))]++
		}
	}
	src, dst := keys, tmp[:len(keys)]
	for b := range 8 {
		c := &count[b]
		if c[byte(src[0]>>(8*b))] == uint32(len(src)) {
			continue // every key has this byte
		}
		sum := uint32(0)
		for i := range c {
			sum, c[i] = sum+c[i], sum
		}
		shift := uint(8 * b)
		for _, k := range src {
			d := byte(k >> shift)
			dst[c[d]] = k
			c[d]++
		}
		src, dst = dst, src
	}
	return src
}
