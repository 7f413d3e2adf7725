package query

import (
	"context"

	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/payload"
)

// stepCost is what leaving a node costs in path length: one for data
// (datasets, versions, columns), nothing for a job or run, so a
// dataset-level path is as long as the jobs on it and a column path as
// its derivations.
func stepCost(id graph.ID) int {
	if isProcess(id.Kind()) {
		return 0
	}
	return 1
}

// reach returns, for every node from which target can be reached going
// downstream within maxDepth, the length of its shortest path to target
// (a 0-1 breadth-first walk up from target).
func (s *session) reach(target graph.ID, maxDepth int) (map[graph.ID]int, error) {
	dist := map[graph.ID]int{target: 0}
	deque := []graph.ID{target}
	done := map[graph.ID]bool{}
	for len(deque) > 0 {
		if err := s.canceled(); err != nil {
			return nil, err
		}
		y := deque[0]
		deque = deque[1:]
		if done[y] {
			continue
		}
		done[y] = true
		hops, err := s.neighbors(nil, y, false)
		if err != nil {
			return nil, err
		}
		for _, h := range hops {
			if !s.spend(1) {
				return dist, nil
			}
			x := h.next
			d := dist[y] + stepCost(x)
			if d > maxDepth {
				continue
			}
			if old, ok := dist[x]; ok && old <= d {
				continue
			}
			dist[x] = d
			if stepCost(x) == 0 {
				deque = append([]graph.ID{x}, deque...)
			} else {
				deque = append(deque, x)
			}
		}
	}
	return dist, nil
}

// Paths answers every simple path (no node twice) from one node to
// another in data-flow direction, up to req.Depth process steps long and
// at most maxPaths paths (0: DefaultMaxPaths). When from is downstream of
// to, the paths from to to from are returned. Nodes: datasets and jobs,
// dataset versions and runs, or columns.
func (e *Engine) Paths(ctx context.Context, from, to answer.Ref, maxPaths int, req Request) (*answer.Answer, error) {
	if maxPaths < 0 {
		return nil, invalid("max paths %d is negative", maxPaths)
	}
	if maxPaths == 0 {
		maxPaths = DefaultMaxPaths
	}
	s, err := e.begin(ctx, "paths", req)
	if err != nil {
		return nil, err
	}
	defer s.r.Close()
	kinds := []graph.Kind{graph.Dataset, graph.Job, graph.Run, graph.DatasetVersion, graph.Column}
	src, err := s.start(from, kinds...)
	if err != nil {
		return nil, err
	}
	dst, err := s.start(to, kinds...)
	if err != nil {
		return nil, err
	}
	if src == dst {
		return nil, invalid("from and to are the same node")
	}
	found, err := s.pathsBetween(src, dst, maxPaths)
	if err != nil {
		return nil, err
	}
	if found == 0 && s.ans.Truncated == nil {
		if _, err := s.pathsBetween(dst, src, maxPaths); err != nil {
			return nil, err
		}
	}
	return s.finish()
}

