package query

import (
	"testing"

	"github.com/provledger/provledger/query/graph"
)

// TestSessionPositionsWithHashCollisions: ids that share the 64 bits
// session.pos is keyed by still get their own positions.
func TestSessionPositionsWithHashCollisions(t *testing.T) {
	s := &session{pos: map[uint64]int32{}}
	var ids []graph.ID
	for k := 0; k < 4; k++ {
		var id graph.ID
		id[0] = byte(graph.Dataset)
		copy(id[1:9], "samehash")
		id[15] = byte(k)
		ids = append(ids, id)
	}
	other := graph.NodeID(graph.Job, "ns", "job")
	ids = append(ids, other)
	for i, id := range ids {
		if got := s.add(id, i, nil); got != int32(i) {
			t.Fatalf("add %d: position %d", i, got)
		}
	}
	for i, id := range ids {
		if got := s.add(id, 99, nil); got != int32(i) {
			t.Errorf("add again %d: position %d", i, got)
		}
		if p := s.posOf(id); p != int32(i) || s.depthOf(id) != i {
			t.Errorf("id %d: position %d depth %d", i, p, s.depthOf(id))
		}
	}
	var missing graph.ID
	copy(missing[1:9], "samehash")
	missing[15] = 200
	if p := s.posOf(missing); p != -1 {
		t.Errorf("an id never added has position %d", p)
	}
}
