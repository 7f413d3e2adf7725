package payload

import (
	"bytes"
	"encoding/json"
	"strings"
)

var eventTypes = map[string]EventType{
	"START": Start, "RUNNING": Running, "COMPLETE": Complete,
	"ABORT": Abort, "FAIL": Fail, "OTHER": Other,
}

// ParseRunEvent parses an OpenLineage RunEvent (spec 2-0-x). Required:
// eventTime (RFC 3339), producer, run.runId (a UUID), job.namespace and
// job.name, and namespace and name of every dataset. eventType, when
// present, must be one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER.
// Every facet must be an object with at most Limits.MaxFacetSize bytes of
// JSON. A DatasetEvent or JobEvent (no "run") is rejected: the payload type
// says run event.
func ParseRunEvent(b []byte, lim Limits) (*RunEvent, error) {
	lim = lim.withDefaults()
	root, err := parseObject("", b)
	if err != nil {
		return nil, rootErr("an OpenLineage RunEvent", err)
	}
	p := olParser{lim: lim}
	return p.event(root)
}

type olParser struct{ lim Limits }

func (p *olParser) event(root obj) (*RunEvent, error) {
	e := &RunEvent{Source: SourceOpenLineage}
	if !root.has("run") {
		if root.has("dataset") || (!root.has("job") && root.has("datasets")) {
			return nil, fieldErr("run", "is required: this looks like a DatasetEvent; send it with a run (a RunEvent)")
		}
		if root.has("job") && !root.has("eventType") {
			return nil, fieldErr("run", "is required: this looks like a JobEvent; send it with a run (a RunEvent)")
		}
	}
	if root.has("eventType") {
		s, err := root.str("eventType", false, 32)
		if err != nil {
			return nil, err
		}
		t, ok := eventTypes[s]
		if !ok {
			return nil, fieldErr("eventType", "%q is not an event type; use START, RUNNING, COMPLETE, ABORT, FAIL or OTHER", truncate(s))
		}
		e.EventType = t
	}
	var err error
	if e.EventTime, err = root.timestamp("eventTime", true); err != nil {
		return nil, err
	}
	if e.Producer, err = root.str("producer", true, p.lim.MaxNameLen); err != nil {
		return nil, err
	}
	if root.has("schemaURL") {
		if _, err := root.str("schemaURL", false, p.lim.MaxNameLen); err != nil {
			return nil, err
		}
	}
	run, _, err := root.object("run", true)
	if err != nil {
		return nil, err
	}
	if err := p.run(run, &e.Run); err != nil {
		return nil, err
	}
	job, _, err := root.object("job", true)
	if err != nil {
		return nil, err
	}
	if err := p.job(job, &e.Job); err != nil {
		return nil, err
	}
	if e.Inputs, e.Outputs, err = p.datasets(root); err != nil {
		return nil, err
	}
	return e, nil
}

// datasets parses an event's inputs and outputs (a RunEvent's or a
// JobEvent's), within the per-event dataset limit.
func (p *olParser) datasets(root obj) (inputs, outputs []Dataset, err error) {
	ins, err := root.array("inputs", p.lim.MaxDatasets)
	if err != nil {
		return nil, nil, err
	}
	outs, err := root.array("outputs", p.lim.MaxDatasets)
	if err != nil {
		return nil, nil, err
	}
	if len(ins)+len(outs) > p.lim.MaxDatasets {
		return nil, nil, fieldErr("inputs", "%d inputs and %d outputs; the limit is %d datasets per event", len(ins), len(outs), p.lim.MaxDatasets)
	}
	for i, raw := range ins {
		d, err := p.dataset(index("inputs", i), raw, "inputFacets")
		if err != nil {
			return nil, nil, err
		}
		inputs = append(inputs, d)
	}
	for i, raw := range outs {
		d, err := p.dataset(index("outputs", i), raw, "outputFacets")
		if err != nil {
			return nil, nil, err
		}
		outputs = append(outputs, d)
	}
	return inputs, outputs, nil
}

