package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"sort"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/payload"
)

// packReport is what report.md and report.html show. It is built only
// from the pack's verified files (index.json, answer.json, cost.json and
// the envelopes), so prov verify --evidence rebuilds it and checks that
// the reports say exactly that.
type packReport struct {
	Idx          *packIndex
	Tree         string
	Sources      []string // datasets no job in the answer writes
	Jobs         []string
	CodeVersions []codeRow // from the answer's job versions and the events' sourceCodeLocation
	Runs         []runRow  // from the lineage entries' events
	Datasets     []string
	Signers      []signerRow
	Cost         *answer.Cost // with rows
	CostNote     string
	CostNotes    []string // the cost answer's notes when it has no rows
	Findings     []findingRow
	FindingsNote string
}

// codeRow is a version of a job's code.
type codeRow struct {
	Job, Version, URL string
	Entries           string
}

// runRow is one run event of the pack's entries.
type runRow struct {
	Index                   uint64
	RunID, Job, State, Time string
}

type signerRow struct {
	KeyID   string
	Entries int
}

// findingRow is a scanner finding (an entry of the pack signed by the
// node) about entries of the pack.
type findingRow struct {
	Index    uint64
	Severity string
	Kind     string
	Subject  string
	Message  string
	Entries  string
}

// buildReport derives the report from the pack's verified contents.
// envs maps entry index to the entry's envelope payload (nil if absent).
func buildReport(idx *packIndex, ans, cost *answer.Answer, tree string, payloads map[uint64][]byte) *packReport {
	r := &packReport{Idx: idx, Tree: tree, CostNote: idx.CostNote, FindingsNote: idx.FindingsNote}
	written := map[string]bool{}
	for _, e := range ans.Edges {
		if e.Rel == answer.RelOutput {
			written[e.To] = true
		}
	}
	for _, n := range ans.Nodes {
		name := strings.Join(n.Parts, " ")
		switch n.Kind {
		case "dataset", "datasetVersion":
			r.Datasets = append(r.Datasets, name)
			if !written[n.Key] {
				r.Sources = append(r.Sources, name)
			}
		case "job":
			r.Jobs = append(r.Jobs, name)
		}
	}
	for _, s := range [][]string{r.Datasets, r.Sources, r.Jobs} {
		sort.Strings(s)
	}
	// Runs and code versions, from the verified payloads of the lineage
	// entries (OpenLineage run events and in-toto statements).
	type codeKey struct{ job, version, url string }
	code := map[codeKey][]string{}
	for _, e := range idx.Entries {
		if e.Role != roleLineage || payloads[e.Index] == nil {
			continue
		}
		p, err := payload.Parse(e.PayloadType, payloads[e.Index], payload.Limits{})
		if err != nil || p.Event == nil {
			continue
		}
		ev := p.Event
		job := ev.Job.Namespace + " " + ev.Job.Name
		r.Runs = append(r.Runs, runRow{Index: e.Index, RunID: ev.Run.ID, Job: job, State: string(ev.EventType), Time: ev.EventTime.UTC().Format(time.RFC3339)})
		if v := ev.Job.CodeVersion(); v != "" {
			k := codeKey{job, v, ev.Job.Source.URL}
			code[k] = append(code[k], fmt.Sprint(e.Index))
		}
	}
	for k, idxs := range code {
		r.CodeVersions = append(r.CodeVersions, codeRow{Job: k.job, Version: k.version, URL: k.url, Entries: strings.Join(idxs, ", ")})
	}
	sort.Slice(r.CodeVersions, func(i, j int) bool {
		a, b := r.CodeVersions[i], r.CodeVersions[j]
		if a.Job != b.Job {
			return a.Job < b.Job
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.URL < b.URL
	})
	count := map[string]int{}
	for _, e := range idx.Entries {
		for _, s := range e.Signers {
			count[s]++
		}
		if e.Role != roleFinding {
			continue
		}
		var f struct {
			Severity, Kind, Subject, Message string
			Entries                          []uint64
		}
		json.Unmarshal(payloads[e.Index], &f)
		var about []string
		for _, i := range f.Entries {
			about = append(about, fmt.Sprint(i))
		}
		r.Findings = append(r.Findings, findingRow{Index: e.Index, Severity: f.Severity, Kind: f.Kind, Subject: f.Subject, Message: f.Message, Entries: strings.Join(about, ", ")})
	}
	for id, n := range count {
		r.Signers = append(r.Signers, signerRow{id, n})
	}
	sort.Slice(r.Signers, func(i, j int) bool { return r.Signers[i].KeyID < r.Signers[j].KeyID })
	if cost != nil && cost.Cost != nil && len(cost.Cost.Rows) > 0 {
		r.Cost = cost.Cost
	} else if cost != nil && cost.Cost != nil {
		r.CostNotes = cost.Cost.Notes
	}
	return r
}

var reportFuncs = map[string]any{
	"time":  func(t time.Time) string { return t.Format(time.RFC3339) },
	"short": shortIDs,
}

const mdReport = `# Evidence pack: {{.Idx.Subject}}

Log ` + "`{{.Idx.Origin}}`" + `, tree size {{.Idx.TreeSize}}, root ` + "`{{.Idx.RootHash}}`" + `, created {{time .Idx.CreatedAt}}.

Re-check offline: ` + "`prov verify --evidence DIR --log-key LOG.pub [--trust KEYS.pem]`" + `
(it also checks that this report says exactly what the pack proves).

## Upstream lineage

` + "```" + `
{{.Tree}}` + "```" + `

## Sources
{{range .Sources}}
- {{.}}{{else}}
(none){{end}}

## Datasets
{{range .Datasets}}
- {{.}}{{else}}
(none){{end}}

## Jobs
{{range .Jobs}}
- {{.}}{{else}}
(none){{end}}

## Code versions
{{if .CodeVersions}}
| job | code version | where | entries |
|---|---|---|---|
{{range .CodeVersions}}| {{.Job}} | ` + "`{{.Version}}`" + ` | {{.URL}} | {{.Entries}} |
{{end}}{{else}}
(none recorded in the entries)
{{end}}
## Runs
{{if .Runs}}
| entry | run | job | state | event time |
|---|---|---|---|---|
{{range .Runs}}| {{.Index}} | {{.RunID}} | {{.Job}} | {{.State}} | {{.Time}} |
{{end}}{{else}}
(none)
{{end}}
## Signers

| key id | entries |
|---|---|
{{range .Signers}}| ` + "`{{.KeyID}}`" + ` | {{.Entries}} |
{{end}}
## Costs
{{if .Cost}}
| total | currency |
|---|---|
{{range .Cost.Total}}| {{.Amount}} | {{.Currency}} |
{{end}}
| entry | row | amount | currency | service |
|---|---|---|---|---|
{{range .Cost.Rows}}| {{.Index}} | {{.Row}} | {{.Amount}} | {{.Currency}} | {{.Service}} |
{{end}}{{range .Cost.Notes}}
- {{.}}{{end}}
{{else}}
{{.CostNote}}
{{range .CostNotes}}
- {{.}}{{end}}
{{end}}
## Scanner findings
{{if .Findings}}
| entry | severity | kind | subject | about entries | message |
|---|---|---|---|---|---|
{{range .Findings}}| {{.Index}} | {{.Severity}} | {{.Kind}} | {{.Subject}} | {{.Entries}} | {{.Message}} |
{{end}}{{else}}
{{.FindingsNote}}
{{end}}
## Entries

| index | role | time | namespace | payload type | signers | bundle |
|---|---|---|---|---|---|---|
{{range .Idx.Entries}}| {{.Index}} | {{.Role}} | {{time .IntegratedTime}} | {{.Namespace}} | {{.PayloadType}} | {{short .Signers}} | [{{.Bundle}}]({{.Bundle}}) |
{{end}}
## Checkpoint

` + "```" + `
{{.Idx.Checkpoint}}` + "```" + `
`

const htmlReport = `<!doctype html>
<html><head><meta charset="utf-8"><title>Evidence pack: {{.Idx.Subject}}</title>
<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}code,pre{font-size:90%}</style>
</head><body>
<h1>Evidence pack: {{.Idx.Subject}}</h1>
<p>Log <code>{{.Idx.Origin}}</code>, tree size {{.Idx.TreeSize}}, root <code>{{.Idx.RootHash}}</code>, created {{time .Idx.CreatedAt}}.
Re-check offline with <code>prov verify --evidence DIR --log-key LOG.pub [--trust KEYS.pem]</code> (it also checks that this report says exactly what the pack proves).</p>
<h2>Upstream lineage</h2>
<pre>{{.Tree}}</pre>
<h2>Sources</h2>
<ul>{{range .Sources}}<li>{{.}}</li>{{else}}<li>(none)</li>{{end}}</ul>
<h2>Datasets</h2>
<ul>{{range .Datasets}}<li>{{.}}</li>{{else}}<li>(none)</li>{{end}}</ul>
<h2>Jobs</h2>
<ul>{{range .Jobs}}<li>{{.}}</li>{{else}}<li>(none)</li>{{end}}</ul>
<h2>Code versions</h2>
{{if .CodeVersions}}<table><tr><th>job</th><th>code version</th><th>where</th><th>entries</th></tr>
{{range .CodeVersions}}<tr><td>{{.Job}}</td><td><code>{{.Version}}</code></td><td>{{.URL}}</td><td>{{.Entries}}</td></tr>
{{end}}</table>
{{else}}<p>(none recorded in the entries)</p>
{{end}}<h2>Runs</h2>
{{if .Runs}}<table><tr><th>entry</th><th>run</th><th>job</th><th>state</th><th>event time</th></tr>
{{range .Runs}}<tr><td>{{.Index}}</td><td>{{.RunID}}</td><td>{{.Job}}</td><td>{{.State}}</td><td>{{.Time}}</td></tr>
{{end}}</table>
{{else}}<p>(none)</p>
{{end}}
<h2>Signers</h2>
<table><tr><th>key id</th><th>entries</th></tr>
{{range .Signers}}<tr><td><code>{{.KeyID}}</code></td><td>{{.Entries}}</td></tr>
{{end}}</table>
<h2>Costs</h2>
{{if .Cost}}<table><tr><th>total</th><th>currency</th></tr>
{{range .Cost.Total}}<tr><td>{{.Amount}}</td><td>{{.Currency}}</td></tr>
{{end}}</table>
<table><tr><th>entry</th><th>row</th><th>amount</th><th>currency</th><th>service</th></tr>
{{range .Cost.Rows}}<tr><td>{{.Index}}</td><td>{{.Row}}</td><td>{{.Amount}}</td><td>{{.Currency}}</td><td>{{.Service}}</td></tr>
{{end}}</table>
<ul>{{range .Cost.Notes}}<li>{{.}}</li>{{end}}</ul>
{{else}}<p>{{.CostNote}}</p>
<ul>{{range .CostNotes}}<li>{{.}}</li>{{end}}</ul>
{{end}}<h2>Scanner findings</h2>
{{if .Findings}}<table><tr><th>entry</th><th>severity</th><th>kind</th><th>subject</th><th>about entries</th><th>message</th></tr>
{{range .Findings}}<tr><td>{{.Index}}</td><td>{{.Severity}}</td><td>{{.Kind}}</td><td>{{.Subject}}</td><td>{{.Entries}}</td><td>{{.Message}}</td></tr>
{{end}}</table>
{{else}}<p>{{.FindingsNote}}</p>
{{end}}<h2>Entries</h2>
<table><tr><th>index</th><th>role</th><th>time</th><th>namespace</th><th>payload type</th><th>signers</th><th>bundle</th></tr>
{{range .Idx.Entries}}<tr><td>{{.Index}}</td><td>{{.Role}}</td><td>{{time .IntegratedTime}}</td><td>{{.Namespace}}</td><td>{{.PayloadType}}</td><td>{{short .Signers}}</td><td><a href="{{.Bundle}}">{{.Bundle}}</a>{{if .Envelope}} · <a href="{{.Envelope}}">envelope</a>{{end}}</td></tr>
{{end}}</table>
<h2>Checkpoint</h2>
<pre>{{.Idx.Checkpoint}}</pre>
</body></html>
`

var (
	mdTemplate   = texttemplate.Must(texttemplate.New("report.md").Funcs(reportFuncs).Parse(mdReport))
	htmlTemplate = htmltemplate.Must(htmltemplate.New("report.html").Funcs(reportFuncs).Parse(htmlReport))
)

// renderReports returns report.md and report.html.
func renderReports(r *packReport) (md, html []byte, err error) {
	var m, h bytes.Buffer
	if err := mdTemplate.Execute(&m, r); err != nil {
		return nil, nil, fmt.Errorf("report.md: %w", err)
	}
	if err := htmlTemplate.Execute(&h, r); err != nil {
		return nil, nil, fmt.Errorf("report.html: %w", err)
	}
	return m.Bytes(), h.Bytes(), nil
}
