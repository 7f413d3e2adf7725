package query

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/payload"
)

// CostRequest asks for a cost roll-up (GroupBy) or for the cost to
// produce a dataset version (Node).
type CostRequest struct {
	Request
	// GroupBy is the roll-up dimension: service, provider, resource,
	// region, sku, subaccount, category, tag:<key>, job, dataset or run
	// ("" for the total only).
	GroupBy string
	// Node, when set, asks for the cost to produce it: a datasetVersion,
	// a dataset (its latest completed version as of the request) or a
	// run, including every run upstream of it.
	Node *answer.Ref
	// Request.From and Request.To, when set, keep only rows whose
	// ChargePeriodStart is in [From, To); Request.Tags only rows whose
	// FOCUS Tags hold each key=value.
}

var groupDims = map[string]func(*payload.CostRow) string{
	"service":    func(r *payload.CostRow) string { return r.ServiceName },
	"provider":   func(r *payload.CostRow) string { return r.ServiceProviderName },
	"resource":   func(r *payload.CostRow) string { return r.ResourceId },
	"region":     func(r *payload.CostRow) string { return r.RegionId },
	"sku":        func(r *payload.CostRow) string { return r.SkuId },
	"subaccount": func(r *payload.CostRow) string { return r.SubAccountId },
	"category":   func(r *payload.CostRow) string { return r.ServiceCategory },
}

// Unattributed is the group of rows a job, dataset or run roll-up cannot
// attribute.
const Unattributed = "(unattributed)"

// Cost answers a cost query. Amounts are exact decimals, summed per
// currency (currencies are never mixed); a row's amount is its
// EffectiveCost, else its BilledCost.
func (e *Engine) Cost(ctx context.Context, req CostRequest) (*answer.Answer, error) {
	if req.Node != nil && req.GroupBy != "" {
		return nil, invalid("ask for a roll-up (group by) or for the cost of a node, not both")
	}
	dim := req.GroupBy
	if dim != "" && groupDims[dim] == nil && dim != "job" && dim != "dataset" && dim != "run" && (!strings.HasPrefix(dim, "tag:") || len(dim) == 4) {
		return nil, invalid("cannot group by %q; use service, provider, resource, region, sku, subaccount, category, tag:<key>, job, dataset or run", dim)
	}
	_, tags, err := req.tagFilter()
	if err != nil {
		return nil, err
	}
	nodeDepthGiven := req.Depth != 0
	s, err := e.begin(ctx, "cost", req.Request)
	if err != nil {
		return nil, err
	}
	defer s.r.Close()
	s.ans.Query.GroupBy = dim
	s.ans.Cost = &answer.Cost{}
	c := &coster{s: s, req: req, tags: tags, sums: map[string]*sum{}, jobOf: map[graph.ID][]attribution{}, dsOf: map[graph.ID][]attribution{}}
	if req.Node != nil {
		if !nodeDepthGiven {
			s.depth = MaxDepth
			s.ans.Query.Depth = 0
		}
		err = c.produce(*req.Node)
	} else {
		err = c.rollup(dim)
	}
	if err != nil {
		return nil, err
	}
	c.fill()
	return s.finish()
}

type sum struct {
	key, currency string
	amount        *big.Rat
	scale, rows   int
	shared        bool
}

type attribution struct {
	key   string
	index uint64 // entry of the edge that attributes it
}

type coster struct {
	s     *session
	req   CostRequest
	sums  map[string]*sum // group\x00currency
	total map[string]*sum
	jobOf map[graph.ID][]attribution
	dsOf  map[graph.ID][]attribution
	// tags is the tag filter: key, value pairs.
	tags [][2]string
}

func (c *coster) inWindow(r *payload.CostRow) bool {
	if !c.req.From.IsZero() && r.ChargePeriodStart.Before(c.req.From) {
		return false
	}
	if !c.req.To.IsZero() && !r.ChargePeriodStart.Before(c.req.To) {
		return false
	}
	for _, kv := range c.tags {
		if v, ok := r.Tags[kv[0]]; !ok || v != kv[1] {
			return false
		}
	}
	return true
}

