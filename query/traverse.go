package query

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/provledger/provledger/ledger"

	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
)

// hop is one step of a traversal: to the node next, over the stored edge
// ref, which in data-flow direction goes from → to.
type hop struct {
	next, from, to graph.ID
	rel            string
	ref            edgeRef
	name           []byte // next's encoded name
}

// edgeRef is what an answer keeps of a stored edge.
type edgeRef struct {
	index uint64
	rel   graph.Rel
	attrs []byte
}

func refOf(e graph.Edge) edgeRef { return edgeRef{index: e.Index, rel: e.Rel, attrs: e.Attrs} }

func isProcess(k graph.Kind) bool { return k == graph.Job || k == graph.Run }

// listSpec is one adjacency list a traversal step reads: the edges of
// rel leaving the node (out) or entering it; the node is the data-flow
// source of the edges when idIsFrom; arel is the answer relation.
type listSpec struct {
	out      bool
	rel      graph.Rel
	idIsFrom bool
	arel     string
}

// stepLists[down][kind] are the lists a step from a node of that kind
// reads, in data-flow terms: datasets and jobs (dataset level), dataset
// versions and runs (run level), columns (column level; a column's
// downstream also reaches the datasets it affects as a whole, which
// continue at dataset level).
var stepLists = func() (t [2][256][]listSpec) {
	up, down := &t[0], &t[1]
	down[graph.Dataset] = []listSpec{{false, graph.JobReads, true, answer.RelInput}}
	up[graph.Dataset] = []listSpec{{false, graph.JobWrites, false, answer.RelOutput}}
	down[graph.Job] = []listSpec{{true, graph.JobWrites, true, answer.RelOutput}}
	up[graph.Job] = []listSpec{{true, graph.JobReads, false, answer.RelInput}}
	down[graph.Run] = []listSpec{{true, graph.Wrote, true, answer.RelOutput}}
	up[graph.Run] = []listSpec{{true, graph.Read, false, answer.RelInput}}
	down[graph.DatasetVersion] = []listSpec{{false, graph.Read, true, answer.RelInput}}
	up[graph.DatasetVersion] = []listSpec{{false, graph.Wrote, false, answer.RelOutput}}
	down[graph.Column] = []listSpec{{false, graph.DerivedFrom, true, answer.RelDerives}, {false, graph.Affects, true, answer.RelAffects}}
	up[graph.Column] = []listSpec{{true, graph.DerivedFrom, false, answer.RelDerives}}
	return t
}()

func lists(id graph.ID, down bool) []listSpec {
	d := 0
	if down {
		d = 1
	}
	return stepLists[d][id.Kind()]
}

// neighbors appends to hops the nodes one step up- or downstream of id
// (stepLists).
func (s *session) neighbors(hops []hop, id graph.ID, down bool) ([]hop, error) {
	var err error
	for _, l := range lists(id, down) {
		if l.out {
			s.ebuf, err = s.r.AppendOut(s.ebuf[:0], id, l.rel)
		} else {
			s.ebuf, err = s.r.AppendIn(s.ebuf[:0], id, l.rel)
		}
		if err != nil {
			return hops, err
		}
		for _, e := range s.ebuf {
			n := e.Dst
			if !l.out {
				n = e.Src
			}
			if s.namespaces != nil && !s.inNamespaces(e.Name) {
				continue
			}
			h := hop{next: n, from: n, to: id, rel: l.arel, ref: refOf(e), name: e.Name}
			if l.idIsFrom {
				h.from, h.to = id, n
			}
			hops = append(hops, h)
		}
	}
	return hops, nil
}

// warmLevel prepares reading the lists of the level's nodes
// (graph.Reader.Warm).
func (s *session) warmLevel(level []levelItem, down bool) {
	var keys [graph.WarmBatch]graph.ListKey
	n := 0
	for _, it := range level {
		for _, l := range lists(it.id, down) {
			if n == len(keys) {
				s.r.Warm(keys[:n])
				n = 0
			}
			keys[n] = graph.ListKey{ID: it.id, Out: l.out, Rel: l.rel}
			n++
		}
	}
	s.r.Warm(keys[:n])
}

// inNamespaces reports whether the node with the encoded name is inside
// the namespace filter: its first name part (the namespace of datasets,
// dataset versions, columns, jobs and job versions) is one of them. Runs
// and tags have no namespace and pass.
func (s *session) inNamespaces(name []byte) bool {
	if len(name) == 0 {
		return true
	}
	switch graph.Kind(name[0]) {
	case graph.Run, graph.TagNode:
		return true
	}
	l, w := binary.Uvarint(name[1:])
	if w <= 0 || uint64(len(name)-1-w) < l {
		return false
	}
	ns := name[1+w : 1+w+int(l)]
	_, found := slices.BinarySearchFunc(s.namespaces, ns, func(a string, b []byte) int { return strings.Compare(a, string(b)) })
	return found
}