// facets returns the facets object at o.name with every facet checked to
// be an object under the size cap. Facets whose value is null are
// ignored; OpenLineage producers send them for "no value".
func (p *olParser) facets(o obj, name string) (obj, error) {
	f, ok, err := o.object(name, false)
	if err != nil || !ok {
		return obj{path: join(o.path, name)}, err
	}
	for _, k := range f.keys() {
		raw := f.m[k]
		if isNull(raw) {
			continue
		}
		if len(raw) > p.lim.MaxFacetSize {
			return obj{}, fieldErr(join(f.path, k), "facet is %d bytes; the limit is %d (raise the facet size cap, or trim the facet)", len(raw), p.lim.MaxFacetSize)
		}
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
			return obj{}, fieldErr(join(f.path, k), "a facet must be a JSON object, got %s", describe(t))
		}
	}
	return f, nil
}

func (p *olParser) run(o obj, r *Run) error {
	id, err := o.str("runId", true, 64)
	if err != nil {
		return err
	}
	if r.ID, err = canonicalUUID(join(o.path, "runId"), id); err != nil {
		return err
	}
	f, err := p.facets(o, "facets")
	if err != nil {
		return err
	}
	if par, ok, err := f.object("parent", false); err != nil {
		return err
	} else if ok {
		if r.Parent, err = p.parent(par); err != nil {
			return err
		}
	}
	if r.Tags, err = p.tags(f); err != nil {
		return err
	}
	if pe, ok, err := f.object("processing_engine", false); err != nil {
		return err
	} else if ok {
		r.Engine = &Engine{}
		if r.Engine.Name, err = pe.str("name", false, p.lim.MaxNameLen); err != nil {
			return err
		}
		if r.Engine.Version, err = pe.str("version", false, p.lim.MaxNameLen); err != nil {
			return err
		}
		if r.Engine.OpenlineageAdapterVersion, err = pe.str("openlineageAdapterVersion", false, p.lim.MaxNameLen); err != nil {
			return err
		}
	}
	if nt, ok, err := f.object("nominalTime", false); err != nil {
		return err
	} else if ok {
		if r.NominalStart, err = nt.timestamp("nominalStartTime", true); err != nil {
			return err
		}
		if r.NominalEnd, err = nt.timestamp("nominalEndTime", false); err != nil {
			return err
		}
	}
	if em, ok, err := f.object("errorMessage", false); err != nil {
		return err
	} else if ok {
		if r.ErrorMessage, err = em.str("message", false, 0); err != nil {
			return err
		}
	}
	return nil
}

func (p *olParser) jobRef(o obj) (JobRef, error) {
	var j JobRef
	var err error
	if j.Namespace, err = o.str("namespace", true, p.lim.MaxNameLen); err != nil {
		return j, err
	}
	if j.Name, err = o.str("name", true, p.lim.MaxNameLen); err != nil {
		return j, err
	}
	return j, nil
}

func (p *olParser) parent(o obj) (*Parent, error) {
	par := &Parent{}
	run, _, err := o.object("run", true)
	if err != nil {
		return nil, err
	}
	id, err := run.str("runId", true, 64)
	if err != nil {
		return nil, err
	}
	if par.RunID, err = canonicalUUID(join(run.path, "runId"), id); err != nil {
		return nil, err
	}
	job, _, err := o.object("job", true)
	if err != nil {
		return nil, err
	}
	if par.Job, err = p.jobRef(job); err != nil {
		return nil, err
	}
	root, ok, err := o.object("root", false)
	if err != nil || !ok {
		return par, err
	}
	rrun, _, err := root.object("run", true)
	if err != nil {
		return nil, err
	}
	rid, err := rrun.str("runId", true, 64)
	if err != nil {
		return nil, err
	}
	if par.RootRunID, err = canonicalUUID(join(rrun.path, "runId"), rid); err != nil {
		return nil, err
	}
	rjob, _, err := root.object("job", true)
	if err != nil {
		return nil, err
	}
	rj, err := p.jobRef(rjob)
	if err != nil {
		return nil, err
	}
	par.RootJob = &rj
	return par, nil
}

