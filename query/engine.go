// Package query answers lineage and cost questions over the graph index
// (package graph) of a ledger.Log, as of any log size or time, and proves
// the answers: every answer lists the entries it rests on and, on request,
// each entry's record and inclusion proof against one signed checkpoint
// (package answer verifies them offline).
//
// Traversals are breadth-first with visited sets, a depth limit and a
// relation budget, so cycles in lineage and huge fan-outs end; an answer
// that was cut short says so (answer.Truncation).
package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
)

// Defaults and caps of the query limits.
const (
	DefaultDepth    = 5
	MaxDepth        = 1000
	DefaultBudget   = 10000
	MaxBudget       = 1000000
	DefaultMaxPaths = 100
)

// ErrInvalid marks a request the engine cannot answer as asked (an
// unknown node kind, both an as-of size and time, …); the message says
// what to fix.
var ErrInvalid = errors.New("invalid query")

// ErrIndexBehind means the graph index does not cover the log (the
// indexer was not attached to it).
var ErrIndexBehind = errors.New("the lineage index is behind the log")

// ErrNotFound marks a queried node that no entry below the as-of size
// asserted.
var ErrNotFound = errors.New("not found")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Engine answers queries over a log and its graph index.
type Engine struct {
	log *ledger.Log
}

// New returns an engine over l, whose Indexer must be a graph.Indexer
// attached to it.
func New(l *ledger.Log) *Engine { return &Engine{log: l} }

// Request holds what every query takes.
type Request struct {
	// AsOfSize answers as of this log size (0: the latest checkpoint).
	AsOfSize uint64
	// AsOfTime answers as of the entries integrated at or before this
	// time. At most one of AsOfSize and AsOfTime may be set.
	AsOfTime time.Time
	// Depth limits traversals (0: DefaultDepth).
	Depth int
	// Budget limits the relations a query reads (0: DefaultBudget).
	Budget int
	// Prove attaches records and inclusion proofs of every entry the
	// answer rests on, against the latest checkpoint.
	Prove bool
	// NoEnvelopes leaves the envelopes out of a proof (smaller, but
	// verify can then check inclusion only, not content).
	NoEnvelopes bool
	// Namespaces, when set, keeps traversals inside these OpenLineage
	// namespaces: datasets, dataset versions, columns, jobs and job
	// versions of other namespaces are neither listed nor walked through.
	// Runs and tags have no namespace and pass; the queried node is always
	// listed. At most MaxNamespaces.
	Namespaces []string
	// From and To, when set, are a time window [From, To): History keeps
	// the versions whose event time is in it, Cost the rows whose
	// ChargePeriodStart is. Other queries refuse a window.
	From, To time.Time
	// Tags, "key=value" each, keep only the cost rows whose FOCUS Tags
	// hold every one of them. At most MaxTags; other queries refuse them.
	Tags []string
}

// MaxTags caps Request.Tags.
const MaxTags = 100

// window checks the time window.
func (r *Request) window() error {
	if !r.From.IsZero() && !r.To.IsZero() && !r.From.Before(r.To) {
		return invalid("the window's start %s is not before its end %s", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	}
	return nil
}

// tagFilter returns the sorted, deduplicated tag filter of req as
// key, value pairs.
func (r *Request) tagFilter() ([]string, [][2]string, error) {
	if len(r.Tags) == 0 {
		return nil, nil, nil
	}
	if len(r.Tags) > MaxTags {
		return nil, nil, invalid("%d tags; filter by at most %d", len(r.Tags), MaxTags)
	}
	out := slices.Clone(r.Tags)
	slices.Sort(out)
	out = slices.Compact(out)
	kv := make([][2]string, len(out))
	for i, t := range out {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, nil, invalid("tag filter %q: write it key=value", t)
		}
		kv[i] = [2]string{k, v}
	}
	return out, kv, nil
}

// MaxNamespaces caps Request.Namespaces.
const MaxNamespaces = 100