func (c *coster) add(m map[string]*sum, key string, r *payload.CostRow, shared bool) {
	amt := r.Amount()
	k := key + "\x00" + r.BillingCurrency
	g := m[k]
	if g == nil {
		g = &sum{key: key, currency: r.BillingCurrency, amount: new(big.Rat)}
		m[k] = g
	}
	g.amount.Add(g.amount, amt.Rat())
	g.scale = max(g.scale, amt.Scale())
	g.rows++
	g.shared = g.shared || shared
}

// count adds a row to the answer's rows and total.
func (c *coster) count(ref graph.CostRef, r *payload.CostRow, via string) {
	if c.total == nil {
		c.total = map[string]*sum{}
	}
	c.add(c.total, "", r, false)
	c.s.rests(ref.Index)
	c.s.ans.Cost.Rows = append(c.s.ans.Cost.Rows, answer.CostRow{
		Index: ref.Index, Row: ref.Row, Amount: r.Amount(), Currency: r.BillingCurrency,
		Service: r.ServiceName, Link: r.Link, Via: via,
	})
}

func (c *coster) fill() {
	for _, g := range c.total {
		c.s.ans.Cost.Total = append(c.s.ans.Cost.Total, answer.Amount{Currency: g.currency, Amount: payload.FormatRat(g.amount, g.scale)})
	}
	sort.Slice(c.s.ans.Cost.Total, func(i, j int) bool { return c.s.ans.Cost.Total[i].Currency < c.s.ans.Cost.Total[j].Currency })
	if c.s.ans.Cost.Total == nil {
		c.s.ans.Cost.Total = []answer.Amount{}
	}
	var groups []*sum
	for _, g := range c.sums {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool {
		if groups[i].currency != groups[j].currency {
			return groups[i].currency < groups[j].currency
		}
		if x := groups[i].amount.Cmp(groups[j].amount); x != 0 {
			return x > 0
		}
		return groups[i].key < groups[j].key
	})
	for _, g := range groups {
		c.s.ans.Cost.Groups = append(c.s.ans.Cost.Groups, answer.CostGroup{
			Key: g.key, Currency: g.currency, Amount: payload.FormatRat(g.amount, g.scale), Rows: g.rows, Shared: g.shared,
		})
	}
}

func (c *coster) rollup(dim string) error {
	var rows []struct {
		ref graph.CostRef
		row payload.CostRow
	}
	if err := c.s.r.Costs(func(ref graph.CostRef, row payload.CostRow) bool {
		if !c.s.spend(1) {
			return false
		}
		rows = append(rows, struct {
			ref graph.CostRef
			row payload.CostRow
		}{ref, row})
		return true
	}); err != nil {
		return err
	}
	for i := range rows {
		if err := c.s.canceled(); err != nil {
			return err
		}
		r := &rows[i].row
		if !c.inWindow(r) {
			continue
		}
		c.count(rows[i].ref, r, "")
		var keys []string
		switch {
		case dim == "":
			continue
		case groupDims[dim] != nil:
			keys = []string{groupDims[dim](r)}
		case strings.HasPrefix(dim, "tag:"):
			v, ok := r.Tags[dim[4:]]
			if !ok {
				v = "(untagged)"
			}
			keys = []string{v}
		default:
			ks, err := c.attribute(dim, r)
			if err != nil {
				return err
			}
			keys = ks
		}
		if len(keys) == 0 {
			keys = []string{Unattributed}
		}
		for _, k := range keys {
			if k == "" {
				k = "(none)"
			}
			c.add(c.sums, k, r, len(keys) > 1)
		}
	}
	return nil
}

