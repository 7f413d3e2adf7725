package query

import (
	"context"
	"encoding/json"

	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
)

// hop is one step of a traversal: to the node next, over edge e, which in
// data-flow direction goes from → to.
type hop struct {
	next     graph.ID
	e        graph.Edge
	from, to graph.ID
	rel      string
}

func isProcess(k graph.Kind) bool { return k == graph.Job || k == graph.Run }

// neighbors lists the nodes one step up- or downstream of id, in data-flow
// terms: datasets and jobs (dataset level), dataset versions and runs (run
// level), columns (column level; a column's downstream also reaches the
// datasets it affects as a whole, which continue at dataset level).
func (s *session) neighbors(id graph.ID, down bool) ([]hop, error) {
	var hops []hop
	// add collects the edges of one scan: out says the scan was Out (the
	// other end is e.Dst) or In (e.Src); from and to are the data-flow
	// ends, the zero ID standing for the other end.
	add := func(out bool, from, to graph.ID, rel string) func(graph.Edge) bool {
		return func(e graph.Edge) bool {
			n, f, t := e.Dst, from, to
			if !out {
				n = e.Src
			}
			if f == (graph.ID{}) {
				f = n
			}
			if t == (graph.ID{}) {
				t = n
			}
			hops = append(hops, hop{next: n, e: e, from: f, to: t, rel: rel})
			return true
		}
	}
	var none graph.ID
	var err error
	switch id.Kind() {
	case graph.Dataset:
		if down {
			err = s.r.In(id, graph.JobReads, add(false, id, none, answer.RelInput))
		} else {
			err = s.r.In(id, graph.JobWrites, add(false, none, id, answer.RelOutput))
		}
	case graph.Job:
		if down {
			err = s.r.Out(id, graph.JobWrites, add(true, id, none, answer.RelOutput))
		} else {
			err = s.r.Out(id, graph.JobReads, add(true, none, id, answer.RelInput))
		}
	case graph.Run:
		if down {
			err = s.r.Out(id, graph.Wrote, add(true, id, none, answer.RelOutput))
		} else {
			err = s.r.Out(id, graph.Read, add(true, none, id, answer.RelInput))
		}
	case graph.DatasetVersion:
		if down {
			err = s.r.In(id, graph.Read, add(false, id, none, answer.RelInput))
		} else {
			err = s.r.In(id, graph.Wrote, add(false, none, id, answer.RelOutput))
		}
	case graph.Column:
		if down {
			if err = s.r.In(id, graph.DerivedFrom, add(false, id, none, answer.RelDerives)); err == nil {
				err = s.r.In(id, graph.Affects, add(false, id, none, answer.RelAffects))
			}
		} else {
			err = s.r.Out(id, graph.DerivedFrom, add(true, none, id, answer.RelDerives))
		}
	}
	return hops, err
}

// answerEdge renders a hop as an answer edge between nodes in the answer.
func (s *session) answerEdge(h hop) (answer.Edge, error) {
	from, err := s.keyOf(h.from)
	if err != nil {
		return answer.Edge{}, err
	}
	to, err := s.keyOf(h.to)
	if err != nil {
		return answer.Edge{}, err
	}
	ae := answer.Edge{From: from, To: to, Rel: h.rel, Index: h.e.Index}
	if len(h.e.Attrs) > 0 {
		switch h.e.Rel {
		case graph.DerivedFrom, graph.Affects:
			var a graph.DerivationAttrs
			if json.Unmarshal(h.e.Attrs, &a) == nil {
				ae.Transformations, ae.RunID = a.Transformations, a.RunID
				j := a.Job
				ae.Job = &j
			}
		case graph.Read:
			var a graph.ReadAttrs
			if json.Unmarshal(h.e.Attrs, &a) == nil {
				ae.Resolved = a.Resolved
			}
		}
	}
	return ae, nil
}

func (s *session) keyOf(id graph.ID) (string, error) {
	if i, ok := s.nodes[id]; ok {
		return s.ans.Nodes[i].Key, nil
	}
	return s.node(id, 0)
}

// traverse walks breadth-first from start, up- or downstream. Depth
// counts process steps: a job or run is one deeper than the data it was
// reached from, data as deep as the job or run it was reached from;
// columns count derivation steps. Data at maxDepth is not expanded (the
// answer says so if it had more relations). Every relation read spends
// one unit of the budget.
func (s *session) traverse(start graph.ID, down bool, maxDepth int) error {
	type item struct {
		id    graph.ID
		depth int
	}
	queue := []item{{start, 0}}
	seen := map[graph.ID]bool{start: true}
	for len(queue) > 0 {
		if err := s.canceled(); err != nil {
			return err
		}
		it := queue[0]
		queue = queue[1:]
		process := isProcess(it.id.Kind())
		hops, err := s.neighbors(it.id, down)
		if err != nil {
			return err
		}
		if !process && it.depth >= maxDepth {
			if len(hops) > 0 {
				s.cut("depth")
			}
			continue
		}
		next := it.depth
		if !process {
			next++
		}
		for _, h := range hops {
			if !s.spend(1) {
				return nil
			}
			if _, err := s.node(h.next, next); err != nil {
				return err
			}
			ae, err := s.answerEdge(h)
			if err != nil {
				return err
			}
			s.edge(ae)
			if !seen[h.next] {
				seen[h.next] = true
				if s.stopAt == nil || !s.stopAt[h.next.Kind()] {
					queue = append(queue, item{h.next, next})
				}
			}
		}
	}
	return nil
}

// context adds, for every run in the answer, the job it is a run of (and
// for every column, the dataset it belongs to), so run- and column-level
// answers name their jobs and datasets.
func (s *session) addContext() error {
	for i := 0; i < len(s.ans.Nodes); i++ {
		n := s.ans.Nodes[i]
		id, err := ResolveRef(n.Ref)
		if err != nil {
			return err
		}
		var rel graph.Rel
		var arel string
		switch id.Kind() {
		case graph.Run:
			rel, arel = graph.RunOf, answer.RelRunOf
		case graph.Column:
			rel, arel = graph.FieldOf, answer.RelField
		default:
			continue
		}
		var hops []graph.Edge
		if err := s.r.Out(id, rel, func(e graph.Edge) bool { hops = append(hops, e); return true }); err != nil {
			return err
		}
		for _, e := range hops {
			if !s.spend(1) {
				return nil
			}
			to, err := s.node(e.Dst, n.Depth)
			if err != nil {
				return err
			}
			s.edge(answer.Edge{From: n.Key, To: to, Rel: arel, Index: e.Index})
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
	for _, ae := range append([]answer.Edge(nil), s.ans.Edges...) {
		if ae.Rel != answer.RelDerives || ae.Job == nil {
			continue
		}
		jid := graph.NodeID(graph.Job, ae.Job.Namespace, ae.Job.Name)
		if !s.spend(1) {
			break
		}
		jk, err := s.node(jid, s.nodeDepth(ae.To))
		if err != nil {
			return nil, err
		}
		s.edge(answer.Edge{From: jk, To: ae.To, Rel: answer.RelOutput, Index: ae.Index})
	}
	return s.finish()
}

func (s *session) nodeDepth(key string) int {
	for _, n := range s.ans.Nodes {
		if n.Key == key {
			return n.Depth
		}
	}
	return 0
}