func (p *olParser) tags(facets obj) ([]Tag, error) {
	t, ok, err := facets.object("tags", false)
	if err != nil || !ok {
		return nil, err
	}
	items, err := t.array("tags", p.lim.MaxFields)
	if err != nil {
		return nil, err
	}
	out := make([]Tag, 0, len(items))
	for i, raw := range items {
		o, err := parseObject(index(join(t.path, "tags"), i), raw)
		if err != nil {
			return nil, err
		}
		var tg Tag
		if tg.Key, err = o.str("key", true, p.lim.MaxNameLen); err != nil {
			return nil, err
		}
		if tg.Value, err = o.str("value", false, p.lim.MaxNameLen); err != nil {
			return nil, err
		}
		if !o.has("value") {
			return nil, fieldErr(join(o.path, "value"), "is required")
		}
		if tg.Source, err = o.str("source", false, p.lim.MaxNameLen); err != nil {
			return nil, err
		}
		if tg.Field, err = o.str("field", false, p.lim.MaxNameLen); err != nil {
			return nil, err
		}
		out = append(out, tg)
	}
	return out, nil
}

func (p *olParser) job(o obj, j *Job) error {
	var err error
	if j.JobRef, err = p.jobRef(o); err != nil {
		return err
	}
	f, err := p.facets(o, "facets")
	if err != nil {
		return err
	}
	if sc, ok, err := f.object("sourceCodeLocation", false); err != nil {
		return err
	} else if ok {
		j.Source = &SourceCode{}
		for _, m := range []struct {
			name string
			dst  *string
		}{{"type", &j.Source.Type}, {"url", &j.Source.URL}, {"repoUrl", &j.Source.RepoURL}, {"path", &j.Source.Path}, {"version", &j.Source.Version}, {"tag", &j.Source.Tag}, {"branch", &j.Source.Branch}} {
			if *m.dst, err = sc.str(m.name, false, p.lim.MaxNameLen); err != nil {
				return err
			}
		}
	}
	if jt, ok, err := f.object("jobType", false); err != nil {
		return err
	} else if ok {
		j.Type = &JobType{}
		if j.Type.ProcessingType, err = jt.str("processingType", false, p.lim.MaxNameLen); err != nil {
			return err
		}
		if j.Type.Integration, err = jt.str("integration", false, p.lim.MaxNameLen); err != nil {
			return err
		}
		if j.Type.JobType, err = jt.str("jobType", false, p.lim.MaxNameLen); err != nil {
			return err
		}
	}
	j.Tags, err = p.tags(f)
	return err
}

// dataset parses an input or output; kindFacets is "inputFacets" or
// "outputFacets".
func (p *olParser) dataset(path string, raw json.RawMessage, kindFacets string) (Dataset, error) {
	var d Dataset
	o, err := parseObject(path, raw)
	if err != nil {
		return d, err
	}
	if d.Namespace, err = o.str("namespace", true, p.lim.MaxNameLen); err != nil {
		return d, err
	}
	if d.Name, err = o.str("name", true, p.lim.MaxNameLen); err != nil {
		return d, err
	}
	f, err := p.facets(o, "facets")
	if err != nil {
		return d, err
	}
	kf, err := p.facets(o, kindFacets)
	if err != nil {
		return d, err
	}
	if v, ok, err := f.object("version", false); err != nil {
		return d, err
	} else if ok {
		if d.Version, err = v.str("datasetVersion", true, p.lim.MaxNameLen); err != nil {
			return d, err
		}
	}
	if s, ok, err := f.object("schema", false); err != nil {
		return d, err
	} else if ok {
		n := 0
		if d.Schema, err = p.schemaFields(s, "fields", &n, 0); err != nil {
			return d, err
		}
	}
	if ds, ok, err := f.object("dataSource", false); err != nil {
		return d, err
	} else if ok {
		d.DataSource = &DataSource{}
		if d.DataSource.Name, err = ds.str("name", false, p.lim.MaxNameLen); err != nil {
			return d, err
		}
		if d.DataSource.URI, err = ds.str("uri", false, p.lim.MaxNameLen); err != nil {
			return d, err
		}
	}
	if cl, ok, err := f.object("columnLineage", false); err != nil {
		return d, err
	} else if ok {
		if err := p.columnLineage(cl, &d); err != nil {
			return d, err
		}
	}
	// dataQualityMetrics is an input facet; older producers put it among
	// the dataset facets.
	for _, src := range []obj{kf, f} {
		if q, ok, err := src.object("dataQualityMetrics", false); err != nil {
			return d, err
		} else if ok && d.Quality == nil {
			if d.Quality, err = p.quality(q); err != nil {
				return d, err
			}
		}
	}
	statsName := "inputStatistics"
	if kindFacets == "outputFacets" {
		statsName = "outputStatistics"
	}
	if st, ok, err := kf.object(statsName, false); err != nil {
		return d, err
	} else if ok {
		d.Stats = &Statistics{}
		if d.Stats.RowCount, err = st.count("rowCount"); err != nil {
			return d, err
		}
		if d.Stats.Size, err = st.count("size"); err != nil {
			return d, err
		}
		if d.Stats.FileCount, err = st.count("fileCount"); err != nil {
			return d, err
		}
	}
	if d.Tags, err = p.tags(f); err != nil {
		return d, err
	}
	if lc, ok, err := f.object("lifecycleStateChange", false); err != nil {
		return d, err
	} else if ok {
		if d.LifecycleStateChange, err = lc.str("lifecycleStateChange", true, 64); err != nil {
			return d, err
		}
		switch d.LifecycleStateChange {
		case "ALTER", "CREATE", "DROP", "OVERWRITE", "RENAME", "TRUNCATE":
		default:
			return d, fieldErr(join(lc.path, "lifecycleStateChange"), "%q is not a lifecycle state change; use ALTER, CREATE, DROP, OVERWRITE, RENAME or TRUNCATE", truncate(d.LifecycleStateChange))
		}
	}
	if sg, ok, err := f.object("storage", false); err != nil {
		return d, err
	} else if ok {
		if d.StorageLayer, err = sg.str("storageLayer", false, p.lim.MaxNameLen); err != nil {
			return d, err
		}
		if d.FileFormat, err = sg.str("fileFormat", false, p.lim.MaxNameLen); err != nil {
			return d, err
		}
	}
	return d, nil
}

