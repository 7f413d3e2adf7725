// Package answerpb converts query answers between their Go form
// (query/answer.Answer, also their JSON form) and the Query service's
// protobuf messages, losslessly both ways, so that a client can verify a
// proto answer with answer.Verify. It imports no server code.
package answerpb

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/payload"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func fromTS(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime().UTC()
}

// RefToProto converts a node reference.
func RefToProto(r *answer.Ref) *provledgerpb.NodeRef {
	if r == nil {
		return nil
	}
	return &provledgerpb.NodeRef{Kind: r.Kind, Parts: r.Parts}
}

// RefFromProto converts a node reference (nil for nil).
func RefFromProto(r *provledgerpb.NodeRef) *answer.Ref {
	if r == nil {
		return nil
	}
	return &answer.Ref{Kind: r.GetKind(), Parts: r.GetParts()}
}

func jobToProto(j *payload.JobRef) *provledgerpb.JobRef {
	if j == nil {
		return nil
	}
	return &provledgerpb.JobRef{Namespace: j.Namespace, Name: j.Name}
}

func jobFromProto(j *provledgerpb.JobRef) *payload.JobRef {
	if j == nil {
		return nil
	}
	return &payload.JobRef{Namespace: j.GetNamespace(), Name: j.GetName()}
}

// ToProto converts an answer to its protobuf form.
func ToProto(a *answer.Answer) *provledgerpb.Answer {
	p := &provledgerpb.Answer{
		Format:   uint32(a.Format),
		Size:     a.Size,
		AsOfTime: ts(a.AsOfTime),
		Entries:  a.Entries,
		Query: &provledgerpb.AnswerQuery{
			Kind: a.Query.Kind, Node: RefToProto(a.Query.Node), To: RefToProto(a.Query.To),
			Depth: uint32(a.Query.Depth), Budget: uint32(a.Query.Budget), GroupBy: a.Query.GroupBy,
			AsOfSize: a.Query.AsOfSize, AsOfTime: ts(a.Query.AsOfTime), Namespaces: a.Query.Namespaces,
			WindowFrom: ts(a.Query.WindowFrom), WindowTo: ts(a.Query.WindowTo), Tags: a.Query.Tags,
		},
	}
	for _, n := range a.Nodes {
		p.Nodes = append(p.Nodes, &provledgerpb.AnswerNode{Key: n.Key, Ref: RefToProto(&n.Ref), Index: n.Index, Depth: uint32(n.Depth)})
	}
	for _, e := range a.Edges {
		pe := &provledgerpb.AnswerEdge{From: e.From, To: e.To, Rel: e.Rel, Index: e.Index, RunId: e.RunID, Job: jobToProto(e.Job), Resolved: e.Resolved}
		for _, t := range e.Transformations {
			pe.Transformations = append(pe.Transformations, &provledgerpb.Transformation{Type: t.Type, Subtype: t.Subtype, Description: t.Description, Masking: t.Masking})
		}
		p.Edges = append(p.Edges, pe)
	}
	for _, path := range a.Paths {
		p.Paths = append(p.Paths, &provledgerpb.LineagePath{Nodes: path})
	}
	for i := range a.Versions {
		p.Versions = append(p.Versions, versionToProto(&a.Versions[i]))
	}
	if c := a.Cost; c != nil {
		pc := &provledgerpb.CostFigures{Runs: c.Runs, Notes: c.Notes}
		for _, g := range c.Groups {
			pc.Groups = append(pc.Groups, &provledgerpb.CostGroup{Key: g.Key, Currency: g.Currency, Amount: string(g.Amount), Rows: uint32(g.Rows), Shared: g.Shared})
		}
		for _, t := range c.Total {
			pc.Total = append(pc.Total, &provledgerpb.CostAmount{Currency: t.Currency, Amount: string(t.Amount)})
		}
		for _, r := range c.Rows {
			pr := &provledgerpb.CostRow{Index: r.Index, Row: uint32(r.Row), Amount: string(r.Amount), Currency: r.Currency, Service: r.Service, Via: r.Via}
			if l := r.Link; l != (payload.CostLink{}) {
				pr.Link = &provledgerpb.CostLink{RunId: l.RunID, Job: jobToProto(l.Job)}
				if l.Tag != nil {
					pr.Link.TagKey, pr.Link.TagValue = l.Tag.Key, l.Tag.Value
				}
			}
			pc.Rows = append(pc.Rows, pr)
		}
		p.Cost = pc
	}
	if t := a.Truncated; t != nil {
		p.Truncated = &provledgerpb.Truncation{Budget: t.Budget, Depth: t.Depth, Paths: t.Paths, Reason: t.Reason}
	}
	if pr := a.Proof; pr != nil {
		pp := &provledgerpb.AnswerProof{Checkpoint: []byte(pr.Checkpoint)}
		for _, e := range pr.Entries {
			pp.Entries = append(pp.Entries, &provledgerpb.ProvenEntry{Index: e.Index, Record: e.Record, Hashes: e.Hashes, Envelope: e.Envelope, Redacted: e.Redacted})
		}
		p.Proof = pp
	}
	return p
}