// pathsBetween lists the simple paths from src to dst, shortest first:
// iterative deepening on the path length, pruned by each node's shortest
// distance to dst, so every search step is on some path of the length
// being listed.
func (s *session) pathsBetween(src, dst graph.ID, maxPaths int) (int, error) {
	reach, err := s.reach(dst, s.depth)
	if err != nil {
		return 0, err
	}
	if _, ok := reach[src]; !ok {
		return 0, nil
	}
	var (
		stack  []hop
		onPath = map[graph.ID]bool{src: true}
		found  int
		stop   bool
	)
	record := func() error {
		s.add(src, 0, nil)
		path := []graph.ID{src}
		steps := stepCost(src)
		for _, h := range stack {
			s.add(h.next, steps, h.name)
			steps += stepCost(h.next)
			s.link(h.from, h.to, h.rel, h.ref)
			path = append(path, h.next)
		}
		s.paths = append(s.paths, path)
		found++
		return nil
	}
	var dfs func(id graph.ID, steps, length int) error
	dfs = func(id graph.ID, steps, length int) error {
		if err := s.canceled(); err != nil {
			return err
		}
		if id == dst {
			if steps != length {
				return nil // listed at a shorter length
			}
			if found >= maxPaths {
				s.cut("paths")
				stop = true
				return nil
			}
			return record()
		}
		next := steps + stepCost(id)
		hops, err := s.neighbors(nil, id, true)
		if err != nil {
			return err
		}
		for _, h := range hops {
			if stop {
				return nil
			}
			d, ok := reach[h.next]
			if !ok || onPath[h.next] || next+d > length {
				continue
			}
			if !s.spend(1) {
				stop = true
				return nil
			}
			onPath[h.next] = true
			stack = append(stack, h)
			if err := dfs(h.next, next, length); err != nil {
				return err
			}
			stack = stack[:len(stack)-1]
			delete(onPath, h.next)
		}
		return nil
	}
	for length := reach[src]; length <= s.depth && !stop; length++ {
		if err := dfs(src, 0, length); err != nil {
			return found, err
		}
	}
	return found, nil
}

// History answers the versions of a dataset, oldest first: for each, the
// run that produced it, its job and code version, the run's final state,
// schema, row count, size, and the entries that said so. Records of one
// version add up in log order (later facets win, as OpenLineage facets
// accumulate across a run's events). req.From and req.To keep the
// versions whose latest event time is in [From, To).
func (e *Engine) History(ctx context.Context, dataset answer.Ref, req Request) (*answer.Answer, error) {
	s, err := e.begin(ctx, "history", req)
	if err != nil {
		return nil, err
	}
	defer s.r.Close()
	id, err := s.start(dataset, graph.Dataset)
	if err != nil {
		return nil, err
	}
	var recs []graph.VersionRecord
	if err := s.r.History(id, func(idx uint64, f graph.VersionFacts) bool {
		if !s.spend(1) {
			return false
		}
		recs = append(recs, graph.VersionRecord{Index: idx, VersionFacts: f})
		return true
	}); err != nil {
		return nil, err
	}
	// With a window, the answer rests on the records of the versions it
	// keeps; without, on every record read (an announcement folded into
	// its completed version included).
	windowed := !req.From.IsZero() || !req.To.IsZero()
	byVersion := map[string]int{}
	for _, r := range recs {
		i, ok := byVersion[r.Version]
		if !ok {
			i = len(s.ans.Versions)
			byVersion[r.Version] = i
			s.ans.Versions = append(s.ans.Versions, answer.DatasetVersion{Version: r.Version, Explicit: r.Explicit, RunID: r.RunID, Job: r.Job, Source: r.Source})
		}
		v := &s.ans.Versions[i]
		v.Indexes = append(v.Indexes, r.Index)
		if !windowed {
			s.rests(r.Index)
		}
		if r.CodeVersion != "" {
			v.CodeVersion = r.CodeVersion
		}
		if r.EventType != "" {
			v.RunState = r.EventType
		}
		if !r.EventTime.IsZero() {
			v.EventTime = r.EventTime
		}
		if len(r.Schema) > 0 {
			v.Schema = r.Schema
		}
		if r.RowCount != nil {
			v.RowCount = r.RowCount
		}
		if r.Bytes != nil {
			v.Bytes = r.Bytes
		}
		if r.FileCount != nil {
			v.FileCount = r.FileCount
		}
		if r.DataSource != nil {
			v.DataSource = r.DataSource
		}
		if r.Quality != nil {
			v.Quality = r.Quality
		}
		if r.Lifecycle != "" {
			v.Lifecycle = r.Lifecycle
		}
		if r.Explicit {
			v.Explicit = true
		}
	}
	// A run that announced an output without a version (START) and then
	// completed it with one made one version, not two: drop the
	// announcement.
	explicitRuns := map[string]bool{}
	for _, v := range s.ans.Versions {
		if v.Explicit && v.RunID != "" {
			explicitRuns[v.RunID] = true
		}
	}
	kept := s.ans.Versions[:0]
	for _, v := range s.ans.Versions {
		if !v.Explicit && explicitRuns[v.RunID] && v.Version == graph.RunVersion(v.RunID) {
			continue
		}
		// The window keeps the versions whose (latest) event time is in it.
		if (!req.From.IsZero() && v.EventTime.Before(req.From)) || (!req.To.IsZero() && !v.EventTime.Before(req.To)) {
			continue
		}
		if windowed {
			for _, idx := range v.Indexes {
				s.rests(idx)
			}
		}
		kept = append(kept, v)
	}
	s.ans.Versions = kept
	// The producing run's final state may come in a later event that did
	// not list the output again (e.g. a FAIL without outputs).
	for i := range s.ans.Versions {
		v := &s.ans.Versions[i]
		if v.RunID == "" {
			continue // declared by a DatasetEvent: no run
		}
		var state payload.EventType
		var at uint64
		if err := s.r.RunFacts(graph.NodeID(graph.Run, v.RunID), func(idx uint64, f graph.RunFacts) bool {
			switch f.EventType {
			case payload.Complete, payload.Fail, payload.Abort:
				state, at = f.EventType, idx
			case payload.Start:
				if state == "" {
					state, at = f.EventType, idx
				}
			}
			return true
		}); err != nil {
			return nil, err
		}
		if state != "" && state != v.RunState {
			v.RunState = state
			v.Indexes = appendIndex(v.Indexes, at)
			s.rests(at)
		}
	}
	return s.finish()
}