// traverse walks breadth-first from start, up- or downstream. Depth
// counts process steps: a job or run is one deeper than the data it was
// reached from, data as deep as the job or run it was reached from;
// columns count derivation steps. Data at maxDepth is not expanded (the
// answer says so if it had more relations). Every relation read spends
// one unit of the budget.
func (s *session) traverse(start graph.ID, down bool, maxDepth int) error {
	// Level by level (a node's depth only depends on how many steps away
	// it is), each level in key order, so the store is read front to back.
	level, nextLevel := s.levelBufs()
	level = append(level, levelItem{start, 0, s.posOf(start)})
	defer func() { s.keepLevelBufs(level, nextLevel) }()
	// The first traversal of a session reads each stored edge at most
	// once and adds edges no other step added: no need to look each one
	// up (linkNew).
	fresh := len(s.pedges) == 0
	var rcs [256]uint8
	// A node is expanded once per traversal: pendingNode.walk says which
	// traversal reached it last.
	s.walks++
	if i, ok := s.lookup(start); ok {
		s.order[i].walk = s.walks
	}
	for len(level) > 0 {
		level, nextLevel = s.sortLevel(level, nextLevel[:0])
		nextLevel = nextLevel[:0]
		for j, it := range level {
			if j%graph.WarmBatch == 0 {
				s.warmLevel(level[j:min(j+graph.WarmBatch, len(level))], down)
			}
			if err := s.canceled(); err != nil {
				return err
			}
			process := isProcess(it.id.Kind())
			if !process && it.depth >= maxDepth {
				// Say so if the depth hid anything; once said, the other
				// nodes at the limit need not be read.
				if s.ans.Truncated == nil || !s.ans.Truncated.Depth {
					hops, err := s.neighbors(s.hbuf[:0], it.id, down)
					if err != nil {
						return err
					}
					s.hbuf = hops
					if len(hops) > 0 {
						s.cut("depth")
					}
				}
				continue
			}
			hops, err := s.neighbors(s.hbuf[:0], it.id, down)
			if err != nil {
				return err
			}
			s.hbuf = hops
			s.pos.warmHops(hops)
			next := it.depth
			if !process {
				next++
			}
			pi := it.pos
			for _, h := range hops {
				if !s.spend(1) {
					return nil
				}
				i := s.add(h.next, next, h.name)
				fi, ti := pi, i
				if h.from != it.id {
					fi, ti = i, pi
				}
				if fresh {
					rc := rcs[h.ref.rel]
					if rc == 0 {
						rc = s.code(h.rel)
						rcs[h.ref.rel] = rc
					}
					s.linkNew(fi, ti, rc, h.ref)
				} else {
					s.linkAt(h.from, h.to, fi, ti, h.rel, h.ref)
				}
				if n := &s.order[i]; n.walk != s.walks {
					n.walk = s.walks
					if s.stopAt == nil || !s.stopAt[h.next.Kind()] {
						nextLevel = append(nextLevel, levelItem{h.next, next, i})
					}
				}
			}
		}
		level, nextLevel = nextLevel, level
	}
	return nil
}

// levelBufs lends the traversal its two level buffers (empty).
func (s *session) levelBufs() (a, b []levelItem) {
	if s.sc == nil {
		return nil, nil
	}
	a, b = s.sc.level[:0], s.sc.next[:0]
	s.sc.level, s.sc.next = nil, nil
	return a, b
}

func (s *session) keepLevelBufs(a, b []levelItem) {
	if s.sc != nil {
		s.sc.level, s.sc.next = a[:0], b[:0]
	}
}

// sortLevel orders level by id (compareIDs), into buf; it returns the
// sorted level and level's memory for reuse. It sorts 64-bit words — the
// first sortKeyBits bits of the id over the item's position — with the
// compiler's comparison instead of a function call per comparison, then
// orders the rare runs whose ids share those bits by their full ids.
func (s *session) sortLevel(level, buf []levelItem) (sorted, spare []levelItem) {
	if len(level) >= 1<<sortPosBits {
		slices.SortFunc(level, func(a, b levelItem) int { return compareIDs(&a.id, &b.id) })
		return level, buf
	}
	keys := s.words(&s.scratch().keys, len(level))
	for i := range level {
		keys[i] = binary.BigEndian.Uint64(level[i].id[:8])>>sortPosBits<<sortPosBits | uint64(i)
	}
	keys = radixSort(keys, s.words(&s.scratch().tmp, len(keys)))
	for _, k := range keys {
		buf = append(buf, level[k&(1<<sortPosBits-1)])
	}
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j]>>sortPosBits == keys[i]>>sortPosBits {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(buf[i:j], func(a, b levelItem) int { return compareIDs(&a.id, &b.id) })
		}
		i = j
	}
	return buf, level[:0]
}

