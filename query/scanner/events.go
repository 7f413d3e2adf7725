package scanner

import (
	"fmt"
	"math"
	"slices"

	"strings"
	"time"

	"github.com/provledger/provledger/query/payload"
)

const (
	hourMs = int64(time.Hour / time.Millisecond)
	// runRetention is how long a finished run's state is kept (late
	// events still find it; cost rows linked by run id find its job).
	runRetention = 48 * time.Hour
	// maxGaps is the number of update gaps kept per dataset.
	maxGaps = 8
	// maxSeen caps the versions remembered per job.
	maxSeen = 64
)

// advance runs the time-driven checks (runs past their window, stale
// datasets) once per hour of integration time.
func (s *Scanner) advance(now time.Time) {
	tick := now.UnixMilli() / hourMs
	if tick <= s.tick {
		return
	}
	s.tick = tick
	nowMs := now.UnixMilli()
	if !s.opts.Lineage.Disabled {
		s.checkRuns(now, nowMs)
	}
	if !s.opts.Freshness.Disabled {
		s.checkFreshness(now, nowMs)
	}
}

func (s *Scanner) checkRuns(now time.Time, nowMs int64) {
	window := s.opts.Lineage.RunWindow.Milliseconds()
	keep := runRetention.Milliseconds()
	// The runs whose deadline passed (deadlines.go), judged on their
	// current state; only the runs that raise a finding are sorted
	// (findings come out in run id order, deterministically).
	var late []string
	s.runDue.popDue(nowMs, func(id string) {
		rs := s.runs.peek(id)
		if rs == nil {
			return // deleted; an outdated deadline
		}
		switch {
		case rs.Done && nowMs-rs.DoneAt > keep:
			s.runs.del(id)
		case !rs.Done && rs.Started && nowMs-rs.StartedAt > window:
			late = append(late, id)
		case !rs.Done && !rs.Started && nowMs-rs.MaxEvent > keep+window:
			// Events without a START: forget them eventually.
			s.runs.del(id)
		}
	})
	slices.Sort(late)
	late = slices.Compact(late) // (a run queued twice)
	for _, id := range late {
		rs := s.runs.touch(id)
		rs.Done, rs.DoneAt = true, nowMs
		s.queueRun(id)
		obs := float64(nowMs-rs.StartedAt) / float64(hourMs)
		s.emit(&Finding{Detector: "lineage", Kind: "lineage.runIncomplete", Severity: SeverityMedium,
			Subject: "run:" + id, Entries: []uint64{rs.StartEntry}, Time: now,
			Observed: &obs, Expected: &Band{High: s.opts.Lineage.RunWindow.Hours()},
			Message: fmt.Sprintf("run %s of job %s started at entry %d and has not completed, failed or aborted within %s", id, strings.Replace(rs.Job, "\x00", ":", 1), rs.StartEntry, s.opts.Lineage.RunWindow),
			Details: map[string]string{"job": strings.Replace(rs.Job, "\x00", ":", 1)}})
	}
}

func (s *Scanner) checkFreshness(now time.Time, nowMs int64) {
	// The limits to compute (updated datasets, changed intervals), then
	// the datasets whose deadline passed, judged on their current state;
	// only the stale datasets are sorted.
	for _, k := range s.limitPending {
		ds := s.datasets.peek(k)
		if ds == nil || ds.limitOK {
			continue
		}
		ds.limit, ds.how = s.freshnessLimit(k, ds)
		ds.limitOK = true
		if ds.limit != 0 && !ds.Stale && ds.Updates > 0 {
			s.staleDue.add(ds.LastUpdate+ds.limit, k)
		}
	}
	s.limitPending = s.limitPending[:0]
	var stale []string
	s.staleDue.popDue(nowMs, func(k string) {
		ds := s.datasets.peek(k)
		if ds != nil && !ds.Stale && ds.Updates > 0 && ds.limitOK && ds.limit != 0 && nowMs-ds.LastUpdate > ds.limit {
			stale = append(stale, k)
		}
	})
	slices.Sort(stale)
	stale = slices.Compact(stale)
	for _, k := range stale {
		ds := s.datasets.touch(k)
		ds.Stale = true
		obs := float64(nowMs-ds.LastUpdate) / float64(hourMs)
		lim := float64(ds.limit) / float64(hourMs)
		s.emit(&Finding{Detector: "freshness", Kind: "freshness.stale", Severity: SeverityMedium,
			Subject: subjectOf("dataset", k), Entries: []uint64{ds.LastEntry}, Time: now,
			Observed: &obs, Expected: &Band{High: lim},
			Message: fmt.Sprintf("dataset %s not updated for %.1f h (%s limit %.1f h); last update at entry %d", subjectOf("", k)[1:], obs, ds.how, lim, ds.LastEntry)})
	}
}