const maxSchemaDepth = 32

func (p *olParser) schemaFields(o obj, name string, n *int, depth int) ([]SchemaField, error) {
	items, err := o.array(name, p.lim.MaxFields)
	if err != nil {
		return nil, err
	}
	if depth > maxSchemaDepth {
		return nil, fieldErr(join(o.path, name), "nested more than %d levels deep", maxSchemaDepth)
	}
	out := make([]SchemaField, 0, len(items))
	for i, raw := range items {
		*n++
		if *n > p.lim.MaxFields {
			return nil, fieldErr(index(join(o.path, name), i), "the schema has more than %d fields", p.lim.MaxFields)
		}
		fo, err := parseObject(index(join(o.path, name), i), raw)
		if err != nil {
			return nil, err
		}
		var sf SchemaField
		if sf.Name, err = fo.str("name", true, p.lim.MaxNameLen); err != nil {
			return nil, err
		}
		if sf.Type, err = fo.str("type", false, p.lim.MaxNameLen); err != nil {
			return nil, err
		}
		if sf.Description, err = fo.str("description", false, 0); err != nil {
			return nil, err
		}
		if sf.Fields, err = p.schemaFields(fo, "fields", n, depth+1); err != nil {
			return nil, err
		}
		out = append(out, sf)
	}
	return out, nil
}

func (p *olParser) columnLineage(cl obj, d *Dataset) error {
	fields, ok, err := cl.object("fields", true)
	if err != nil || !ok {
		return err
	}
	ks := fields.keys()
	if len(ks) > p.lim.MaxFields {
		return fieldErr(fields.path, "has %d fields; the limit is %d", len(ks), p.lim.MaxFields)
	}
	for _, k := range ks {
		if k == "" {
			return fieldErr(fields.path, "has a field with an empty name")
		}
		if len(k) > p.lim.MaxNameLen {
			return fieldErr(fields.path, "a field name is %d bytes; the limit is %d", len(k), p.lim.MaxNameLen)
		}
		fo, err := parseObject(join(fields.path, k), fields.m[k])
		if err != nil {
			return err
		}
		c := ColumnLineage{Field: k}
		if !fo.has("inputFields") {
			return fieldErr(join(fo.path, "inputFields"), "is required")
		}
		if c.Inputs, err = p.inputFields(fo, "inputFields"); err != nil {
			return err
		}
		if c.TransformationDescription, err = fo.str("transformationDescription", false, 0); err != nil {
			return err
		}
		if c.TransformationType, err = fo.str("transformationType", false, p.lim.MaxNameLen); err != nil {
			return err
		}
		d.ColumnLineage = append(d.ColumnLineage, c)
	}
	d.DatasetLineage, err = p.inputFields(cl, "dataset")
	return err
}

