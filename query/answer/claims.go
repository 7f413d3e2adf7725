package answer

import "github.com/provledger/provledger/query/payload"

// claims is what one entry's payload asserts, in the terms of answers:
// nodes by kind and parts, edges in data-flow direction. It mirrors what
// the graph indexer derives from the same payload (query/graph), so a
// verifier can check each fact an answer attributes to an entry against
// that entry's signed payload.
type claims struct {
	nodes map[string]bool
	edges map[string]bool
	// readAny holds the datasets (namespace, name) an event read without
	// naming a version: the index resolved those reads to the dataset's
	// latest completed version, which the payload alone cannot confirm.
	readAny map[string]bool
	// outputs holds the (dataset, version) pairs an event wrote.
	outputs map[string]bool
	// wrote holds the datasets (namespace, name) an event wrote.
	wrote map[string]bool
	runID string
	costs map[int]payload.CostRow
}

func refKey(kind string, parts ...string) string {
	k := kind
	for _, p := range parts {
		k += "\x00" + p
	}
	return k
}

func (r Ref) key() string { return refKey(r.Kind, r.Parts...) }

func edgeClaim(from, rel, to string) string { return from + "\x01" + rel + "\x01" + to }

func deriveClaims(p *payload.Parsed) *claims {
	c := &claims{nodes: map[string]bool{}, edges: map[string]bool{}, readAny: map[string]bool{}, outputs: map[string]bool{}, wrote: map[string]bool{}}
	if p.Costs != nil {
		c.costs = map[int]payload.CostRow{}
		for _, r := range p.Costs {
			c.costs[r.Row] = r
		}
		return c
	}
	if p.Static != nil {
		c.static(p.Static)
		return c
	}
	ev := p.Event
	c.runID = ev.Run.ID
	run := c.node("run", ev.Run.ID)
	job := c.node("job", ev.Job.Namespace, ev.Job.Name)
	edge := c.edge
	edge(run, RelRunOf, job)
	if cv := ev.Job.CodeVersion(); cv != "" {
		jv := c.node("jobVersion", ev.Job.Namespace, ev.Job.Name, cv)
		edge(run, RelCode, jv)
	}
	if p := ev.Run.Parent; p != nil && p.RunID != ev.Run.ID {
		pr := c.node("run", p.RunID)
		pj := c.node("job", p.Job.Namespace, p.Job.Name)
		edge(pr, RelRunOf, pj)
		edge(run, RelParent, pr)
	}
	c.tags(run, ev.Run.Tags)
	c.tags(job, ev.Job.Tags)
	node, dataset := c.node, c.dataset
	for i := range ev.Inputs {
		d := &ev.Inputs[i]
		ds := dataset(d)
		edge(ds, RelInput, job)
		if d.Version == "" {
			c.readAny[refKey("", d.Namespace, d.Name)] = true
			continue
		}
		v := node("datasetVersion", d.Namespace, d.Name, d.Version)
		edge(v, RelVersion, ds)
		edge(v, RelInput, run)
	}
	for i := range ev.Outputs {
		d := &ev.Outputs[i]
		ds := dataset(d)
		ver := d.Version
		if ver == "" {
			ver = "run:" + ev.Run.ID
		}
		c.outputs[refKey("", d.Namespace, d.Name, ver)] = true
		c.wrote[refKey("", d.Namespace, d.Name)] = true
		v := node("datasetVersion", d.Namespace, d.Name, ver)
		edge(v, RelVersion, ds)
		edge(run, RelOutput, v)
		edge(job, RelOutput, ds)
		c.columnLineage(job, ds, d)
	}
	return c
}