// sortPosBits is the bits of a sort key that hold the item's position:
// levels of up to 2^20 nodes (more than MaxBudget) sort by key.
const sortPosBits = 20

// compareIDs orders ids as bytes.Compare does, eight bytes at a time.
func compareIDs(a, b *graph.ID) int {
	if x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8]); x != y {
		if x < y {
			return -1
		}
		return 1
	}
	return cmp.Compare(binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:]))
}

// context adds, for every run in the answer, the job it is a run of (and
// for every column, the dataset it belongs to), so run- and column-level
// answers name their jobs and datasets.
func (s *session) addContext() error {
	for i := 0; i < len(s.order); i++ {
		n := s.order[i]
		var rel graph.Rel
		var arel string
		switch n.id.Kind() {
		case graph.Run:
			rel, arel = graph.RunOf, answer.RelRunOf
		case graph.Column:
			rel, arel = graph.FieldOf, answer.RelField
		default:
			continue
		}
		var es []graph.Edge
		if err := s.r.Out(n.id, rel, func(e graph.Edge) bool { es = append(es, e); return true }); err != nil {
			return err
		}
		for _, e := range es {
			if !s.spend(1) {
				return nil
			}
			s.add(e.Dst, n.depth, e.Name)
			s.linkIdx(n.id, e.Dst, arel, e.Index)
		}
	}
	return nil
}

// Upstream answers what fed node (a dataset, job, run, dataset version or
// column), up to req.Depth process steps.
func (e *Engine) Upstream(ctx context.Context, node answer.Ref, req Request) (*answer.Answer, error) {
	return e.walk(ctx, "upstream", node, req, false)
}

// Downstream answers what node fed.
func (e *Engine) Downstream(ctx context.Context, node answer.Ref, req Request) (*answer.Answer, error) {
	return e.walk(ctx, "downstream", node, req, true)
}

func (e *Engine) walk(ctx context.Context, kind string, node answer.Ref, req Request, down bool) (*answer.Answer, error) {
	s, err := e.begin(ctx, kind, req)
	if err != nil {
		return nil, err
	}
	defer s.r.Close()
	id, err := s.start(node, graph.Dataset, graph.Job, graph.Run, graph.DatasetVersion, graph.Column)
	if err != nil {
		return nil, err
	}
	if err := s.traverse(id, down, s.depth); err != nil {
		return nil, err
	}
	if err := s.addContext(); err != nil {
		return nil, err
	}
	return s.finish()
}

// Impact answers everything downstream of a dataset or column: every
// dataset and job it feeds, however far (bounded by the budget; a depth
// given in req still applies). For a column: the columns derived from it,
// their datasets and the jobs that derived them, and — at dataset level —
// everything downstream of the datasets it affects as a whole.
func (e *Engine) Impact(ctx context.Context, node answer.Ref, req Request) (*answer.Answer, error) {
	depthGiven := req.Depth != 0
	s, err := e.begin(ctx, "impact", req)
	if err != nil {
		return nil, err
	}
	defer s.r.Close()
	if !depthGiven {
		s.depth = MaxDepth
		s.ans.Query.Depth = 0
	}
	id, err := s.start(node, graph.Dataset, graph.Column, graph.DatasetVersion, graph.Job, graph.Run)
	if err != nil {
		return nil, err
	}
	if err := s.traverse(id, true, s.depth); err != nil {
		return nil, err
	}
	if err := s.addContext(); err != nil {
		return nil, err
	}
	// Jobs that derived the impacted columns.
	for i := 0; i < len(s.pedges); i++ {
		pe := s.pedges[i]
		if pe.rc != relCode(answer.RelDerives) || len(pe.ref.attrs) == 0 || pe.ti < 0 {
			continue
		}
		var a graph.DerivationAttrs
		if err := json.Unmarshal(pe.ref.attrs, &a); err != nil {
			return nil, fmt.Errorf("%w: derivation attributes: %v", ledger.ErrCorrupt, err)
		}
		if !s.spend(1) {
			break
		}
		if s.namespaces != nil && !slices.Contains(s.namespaces, a.Job.Namespace) {
			continue
		}
		jid := graph.NodeID(graph.Job, a.Job.Namespace, a.Job.Name)
		to := s.order[pe.ti]
		s.add(jid, to.depth, graph.EncodeName(graph.Job, a.Job.Namespace, a.Job.Name))
		s.linkIdx(jid, to.id, answer.RelOutput, pe.ref.index)
	}
	return s.finish()
}