func (p *olParser) inputFields(o obj, name string) ([]InputField, error) {
	items, err := o.array(name, p.lim.MaxFields)
	if err != nil {
		return nil, err
	}
	out := make([]InputField, 0, len(items))
	for i, raw := range items {
		io, err := parseObject(index(join(o.path, name), i), raw)
		if err != nil {
			return nil, err
		}
		var f InputField
		if f.Namespace, err = io.str("namespace", true, p.lim.MaxNameLen); err != nil {
			return nil, err
		}
		if f.Name, err = io.str("name", true, p.lim.MaxNameLen); err != nil {
			return nil, err
		}
		if f.Field, err = io.str("field", true, p.lim.MaxNameLen); err != nil {
			return nil, err
		}
		ts, err := io.array("transformations", 64)
		if err != nil {
			return nil, err
		}
		for j, traw := range ts {
			to, err := parseObject(index(join(io.path, "transformations"), j), traw)
			if err != nil {
				return nil, err
			}
			var t Transformation
			if t.Type, err = to.str("type", true, 32); err != nil {
				return nil, err
			}
			switch t.Type {
			case "DIRECT", "INDIRECT":
			default:
				return nil, fieldErr(join(to.path, "type"), "%q is not a transformation type; use DIRECT or INDIRECT", truncate(t.Type))
			}
			if t.Subtype, err = to.str("subtype", false, p.lim.MaxNameLen); err != nil {
				return nil, err
			}
			if t.Description, err = to.str("description", false, 0); err != nil {
				return nil, err
			}
			if t.Masking, err = to.boolean("masking"); err != nil {
				return nil, err
			}
			f.Transformations = append(f.Transformations, t)
		}
		out = append(out, f)
	}
	return out, nil
}

func (p *olParser) quality(q obj) (*Quality, error) {
	out := &Quality{}
	var err error
	if out.RowCount, err = q.count("rowCount"); err != nil {
		return nil, err
	}
	if out.Bytes, err = q.count("bytes"); err != nil {
		return nil, err
	}
	if out.FileCount, err = q.count("fileCount"); err != nil {
		return nil, err
	}
	cm, ok, err := q.object("columnMetrics", false)
	if err != nil || !ok {
		return out, err
	}
	ks := cm.keys()
	if len(ks) > p.lim.MaxFields {
		return nil, fieldErr(cm.path, "has %d columns; the limit is %d", len(ks), p.lim.MaxFields)
	}
	for _, k := range ks {
		co, err := parseObject(join(cm.path, k), cm.m[k])
		if err != nil {
			return nil, err
		}
		m := ColumnMetric{Column: k}
		if m.NullCount, err = co.count("nullCount"); err != nil {
			return nil, err
		}
		if m.DistinctCount, err = co.count("distinctCount"); err != nil {
			return nil, err
		}
		for _, f := range []struct {
			name string
			dst  **float64
		}{{"sum", &m.Sum}, {"count", &m.Count}, {"min", &m.Min}, {"max", &m.Max}} {
			if *f.dst, err = co.number(f.name); err != nil {
				return nil, err
			}
		}
		out.Columns = append(out.Columns, m)
	}
	return out, nil
}

// splitURI splits an artifact URI into an OpenLineage-style dataset
// namespace (scheme://authority) and name (the path without its leading
// slash, with query kept). ok is false when s has no scheme and authority.
func splitURI(s string) (ns, name string, ok bool) {
	i := strings.Index(s, "://")
	if i <= 0 {
		return "", "", false
	}
	for _, c := range s[:i] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return "", "", false
		}
	}
	rest := s[i+3:]
	j := strings.IndexByte(rest, '/')
	if j < 0 {
		return s, "/", true
	}
	if j == 0 {
		return "", "", false
	}
	name = strings.TrimPrefix(rest[j:], "/")
	if name == "" {
		name = "/"
	}
	return s[:i+3] + rest[:j], name, true
}
