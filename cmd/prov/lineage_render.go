package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/payload"
)

// Output formats of lineage and cost answers.
var answerFormats = []string{"table", "tree", "json", "dot", "mermaid", "prov"}

// render writes a in the given format.
func render(w io.Writer, a *answer.Answer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(a)
	case "table":
		return renderTable(w, a)
	case "tree":
		return renderTree(w, a)
	case "dot":
		return renderDOT(w, a)
	case "mermaid":
		return renderMermaid(w, a)
	case "prov":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(provJSON(a))
	}
	return usagef("--format %q: use one of %s", format, strings.Join(answerFormats, ", "))
}

func refString(r *answer.Ref) string {
	if r == nil {
		return ""
	}
	return r.Kind + " " + strings.Join(r.Parts, " ")
}

// header says what was asked and as of when.
func header(w io.Writer, a *answer.Answer) {
	q := a.Query
	fmt.Fprintf(w, "%s", q.Kind)
	if q.Node != nil {
		if q.Kind == "paths" {
			fmt.Fprintf(w, " from %s to %s", refString(q.Node), refString(q.To))
		} else if q.Kind == "cost" {
			fmt.Fprintf(w, " to produce %s", refString(q.Node))
		} else {
			fmt.Fprintf(w, " of %s", refString(q.Node))
		}
	}
	if q.GroupBy != "" {
		fmt.Fprintf(w, " by %s", q.GroupBy)
	}
	fmt.Fprintf(w, ", as of log size %d", a.Size)
	if !a.AsOfTime.IsZero() {
		fmt.Fprintf(w, " (%s)", a.AsOfTime.Format("2006-01-02T15:04:05.000Z07:00"))
	}
	var lim []string
	// history and a cost roll-up by a dimension traverse nothing: their
	// recorded depth (the default) limits nothing, so it is not shown.
	if traverses := q.Kind != "history" && !(q.Kind == "cost" && q.Node == nil); q.Depth > 0 && traverses {
		lim = append(lim, fmt.Sprintf("depth %d", q.Depth))
	}
	if q.Budget > 0 {
		lim = append(lim, fmt.Sprintf("budget %d", q.Budget))
	}
	if len(lim) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(lim, ", "))
	}
	fmt.Fprintln(w)
}

func footer(w io.Writer, a *answer.Answer) {
	if t := a.Truncated; t != nil {
		fmt.Fprintf(w, "CUT SHORT: %s\n", t.Reason)
	}
	idx := make([]string, len(a.Entries))
	for i, e := range a.Entries {
		idx[i] = strconv.FormatUint(e, 10)
	}
	if len(idx) == 0 {
		fmt.Fprintln(w, "rests on no entries")
		return
	}
	fmt.Fprintf(w, "rests on %d entries: %s\n", len(a.Entries), strings.Join(idx, " "))
}

func renderTable(w io.Writer, a *answer.Answer) error {
	header(w, a)
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	switch {
	case a.Versions != nil || a.Query.Kind == "history":
		fmt.Fprintln(tw, "\nVERSION\tRUN\tSTATE\tJOB\tCODE\tROWS\tBYTES\tFIELDS\tTIME\tENTRIES")
		for _, v := range a.Versions {
			run, job := v.RunID, v.Job.Namespace+"/"+v.Job.Name
			if run == "" { // a DatasetEvent's version: no run, no job
				run, job = "(declared)", "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", v.Version, run, dash(string(v.RunState)), job,
				dash(short(v.CodeVersion, 12)), num(v.RowCount), num(v.Bytes), len(v.Schema), v.EventTime.Format("2006-01-02T15:04:05Z07:00"), joinIdx(v.Indexes))
		}
		tw.Flush()
		for _, v := range a.Versions {
			if len(v.Schema) > 0 {
				fmt.Fprintf(w, "\nschema of %s: %s\n", v.Version, schemaString(v.Schema))
			}
		}
	case a.Cost != nil:
		if len(a.Cost.Groups) > 0 {
			fmt.Fprintln(tw, "\nGROUP\tAMOUNT\tCURRENCY\tROWS\t")
			for _, g := range a.Cost.Groups {
				shared := ""
				if g.Shared {
					shared = "(shared)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", g.Key, g.Amount, g.Currency, g.Rows, shared)
			}
		}
		if a.Query.Node != nil && len(a.Cost.Rows) > 0 {
			fmt.Fprintln(tw, "\nENTRY\tROW\tAMOUNT\tCURRENCY\tSERVICE\tVIA")
			for _, r := range a.Cost.Rows {
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", r.Index, r.Row, r.Amount, r.Currency, dash(r.Service), r.Via)
			}
		}
		tw.Flush()
		fmt.Fprintln(w)
		if len(a.Cost.Total) == 0 {
			fmt.Fprintln(w, "TOTAL  0 (no cost rows)")
		}
		for _, t := range a.Cost.Total {
			fmt.Fprintf(w, "TOTAL  %s %s\n", t.Amount, t.Currency)
		}
		if len(a.Cost.Runs) > 0 {
			fmt.Fprintf(w, "runs included: %s\n", strings.Join(a.Cost.Runs, " "))
		}
		for _, n := range a.Cost.Notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
	default:
		if len(a.Paths) > 0 || a.Query.Kind == "paths" {
			fmt.Fprintf(w, "\n%d path(s)\n", len(a.Paths))
			for i, p := range a.Paths {
				fmt.Fprintf(w, "  %d. %s\n", i+1, strings.Join(p, " → "))
			}
		}
		nodes := append([]answer.Node(nil), a.Nodes...)
		sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].Depth < nodes[j].Depth })
		fmt.Fprintln(tw, "\nDEPTH\tKIND\tNODE\tENTRY")
		for _, n := range nodes {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\n", n.Depth, n.Kind, n.Key, n.Index)
		}
		tw.Flush()
		if len(a.Edges) > 0 {
			fmt.Fprintln(tw, "\nFROM\tREL\tTO\tENTRY\tNOTE")
			for _, e := range a.Edges {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.From, e.Rel, e.To, e.Index, edgeNote(&e))
			}
			tw.Flush()
		}
	}
	fmt.Fprintln(w)
	footer(w, a)
	return nil
}

