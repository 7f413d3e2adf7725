package query

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