// freshnessLimit is how long dataset k may go without an update (ms; 0:
// not judged yet), and whether that limit is "configured" or "learned".
func (s *Scanner) freshnessLimit(k string, ds *datasetState) (int64, string) {
	o := s.opts.Freshness
	if len(o.Intervals) > 0 {
		if iv, ok := o.Intervals[strings.Replace(k, "\x00", ":", 1)]; ok {
			return iv.Milliseconds(), "configured"
		}
	}
	if ds.Configured > 0 {
		return ds.Configured, "configured"
	}
	if len(ds.Gaps) >= o.MinGaps {
		g := s.gaps[:0]
		for _, v := range ds.Gaps {
			g = append(g, float64(v))
		}
		s.gaps = g
		return int64(o.Factor*median(g)) + o.Grace.Milliseconds(), "learned"
	}
	return 0, "configured"
}

// event runs the detectors that read run events.
func (s *Scanner) event(it *item, now time.Time, e *payload.RunEvent) {
	idx := it.index
	nowMs := now.UnixMilli()
	pe := it.ev
	if pe == nil {
		pe = prepareEvent(e)
	}
	jk := pe.jk
	terminal := e.EventType == payload.Complete || e.EventType == payload.Fail || e.EventType == payload.Abort ||
		e.EventType == "" || e.Source == payload.SourceInToto
	completed := e.EventType == payload.Complete || e.EventType == "" || e.Source == payload.SourceInToto

	rs := s.runs.touch(e.Run.ID)
	if rs.Job == "" {
		rs.Job = jk
	}
	evMs := e.EventTime.UnixMilli()

	// time
	if !s.opts.Time.Disabled {
		lag := now.Sub(e.EventTime)
		switch {
		case lag > s.opts.Time.MaxLag:
			obs := lag.Hours()
			s.emit(&Finding{Detector: "time", Kind: "time.skew", Severity: SeverityLow,
				Subject: "run:" + e.Run.ID, Entries: []uint64{idx}, Time: now, Observed: &obs,
				Expected: &Band{Low: -s.opts.Time.MaxLead.Hours(), High: s.opts.Time.MaxLag.Hours()},
				Message:  fmt.Sprintf("eventTime %s is %.1f h before its integration time %s (limit %s)", e.EventTime.Format(time.RFC3339), obs, now.Format(time.RFC3339), s.opts.Time.MaxLag)})
		case -lag > s.opts.Time.MaxLead:
			obs := lag.Hours()
			s.emit(&Finding{Detector: "time", Kind: "time.skew", Severity: SeverityLow,
				Subject: "run:" + e.Run.ID, Entries: []uint64{idx}, Time: now, Observed: &obs,
				Expected: &Band{Low: -s.opts.Time.MaxLead.Hours(), High: s.opts.Time.MaxLag.Hours()},
				Message:  fmt.Sprintf("eventTime %s is %.1f h after its integration time %s: the producer's clock is ahead (limit %s)", e.EventTime.Format(time.RFC3339), -obs, now.Format(time.RFC3339), s.opts.Time.MaxLead)})
		}
		if rs.MaxEvent != 0 && evMs < rs.MaxEvent-s.opts.Time.Tolerance.Milliseconds() {
			obs := float64(rs.MaxEvent-evMs) / float64(hourMs)
			s.emit(&Finding{Detector: "time", Kind: "time.backwards", Severity: SeverityLow,
				Subject: "run:" + e.Run.ID, Entries: []uint64{rs.MaxEntry, idx}, Time: now, Observed: &obs,
				Message: fmt.Sprintf("run %s went back in time: %s event at %s is %.2f h before the event of entry %d", e.Run.ID, e.EventType, e.EventTime.Format(time.RFC3339), obs, rs.MaxEntry)})
		}
	}
	if evMs > rs.MaxEvent {
		rs.MaxEvent, rs.MaxEntry = evMs, idx
	}

	// gitops
	if v := e.Job.CodeVersion(); v != "" && !s.opts.GitOps.Disabled {
		s.gitops(idx, now, jk, e.Run.ID, v)
	}

	// lineage: run lifecycle, inputs, schema
	if e.EventType == payload.Start && !rs.Started {
		rs.Started, rs.StartedAt, rs.StartEntry = true, nowMs, idx
	}
	if len(e.Inputs) > 0 {
		rs.HasInputs = true
	}
	if !s.opts.Lineage.Disabled {
		s.lineageInputs(idx, now, jk, e)
		for i := range e.Outputs {
			s.schema(idx, now, &e.Outputs[i], pe.outKeys[i], pe.schemas[i])
		}
	}
	if !terminal {
		return
	}
	if !rs.Done {
		rs.Done, rs.DoneAt = true, nowMs
	}
	if !completed {
		return
	}
	js := s.jobs.touch(jk)
	js.Runs++
	if len(e.Outputs) > 0 && !rs.HasInputs && !s.opts.Lineage.Disabled && !s.opts.Lineage.AllowNoInputs {
		d := &e.Outputs[0]
		s.emit(&Finding{Detector: "lineage", Kind: "lineage.noInputs", Severity: SeverityMedium,
			Subject: "dataset:" + d.Namespace + ":" + d.Name, Entries: []uint64{idx}, Time: now,
			Message: fmt.Sprintf("run %s of job %s wrote %d dataset(s), starting with %s:%s, and declared no inputs", e.Run.ID, subjectOf("", jk)[1:], len(e.Outputs), d.Namespace, d.Name),
			Details: map[string]string{"job": subjectOf("", jk)[1:]}})
	}
	if outs := outputNames(e.Outputs, js.Outputs); len(outs) > 0 {
		rs.Outputs = outs
		js.Outputs = outs
	}
	for i := range e.Outputs {
		d := &e.Outputs[i]
		dk := pe.outKeys[i]
		s.updated(idx, nowMs, dk)
		if !s.opts.Volume.Disabled {
			s.volumeOf(idx, now, dk, d)
		}
	}
}