// linked returns the runs and jobs a row is linked to.
func (c *coster) linked(r *payload.CostRow) (runs, jobs []graph.ID, err error) {
	switch l := r.Link; {
	case l.RunID != "":
		runs = []graph.ID{graph.NodeID(graph.Run, l.RunID)}
	case l.Job != nil:
		jobs = []graph.ID{graph.NodeID(graph.Job, l.Job.Namespace, l.Job.Name)}
	case l.Tag != nil:
		t := graph.NodeID(graph.TagNode, l.Tag.Key, l.Tag.Value)
		var tagged []graph.Edge
		if err := c.s.r.In(t, graph.Tagged, func(e graph.Edge) bool { tagged = append(tagged, e); return true }); err != nil {
			return nil, nil, err
		}
		for _, e := range tagged {
			if !c.s.spend(1) {
				break
			}
			switch e.Src.Kind() {
			case graph.Run:
				runs = append(runs, e.Src)
			case graph.Job:
				jobs = append(jobs, e.Src)
			default:
				continue
			}
			if err := c.edgeTo(e.Src, t, answer.RelTagged, e.Index); err != nil {
				return nil, nil, err
			}
		}
	}
	return runs, jobs, nil
}

// edgeTo adds the edge a → b to the answer.
func (c *coster) edgeTo(a, b graph.ID, rel string, idx uint64) error {
	c.s.add(a, 0, nil)
	c.s.add(b, 0, nil)
	c.s.linkIdx(a, b, rel, idx)
	return nil
}

// name adds the node to the answer and returns its name.
func (c *coster) name(id graph.ID) (string, error) {
	n, err := c.s.info(id)
	if err != nil {
		return "", err
	}
	c.s.add(id, 0, nil)
	return n.Name(), nil
}

// attribute returns the job, dataset or run keys a row counts towards.
func (c *coster) attribute(dim string, r *payload.CostRow) ([]string, error) {
	runs, jobs, err := c.linked(r)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var keys []string
	addKey := func(k string) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, run := range runs {
		if _, ok, err := c.s.r.Node(run); err != nil {
			return nil, err
		} else if !ok {
			continue // a run no entry below the as-of size knows
		}
		switch dim {
		case "run":
			k, err := c.name(run)
			if err != nil {
				return nil, err
			}
			addKey(k)
		case "job":
			as, err := c.via(run, graph.RunOf, answer.RelRunOf, c.jobOf)
			if err != nil {
				return nil, err
			}
			for _, a := range as {
				addKey(a.key)
			}
		case "dataset":
			as, err := c.via(run, graph.Wrote, answer.RelOutput, c.dsOf)
			if err != nil {
				return nil, err
			}
			for _, a := range as {
				addKey(a.key)
			}
		}
	}
	for _, job := range jobs {
		if _, ok, err := c.s.r.Node(job); err != nil {
			return nil, err
		} else if !ok {
			if dim == "job" {
				addKey(graph.NodeName(graph.Job, r.Link.Job.Namespace, r.Link.Job.Name))
			}
			continue
		}
		switch dim {
		case "job":
			k, err := c.name(job)
			if err != nil {
				return nil, err
			}
			addKey(k)
		case "dataset":
			as, err := c.via(job, graph.JobWrites, answer.RelOutput, c.dsOf)
			if err != nil {
				return nil, err
			}
			for _, a := range as {
				addKey(a.key)
			}
		}
	}
	return keys, nil
}

// via follows src's edges of rel (run → job, run → dataset version →
// dataset, job → dataset), adding them to the answer, and caches the
// dataset or job keys reached.
func (c *coster) via(src graph.ID, rel graph.Rel, arel string, cache map[graph.ID][]attribution) ([]attribution, error) {
	if as, ok := cache[src]; ok {
		return as, nil
	}
	var es []graph.Edge
	if err := c.s.r.Out(src, rel, func(e graph.Edge) bool { es = append(es, e); return true }); err != nil {
		return nil, err
	}
	var out []attribution
	for _, e := range es {
		if !c.s.spend(1) {
			break
		}
		if err := c.edgeTo(src, e.Dst, arel, e.Index); err != nil {
			return nil, err
		}
		target := e.Dst
		if target.Kind() == graph.DatasetVersion {
			n, err := c.s.info(target)
			if err != nil {
				return nil, err
			}
			target = graph.NodeID(graph.Dataset, n.Parts[0], n.Parts[1])
			if !c.s.spend(1) {
				break
			}
			var ve *graph.Edge
			if err := c.s.r.Out(e.Dst, graph.VersionOf, func(x graph.Edge) bool { ve = &x; return false }); err != nil {
				return nil, err
			}
			if ve != nil && ve.Dst == target {
				if err := c.edgeTo(e.Dst, target, answer.RelVersion, ve.Index); err != nil {
					return nil, err
				}
			}
		}
		k, err := c.name(target)
		if err != nil {
			return nil, err
		}
		out = append(out, attribution{key: k, index: e.Index})
	}
	cache[src] = out
	return out, nil
}