func appendIndex(xs []uint64, x uint64) []uint64 {
	for _, y := range xs {
		if y == x {
			return xs
		}
	}
	return append(xs, x)
}

// Columns answers column-level lineage both ways: for a column, the
// columns it derives from and those derived from it, up to req.Depth
// derivation steps each way; for a dataset, the same for each of its
// columns, and the input columns that affect it as a whole.
func (e *Engine) Columns(ctx context.Context, node answer.Ref, req Request) (*answer.Answer, error) {
	s, err := e.begin(ctx, "columns", req)
	if err != nil {
		return nil, err
	}
	defer s.r.Close()
	id, err := s.start(node, graph.Dataset, graph.Column)
	if err != nil {
		return nil, err
	}
	cols := []graph.ID{id}
	if id.Kind() == graph.Dataset {
		cols = nil
		var fields, affects []graph.Edge
		if err := s.r.In(id, graph.FieldOf, func(e graph.Edge) bool { fields = append(fields, e); return true }); err != nil {
			return nil, err
		}
		if err := s.r.Out(id, graph.Affects, func(e graph.Edge) bool { affects = append(affects, e); return true }); err != nil {
			return nil, err
		}
		for _, e := range fields {
			if !s.spend(1) {
				break
			}
			s.add(e.Src, 0, e.Name)
			s.linkIdx(e.Src, id, answer.RelField, e.Index)
			cols = append(cols, e.Src)
		}
		for _, e := range affects {
			if s.namespaces != nil && !s.inNamespaces(e.Name) {
				continue
			}
			if !s.spend(1) {
				break
			}
			s.add(e.Dst, 1, e.Name)
			s.linkEdge(e.Dst, id, answer.RelAffects, e)
		}
	}
	s.stopAt = map[graph.Kind]bool{graph.Dataset: true}
	for _, c := range cols {
		if err := s.traverse(c, false, s.depth); err != nil {
			return nil, err
		}
		if err := s.traverse(c, true, s.depth); err != nil {
			return nil, err
		}
	}
	if err := s.addContext(); err != nil {
		return nil, err
	}
	return s.finish()
}