func edgeNote(e *answer.Edge) string {
	var parts []string
	for _, t := range e.Transformations {
		s := t.Type
		if t.Subtype != "" {
			s += "/" + t.Subtype
		}
		if t.Masking {
			s += " (masking)"
		}
		parts = append(parts, s)
	}
	if e.Resolved {
		parts = append(parts, "version resolved (latest completed)")
	}
	return strings.Join(parts, ", ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func num(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10)
}

func joinIdx(xs []uint64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatUint(x, 10)
	}
	return strings.Join(s, ",")
}

func schemaString(fs []payload.SchemaField) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Name
		if f.Type != "" {
			parts[i] += " " + f.Type
		}
		if len(f.Fields) > 0 {
			parts[i] += " {" + schemaString(f.Fields) + "}"
		}
	}
	return strings.Join(parts, ", ")
}

// renderTree prints the subgraph as an indented tree from the queried
// node, following edges against (upstream) or along (otherwise) the data
// flow. A node already printed is marked and not expanded again, so
// cycles print finitely.
func renderTree(w io.Writer, a *answer.Answer) error {
	header(w, a)
	start := ""
	for _, n := range a.Nodes {
		if n.Depth == 0 {
			start = n.Key
			break
		}
	}
	up := a.Query.Kind == "upstream"
	next := map[string][]answer.Edge{}
	for _, e := range a.Edges {
		if up {
			next[e.To] = append(next[e.To], e)
		} else {
			next[e.From] = append(next[e.From], e)
		}
	}
	seen := map[string]bool{}
	var walk func(key, prefix string)
	walk = func(key, prefix string) {
		es := next[key]
		for i, e := range es {
			last := i == len(es)-1
			branch, cont := "├── ", "│   "
			if last {
				branch, cont = "└── ", "    "
			}
			other := e.To
			if up {
				other = e.From
			}
			mark := ""
			if seen[other] {
				mark = " (see above)"
			}
			fmt.Fprintf(w, "%s%s[%s @%d] %s%s\n", prefix, branch, e.Rel, e.Index, other, mark)
			if !seen[other] {
				seen[other] = true
				walk(other, prefix+cont)
			}
		}
	}
	if start != "" {
		fmt.Fprintln(w, start)
		seen[start] = true
		walk(start, "")
	}
	fmt.Fprintln(w)
	footer(w, a)
	return nil
}

func nodeShape(kind string) (open, close string) {
	switch kind {
	case "job", "run":
		return "([", "])"
	case "column":
		return "[/", "/]"
	case "datasetVersion", "jobVersion":
		return "(", ")"
	case "tag":
		return "{{", "}}"
	}
	return "[", "]"
}

func renderMermaid(w io.Writer, a *answer.Answer) error {
	fmt.Fprintln(w, "flowchart LR")
	id := map[string]string{}
	for i, n := range a.Nodes {
		id[n.Key] = "n" + strconv.Itoa(i)
		o, c := nodeShape(n.Kind)
		fmt.Fprintf(w, "  %s%s\"%s\"%s\n", id[n.Key], o, mermaidEscape(n.Key), c)
	}
	for _, e := range a.Edges {
		fmt.Fprintf(w, "  %s -->|\"%s @%d\"| %s\n", id[e.From], mermaidEscape(e.Rel), e.Index, id[e.To])
	}
	return nil
}

func mermaidEscape(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;", "|", "#124;").Replace(s)
}