// namespaceFilter returns the sorted, deduplicated filter of req.
func (r *Request) namespaceFilter() ([]string, error) {
	if len(r.Namespaces) == 0 {
		return nil, nil
	}
	if len(r.Namespaces) > MaxNamespaces {
		return nil, invalid("%d namespaces; filter by at most %d", len(r.Namespaces), MaxNamespaces)
	}
	out := slices.Clone(r.Namespaces)
	for i, ns := range out {
		if ns == "" {
			return nil, invalid("namespace %d of the filter is empty", i+1)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (r *Request) limits() (int, int, error) {
	d, b := r.Depth, r.Budget
	switch {
	case d < 0 || d > MaxDepth:
		return 0, 0, invalid("depth %d is out of range; use 1..%d (0 for the default %d)", d, MaxDepth, DefaultDepth)
	case b < 0 || b > MaxBudget:
		return 0, 0, invalid("budget %d is out of range; use 1..%d (0 for the default %d)", b, MaxBudget, DefaultBudget)
	}
	if d == 0 {
		d = DefaultDepth
	}
	if b == 0 {
		b = DefaultBudget
	}
	return d, b, nil
}

// Size resolves an as-of request to a log size: AsOfSize (at most the
// latest checkpoint's), the number of entries integrated at or before
// AsOfTime, or the latest checkpoint's size.
func (e *Engine) Size(req *Request) (uint64, error) {
	return e.sizeBelow(req, e.log.Latest().Size)
}

// sizeBelow is Size against a given latest size (a query resolves its
// as-of against the checkpoint it proves with, which may be older than
// the log's latest by the time it asks).
func (e *Engine) sizeBelow(req *Request, latest uint64) (uint64, error) {
	switch {
	case req.AsOfSize != 0 && !req.AsOfTime.IsZero():
		return 0, invalid("give an as-of size or an as-of time, not both")
	case req.AsOfSize != 0:
		if req.AsOfSize > latest {
			return 0, fmt.Errorf("%w: as-of size %d is beyond the latest checkpoint (size %d)", ledger.ErrOutOfRange, req.AsOfSize, latest)
		}
		return req.AsOfSize, nil
	case !req.AsOfTime.IsZero():
		return e.SizeAt(req.AsOfTime, latest)
	}
	return latest, nil
}

// SizeAt returns the number of entries below size integrated at or before
// t. Integration times never decrease along the log, so this is a binary
// search over the records.
func (e *Engine) SizeAt(t time.Time, size uint64) (uint64, error) {
	ms := t.UnixMilli()
	var ferr error
	n := sort.Search(int(size), func(i int) bool {
		if ferr != nil {
			return true
		}
		raw, err := e.log.Record(uint64(i))
		if err != nil {
			ferr = err
			return true
		}
		r, err := record.Unmarshal(raw)
		if err != nil {
			ferr = fmt.Errorf("%w: record %d: %v", ledger.ErrCorrupt, i, err)
			return true
		}
		return r.IntegratedTime.UnixMilli() > ms
	})
	if ferr != nil {
		return 0, ferr
	}
	return uint64(n), nil
}

// session is one query in progress. A traversal records nodes and edges
// by id only; finish resolves the nodes' names once, in key order, and
// renders the answer.
type session struct {
	ctx    context.Context
	e      *Engine
	r      *graph.Reader
	ans    *answer.Answer
	cp     *ledger.Checkpoint
	req    Request
	depth  int
	budget int
	used   int
	// sc is the session's working memory (scratch.go); entries, order,
	// pedges, pos, ebuf and hbuf are its.
	sc      *scratch
	entries *entrySet
	// stopAt lists node kinds a traversal adds but does not expand.
	stopAt map[graph.Kind]bool

	order []pendingNode
	// pos finds a node's position in order.
	pos    posTable
	pedges []pendingEdge
	// pseen holds the keys of pedges[:pseenUpTo] (see linkAt); it is
	// built only when a link could repeat an edge.
	pseen     map[pendingKey]struct{}
	pseenUpTo int
	// extraRels names answer relations relCode does not know (code
	// relExtra+i).
	extraRels []string
	// namespaces is the namespace filter (nil: none), sorted.
	namespaces []string
	// walks numbers the traversals of the session (pendingNode.walk).
	walks int32
	// pseenSlow dedups edges linkSlow records (ends not in the answer).
	pseenSlow map[slowKey]struct{}
	paths     [][]graph.ID
	infos     map[graph.ID]graph.NodeInfo
	infoBits  uint64 // see infoBit
	// names holds the encoded names of the nodes (pendingNode.nameOff);
	// bigNames those that did not fit.
	names    []byte
	bigNames map[int32][]byte
	// Scratch buffers reused across a traversal's steps.
	ebuf []graph.Edge
	hbuf []hop
}

func (e *Engine) begin(ctx context.Context, kind string, req Request) (*session, error) {
	depth, budget, err := req.limits()
	if err != nil {
		return nil, err
	}
	nsf, err := req.namespaceFilter()
	if err != nil {
		return nil, err
	}
	if err := req.window(); err != nil {
		return nil, err
	}
	if (!req.From.IsZero() || !req.To.IsZero()) && kind != "history" && kind != "cost" {
		return nil, invalid("a time window (from, to) applies to history and cost queries, not %s", kind)
	}
	tags, _, err := req.tagFilter()
	if err != nil {
		return nil, err
	}
	if tags != nil && kind != "cost" {
		return nil, invalid("a tag filter applies to cost queries, not %s", kind)
	}
	cp := e.log.Latest()
	size := cp.Size
	if req.AsOfSize != 0 || !req.AsOfTime.IsZero() {
		if size, err = e.sizeBelow(&req, cp.Size); err != nil {
			return nil, err
		}
	}
	r, err := e.reader(size, cp.Size)
	if err != nil {
		return nil, err
	}
	sc := getScratch()
	s := &session{
		ctx: ctx, e: e, r: r, cp: cp, req: req, depth: depth, budget: budget,
		sc: sc, entries: &sc.entries, order: sc.order, pedges: sc.pedges, pos: sc.pos, ebuf: sc.ebuf, hbuf: sc.hbuf, names: sc.names,
		infos: map[graph.ID]graph.NodeInfo{},
		ans: &answer.Answer{
			Format: answer.Version, Size: size, AsOfTime: req.AsOfTime,
			Query: answer.Query{Kind: kind, Depth: depth, Budget: budget, AsOfSize: req.AsOfSize, AsOfTime: req.AsOfTime, Namespaces: nsf,
				WindowFrom: req.From, WindowTo: req.To, Tags: tags},
		},
		namespaces: nsf,
	}
	if indexed, err := r.Indexed(); err != nil {
		r.Close()
		return nil, err
	} else if indexed < size {
		r.Close()
		return nil, fmt.Errorf("%w: it covers %d entries, the log %d (is the query indexer attached to the log?)", ErrIndexBehind, indexed, size)
	}
	return s, nil
}

// reader opens a graph reader at size; completeBelow is the size of a
// checkpoint read before the call. The log's graph indexer, if it has
// one, lends its adjacency cache.
func (e *Engine) reader(size, completeBelow uint64) (*graph.Reader, error) {
	if ix := graphIndexer(e.log.Options().Indexer); ix != nil {
		return ix.NewReader(e.log.DB(), size, completeBelow)
	}
	return graph.NewReader(e.log.DB(), size)
}

// graphIndexer finds the log's graph indexer, directly or behind indexers
// that chain to it (Unwrap, e.g. the policy index).
func graphIndexer(ix ledger.Indexer) *graph.Indexer {
	for ix != nil {
		switch v := ix.(type) {
		case *graph.Indexer:
			return v
		case interface{ Unwrap() ledger.Indexer }:
			ix = v.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

// finish closes the reader, sorts the entries and proves them if asked.
func (s *session) finish() (*answer.Answer, error) {
	defer s.r.Close()
	if err := s.render(); err != nil {
		return nil, err
	}
	s.ans.Entries = s.entries.sorted()
	s.release()
	if s.req.Prove {
		if err := s.prove(); err != nil {
			return nil, err
		}
	}
	return s.ans, nil
}

func (s *session) rests(idx uint64) { s.entries.add(idx) }

// release gives the session's working memory back to the pool; the
// session must not use it afterwards.
func (s *session) release() {
	sc := s.sc
	if sc == nil {
		return
	}
	sc.order, sc.pedges, sc.ebuf, sc.hbuf, sc.pos, sc.names = s.order, s.pedges, s.ebuf, s.hbuf, s.pos, s.names
	s.sc, s.entries, s.order, s.pedges, s.pos, s.ebuf, s.hbuf, s.names = nil, nil, nil, nil, posTable{}, nil, nil, nil
	sc.release()
}

// spend takes n relations from the budget; false when it ran out.
func (s *session) spend(n int) bool {
	if s.used+n > s.budget {
		s.cut("budget")
		return false
	}
	s.used += n
	return true
}

func (s *session) cut(why string) {
	t := s.ans.Truncated
	if t == nil {
		t = &answer.Truncation{}
		s.ans.Truncated = t
	}
	switch why {
	case "budget":
		t.Budget = true
	case "depth":
		t.Depth = true
	case "paths":
		t.Paths = true
	}
	var parts []string
	if t.Budget {
		parts = append(parts, fmt.Sprintf("the relation budget of %d ran out (raise --budget)", s.budget))
	}
	if t.Depth {
		parts = append(parts, fmt.Sprintf("nodes at depth %d have further relations (raise --depth)", s.depth))
	}
	if t.Paths {
		parts = append(parts, "more paths exist than were listed (raise --max-paths)")
	}
	t.Reason = joinSentences(parts)
}

func joinSentences(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += "; "
		}
		out += p
	}
	return out
}

func (s *session) canceled() error {
	if s.ctx == nil {
		return nil
	}
	return s.ctx.Err()
}

// ResolveRef turns an answer.Ref into a node id.
func ResolveRef(ref answer.Ref) (graph.ID, error) {
	k, ok := graph.ParseKind(ref.Kind)
	if !ok {
		return graph.ID{}, invalid("node kind %q is unknown; use dataset, datasetVersion, job, jobVersion, run, column or tag", ref.Kind)
	}
	want := map[graph.Kind]int{graph.Dataset: 2, graph.DatasetVersion: 3, graph.Job: 2, graph.JobVersion: 3, graph.Run: 1, graph.Column: 3, graph.TagNode: 2}[k]
	if len(ref.Parts) != want {
		return graph.ID{}, invalid("a %s is named by %d parts (%s), got %d", ref.Kind, want, partNames[k], len(ref.Parts))
	}
	for i, p := range ref.Parts {
		if p == "" && !(k == graph.DatasetVersion && i == 2) {
			return graph.ID{}, invalid("part %d (%s) of the %s is empty", i+1, partNames[k], ref.Kind)
		}
	}
	return graph.NodeID(k, ref.Parts...), nil
}

var partNames = map[graph.Kind]string{
	graph.Dataset: "namespace, name", graph.DatasetVersion: "namespace, name, version", graph.Job: "namespace, name",
	graph.JobVersion: "namespace, name, code version", graph.Run: "run id", graph.Column: "namespace, name, field",
	graph.TagNode: "key, value",
}

// start resolves and loads the queried node.
func (s *session) start(ref answer.Ref, kinds ...graph.Kind) (graph.ID, error) {
	id, err := ResolveRef(ref)
	if err != nil {
		return id, err
	}
	if len(kinds) > 0 {
		ok := false
		for _, k := range kinds {
			ok = ok || id.Kind() == k
		}
		if !ok {
			names := ""
			for i, k := range kinds {
				if i > 0 {
					names += ", "
				}
				names += k.String()
			}
			return id, invalid("a %s query takes a %s, not a %s", s.ans.Query.Kind, names, ref.Kind)
		}
	}
	r := ref
	if s.ans.Query.Node == nil {
		s.ans.Query.Node = &r
	} else {
		s.ans.Query.To = &r
	}
	if _, err := s.info(id); err != nil {
		return id, err
	}
	s.add(id, 0, nil)
	return id, nil
}
