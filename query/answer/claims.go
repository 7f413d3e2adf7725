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
	ev := p.Event
	c.runID = ev.Run.ID
	node := func(kind string, parts ...string) string {
		k := refKey(kind, parts...)
		c.nodes[k] = true
		return k
	}
	edge := func(from, rel, to string) { c.edges[edgeClaim(from, rel, to)] = true }
	run := node("run", ev.Run.ID)
	job := node("job", ev.Job.Namespace, ev.Job.Name)
	edge(run, RelRunOf, job)
	if cv := ev.Job.CodeVersion(); cv != "" {
		jv := node("jobVersion", ev.Job.Namespace, ev.Job.Name, cv)
		edge(run, RelCode, jv)
	}
	if p := ev.Run.Parent; p != nil && p.RunID != ev.Run.ID {
		pr := node("run", p.RunID)
		pj := node("job", p.Job.Namespace, p.Job.Name)
		edge(pr, RelRunOf, pj)
		edge(run, RelParent, pr)
	}
	tags := func(src string, ts []payload.Tag) {
		for _, t := range ts {
			edge(src, RelTagged, node("tag", t.Key, t.Value))
		}
	}
	tags(run, ev.Run.Tags)
	tags(job, ev.Job.Tags)
	column := func(ns, name, field string) string {
		col := node("column", ns, name, field)
		edge(col, RelField, node("dataset", ns, name))
		return col
	}
	dataset := func(d *payload.Dataset) string {
		ds := node("dataset", d.Namespace, d.Name)
		for _, t := range d.Tags {
			src := ds
			if t.Field != "" {
				src = column(d.Namespace, d.Name, t.Field)
			}
			edge(src, RelTagged, node("tag", t.Key, t.Value))
		}
		return ds
	}
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
		for _, cl := range d.ColumnLineage {
			out := column(d.Namespace, d.Name, cl.Field)
			edge(job, RelOutput, out)
			for _, in := range cl.Inputs {
				edge(column(in.Namespace, in.Name, in.Field), RelDerives, out)
			}
		}
		for _, in := range d.DatasetLineage {
			edge(column(in.Namespace, in.Name, in.Field), RelAffects, ds)
		}
	}
	return c
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
