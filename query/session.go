package query

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"slices"
	"sort"

	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
)

type pendingNode struct {
	id    graph.ID
	depth int
	// nameOff and nameLen locate the node's encoded name, learnt from an
	// edge that reached it, in session.names (nameLen 0: look it up when
	// rendering; bigName: in session.bigNames).
	nameOff, nameLen uint32
	// index is the smallest index of the answer's edges that touch the
	// node: an entry that asserts it (edges are asserted with their
	// nodes). hasIndex is false for a node no edge touches.
	index    uint64
	hasIndex bool
	// walk is the number of the last traversal that reached the node
	// (session.walks; 0: none).
	walk int32
}

type pendingEdge struct {
	// fi, ti are the positions of the edge's ends (data-flow from, to) in
	// session.order (-1: not in the answer).
	fi, ti int32
	// rc is the answer relation's code (relCode).
	rc  uint8
	ref edgeRef
}

// pendingKey identifies an edge of the answer: its ends' positions (at
// most 2^28 nodes: the budget caps answers far below) and its relation.
type pendingKey uint64

func keyOf(fi, ti int32, rel uint8) pendingKey {
	return pendingKey(uint64(fi)<<36 | uint64(ti)<<8 | uint64(rel))
}

// relCode numbers the answer relations for pendingKey and pendingEdge
// (0: not one of them).
func relCode(rel string) uint8 {
	switch rel {
	case answer.RelInput:
		return 1
	case answer.RelOutput:
		return 2
	case answer.RelDerives:
		return 3
	case answer.RelAffects:
		return 4
	case answer.RelRunOf:
		return 5
	case answer.RelParent:
		return 6
	case answer.RelVersion:
		return 7
	case answer.RelCode:
		return 8
	case answer.RelField:
		return 9
	case answer.RelTagged:
		return 10
	}
	return 0
}

// relExtra is the first code of session.extraRels.
const relExtra = 64

var relByCode = [...]string{"", answer.RelInput, answer.RelOutput, answer.RelDerives, answer.RelAffects,
	answer.RelRunOf, answer.RelParent, answer.RelVersion, answer.RelCode, answer.RelField, answer.RelTagged}

// code returns rel's code, giving a relation relCode does not know one
// of its own.
func (s *session) code(rel string) uint8 {
	if rc := relCode(rel); rc != 0 {
		return rc
	}
	if i := slices.Index(s.extraRels, rel); i >= 0 {
		return uint8(relExtra + i)
	}
	s.extraRels = append(s.extraRels, rel)
	return uint8(relExtra + len(s.extraRels) - 1)
}

// relName is the inverse of code.
func (s *session) relName(rc uint8) string {
	if int(rc) < len(relByCode) {
		return relByCode[rc]
	}
	return s.extraRels[rc-relExtra]
}

// add records a node of the answer (its depth is the smallest seen);
// name, if known, is its encoded name (graph.Edge.Name). It returns the
// node's position in s.order.
func (s *session) add(id graph.ID, depth int, name []byte) int32 {
	h := posHash(&id)
	if i, ok := s.pos.find(s.order, &id, h); ok {
		n := &s.order[i]
		if depth < n.depth {
			n.depth = depth
		}
		if n.nameLen == 0 && len(name) > 0 {
			s.keepName(i, name)
		}
		return i
	}
	i := int32(len(s.order))
	s.order = append(s.order, pendingNode{id: id, depth: depth})
	s.pos.insert(s.order, h, i)
	if len(name) > 0 {
		s.keepName(i, name)
	}
	return i
}

// bigName marks a name kept in session.bigNames.
const bigName = ^uint32(0)

// maxNames bounds session.names (offsets are 32 bits); a variable for
// the tests.
var maxNames = uint64(bigName)

// keepName copies the encoded name of the node at position i into
// session.names: rendering then reads the names front to back, not from
// wherever the adjacency lists that named the nodes lie.
func (s *session) keepName(i int32, name []byte) {
	n := &s.order[i]
	if uint64(len(s.names))+uint64(len(name)) >= maxNames {
		if s.bigNames == nil {
			s.bigNames = map[int32][]byte{}
		}
		s.bigNames[i] = bytes.Clone(name)
		n.nameLen = bigName
		return
	}
	n.nameOff, n.nameLen = uint32(len(s.names)), uint32(len(name))
	s.names = append(s.names, name...)
}

// nameOf returns the encoded name of the node at position i (nil: not
// learnt).
func (s *session) nameOf(i int) []byte {
	n := &s.order[i]
	switch n.nameLen {
	case 0:
		return nil
	case bigName:
		return s.bigNames[int32(i)]
	}
	return s.names[n.nameOff : n.nameOff+n.nameLen]
}

// idHash is 64 bits of a node id (ids are SHA-256 prefixes after their
// kind byte).
func idHash(id graph.ID) uint64 { return binary.LittleEndian.Uint64(id[1:9]) }