func versionToProto(v *answer.DatasetVersion) *provledgerpb.DatasetVersionInfo {
	pv := &provledgerpb.DatasetVersionInfo{
		Version: v.Version, Explicit: v.Explicit, RunId: v.RunID, Job: jobToProto(&v.Job), CodeVersion: v.CodeVersion,
		Source: string(v.Source), RunState: string(v.RunState), EventTime: ts(v.EventTime), Schema: schemaToProto(v.Schema),
		RowCount: v.RowCount, Bytes: v.Bytes, FileCount: v.FileCount, LifecycleStateChange: v.Lifecycle, Indexes: v.Indexes,
	}
	if d := v.DataSource; d != nil {
		pv.DataSource = &provledgerpb.DataSource{Name: d.Name, Uri: d.URI}
	}
	if q := v.Quality; q != nil {
		pq := &provledgerpb.QualityMetrics{RowCount: q.RowCount, Bytes: q.Bytes, FileCount: q.FileCount}
		for _, c := range q.Columns {
			pq.Columns = append(pq.Columns, &provledgerpb.ColumnMetric{Column: c.Column, NullCount: c.NullCount, DistinctCount: c.DistinctCount, Sum: c.Sum, Count: c.Count, Min: c.Min, Max: c.Max})
		}
		pv.Quality = pq
	}
	return pv
}

func schemaToProto(fs []payload.SchemaField) []*provledgerpb.SchemaField {
	var out []*provledgerpb.SchemaField
	for _, f := range fs {
		out = append(out, &provledgerpb.SchemaField{Name: f.Name, Type: f.Type, Description: f.Description, Fields: schemaToProto(f.Fields)})
	}
	return out
}

func schemaFromProto(fs []*provledgerpb.SchemaField) []payload.SchemaField {
	var out []payload.SchemaField
	for _, f := range fs {
		out = append(out, payload.SchemaField{Name: f.GetName(), Type: f.GetType(), Description: f.GetDescription(), Fields: schemaFromProto(f.GetFields())})
	}
	return out
}

