package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/provledger/provledger/query/answer"
)

// TestHeaderLimits: the answer header shows the depth only for queries
// that traverse (a history or a cost roll-up by a dimension records the
// default depth but walks no edge), and the budget for all.
func TestHeaderLimits(t *testing.T) {
	ds := &answer.Ref{Kind: "dataset", Parts: []string{"ns", "orders"}}
	for _, tc := range []struct {
		name string
		q    answer.Query
		want string
		not  string
	}{
		{"upstream", answer.Query{Kind: "upstream", Node: ds, Depth: 5, Budget: 10000}, "(depth 5, budget 10000)", ""},
		{"cost of a dataset", answer.Query{Kind: "cost", Node: ds, Depth: 3, Budget: 10000}, "(depth 3, budget 10000)", ""},
		{"cost by service", answer.Query{Kind: "cost", GroupBy: "service", Depth: 5, Budget: 10000}, "(budget 10000)", "depth"},
		{"history", answer.Query{Kind: "history", Node: ds, Depth: 5, Budget: 10000}, "(budget 10000)", "depth"},
	} {
		var b bytes.Buffer
		header(&b, &answer.Answer{Query: tc.q, Size: 7})
		got := b.String()
		if !strings.Contains(got, tc.want) || (tc.not != "" && strings.Contains(got, tc.not)) {
			t.Errorf("%s: header %q, want %q without %q", tc.name, got, tc.want, tc.not)
		}
	}
}