// lookup returns the position of node id in s.order.
func (s *session) lookup(id graph.ID) (int32, bool) {
	return s.pos.find(s.order, &id, posHash(&id))
}

// touchAt notes that an edge asserted by entry idx touches the node at
// position i.
func (s *session) touchAt(i int32, idx uint64) {
	if i < 0 {
		return
	}
	if n := &s.order[i]; !n.hasIndex || idx < n.index {
		n.index, n.hasIndex = idx, true
	}
}

func (s *session) depthOf(id graph.ID) int {
	if i, ok := s.lookup(id); ok {
		return s.order[i].depth
	}
	return 0
}

func (s *session) posOf(id graph.ID) int32 {
	if i, ok := s.lookup(id); ok {
		return i
	}
	return -1
}

// link records an edge of the answer, in data-flow direction, between
// nodes already added; ref is the stored edge it renders.
func (s *session) link(from, to graph.ID, rel string, ref edgeRef) {
	s.linkAt(from, to, s.posOf(from), s.posOf(to), rel, ref)
}

// linkAt is link for ends whose positions are known (fi = posOf(from),
// ti = posOf(to)).
func (s *session) linkAt(from, to graph.ID, fi, ti int32, rel string, ref edgeRef) {
	rc := s.code(rel)
	if fi < 0 || ti < 0 || fi >= 1<<28 || ti >= 1<<28 {
		// Not expected; keep the ids in the key so distinct edges stay
		// distinct.
		s.linkSlow(from, to, fi, ti, rc, ref)
		return
	}
	s.syncSeen()
	k := keyOf(fi, ti, rc)
	if _, dup := s.pseen[k]; dup {
		return
	}
	s.pseen[k] = struct{}{}
	s.pseenUpTo++
	s.appendEdge(fi, ti, rc, ref)
}

// linkNew records an edge that cannot be in the answer yet: the first
// traversal of a session reads every stored edge at most once (from the
// end it expands, and each node is expanded once), and stored edges map
// to distinct answer edges. The key is left for syncSeen to index.
func (s *session) linkNew(fi, ti int32, rc uint8, ref edgeRef) {
	s.appendEdge(fi, ti, rc, ref)
}

// syncSeen indexes the keys of the edges linkNew recorded.
func (s *session) syncSeen() {
	if s.pseen == nil {
		s.pseen = make(map[pendingKey]struct{}, max(len(s.pedges), 16))
	}
	for ; s.pseenUpTo < len(s.pedges); s.pseenUpTo++ {
		if pe := &s.pedges[s.pseenUpTo]; pe.fi >= 0 && pe.ti >= 0 {
			s.pseen[keyOf(pe.fi, pe.ti, pe.rc)] = struct{}{}
		}
	}
}

func (s *session) appendEdge(fi, ti int32, rc uint8, ref edgeRef) {
	s.pedges = append(s.pedges, pendingEdge{fi: fi, ti: ti, rc: rc, ref: ref})
	s.touchAt(fi, ref.index)
	s.touchAt(ti, ref.index)
}

type slowKey struct {
	from, to graph.ID
	rc       uint8
}

func (s *session) linkSlow(from, to graph.ID, fi, ti int32, rc uint8, ref edgeRef) {
	if s.pseenSlow == nil {
		s.pseenSlow = map[slowKey]struct{}{}
	}
	k := slowKey{from, to, rc}
	if _, dup := s.pseenSlow[k]; dup {
		return
	}
	s.pseenSlow[k] = struct{}{}
	// Edges recorded out of line are never in pseen: keep pseenUpTo
	// counting the recorded edges it covers.
	s.syncSeen()
	s.appendEdge(fi, ti, rc, ref)
	s.pseenUpTo++
}

// linkEdge is link for a stored edge read from the index.
func (s *session) linkEdge(from, to graph.ID, rel string, e graph.Edge) {
	s.link(from, to, rel, refOf(e))
}

// linkIdx is link for an edge with no attributes.
func (s *session) linkIdx(from, to graph.ID, rel string, idx uint64) {
	s.link(from, to, rel, edgeRef{index: idx})
}

// infoBit is id's bit in session.infoBits, a one-word filter of the ids
// in session.infos: render asks the map only about ids whose bit is set.
func infoBit(id graph.ID) uint64 { return 1 << (idHash(id) & 63) }

// info returns a node's stored name parts (cached), or ErrNotFound when
// no entry below the answer's size asserts it.
func (s *session) info(id graph.ID) (graph.NodeInfo, error) {
	if n, ok := s.infos[id]; ok {
		return n, nil
	}
	n, ok, err := s.r.Node(id)
	if err != nil {
		return n, err
	}
	if !ok {
		if s.r.Size() == 0 {
			return n, fmt.Errorf("%w: no entry asserts that %s: the answer is as of log size 0 (an as-of time before the log's first entry?)", ErrNotFound, id.Kind())
		}
		hint := ""
		if id.Kind() == graph.Run {
			hint = " (a run is named by its OpenLineage run.runId, a UUID, or for in-toto by its invocationId or sha256:<statement digest>)"
		}
		return n, fmt.Errorf("%w: no entry below size %d asserts that %s%s", ErrNotFound, s.r.Size(), id.Kind(), hint)
	}
	s.infos[id] = n
	s.infoBits |= infoBit(id)
	return n, nil
}