// eventKeys is what the detectors of a run event derive from it alone,
// computed in the parallel stage (prepareOne): the job's key, and each
// output's dataset key and flattened, sorted schema (nil without one).
type eventKeys struct {
	jk      string
	outKeys []string
	schemas [][]string
}

func prepareEvent(e *payload.RunEvent) *eventKeys {
	pe := &eventKeys{jk: jobKey(e.Job.Namespace, e.Job.Name)}
	if len(e.Outputs) > 0 {
		pe.outKeys = make([]string, len(e.Outputs))
		pe.schemas = make([][]string, len(e.Outputs))
	}
	for i := range e.Outputs {
		d := &e.Outputs[i]
		pe.outKeys[i] = jobKey(d.Namespace, d.Name)
		if len(d.Schema) > 0 {
			cur := flatten("", d.Schema, nil)
			slices.Sort(cur)
			pe.schemas[i] = cur
		}
	}
	return pe
}

// maxOutputs caps the datasets a run's or job's cost is spread over.
const maxOutputs = 64

// outputNames are the names ("NS:NAME") of ds, sorted, without repeats,
// at most maxOutputs: prev when it holds them (a job's runs write the same
// datasets), else a new slice. (The slices are never changed in place.)
func outputNames(ds []payload.Dataset, prev []string) []string {
	if len(ds) == 0 {
		return nil
	}
	if len(ds) == 1 && len(prev) == 1 && len(prev[0]) == len(ds[0].Namespace)+1+len(ds[0].Name) &&
		strings.HasPrefix(prev[0], ds[0].Namespace) && prev[0][len(ds[0].Namespace)] == ':' && strings.HasSuffix(prev[0], ds[0].Name) {
		return prev
	}
	out := make([]string, 0, len(ds))
	for i := range ds {
		out = append(out, ds[i].Namespace+":"+ds[i].Name)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return out[:min(len(out), maxOutputs)]
}

func (s *Scanner) gitops(idx uint64, now time.Time, jk, runID, v string) {
	js := s.jobs.touch(jk)
	if ap := s.approvals.peek(jk); ap != nil {
		if !slices.Contains(ap.Versions, v) && !slices.Contains(js.Flagged, v) {
			js.Flagged = appendCapped(js.Flagged, v)
			job := subjectOf("", jk)[1:]
			s.emit(&Finding{Detector: "gitops", Kind: "gitops.unapproved", Severity: SeverityHigh,
				Subject: "job:" + job, Entries: []uint64{idx}, Time: now,
				Message: fmt.Sprintf("run %s of job %s ran code version %s, which no policy entry approves for this job", runID, job, v),
				Details: map[string]string{"version": v, "run": runID}})
		}
	} else if js.LastVersion != "" && v != js.LastVersion && !slices.Contains(js.Flagged, v) && !s.opts.GitOps.AllowUnapprovedChanges {
		job := subjectOf("", jk)[1:]
		s.emit(&Finding{Detector: "gitops", Kind: "gitops.unapprovedChange", Severity: SeverityMedium,
			Subject: "job:" + job, Entries: []uint64{idx}, Time: now,
			Message: fmt.Sprintf("job %s changed code from %s to %s (run %s) with no policy entry approving it", job, v0(js.LastVersion), v, runID),
			Details: map[string]string{"from": js.LastVersion, "version": v, "run": runID}})
	}
	if js.LastVersion != "" && !slices.Contains(js.Flagged, js.LastVersion) {
		js.Flagged = appendCapped(js.Flagged, js.LastVersion)
	}
	if !slices.Contains(js.Flagged, v) {
		js.Flagged = appendCapped(js.Flagged, v)
	}
	js.LastVersion = v
}

func v0(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}

func appendCapped(l []string, v string) []string {
	l = append(l, v)
	if len(l) > maxSeen {
		l = slices.Delete(l, 0, len(l)-maxSeen)
	}
	return l
}

func (s *Scanner) lineageInputs(idx uint64, now time.Time, jk string, e *payload.RunEvent) {
	if len(e.Inputs) == 0 {
		return
	}
	js := s.jobs.touch(jk)
	for i := range e.Inputs {
		// The name is built in s.kb; a string only for a new input.
		s.kb = append(append(append(s.kb[:0], e.Inputs[i].Namespace...), ':'), e.Inputs[i].Name...)
		// slices.BinarySearch, comparing with the bytes without a copy.
		pos, hi := 0, len(js.Inputs)
		for pos < hi {
			m := int(uint(pos+hi) >> 1)
			if js.Inputs[m] < string(s.kb) {
				pos = m + 1
			} else {
				hi = m
			}
		}
		if pos < len(js.Inputs) && js.Inputs[pos] == string(s.kb) {
			continue
		}
		in := string(s.kb)
		if js.Runs >= s.opts.Lineage.MinRuns {
			s.emit(&Finding{Detector: "lineage", Kind: "lineage.newInput", Severity: SeverityLow,
				Subject: "job:" + subjectOf("", jk)[1:], Entries: []uint64{idx}, Time: now,
				Message: fmt.Sprintf("job %s read dataset %s for the first time in %d runs (run %s)", subjectOf("", jk)[1:], in, js.Runs, e.Run.ID),
				Details: map[string]string{"dataset": in, "run": e.Run.ID}})
		}
		js.Inputs = slices.Insert(js.Inputs, pos, in)
	}
}

// flatten renders a schema as sorted "path:type" strings.
func flatten(prefix string, fs []payload.SchemaField, out []string) []string {
	for _, f := range fs {
		p := prefix + f.Name
		out = append(out, p+":"+f.Type)
		if len(f.Fields) > 0 {
			out = flatten(p+".", f.Fields, out)
		}
	}
	return out
}

// schema judges the schema of output d (dataset key dk), cur its
// flattened, sorted fields (eventKeys).
func (s *Scanner) schema(idx uint64, now time.Time, d *payload.Dataset, dk string, cur []string) {
	if len(d.Schema) == 0 {
		return
	}
	ds := s.datasets.peek(dk)
	if ds != nil && ds.Schema != nil && slices.Equal(ds.Schema, cur) {
		return
	}
	ds = s.datasets.touch(dk)
	if ds.Schema != nil {
		added, removed, changed := diffSchema(ds.Schema, cur)
		s.emit(&Finding{Detector: "lineage", Kind: "lineage.schemaChange", Severity: SeverityMedium,
			Subject: "dataset:" + d.Namespace + ":" + d.Name, Entries: []uint64{idx}, Time: now,
			Message: fmt.Sprintf("schema of %s:%s changed: %d field(s) added, %d removed, %d changed type", d.Namespace, d.Name, len(added), len(removed), len(changed)),
			Details: map[string]string{"added": strings.Join(added, ","), "removed": strings.Join(removed, ","), "typeChanged": strings.Join(changed, ",")}})
	}
	ds.Schema = cur
}

func diffSchema(old, cur []string) (added, removed, changed []string) {
	split := func(l []string) map[string]string {
		m := make(map[string]string, len(l))
		for _, f := range l {
			i := strings.LastIndexByte(f, ':')
			m[f[:i]] = f[i+1:]
		}
		return m
	}
	o, c := split(old), split(cur)
	for n, t := range c {
		if ot, ok := o[n]; !ok {
			added = append(added, n)
		} else if ot != t {
			changed = append(changed, n+" "+ot+"→"+t)
		}
	}
	for n := range o {
		if _, ok := c[n]; !ok {
			removed = append(removed, n)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	return
}

// updated records a dataset update (freshness).
func (s *Scanner) updated(idx uint64, nowMs int64, dk string) {
	ds := s.datasets.touch(dk)
	if ds.Updates > 0 {
		ds.Gaps = append(ds.Gaps, nowMs-ds.LastUpdate)
		if len(ds.Gaps) > maxGaps {
			ds.Gaps = slices.Delete(ds.Gaps, 0, len(ds.Gaps)-maxGaps)
		}
	}
	ds.Updates++
	ds.LastUpdate, ds.LastEntry, ds.Stale = nowMs, idx, false
	s.queueDatasetLimit(dk, ds)
}

// volumeOf judges an output's row count, size and null counts.
func (s *Scanner) volumeOf(idx uint64, now time.Time, dk string, d *payload.Dataset) {
	wd := int8(now.Weekday())
	// metric(col), or metric when col is "": the series' key is built in
	// a reused buffer, its name and the dataset's only for a finding.
	check := func(kind, metric, col string, v float64) {
		o := s.opts.Volume.Band
		s.kb = append(append(s.kb[:0], dk...), '|')
		s.kb = append(s.kb, metric...)
		if col != "" {
			s.kb = append(append(append(s.kb, '('), col...), ')')
		}
		ser := s.volume.touchBytes(s.kb)
		if b, ok := ser.band(o, wd); ok && outside(b, v) {
			if col != "" {
				metric += "(" + col + ")"
			}
			name := d.Namespace + ":" + d.Name
			obs := v
			dir := "above"
			if v < b.Low {
				dir = "below"
			}
			s.emit(&Finding{Detector: "volume", Kind: kind, Severity: bandSeverity(b, v),
				Subject: "dataset:" + name, Entries: []uint64{idx}, Time: now, Observed: &obs, Expected: &b,
				Message: fmt.Sprintf("%s of %s is %s, %s the band %s–%s (median %s of %d past values)", metric, name, num(v), dir, num(b.Low), num(b.High), num(b.Median), b.Points),
				Details: map[string]string{"metric": metric}})
		}
		ser.add(o, v, wd)
	}
	if r := d.RowCount(); r != nil {
		check("volume.rowCount", "rowCount", "", float64(*r))
	}
	if b := d.Bytes(); b != nil {
		check("volume.bytes", "bytes", "", float64(*b))
	}
	if d.Quality != nil {
		for _, c := range d.Quality.Columns {
			if c.NullCount != nil {
				check("volume.nullCount", "nullCount", c.Column, float64(*c.NullCount))
			}
		}
	}
}

// num formats a number compactly.
func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.4g", v)
}