// FromProto converts a protobuf answer back (e.g. to verify it).
func FromProto(p *provledgerpb.Answer) (*answer.Answer, error) {
	if p == nil {
		return nil, fmt.Errorf("no answer")
	}
	q := p.GetQuery()
	a := &answer.Answer{
		Format: int(p.GetFormat()), Size: p.GetSize(), AsOfTime: fromTS(p.GetAsOfTime()), Entries: p.GetEntries(),
		Query: answer.Query{
			Kind: q.GetKind(), Node: RefFromProto(q.GetNode()), To: RefFromProto(q.GetTo()),
			Depth: int(q.GetDepth()), Budget: int(q.GetBudget()), GroupBy: q.GetGroupBy(),
			AsOfSize: q.GetAsOfSize(), AsOfTime: fromTS(q.GetAsOfTime()), Namespaces: q.GetNamespaces(),
			WindowFrom: fromTS(q.GetWindowFrom()), WindowTo: fromTS(q.GetWindowTo()), Tags: q.GetTags(),
		},
	}
	if a.Entries == nil {
		a.Entries = []uint64{}
	}
	for _, n := range p.GetNodes() {
		r := RefFromProto(n.GetRef())
		if r == nil {
			return nil, fmt.Errorf("node %q has no ref", n.GetKey())
		}
		a.Nodes = append(a.Nodes, answer.Node{Key: n.GetKey(), Ref: *r, Index: n.GetIndex(), Depth: int(n.GetDepth())})
	}
	for _, e := range p.GetEdges() {
		ae := answer.Edge{From: e.GetFrom(), To: e.GetTo(), Rel: e.GetRel(), Index: e.GetIndex(), RunID: e.GetRunId(), Job: jobFromProto(e.GetJob()), Resolved: e.GetResolved()}
		for _, t := range e.GetTransformations() {
			ae.Transformations = append(ae.Transformations, payload.Transformation{Type: t.GetType(), Subtype: t.GetSubtype(), Description: t.GetDescription(), Masking: t.GetMasking()})
		}
		a.Edges = append(a.Edges, ae)
	}
	for _, path := range p.GetPaths() {
		a.Paths = append(a.Paths, path.GetNodes())
	}
	for _, v := range p.GetVersions() {
		dv := answer.DatasetVersion{
			Version: v.GetVersion(), Explicit: v.GetExplicit(), RunID: v.GetRunId(), CodeVersion: v.GetCodeVersion(),
			Source: payload.Source(v.GetSource()), RunState: payload.EventType(v.GetRunState()), EventTime: fromTS(v.GetEventTime()),
			Schema: schemaFromProto(v.GetSchema()), RowCount: v.RowCount, Bytes: v.Bytes, FileCount: v.FileCount,
			Lifecycle: v.GetLifecycleStateChange(), Indexes: v.GetIndexes(),
		}
		if j := jobFromProto(v.GetJob()); j != nil {
			dv.Job = *j
		}
		if d := v.GetDataSource(); d != nil {
			dv.DataSource = &payload.DataSource{Name: d.GetName(), URI: d.GetUri()}
		}
		if q := v.GetQuality(); q != nil {
			dq := &payload.Quality{RowCount: q.RowCount, Bytes: q.Bytes, FileCount: q.FileCount}
			for _, c := range q.GetColumns() {
				dq.Columns = append(dq.Columns, payload.ColumnMetric{Column: c.GetColumn(), NullCount: c.NullCount, DistinctCount: c.DistinctCount, Sum: c.Sum, Count: c.Count, Min: c.Min, Max: c.Max})
			}
			dv.Quality = dq
		}
		a.Versions = append(a.Versions, dv)
	}
	if c := p.GetCost(); c != nil {
		ac := &answer.Cost{Runs: c.GetRuns(), Notes: c.GetNotes(), Total: []answer.Amount{}}
		for _, g := range c.GetGroups() {
			ac.Groups = append(ac.Groups, answer.CostGroup{Key: g.GetKey(), Currency: g.GetCurrency(), Amount: payload.Decimal(g.GetAmount()), Rows: int(g.GetRows()), Shared: g.GetShared()})
		}
		for _, t := range c.GetTotal() {
			ac.Total = append(ac.Total, answer.Amount{Currency: t.GetCurrency(), Amount: payload.Decimal(t.GetAmount())})
		}
		for _, r := range c.GetRows() {
			ar := answer.CostRow{Index: r.GetIndex(), Row: int(r.GetRow()), Amount: payload.Decimal(r.GetAmount()), Currency: r.GetCurrency(), Service: r.GetService(), Via: r.GetVia()}
			if l := r.GetLink(); l != nil {
				ar.Link = payload.CostLink{RunID: l.GetRunId(), Job: jobFromProto(l.GetJob())}
				if l.GetTagKey() != "" {
					ar.Link.Tag = &payload.Tag{Key: l.GetTagKey(), Value: l.GetTagValue()}
				}
			}
			ac.Rows = append(ac.Rows, ar)
		}
		a.Cost = ac
	}
	if t := p.GetTruncated(); t != nil {
		a.Truncated = &answer.Truncation{Budget: t.GetBudget(), Depth: t.GetDepth(), Paths: t.GetPaths(), Reason: t.GetReason()}
	}
	if pr := p.GetProof(); pr != nil {
		ap := &answer.Proof{Checkpoint: string(pr.GetCheckpoint())}
		for _, e := range pr.GetEntries() {
			ap.Entries = append(ap.Entries, answer.ProvenEntry{Index: e.GetIndex(), Record: e.GetRecord(), Hashes: e.GetHashes(), Envelope: e.GetEnvelope(), Redacted: e.GetRedacted()})
		}
		a.Proof = ap
	}
	return a, nil
}
