package query

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
)

// TestSessionPositionsWithHashCollisions: ids that share the 64 bits
// session.pos is keyed by still get their own positions.
func TestSessionPositionsWithHashCollisions(t *testing.T) {
	s := &session{}
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

// TestRenderNamesThatRenderAlike: nodes whose rendered names coincide
// (name parts holding ':') get distinct keys, "#2", "#3"…, whatever order
// they come in, and a real name that looks like such a key stays distinct.
func TestRenderNamesThatRenderAlike(t *testing.T) {
	type node struct {
		parts [2]string
	}
	cases := []struct {
		name  string
		nodes []node
		want  []string
	}{
		{"distinct", []node{{[2]string{"s3://b", "x"}}, {[2]string{"s3://b", "y"}}}, []string{"dataset:s3://b:x", "dataset:s3://b:y"}},
		{"two alike", []node{{[2]string{"a:b", "c"}}, {[2]string{"a", "b:c"}}}, []string{"dataset:a:b:c", "dataset:a:b:c#2"}},
		{"three alike", []node{{[2]string{"a:b", "c"}}, {[2]string{"a", "b:c"}}, {[2]string{"a:b:c", ""}}}, nil},
		{"alike and a name like a key", []node{{[2]string{"a", "b#2"}}, {[2]string{"a:b", "c"}}, {[2]string{"a", "b:c"}}, {[2]string{"a", "b:c#2"}}, {[2]string{"a:b", ""}}},
			[]string{"dataset:a:b#2", "dataset:a:b:c", "dataset:a:b:c#2", "dataset:a:b:c#2#2", "dataset:a:b:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &session{entries: &entrySet{}, ans: &answer.Answer{}, infos: map[graph.ID]graph.NodeInfo{}}
			for i, n := range tc.nodes {
				id := graph.NodeID(graph.Dataset, n.parts[0], n.parts[1])
				p := s.add(id, 0, graph.EncodeName(graph.Dataset, n.parts[0], n.parts[1]))
				s.touchAt(p, uint64(i))
			}
			if err := s.render(); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for i, n := range s.ans.Nodes {
				if seen[n.Key] {
					t.Errorf("key %q twice", n.Key)
				}
				seen[n.Key] = true
				if tc.want != nil && n.Key != tc.want[i] {
					t.Errorf("node %d: key %q, want %q", i, n.Key, tc.want[i])
				}
				if n.Ref.Parts[0] != tc.nodes[i].parts[0] || n.Ref.Parts[1] != tc.nodes[i].parts[1] {
					t.Errorf("node %d: parts %q", i, n.Ref.Parts)
				}
			}
		})
	}
}

// TestEntrySet: entries come out ascending, each once, below and above
// the bitset's range, and a reset set is empty.
func TestEntrySet(t *testing.T) {
	cases := []struct {
		in, want []uint64
	}{
		{nil, []uint64{}},
		{[]uint64{5, 5, 5}, []uint64{5}},
		{[]uint64{64, 63, 0, 1, 127, 128, 63}, []uint64{0, 1, 63, 64, 127, 128}},
		{[]uint64{maxDenseEntries + 7, 3, maxDenseEntries - 1, maxDenseEntries + 7, maxDenseEntries}, []uint64{3, maxDenseEntries - 1, maxDenseEntries, maxDenseEntries + 7}},
		{[]uint64{100000, 99999, 1 << 40, 2}, []uint64{2, 99999, 100000, 1 << 40}},
	}
	var e entrySet // reused across cases, as the pool does
	for i, tc := range cases {
		for _, x := range tc.in {
			e.add(x)
		}
		got := e.sorted()
		if !slices.Equal(got, tc.want) || got == nil {
			t.Errorf("case %d: %v, want %v", i, got, tc.want)
		}
		e.reset()
		if s := e.sorted(); len(s) != 0 {
			t.Errorf("case %d: after reset: %v", i, s)
		}
	}
}

// TestPosTableGrows: positions survive the table's growth, for distinct
// ids and for ids whose hashes collide, and a reset table is empty.
func TestPosTableGrows(t *testing.T) {
	s := &session{}
	var ids []graph.ID
	for i := 0; i < 5000; i++ {
		if i%7 == 0 {
			var id graph.ID // all of these share their hash
			id[0] = byte(graph.Column)
			copy(id[1:9], "collides")
			id[10], id[11] = byte(i), byte(i>>8)
			ids = append(ids, id)
			continue
		}
		ids = append(ids, graph.NodeID(graph.Dataset, "ns", string(rune('a'+i%26)), string(rune(i))))
	}
	for round := 0; round < 2; round++ {
		for i, id := range ids {
			if got := s.add(id, i, nil); got != int32(i) {
				t.Fatalf("round %d: add %d: position %d", round, i, got)
			}
		}
		for i, id := range ids {
			if p, ok := s.lookup(id); !ok || p != int32(i) {
				t.Fatalf("round %d: id %d: position %d %v", round, i, p, ok)
			}
		}
		if _, ok := s.lookup(graph.NodeID(graph.Job, "not", "added")); ok {
			t.Fatal("an id never added was found")
		}
		// As the pool does between sessions.
		s.pos.reset()
		s.order = s.order[:0]
		if _, ok := s.lookup(ids[1]); ok {
			t.Fatal("found after reset")
		}
	}
}

// TestSortLevel: a level sorted by its 64-bit keys is in compareIDs
// order, ids that share the key's bits included, with and without a
// scratch.
func TestSortLevel(t *testing.T) {
	for _, c := range []struct {
		name string
		ids  func(i int) graph.ID
		n    int
	}{
		{"distinct", func(i int) graph.ID {
			return graph.NodeID(graph.Dataset, "ns", string(rune('a'+i%26)), string(rune(i)))
		}, 3000},
		{"shared prefixes", func(i int) graph.ID {
			id := graph.NodeID(graph.Job, "ns", string(rune(i)))
			copy(id[1:6], "same!") // 44 shared bits and more
			id[6] = byte(i % 3)
			return id
		}, 500},
		{"one", func(int) graph.ID { return graph.NodeID(graph.Run, "r") }, 1},
		{"none", nil, 0},
	} {
		for _, sc := range []*scratch{nil, getScratch()} {
			s := &session{sc: sc}
			var level []levelItem
			for i := 0; i < c.n; i++ {
				level = append(level, levelItem{id: c.ids(i), depth: i, pos: int32(i)})
			}
			want := slices.Clone(level)
			slices.SortFunc(want, func(a, b levelItem) int { return compareIDs(&a.id, &b.id) })
			got, spare := s.sortLevel(level, nil)
			if !slices.Equal(got, want) {
				t.Errorf("%s: not in id order", c.name)
			}
			if len(spare) != 0 {
				t.Errorf("%s: spare has %d items", c.name, len(spare))
			}
		}
	}
}

// TestSessionNames: names are kept in the session's buffer, those past
// its bound beside it, and a node first added without a name learns it
// later.
func TestSessionNames(t *testing.T) {
	defer func(m uint64) { maxNames = m }(maxNames)
	maxNames = 20
	s := &session{}
	var want [][]byte
	for i := 0; i < 6; i++ {
		id := graph.NodeID(graph.Dataset, "ns", string(rune('a'+i)))
		name := graph.EncodeName(graph.Dataset, "ns", string(rune('a'+i)))
		if i == 2 {
			s.add(id, i, nil)
			if s.nameOf(2) != nil {
				t.Fatal("a node added without a name has one")
			}
		}
		s.add(id, i, name)
		want = append(want, name)
	}
	if len(s.bigNames) == 0 || len(s.names) > 20 {
		t.Fatalf("%d bytes in the buffer, %d names beside it", len(s.names), len(s.bigNames))
	}
	for i, w := range want {
		if got := s.nameOf(i); string(got) != string(w) {
			t.Errorf("node %d: name %q, want %q", i, got, w)
		}
	}
}

// TestRadixSort: radixSort orders like slices.Sort, keys that share
// bytes, repeat or are few included.
func TestRadixSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name string
		n    int
		gen  func() uint64
	}{
		{"random", 5000, rng.Uint64},
		{"a shared top byte", 3000, func() uint64 { return 0x44<<56 | rng.Uint64()>>8 }},
		{"repeats", 2000, func() uint64 { return rng.Uint64N(50) << 20 }},
		{"few", 10, rng.Uint64},
		{"all alike", 100, func() uint64 { return 7 }},
		{"none", 0, rng.Uint64},
	} {
		keys := make([]uint64, c.n)
		for i := range keys {
			keys[i] = c.gen()
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		if got := radixSort(keys, make([]uint64, c.n)); !slices.Equal(got, want) {
			t.Errorf("%s: not sorted", c.name)
		}
	}
	if !uniqueKeys([]uint64{3, 1, 2}, make([]uint64, 3)) || uniqueKeys([]uint64{3, 1, 3}, make([]uint64, 3)) {
		t.Error("uniqueKeys")
	}
}