// static derives what an OpenLineage DatasetEvent or JobEvent asserts
// (query/graph/static.go): a DatasetEvent its dataset, tags and, with a
// version (payload.StaticVersion), that version, which it "wrote" with no
// run; a JobEvent its job, code version, tags, the datasets it reads and
// writes and its outputs' column lineage.
func (c *claims) static(ev *payload.StaticEvent) {
	if d := ev.Dataset; d != nil {
		ds := c.dataset(d)
		if ver := payload.StaticVersion(d); ver != "" {
			c.outputs[refKey("", d.Namespace, d.Name, ver)] = true
			c.wrote[refKey("", d.Namespace, d.Name)] = true
			c.edge(c.node("datasetVersion", d.Namespace, d.Name, ver), RelVersion, ds)
		}
		return
	}
	j := ev.Job
	job := c.node("job", j.Namespace, j.Name)
	if cv := j.CodeVersion(); cv != "" {
		c.edge(c.node("jobVersion", j.Namespace, j.Name, cv), RelVersion, job)
	}
	c.tags(job, j.Tags)
	for i := range ev.Inputs {
		c.edge(c.dataset(&ev.Inputs[i]), RelInput, job)
	}
	for i := range ev.Outputs {
		d := &ev.Outputs[i]
		ds := c.dataset(d)
		c.edge(job, RelOutput, ds)
		c.columnLineage(job, ds, d)
	}
}

func (c *claims) node(kind string, parts ...string) string {
	k := refKey(kind, parts...)
	c.nodes[k] = true
	return k
}

func (c *claims) edge(from, rel, to string) { c.edges[edgeClaim(from, rel, to)] = true }

func (c *claims) tags(src string, ts []payload.Tag) {
	for _, t := range ts {
		c.edge(src, RelTagged, c.node("tag", t.Key, t.Value))
	}
}

// column asserts a column and its dataset.
func (c *claims) column(ns, name, field string) string {
	col := c.node("column", ns, name, field)
	c.edge(col, RelField, c.node("dataset", ns, name))
	return col
}

// dataset asserts a dataset and its (column) tags.
func (c *claims) dataset(d *payload.Dataset) string {
	ds := c.node("dataset", d.Namespace, d.Name)
	for _, t := range d.Tags {
		src := ds
		if t.Field != "" {
			src = c.column(d.Namespace, d.Name, t.Field)
		}
		c.edge(src, RelTagged, c.node("tag", t.Key, t.Value))
	}
	return ds
}

// columnLineage asserts output d's column lineage, derived by job.
func (c *claims) columnLineage(job, ds string, d *payload.Dataset) {
	for _, cl := range d.ColumnLineage {
		out := c.column(d.Namespace, d.Name, cl.Field)
		c.edge(job, RelOutput, out)
		for _, in := range cl.Inputs {
			c.edge(c.column(in.Namespace, in.Name, in.Field), RelDerives, out)
		}
	}
	for _, in := range d.DatasetLineage {
		c.edge(c.column(in.Namespace, in.Name, in.Field), RelAffects, ds)
	}
}

// hasNode reports whether the payload asserts node r.
func (c *claims) hasNode(r Ref) bool {
	if c.nodes[r.key()] {
		return true
	}
	// A version the index resolved a version-less read to.
	return r.Kind == "datasetVersion" && len(r.Parts) == 3 && c.readAny[refKey("", r.Parts[0], r.Parts[1])]
}

// hasEdge reports whether the payload asserts edge e between from and to.
func (c *claims) hasEdge(from, to Ref, e *Edge) bool {
	if c.edges[edgeClaim(from.key(), e.Rel, to.key())] {
		return true
	}
	if from.Kind != "datasetVersion" || len(from.Parts) != 3 || !c.readAny[refKey("", from.Parts[0], from.Parts[1])] {
		return false
	}
	switch {
	case e.Rel == RelInput && to.Kind == "run" && e.Resolved:
		return len(to.Parts) == 1 && to.Parts[0] == c.runID
	case e.Rel == RelVersion && to.Kind == "dataset":
		return to.Parts[0] == from.Parts[0] && to.Parts[1] == from.Parts[1]
	}
	return false
}

// assertsVersion reports whether the payload says something about
// version ver of dataset (ns, name) made by run runID: it wrote that
// version, or it is an event of that run that did not write the dataset
// (e.g. the run's final state).
func (c *claims) assertsVersion(ns, name, ver, runID string) bool {
	if c.wrote[refKey("", ns, name)] {
		return c.outputs[refKey("", ns, name, ver)]
	}
	return c.runID != "" && c.runID == runID
}