// uniqueKeys reports whether the 64-bit hashes of an answer's node keys
// are distinct (it sorts them). Keys almost always are — two nodes render
// alike only when their name parts hold ':' — so render checks them all
// at once, sequentially, instead of looking each one up in a set.
func uniqueKeys(hashes, tmp []uint64) bool {
	hashes = radixSort(hashes, tmp)
	for i := 1; i < len(hashes); i++ {
		if hashes[i] == hashes[i-1] {
			return false
		}
	}
	return true
}

// renameRepeats gives each key that repeats an earlier one (keys holds the
// nodes' names, in order) the suffix #2, #3… that makes it unique.
func renameRepeats(keys []string) {
	used := make(map[string]struct{}, len(keys))
	for i, name := range keys {
		key := name
		if _, dup := used[key]; dup {
			for j := 2; ; j++ { // two nodes that render alike (names with ':')
				key = fmt.Sprintf("%s#%d", name, j)
				if _, dup := used[key]; !dup {
					break
				}
			}
		}
		used[key] = struct{}{}
		keys[i] = key
	}
}

// render names the recorded nodes — from the names their edges carried,
// else by looking them up, in key order (so the store is read front to
// back) — and fills the answer's nodes, edges and paths. A node's index is
// its first assertion when it was looked up (the queried node), else the
// smallest index of the answer's edges that touch it.
func (s *session) render() error {
	var ids []graph.ID
	for _, n := range s.order {
		if n.nameLen != 0 && n.hasIndex {
			continue
		}
		if _, ok := s.infos[n.id]; !ok {
			ids = append(ids, n.id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	for _, id := range ids {
		if _, err := s.info(id); err != nil {
			// An edge below the size names it, so an entry below the
			// size asserted it: the index contradicts itself.
			return fmt.Errorf("%w: the lineage index names node %x, which it does not hold: %v", ledger.ErrCorrupt, id[:], err)
		}
	}
	hashes := s.words(&s.scratch().hashes, len(s.order))
	seed := maphash.MakeSeed()
	s.ans.Nodes = make([]answer.Node, 0, len(s.order))
	var names graph.NameArena
	for i, pn := range s.order {
		var n graph.NodeInfo
		ok := false
		if s.infoBits&infoBit(pn.id) != 0 {
			n, ok = s.infos[pn.id]
		}
		var name string
		if ok {
			name = n.Name()
		} else {
			var err error
			if n, name, err = names.DecodeNamed(pn.id, s.nameOf(i)); err != nil {
				return fmt.Errorf("%w: %v", ledger.ErrCorrupt, err)
			}
			n.Index = pn.index
		}
		hashes[i] = maphash.String(seed, name)
		s.ans.Nodes = append(s.ans.Nodes, answer.Node{Key: name, Ref: answer.Ref{Kind: n.Kind.String(), Parts: n.Parts}, Index: n.Index, Depth: pn.depth})
		s.rests(n.Index)
	}
	if !uniqueKeys(hashes, s.words(&s.scratch().tmp, len(hashes))) {
		keys := make([]string, len(s.ans.Nodes))
		for i := range keys {
			keys[i] = s.ans.Nodes[i].Key
		}
		renameRepeats(keys)
		for i := range keys {
			s.ans.Nodes[i].Key = keys[i]
		}
	}
	keyAt := func(i int32) string {
		if i < 0 {
			return ""
		}
		return s.ans.Nodes[i].Key
	}
	if len(s.pedges) > 0 {
		s.ans.Edges = make([]answer.Edge, 0, len(s.pedges))
	}
	for _, pe := range s.pedges {
		ae := answer.Edge{From: keyAt(pe.fi), To: keyAt(pe.ti), Rel: s.relName(pe.rc), Index: pe.ref.index}
		if len(pe.ref.attrs) > 0 {
			switch pe.ref.rel {
			case graph.DerivedFrom, graph.Affects:
				var a graph.DerivationAttrs
				if json.Unmarshal(pe.ref.attrs, &a) == nil {
					ae.Transformations, ae.RunID = a.Transformations, a.RunID
					j := a.Job
					ae.Job = &j
				}
			case graph.Read:
				var a graph.ReadAttrs
				if json.Unmarshal(pe.ref.attrs, &a) == nil {
					ae.Resolved = a.Resolved
				}
			}
		}
		s.ans.Edges = append(s.ans.Edges, ae)
		s.rests(ae.Index)
	}
	for _, p := range s.paths {
		ks := make([]string, len(p))
		for i, id := range p {
			ks[i] = keyAt(s.posOf(id))
		}
		s.ans.Paths = append(s.ans.Paths, ks)
	}
	return nil
}
