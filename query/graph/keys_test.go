package graph

import (
	"fmt"
	"slices"
	"testing"
)

// TestNameArena: names decoded through one arena (chunks filled and
// replaced many times over) are the same as decoded alone, and stay so
// after later decodes; appending to a node's parts never overwrites
// another node's.
func TestNameArena(t *testing.T) {
	type named struct {
		kind  Kind
		parts []string
	}
	var nodes []named
	for i := 0; i < 5000; i++ {
		switch i % 5 {
		case 0:
			nodes = append(nodes, named{Dataset, []string{"s3://bucket", fmt.Sprintf("path/to/table_%d", i)}})
		case 1:
			nodes = append(nodes, named{Run, []string{fmt.Sprintf("0190c0de-0000-7000-8000-%012d", i)}})
		case 2:
			nodes = append(nodes, named{Column, []string{"pg://db:5432", "public.orders", fmt.Sprintf("col_%d", i)}})
		case 3:
			nodes = append(nodes, named{DatasetVersion, []string{"ns", "name", ""}})
		case 4:
			// Bigger than a chunk's share: allocated on its own.
			nodes = append(nodes, named{Job, []string{"airflow", string(make([]byte, nameChunk/4+i))}})
		}
	}
	var a NameArena
	type got struct {
		info NodeInfo
		name string
	}
	var gots []got
	for _, n := range nodes {
		id := NodeID(n.kind, n.parts...)
		ni, name, err := a.DecodeNamed(id, EncodeName(n.kind, n.parts...))
		if err != nil {
			t.Fatal(err)
		}
		gots = append(gots, got{ni, name})
	}
	for i, n := range nodes {
		g := gots[i]
		want := NodeName(n.kind, n.parts...)
		if g.name != want || g.info.Kind != n.kind || !slices.Equal(g.info.Parts, n.parts) || g.info.ID != NodeID(n.kind, n.parts...) {
			t.Fatalf("node %d: %q %v %q, want %q %v %q", i, g.name, g.info.Kind, g.info.Parts, want, n.kind, n.parts)
		}
		single, sname, err := DecodeNamed(g.info.ID, EncodeName(n.kind, n.parts...))
		if err != nil || sname != want || !slices.Equal(single.Parts, n.parts) {
			t.Fatalf("node %d alone: %q %q %v", i, sname, single.Parts, err)
		}
	}
	// Parts have no spare capacity: appending copies.
	p := append(gots[0].info.Parts, "extra")
	_ = p
	if !slices.Equal(gots[1].info.Parts, nodes[1].parts) {
		t.Errorf("appending to one node's parts changed the next: %q", gots[1].info.Parts)
	}
	for _, bad := range [][]byte{nil, {byte(Dataset), 5, 'a'}} {
		if _, _, err := a.DecodeNamed(ID{}, bad); err == nil {
			t.Errorf("name %x decoded", bad)
		}
	}
}