// produce answers the cost to produce a dataset version (or a run's
// output): the rows linked to every run upstream of it, the producing
// runs included, each row once.
func (c *coster) produce(ref answer.Ref) error {
	s := c.s
	id, err := s.start(ref, graph.DatasetVersion, graph.Dataset, graph.Run)
	if err != nil {
		return err
	}
	if id.Kind() == graph.Dataset {
		ver, idx, ok, err := s.r.LatestVersion(id)
		if err != nil {
			return err
		}
		dn, err := s.info(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: no run completed a version of %s below size %d", ErrNotFound, dn.Name(), s.r.Size())
		}
		s.rests(idx)
		parts := dn.Parts
		v := graph.NodeID(graph.DatasetVersion, parts[0], parts[1], ver)
		if err := c.edgeVersion(v, id); err != nil {
			return err
		}
		id = v
	}
	if err := s.traverse(id, false, s.depth); err != nil {
		return err
	}
	if err := s.addContext(); err != nil {
		return err
	}
	var runs []graph.ID
	for _, pn := range s.order {
		if pn.id.Kind() == graph.Run {
			n, err := s.info(pn.id)
			if err != nil {
				return err
			}
			runs = append(runs, pn.id)
			s.ans.Cost.Runs = append(s.ans.Cost.Runs, n.Parts[0])
		}
	}
	counted := map[graph.CostRef]bool{}
	take := func(refs []graph.CostRef, via string) error {
		for _, ref := range refs {
			if counted[ref] {
				continue
			}
			counted[ref] = true
			if !s.spend(1) {
				return nil
			}
			row, ok, err := s.r.Cost(ref)
			if err != nil {
				return err
			}
			if !ok || !c.inWindow(&row) {
				continue
			}
			c.count(ref, &row, via)
		}
		return nil
	}
	for _, run := range runs {
		var refs []graph.CostRef
		if err := s.r.CostsOf(run, func(ref graph.CostRef) bool { refs = append(refs, ref); return true }); err != nil {
			return err
		}
		rn, _ := s.info(run)
		if err := take(refs, rn.Name()); err != nil {
			return err
		}
		var tags []graph.Edge
		if err := s.r.Out(run, graph.Tagged, func(e graph.Edge) bool { tags = append(tags, e); return true }); err != nil {
			return err
		}
		for _, t := range tags {
			var trefs []graph.CostRef
			if err := s.r.CostsOf(t.Dst, func(ref graph.CostRef) bool { trefs = append(trefs, ref); return true }); err != nil {
				return err
			}
			if len(trefs) == 0 {
				continue
			}
			if err := c.edgeTo(run, t.Dst, answer.RelTagged, t.Index); err != nil {
				return err
			}
			tn, err := s.info(t.Dst)
			if err != nil {
				return err
			}
			if err := take(trefs, tn.Name()); err != nil {
				return err
			}
		}
	}
	s.ans.Cost.Notes = append(s.ans.Cost.Notes,
		"counts rows linked to the runs upstream of the version (x_RunId, or x_LinkTag matching a run's tag); rows linked to a job as a whole are not any one run's and are left out (see cost --group-by job)")
	return nil
}

func (c *coster) edgeVersion(v, ds graph.ID) error {
	var ve *graph.Edge
	if err := c.s.r.Out(v, graph.VersionOf, func(x graph.Edge) bool { ve = &x; return false }); err != nil {
		return err
	}
	if ve == nil {
		return fmt.Errorf("%w: the latest version of the dataset has no node", ErrNotFound)
	}
	return c.edgeTo(v, ds, answer.RelVersion, ve.Index)
}
