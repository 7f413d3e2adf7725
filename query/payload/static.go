package payload

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"time"
)

// Payload types of OpenLineage static lineage (spec 2-0-x): a
// DatasetEvent (a dataset's metadata, no run) and a JobEvent (a job's
// inputs and outputs, no run).
const (
	TypeOpenLineageDataset = "application/vnd.openlineage.dataset-event+json"
	TypeOpenLineageJob     = "application/vnd.openlineage.job-event+json"
)

// StaticEvent is an OpenLineage DatasetEvent (Dataset set) or JobEvent
// (Job set, with its inputs and outputs): lineage declared without a run.
type StaticEvent struct {
	EventTime time.Time `json:"eventTime"`
	Producer  string    `json:"producer,omitempty"`
	// Dataset is the DatasetEvent's dataset.
	Dataset *Dataset `json:"dataset,omitempty"`
	// Job, Inputs and Outputs are the JobEvent's.
	Job     *Job      `json:"job,omitempty"`
	Inputs  []Dataset `json:"inputs,omitempty"`
	Outputs []Dataset `json:"outputs,omitempty"`
}

// OpenLineageEvent is any OpenLineage event: Type says which, and Run or
// Static holds it.
type OpenLineageEvent struct {
	// Type is TypeOpenLineage (a RunEvent), TypeOpenLineageDataset or
	// TypeOpenLineageJob.
	Type   string
	Run    *RunEvent
	Static *StaticEvent
}

// ParseOpenLineageEvent parses a RunEvent, DatasetEvent or JobEvent,
// telling them apart as the spec does: a RunEvent has a run, a
// DatasetEvent a dataset, a JobEvent a job and no run. An object with
// an eventType, or with none of them, is parsed as a RunEvent (whose
// error names the missing run). Errors are *FieldError, as ParseRunEvent's.
func ParseOpenLineageEvent(b []byte, lim Limits) (*OpenLineageEvent, error) {
	lim = lim.withDefaults()
	root, err := parseObject("", b)
	if err != nil {
		return nil, rootErr("an OpenLineage event", err)
	}
	p := olParser{lim: lim}
	switch {
	case !root.has("run") && !root.has("eventType") && root.has("dataset") && root.has("job"):
		return nil, fieldErr("dataset", "an event without a run has a dataset (a DatasetEvent) or a job (a JobEvent), not both")
	case root.has("run") || root.has("eventType") || (!root.has("dataset") && !root.has("job")):
		e, err := p.event(root)
		if err != nil {
			return nil, err
		}
		return &OpenLineageEvent{Type: TypeOpenLineage, Run: e}, nil
	case root.has("dataset"):
		e, err := p.datasetEvent(root)
		if err != nil {
			return nil, err
		}
		return &OpenLineageEvent{Type: TypeOpenLineageDataset, Static: e}, nil
	default:
		e, err := p.jobEvent(root)
		if err != nil {
			return nil, err
		}
		return &OpenLineageEvent{Type: TypeOpenLineageJob, Static: e}, nil
	}
}

// ParseDatasetEvent parses an OpenLineage DatasetEvent: eventTime (RFC
// 3339), producer and dataset (namespace, name, facets) are required;
// the dataset's facets are checked as a RunEvent's are.
func ParseDatasetEvent(b []byte, lim Limits) (*StaticEvent, error) {
	root, err := parseObject("", b)
	if err != nil {
		return nil, rootErr("an OpenLineage DatasetEvent", err)
	}
	p := olParser{lim: lim.withDefaults()}
	return p.datasetEvent(root)
}

// ParseJobEvent parses an OpenLineage JobEvent: eventTime, producer and
// job are required, inputs and outputs optional; no run.
func ParseJobEvent(b []byte, lim Limits) (*StaticEvent, error) {
	root, err := parseObject("", b)
	if err != nil {
		return nil, rootErr("an OpenLineage JobEvent", err)
	}
	p := olParser{lim: lim.withDefaults()}
	return p.jobEvent(root)
}

// header parses what every static event has: eventTime, producer and
// (optional) schemaURL; a run or an eventType is a RunEvent's.
func (p *olParser) header(root obj, what string) (*StaticEvent, error) {
	for _, m := range []string{"run", "eventType"} {
		if root.has(m) {
			return nil, fieldErr(m, "a %s has no %s; send a RunEvent (with run and job) for a run", what, m)
		}
	}
	e := &StaticEvent{}
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
	return e, nil
}

func (p *olParser) datasetEvent(root obj) (*StaticEvent, error) {
	e, err := p.header(root, "DatasetEvent")
	if err != nil {
		return nil, err
	}
	for _, m := range []string{"job", "inputs", "outputs"} {
		if root.has(m) {
			return nil, fieldErr(m, "a DatasetEvent has no %s; send a JobEvent for a job's inputs and outputs", m)
		}
	}
	raw, ok := root.raw("dataset")
	if !ok {
		return nil, fieldErr("dataset", "is required")
	}
	d, err := p.dataset("dataset", raw, "")
	if err != nil {
		return nil, err
	}
	e.Dataset = &d
	return e, nil
}

func (p *olParser) jobEvent(root obj) (*StaticEvent, error) {
	e, err := p.header(root, "JobEvent")
	if err != nil {
		return nil, err
	}
	if root.has("dataset") {
		return nil, fieldErr("dataset", "a JobEvent has no dataset; send a DatasetEvent for one dataset")
	}
	job, _, err := root.object("job", true)
	if err != nil {
		return nil, err
	}
	e.Job = &Job{}
	if err := p.job(job, e.Job); err != nil {
		return nil, err
	}
	if e.Inputs, e.Outputs, err = p.datasets(root); err != nil {
		return nil, err
	}
	return e, nil
}

// StaticVersion is the dataset version a DatasetEvent's dataset asserts:
// its version facet's datasetVersion; else, with a schema facet,
// "schema:" and the first 16 bytes (hex) of the SHA-256 of the schema's
// fields (names, types, descriptions and nested fields, each
// length-prefixed), so the same schema declared twice is one version, as
// Marquez derives versions from a dataset's fields; else "" (the event
// describes the dataset only).
func StaticVersion(d *Dataset) string {
	if d.Version != "" {
		return d.Version
	}
	if len(d.Schema) == 0 {
		return ""
	}
	h := sha256.New()
	hashFields(h, d.Schema)
	sum := h.Sum(nil)
	return "schema:" + hex.EncodeToString(sum[:16])
}

func hashFields(h hash.Hash, fs []SchemaField) {
	var n [binary.MaxVarintLen64]byte
	put := func(s string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(fs)))])
	for _, f := range fs {
		put(f.Name)
		put(f.Type)
		put(f.Description)
		hashFields(h, f.Fields)
	}
}