func renderDOT(w io.Writer, a *answer.Answer) error {
	fmt.Fprintln(w, "digraph lineage {")
	fmt.Fprintln(w, "  rankdir=LR;")
	fmt.Fprintln(w, `  node [fontname="Helvetica", fontsize=10];`)
	fmt.Fprintln(w, `  edge [fontname="Helvetica", fontsize=8];`)
	for _, n := range a.Nodes {
		shape := map[string]string{"dataset": "box", "datasetVersion": "box", "job": "ellipse", "run": "ellipse", "column": "note", "jobVersion": "component", "tag": "hexagon"}[n.Kind]
		style := ""
		switch n.Kind {
		case "datasetVersion":
			style = `, style="rounded"`
		case "run":
			style = `, style="dashed"`
		}
		if n.Depth == 0 {
			style += `, penwidth=2`
		}
		fmt.Fprintf(w, "  %s [label=%s, shape=%s%s];\n", dotQuote(n.Key), dotQuote(n.Key+"\n@"+strconv.FormatUint(n.Index, 10)), shape, style)
	}
	for _, e := range a.Edges {
		label := e.Rel + " @" + strconv.FormatUint(e.Index, 10)
		if note := edgeNote(&e); note != "" {
			label += "\n" + note
		}
		fmt.Fprintf(w, "  %s -> %s [label=%s];\n", dotQuote(e.From), dotQuote(e.To), dotQuote(label))
	}
	fmt.Fprintln(w, "}")
	return nil
}

func dotQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// provJSON exports the subgraph as W3C PROV-JSON: datasets, versions and
// columns are entities; jobs and runs activities; input edges are used,
// output edges wasGeneratedBy, column derivations wasDerivedFrom, a
// version's dataset specializationOf, a column's dataset hadMember, a run's
// parent wasInformedBy. Every element carries the log entry that asserted
// it (provledger:index).
func provJSON(a *answer.Answer) map[string]any {
	const ns = "provledger"
	qn := func(key string) string { return ns + ":" + url.PathEscape(key) }
	entity, activity := map[string]any{}, map[string]any{}
	for _, n := range a.Nodes {
		attrs := map[string]any{
			"prov:type":   ns + ":" + n.Kind,
			"prov:label":  n.Key,
			ns + ":parts": n.Parts,
			ns + ":index": n.Index,
		}
		switch n.Kind {
		case "job", "run":
			activity[qn(n.Key)] = attrs
		default:
			entity[qn(n.Key)] = attrs
		}
	}
	rel := map[string]map[string]any{}
	add := func(kind string, body map[string]any, e answer.Edge) {
		if rel[kind] == nil {
			rel[kind] = map[string]any{}
		}
		body[ns+":index"] = e.Index
		rel[kind]["_:"+kind+strconv.Itoa(len(rel[kind])+1)] = body
	}
	for _, e := range a.Edges {
		switch e.Rel {
		case answer.RelInput:
			add("used", map[string]any{"prov:activity": qn(e.To), "prov:entity": qn(e.From)}, e)
		case answer.RelOutput:
			add("wasGeneratedBy", map[string]any{"prov:entity": qn(e.To), "prov:activity": qn(e.From)}, e)
		case answer.RelDerives, answer.RelAffects:
			body := map[string]any{"prov:generatedEntity": qn(e.To), "prov:usedEntity": qn(e.From), "prov:type": ns + ":" + e.Rel}
			if len(e.Transformations) > 0 {
				body[ns+":transformations"] = e.Transformations
			}
			add("wasDerivedFrom", body, e)
		case answer.RelVersion:
			add("specializationOf", map[string]any{"prov:specificEntity": qn(e.From), "prov:generalEntity": qn(e.To)}, e)
		case answer.RelField:
			add("hadMember", map[string]any{"prov:collection": qn(e.To), "prov:entity": qn(e.From)}, e)
		case answer.RelParent:
			add("wasInformedBy", map[string]any{"prov:informed": qn(e.From), "prov:informant": qn(e.To)}, e)
		case answer.RelRunOf:
			add("wasInfluencedBy", map[string]any{"prov:influencee": qn(e.From), "prov:influencer": qn(e.To), "prov:type": ns + ":runOf"}, e)
		case answer.RelCode:
			add("used", map[string]any{"prov:activity": qn(e.From), "prov:entity": qn(e.To), "prov:role": ns + ":code"}, e)
		case answer.RelTagged:
			add("wasAttributedTo", map[string]any{"prov:entity": qn(e.From), "prov:agent": qn(e.To), "prov:type": ns + ":tagged"}, e)
		}
	}
	doc := map[string]any{
		"prefix": map[string]string{"prov": "http://www.w3.org/ns/prov#", ns: "urn:provledger:"},
	}
	if len(entity) > 0 {
		doc["entity"] = entity
	}
	if len(activity) > 0 {
		doc["activity"] = activity
	}
	for k, v := range rel {
		doc[k] = v
	}
	return doc
}
