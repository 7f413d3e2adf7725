package graph

import (
	"encoding/binary"

	"github.com/provledger/provledger/query/payload"
)

// static indexes an OpenLineage DatasetEvent or JobEvent (static lineage:
// no run). docs/query.md, "OpenLineage static lineage", has the mapping.
// Besides nodes and edges it records the event under its job or dataset
// (qt), so a redaction finds the static events that can assert a job, a
// job version or a dataset version again.
func (w *writer) static(ev *payload.StaticEvent) error {
	if ev.Dataset != nil {
		return w.datasetEvent(ev, ev.Dataset)
	}
	return w.jobEvent(ev)
}

// datasetEvent writes the dataset node and its tags; with a version (the
// version facet, or one named by the schema: payload.StaticVersion) also
// the dataset version and a history record with no run.
func (w *writer) datasetEvent(ev *payload.StaticEvent, d *payload.Dataset) error {
	ds, err := w.dataset(d)
	if err != nil {
		return err
	}
	if err := w.b.Set(idxKey(tagStatic, ds, w.idx), nil, nil); err != nil {
		return err
	}
	ver := payload.StaticVersion(d)
	if ver == "" {
		return nil
	}
	dv, err := w.node(DatasetVersion, d.Namespace, d.Name, ver)
	if err != nil {
		return err
	}
	if err := w.edge(dv, VersionOf, ds, nil); err != nil {
		return err
	}
	vf := VersionFacts{
		Version: ver, Explicit: d.Version != "", Source: payload.SourceOpenLineage, EventTime: ev.EventTime,
		Schema: d.Schema, RowCount: d.RowCount(), Bytes: d.Bytes(), DataSource: d.DataSource, Quality: d.Quality,
		Lifecycle: d.LifecycleStateChange,
	}
	if d.Stats != nil {
		vf.FileCount = d.Stats.FileCount
	}
	return w.setJSON(binary.BigEndian.AppendUint16(idxKey(tagHistory, ds, w.idx), 0), vf)
}

// jobEvent writes the job (its code version, its tags), the datasets it
// declares (their tags), jobReads and jobWrites edges, and the outputs'
// column lineage, attributed to the job with no run. No dataset version
// and no run: a JobEvent says what the job reads and writes, not that it
// ran.
func (w *writer) jobEvent(ev *payload.StaticEvent) error {
	j := ev.Job
	job, err := w.node(Job, j.Namespace, j.Name)
	if err != nil {
		return err
	}
	if err := w.b.Set(idxKey(tagStatic, job, w.idx), nil, nil); err != nil {
		return err
	}
	if cv := j.CodeVersion(); cv != "" {
		jv, err := w.node(JobVersion, j.Namespace, j.Name, cv)
		if err != nil {
			return err
		}
		if err := w.edge(jv, VersionOf, job, nil); err != nil {
			return err
		}
	}
	if err := w.tags(job, j.Tags); err != nil {
		return err
	}
	for i := range ev.Inputs {
		ds, err := w.dataset(&ev.Inputs[i])
		if err != nil {
			return err
		}
		if err := w.edge(job, JobReads, ds, nil); err != nil {
			return err
		}
	}
	for i := range ev.Outputs {
		d := &ev.Outputs[i]
		ds, err := w.dataset(d)
		if err != nil {
			return err
		}
		if err := w.edge(job, JobWrites, ds, nil); err != nil {
			return err
		}
		if err := w.columns("", j.JobRef, d, ds); err != nil {
			return err
		}
	}
	return nil
}
