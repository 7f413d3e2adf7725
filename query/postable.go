package query

import (
	"github.com/provledger/provledger/query/graph"
)

// posTable finds a node's position in session.order by its id: an
// open-addressing table of 8-byte slots, each the position plus one
// (high 32 bits; 0: empty) and 32 bits of the id's hash (low), probed
// linearly. For the 10,000 nodes of a large answer it is 256 KiB that
// stays in the caches, where a Go map of the same keys is several times
// larger. The stored hash bits settle almost every miss without touching
// the node; a match is confirmed against the node's full id, so ids whose
// hashes collide keep their own positions.
type posTable struct {
	slots []uint64
	n     int
	sink  uint64 // see warmHops
}

// minPosSlots is the smallest table (a power of two).
const minPosSlots = 1 << 10

func (t *posTable) find(order []pendingNode, id *graph.ID, h uint64) (int32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	frag := h >> 32
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if s&0xffffffff == frag {
			if p := int32(s>>32) - 1; order[p].id == *id {
				return p, true
			}
		}
	}
}

// insert records that the node with hash h is at position p (not in the
// table yet).
func (t *posTable) insert(order []pendingNode, h uint64, p int32) {
	if (t.n+1)*2 > len(t.slots) {
		t.grow(order)
	}
	t.put(h, p)
	t.n++
}

func (t *posTable) put(h uint64, p int32) {
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = uint64(p+1)<<32 | h>>32
}

// grow doubles the table and puts back the nodes already in it (the
// positions below t.n).
func (t *posTable) grow(order []pendingNode) {
	t.slots = make([]uint64, max(2*len(t.slots), minPosSlots))
	for p := 0; p < t.n; p++ {
		t.put(posHash(&order[p].id), int32(p))
	}
}

// reset empties the table, keeping its memory.
func (t *posTable) reset() {
	clear(t.slots)
	t.n = 0
}

// posHash mixes 64 bits of a node id (ids are SHA-256 prefixes after the
// kind byte, so the bits are uniform) with the kind.
func posHash(id *graph.ID) uint64 {
	return (idHash(*id) ^ uint64(id[0])<<56) * 0x9E3779B97F4A7C15
}
