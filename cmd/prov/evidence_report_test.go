package main

import (
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/query/answer"
)

// TestBuildReport: the report's sections come from the verified pack
// contents: sources are datasets no job in the answer writes, code
// versions and runs come from the entries' events, findings from the
// finding entries, costs from the cost answer; HTML is escaped.
func TestBuildReport(t *testing.T) {
	event := `{"eventType":"COMPLETE","eventTime":"2026-11-26T10:15:00.000Z","producer":"https://example.test/p",` +
		`"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",` +
		`"run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"},` +
		`"job":{"namespace":"etl","name":"daily<script>","facets":{"sourceCodeLocation":{"_producer":"x","_schemaURL":"https://openlineage.io/spec/facets/1-0-1/SourceCodeLocationJobFacet.json","type":"git","url":"https://git.example/x.py","version":"abc123"}}},` +
		`"inputs":[{"namespace":"s3://raw","name":"events"}],"outputs":[{"namespace":"s3://curated","name":"clean"}]}`
	finding := `{"severity":"high","kind":"cost-spike","subject":"job etl daily","message":"cost 10x the median","entries":[4]}`
	idx := &packIndex{Subject: "dataset s3://curated clean", Origin: "o", TreeSize: 9, CreatedAt: time.Unix(1_800_000_000, 0).UTC(),
		Entries: []packEntry{
			{Index: 4, Role: roleLineage, PayloadType: "application/vnd.openlineage.run-event+json", Signers: []string{"aa"}, Bundle: "entries/4.tlog-proof"},
			{Index: 7, Role: roleFinding, PayloadType: "application/vnd.provledger.finding+json", Signers: []string{"bb"}, Bundle: "entries/7.tlog-proof"},
		}}
	ans := &answer.Answer{
		Nodes: []answer.Node{
			{Key: "dataset:s3://raw:events", Ref: answer.Ref{Kind: "dataset", Parts: []string{"s3://raw", "events"}}},
			{Key: "dataset:s3://curated:clean", Ref: answer.Ref{Kind: "dataset", Parts: []string{"s3://curated", "clean"}}},
			{Key: "job:etl:daily", Ref: answer.Ref{Kind: "job", Parts: []string{"etl", "daily"}}},
		},
		Edges: []answer.Edge{
			{From: "dataset:s3://raw:events", To: "job:etl:daily", Rel: answer.RelInput, Index: 4},
			{From: "job:etl:daily", To: "dataset:s3://curated:clean", Rel: answer.RelOutput, Index: 4},
		},
	}
	cost := &answer.Answer{Cost: &answer.Cost{Total: []answer.Amount{{Currency: "USD", Amount: "12.50"}}, Rows: []answer.CostRow{{Index: 5, Amount: "12.50", Currency: "USD", Service: "Compute"}}}}
	r := buildReport(idx, ans, cost, "tree\n", map[uint64][]byte{4: []byte(event), 7: []byte(finding)})
	if len(r.Sources) != 1 || r.Sources[0] != "s3://raw events" {
		t.Errorf("sources %q", r.Sources)
	}
	if len(r.CodeVersions) != 1 || r.CodeVersions[0].Version != "abc123" || r.CodeVersions[0].Entries != "4" {
		t.Errorf("code versions %+v", r.CodeVersions)
	}
	if len(r.Runs) != 1 || r.Runs[0].RunID != "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00" || r.Runs[0].State != "COMPLETE" {
		t.Errorf("runs %+v", r.Runs)
	}
	if len(r.Findings) != 1 || r.Findings[0].Kind != "cost-spike" || r.Findings[0].Entries != "4" {
		t.Errorf("findings %+v", r.Findings)
	}
	if len(r.Signers) != 2 {
		t.Errorf("signers %+v", r.Signers)
	}
	md, htm, err := renderReports(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| etl daily<script> | `abc123` | https://git.example/x.py | 4 |", "| 12.50 | USD |", "| 5 | 0 | 12.50 | USD | Compute |", "| 7 | high | cost-spike |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(htm), "<script>") || !strings.Contains(string(htm), "daily&lt;script&gt;") {
		t.Errorf("report.html does not escape the job name")
	}
	// Without a cost answer or findings the report says why.
	idx.CostNote, idx.FindingsNote = "No cost answer: unavailable", "No scanner findings: unavailable"
	idx.Entries = idx.Entries[:1]
	md, _, _ = renderReports(buildReport(idx, ans, nil, "tree\n", nil))
	for _, want := range []string{"No cost answer: unavailable", "No scanner findings: unavailable", "(none recorded in the entries)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
}
