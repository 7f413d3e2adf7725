package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/internal/testlog"
)

const shopDir = "testdata/shop"

const (
	dagRun     = "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"
	extract1   = "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a01"
	aggregate1 = "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a02"
	extract2   = "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1b01"
	aggregate2 = "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1b02"
	backfill   = "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1c01"
	trainRun   = "train-2026-11-26-001"
	revDigest  = "sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"
	modelV     = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

const (
	eDagStart = iota
	eExtractStart
	eExtractComplete
	eAggStart
	eAggComplete
	eDagComplete
	eTrain
	eCosts
	eExtract2
	eAgg2
	eBackfill
	eBadUUID
	eVulnScan
	eEnd
)

var (
	pgOrders  = answer.Ref{Kind: "dataset", Parts: []string{"postgres://db.example.com:5432", "shop.public.orders"}}
	customers = answer.Ref{Kind: "dataset", Parts: []string{"postgres://db.example.com:5432", "shop.public.customers"}}
	rawOrders = answer.Ref{Kind: "dataset", Parts: []string{"s3://lake", "raw/orders"}}
	revenue   = answer.Ref{Kind: "dataset", Parts: []string{"snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.DAILY_REVENUE"}}
	model     = answer.Ref{Kind: "dataset", Parts: []string{"s3://models", "churn/model.onnx"}}
	aggJob    = answer.Ref{Kind: "job", Parts: []string{"airflow-prod", "daily_orders.aggregate"}}
)

const (
	kPg       = "dataset:postgres://db.example.com:5432:shop.public.orders"
	kCust     = "dataset:postgres://db.example.com:5432:shop.public.customers"
	kRaw      = "dataset:s3://lake:raw/orders"
	kRev      = "dataset:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE"
	kModel    = "dataset:s3://models:churn/model.onnx"
	kCard     = "dataset:artifact:churn-model-card.md"
	kExtract  = "job:airflow-prod:daily_orders.extract"
	kAgg      = "job:airflow-prod:daily_orders.aggregate"
	kBackfill = "job:airflow-prod:revenue_backfill"
	kTrainer  = "job:https://ml.example.com/trainer:https://ml.example.com/train@v1"
)

func shop(t testing.TB) (*testlog.Log, *query.Engine) {
	t.Helper()
	l := testlog.Open(t, graph.New(graph.Options{Logger: testlog.Logger}))
	for _, p := range testlog.LoadDir(t, shopDir) {
		l.Apply(t, p) // one entry per batch: one checkpoint per size
	}
	return l, query.New(l.Log)
}

func nodeKeys(a *answer.Answer, kinds ...string) []string {
	var out []string
	for _, n := range a.Nodes {
		for _, k := range kinds {
			if n.Kind == k {
				out = append(out, n.Key)
			}
		}
	}
	sort.Strings(out)
	return out
}

func edgeStrings(a *answer.Answer, rels ...string) []string {
	var out []string
	for _, e := range a.Edges {
		for _, r := range rels {
			if e.Rel == r {
				out = append(out, fmt.Sprintf("%s -%s-> %s @%d", e.From, e.Rel, e.To, e.Index))
			}
		}
	}
	sort.Strings(out)
	return out
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// checkEntries: an answer's entries are exactly the indexes of its nodes,
// edges, versions and cost rows, ascending.
func checkEntries(t *testing.T, a *answer.Answer) {
	t.Helper()
	want := map[uint64]bool{}
	for _, n := range a.Nodes {
		want[n.Index] = true
	}
	for _, e := range a.Edges {
		want[e.Index] = true
	}
	for _, v := range a.Versions {
		for _, i := range v.Indexes {
			want[i] = true
		}
	}
	if a.Cost != nil {
		for _, r := range a.Cost.Rows {
			want[r.Index] = true
		}
	}
	for _, i := range a.Entries {
		if !want[i] {
			t.Errorf("entry %d listed but not used", i)
		}
		delete(want, i)
		if i >= a.Size {
			t.Errorf("entry %d is not below the answer's size %d", i, a.Size)
		}
	}
	if len(want) > 0 {
		t.Errorf("entries %v used but not listed", want)
	}
	if !sort.SliceIsSorted(a.Entries, func(i, j int) bool { return a.Entries[i] < a.Entries[j] }) {
		t.Error("entries not sorted")
	}
}

func TestUpstreamDownstream(t *testing.T) {
	_, e := shop(t)
	ctx := context.Background()
	a, err := e.Upstream(ctx, revenue, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	if a.Truncated != nil {
		t.Errorf("truncated: %+v", a.Truncated)
	}
	// The backfill job closes a cycle (revenue → backfill → raw/orders →
	// aggregate → revenue): the walk ends all the same.
	same(t, "upstream of revenue", nodeKeys(a, "dataset", "job"), []string{kRev, kAgg, kRaw, kCust, kExtract, kBackfill, kPg})
	same(t, "upstream edges", edgeStrings(a, answer.RelInput, answer.RelOutput), []string{
		kAgg + " -output-> " + kRev + fmt.Sprintf(" @%d", eAggStart),
		kRaw + " -input-> " + kAgg + fmt.Sprintf(" @%d", eAggStart),
		kCust + " -input-> " + kAgg + fmt.Sprintf(" @%d", eAggStart),
		kExtract + " -output-> " + kRaw + fmt.Sprintf(" @%d", eExtractStart),
		kBackfill + " -output-> " + kRaw + fmt.Sprintf(" @%d", eBackfill),
		kPg + " -input-> " + kExtract + fmt.Sprintf(" @%d", eExtractStart),
		kRev + " -input-> " + kBackfill + fmt.Sprintf(" @%d", eBackfill),
	})
	depth := map[string]int{}
	for _, n := range a.Nodes {
		depth[n.Key] = n.Depth
	}
	if depth[kRev] != 0 || depth[kAgg] != 1 || depth[kRaw] != 1 || depth[kExtract] != 2 || depth[kPg] != 2 {
		t.Errorf("depths %v", depth)
	}

	a, err = e.Downstream(ctx, pgOrders, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	same(t, "downstream of pg orders", nodeKeys(a, "dataset", "job"), []string{kPg, kExtract, kRaw, kAgg, kRev, kTrainer, kModel, kCard, kBackfill})

	// Depth 1: only the producing jobs and their inputs; cut short.
	a, err = e.Upstream(ctx, revenue, query.Request{Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "depth 1", nodeKeys(a, "dataset", "job"), []string{kRev, kAgg, kRaw, kCust})
	if a.Truncated == nil || !a.Truncated.Depth || a.Truncated.Budget || !strings.Contains(a.Truncated.Reason, "depth 1") {
		t.Errorf("depth truncation: %+v", a.Truncated)
	}
	// customers has no producer: the depth cut comes from raw/orders.

	// A budget of 2 relations.
	a, err = e.Upstream(ctx, revenue, query.Request{Budget: 2})
	if err != nil {
		t.Fatal(err)
	}
	if a.Truncated == nil || !a.Truncated.Budget || len(a.Edges) != 2 {
		t.Errorf("budget truncation: %+v, %d edges", a.Truncated, len(a.Edges))
	}
	checkEntries(t, a)

	// Upstream of a job.
	a, err = e.Upstream(ctx, aggJob, query.Request{Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "upstream of the aggregate job", nodeKeys(a, "dataset", "job"), []string{kAgg, kRaw, kCust, kExtract, kBackfill, kPg, kRev})
}

func TestRunLevel(t *testing.T) {
	_, e := shop(t)
	ctx := context.Background()
	mv := answer.Ref{Kind: "datasetVersion", Parts: []string{"s3://models", "churn/model.onnx", modelV}}
	a, err := e.Upstream(ctx, mv, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	same(t, "runs upstream of the model", nodeKeys(a, "run"), []string{"run:" + trainRun, "run:" + aggregate1, "run:" + extract1})
	same(t, "their jobs", nodeKeys(a, "job"), []string{kTrainer, kAgg, kExtract})
	var resolved []string
	for _, ed := range a.Edges {
		if ed.Resolved {
			resolved = append(resolved, ed.From)
			sort.Strings(resolved)
		}
	}
	// The aggregate's START named no versions: its reads resolved to the
	// latest completed versions then (the COMPLETE named the same one).
	same(t, "resolved reads", resolved, []string{
		"datasetVersion:s3://lake:raw/orders:orders-2026-11-26",
		"datasetVersion:postgres://db.example.com:5432:shop.public.customers:",
		"datasetVersion:postgres://db.example.com:5432:shop.public.orders:",
	})

	// Downstream of day 2's raw/orders: day 2's aggregate read it, and the
	// backfill read the revenue that aggregate wrote.
	a, err = e.Downstream(ctx, answer.Ref{Kind: "datasetVersion", Parts: []string{"s3://lake", "raw/orders", "orders-2026-11-27"}}, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "runs downstream of day 2", nodeKeys(a, "run"), []string{"run:" + aggregate2, "run:" + backfill})

	// Upstream of a run.
	a, err = e.Upstream(ctx, answer.Ref{Kind: "run", Parts: []string{aggregate2}}, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "upstream of aggregate 2", nodeKeys(a, "run"), []string{"run:" + aggregate2, "run:" + extract2})
}

func TestImpact(t *testing.T) {
	_, e := shop(t)
	ctx := context.Background()
	a, err := e.Impact(ctx, pgOrders, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "impact of pg orders", nodeKeys(a, "dataset", "job"), []string{kPg, kExtract, kRaw, kAgg, kRev, kTrainer, kModel, kCard, kBackfill})
	if a.Query.Depth != 0 || a.Truncated != nil {
		t.Errorf("impact is unbounded in depth: %+v %+v", a.Query, a.Truncated)
	}
	amount := answer.Ref{Kind: "column", Parts: []string{"postgres://db.example.com:5432", "shop.public.orders", "amount"}}
	a, err = e.Impact(ctx, amount, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	same(t, "columns impacted by pg amount", nodeKeys(a, "column"), []string{
		"datasetField:postgres://db.example.com:5432:shop.public.orders:amount",
		"datasetField:s3://lake:raw/orders:amount",
		"datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE:revenue",
	})
	same(t, "their datasets and jobs", nodeKeys(a, "dataset", "job"), []string{kPg, kRaw, kRev, kExtract, kAgg})
	// A join key affects the whole output: everything downstream of it.
	key := answer.Ref{Kind: "column", Parts: []string{"postgres://db.example.com:5432", "shop.public.customers", "customer_id"}}
	a, err = e.Impact(ctx, key, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "impact of the join key", nodeKeys(a, "dataset", "job"), []string{kCust, kRev, kTrainer, kModel, kCard, kBackfill, kRaw, kAgg})
}

func TestPaths(t *testing.T) {
	_, e := shop(t)
	ctx := context.Background()
	a, err := e.Paths(ctx, pgOrders, model, 0, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	if len(a.Paths) != 1 || strings.Join(a.Paths[0], " > ") != strings.Join([]string{kPg, kExtract, kRaw, kAgg, kRev, kTrainer, kModel}, " > ") {
		t.Errorf("paths %q", a.Paths)
	}
	// Two paths from raw/orders to itself's consumer… and through the
	// cycle: raw/orders → revenue has one simple path; revenue → raw/orders
	// one (the backfill).
	a, err = e.Paths(ctx, revenue, rawOrders, 0, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Paths) != 1 || strings.Join(a.Paths[0], " > ") != kRev+" > "+kBackfill+" > "+kRaw {
		t.Errorf("paths %q", a.Paths)
	}
	// Asked the wrong way round: the paths from the other end.
	a, err = e.Paths(ctx, model, pgOrders, 0, query.Request{})
	if err != nil || len(a.Paths) != 1 || a.Paths[0][0] != kPg {
		t.Errorf("reverse paths %q %v", a.Paths, err)
	}
	// Too short a depth: none.
	a, err = e.Paths(ctx, pgOrders, model, 0, query.Request{Depth: 2})
	if err != nil || len(a.Paths) != 0 {
		t.Errorf("depth 2 paths %q %v", a.Paths, err)
	}
	// Several paths, capped.
	a, err = e.Paths(ctx, pgOrders, rawOrders, 1, query.Request{})
	if err != nil || len(a.Paths) != 1 || strings.Join(a.Paths[0], " > ") != kPg+" > "+kExtract+" > "+kRaw {
		t.Errorf("paths %q %v", a.Paths, err)
	}
	a, err = e.Paths(ctx, customers, rawOrders, 1, query.Request{})
	if err != nil || len(a.Paths) != 1 || a.Truncated != nil {
		t.Errorf("customers to raw: %q %+v %v", a.Paths, a.Truncated, err)
	}
}

func TestHistory(t *testing.T) {
	_, e := shop(t)
	a, err := e.History(context.Background(), rawOrders, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	var got []string
	for _, v := range a.Versions {
		rc := "-"
		if v.RowCount != nil {
			rc = fmt.Sprint(*v.RowCount)
		}
		got = append(got, fmt.Sprintf("%s run=%s state=%s code=%s rows=%s schema=%d at=%v", v.Version, v.RunID, v.RunState, v.CodeVersion, rc, len(v.Schema), v.Indexes))
	}
	want := []string{
		fmt.Sprintf("orders-2026-11-26 run=%s state=COMPLETE code=aaaa111aaaa111aaaa111aaaa111aaaa111aaaa1 rows=1500 schema=4 at=[%d]", extract1, eExtractComplete),
		fmt.Sprintf("orders-2026-11-27 run=%s state=COMPLETE code=bbbb222bbbb222bbbb222bbbb222bbbb222bbbb2 rows=1620 schema=0 at=[%d]", extract2, eExtract2),
		fmt.Sprintf("run:%s run=%s state=COMPLETE code= rows=- schema=0 at=[%d]", backfill, backfill, eBackfill),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Revenue: two versions; day 2 added a column.
	a, err = e.History(context.Background(), revenue, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Versions) != 2 || a.Versions[0].Version != revDigest || len(a.Versions[0].Schema) != 3 || len(a.Versions[1].Schema) != 4 || *a.Versions[1].RowCount != 44 || a.Versions[0].Lifecycle != "OVERWRITE" {
		t.Errorf("revenue history %+v", a.Versions)
	}
	// A window keeps the versions whose event time is in it.
	all := a
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     []string
	}{
		{"from the second", all.Versions[1].EventTime, time.Time{}, []string{all.Versions[1].Version}},
		{"before the second", time.Time{}, all.Versions[1].EventTime, []string{all.Versions[0].Version}},
		{"both", all.Versions[0].EventTime, all.Versions[1].EventTime.Add(time.Millisecond), []string{all.Versions[0].Version, all.Versions[1].Version}},
		{"none", all.Versions[1].EventTime.Add(time.Hour), time.Time{}, nil},
	} {
		a, err := e.History(context.Background(), revenue, query.Request{From: tc.from, To: tc.to})
		if err != nil {
			t.Fatal(err)
		}
		checkEntries(t, a)
		var got []string
		for _, v := range a.Versions {
			got = append(got, v.Version)
		}
		if !slices.Equal(got, tc.want) || !a.Query.WindowFrom.Equal(tc.from) || !a.Query.WindowTo.Equal(tc.to) {
			t.Errorf("%s: versions %q, want %q (query %+v)", tc.name, got, tc.want, a.Query)
		}
		if len(tc.want) == 0 && len(a.Entries) != 1 {
			t.Errorf("%s: an empty history rests on %v (want the dataset's entry only)", tc.name, a.Entries)
		}
	}
	if _, err := e.History(context.Background(), aggJob, query.Request{}); !errors.Is(err, query.ErrInvalid) {
		t.Errorf("history of a job: %v", err)
	}
}

func TestColumns(t *testing.T) {
	_, e := shop(t)
	a, err := e.Columns(context.Background(), revenue, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	same(t, "revenue's column lineage", edgeStrings(a, answer.RelDerives, answer.RelAffects), []string{
		fmt.Sprintf("datasetField:postgres://db.example.com:5432:shop.public.customers:address.region -derives-> datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE:region @%d", eAggComplete),
		fmt.Sprintf("datasetField:postgres://db.example.com:5432:shop.public.customers:customer_id -affects-> %s @%d", kRev, eAggComplete),
		fmt.Sprintf("datasetField:s3://lake:raw/orders:customer_id -affects-> %s @%d", kRev, eAggComplete),
		fmt.Sprintf("datasetField:s3://lake:raw/orders:amount -derives-> datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE:revenue @%d", eAggComplete),
		fmt.Sprintf("datasetField:s3://lake:raw/orders:day -derives-> datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE:day @%d", eAggComplete),
		fmt.Sprintf("datasetField:postgres://db.example.com:5432:shop.public.orders:amount -derives-> datasetField:s3://lake:raw/orders:amount @%d", eExtractComplete),
		fmt.Sprintf("datasetField:postgres://db.example.com:5432:shop.public.orders:created_at -derives-> datasetField:s3://lake:raw/orders:day @%d", eExtractComplete),
	})
	for _, ed := range a.Edges {
		if ed.Rel == answer.RelDerives && strings.HasSuffix(ed.To, ":revenue") {
			if ed.RunID != aggregate1 || ed.Job == nil || ed.Job.Name != "daily_orders.aggregate" || len(ed.Transformations) != 1 || ed.Transformations[0].Subtype != "AGGREGATION" {
				t.Errorf("derivation %+v", ed)
			}
		}
	}
	// One column, both ways, depth 1.
	a, err = e.Columns(context.Background(), answer.Ref{Kind: "column", Parts: []string{"s3://lake", "raw/orders", "amount"}}, query.Request{Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "raw amount both ways", nodeKeys(a, "column"), []string{
		"datasetField:postgres://db.example.com:5432:shop.public.orders:amount",
		"datasetField:s3://lake:raw/orders:amount",
		"datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE:revenue",
	})
}

func TestAsOf(t *testing.T) {
	l, e := shop(t)
	ctx := context.Background()
	// Before the backfill, raw/orders had one writer.
	a, err := e.Upstream(ctx, rawOrders, query.Request{AsOfSize: eBackfill})
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != eBackfill {
		t.Errorf("size %d", a.Size)
	}
	same(t, "upstream of raw/orders before the backfill", nodeKeys(a, "dataset", "job"), []string{kRaw, kExtract, kPg})
	checkEntries(t, a)
	// As of a time: each batch was integrated a second after the last.
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		at   time.Time
		size uint64
	}{
		{start.Add(-time.Second), 0},
		{start, 1},
		{start.Add(999 * time.Millisecond), 1},
		{start.Add(time.Duration(eBackfill) * time.Second), eBackfill + 1},
		{start.Add(time.Hour), eEnd},
	} {
		n, err := e.Size(&query.Request{AsOfTime: c.at})
		if err != nil || n != c.size {
			t.Errorf("size at %v: %d %v, want %d", c.at, n, err, c.size)
		}
	}
	a, err = e.Upstream(ctx, rawOrders, query.Request{AsOfTime: start.Add(time.Duration(eBackfill-1) * time.Second)})
	if err != nil || a.Size != eBackfill || !a.AsOfTime.Equal(start.Add(time.Duration(eBackfill-1)*time.Second)) {
		t.Fatalf("%v %+v", err, a)
	}
	// A node that did not exist yet.
	if _, err := e.Upstream(ctx, model, query.Request{AsOfSize: eTrain}); !errors.Is(err, query.ErrNotFound) {
		t.Errorf("model before training: %v", err)
	}
	if _, err := e.Upstream(ctx, model, query.Request{AsOfSize: eEnd + 1}); !errors.Is(err, ledger.ErrOutOfRange) {
		t.Errorf("beyond the log: %v", err)
	}
	if _, err := e.Upstream(ctx, model, query.Request{AsOfSize: 3, AsOfTime: start}); !errors.Is(err, query.ErrInvalid) {
		t.Errorf("both: %v", err)
	}
	_ = l
}

func TestBadRequests(t *testing.T) {
	_, e := shop(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		f    func() error
		want string
	}{
		{"unknown kind", func() error {
			_, err := e.Upstream(ctx, answer.Ref{Kind: "table", Parts: []string{"a", "b"}}, query.Request{})
			return err
		}, "unknown"},
		{"parts", func() error {
			_, err := e.Upstream(ctx, answer.Ref{Kind: "dataset", Parts: []string{"a"}}, query.Request{})
			return err
		}, "2 parts"},
		{"empty part", func() error {
			_, err := e.Upstream(ctx, answer.Ref{Kind: "job", Parts: []string{"a", ""}}, query.Request{})
			return err
		}, "empty"},
		{"depth", func() error { _, err := e.Upstream(ctx, revenue, query.Request{Depth: -1}); return err }, "depth"},
		{"budget", func() error {
			_, err := e.Upstream(ctx, revenue, query.Request{Budget: query.MaxBudget + 1})
			return err
		}, "budget"},
		{"tag upstream", func() error {
			_, err := e.Upstream(ctx, answer.Ref{Kind: "tag", Parts: []string{"team", "ingest"}}, query.Request{})
			return err
		}, "not a tag"},
		{"same node", func() error { _, err := e.Paths(ctx, revenue, revenue, 0, query.Request{}); return err }, "same node"},
		{"group by", func() error { _, err := e.Cost(ctx, query.CostRequest{GroupBy: "colour"}); return err }, "cannot group by"},
		{"window", func() error {
			_, err := e.Cost(ctx, query.CostRequest{Request: query.Request{From: time.Unix(10, 0), To: time.Unix(5, 0)}})
			return err
		}, "not before"},
		{"window on upstream", func() error {
			_, err := e.Upstream(ctx, revenue, query.Request{From: time.Unix(10, 0)})
			return err
		}, "applies to history and cost"},
		{"tags on history", func() error {
			_, err := e.History(ctx, revenue, query.Request{Tags: []string{"team=a"}})
			return err
		}, "applies to cost"},
		{"bad tag", func() error {
			_, err := e.Cost(ctx, query.CostRequest{GroupBy: "service", Request: query.Request{Tags: []string{"team"}}})
			return err
		}, "key=value"},
	} {
		err := c.f()
		if !errors.Is(err, query.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestCost(t *testing.T) {
	_, e := shop(t)
	ctx := context.Background()
	groups := func(a *answer.Answer) []string {
		var out []string
		for _, g := range a.Cost.Groups {
			s := fmt.Sprintf("%s %s %s", g.Key, g.Amount, g.Currency)
			if g.Shared {
				s += " shared"
			}
			out = append(out, s)
		}
		return out
	}
	a, err := e.Cost(ctx, query.CostRequest{GroupBy: "service"})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	if j, _ := json.Marshal(a.Cost.Total); string(j) != `[{"currency":"USD","amount":"121.03"}]` {
		t.Errorf("total %s", j)
	}
	if got := strings.Join(groups(a), "; "); got != "Support 100 USD; Snowflake Warehouse 11.25 USD; Snowflake Storage 4 USD; AWS Glue 3 USD; GPU Cluster 2.75 USD; Amazon S3 0.03 USD" {
		t.Errorf("by service: %s", got)
	}
	a, err = e.Cost(ctx, query.CostRequest{GroupBy: "tag:team"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(groups(a), "; "); got != "(untagged) 100 USD; revenue 15.25 USD; ingest 3.03 USD; ml 2.75 USD" {
		t.Errorf("by team: %s", got)
	}
	a, err = e.Cost(ctx, query.CostRequest{GroupBy: "job"})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	if got := strings.Join(groups(a), "; "); got != "(unattributed) 100 USD; "+kAgg+" 15.25 USD; "+kExtract+" 3.03 USD; "+kTrainer+" 2.75 USD" {
		t.Errorf("by job: %s", got)
	}
	a, err = e.Cost(ctx, query.CostRequest{GroupBy: "dataset"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(groups(a), "; "); got != "(unattributed) 100 USD; "+kRev+" 15.25 USD; "+kRaw+" 3.03 USD; "+kCard+" 2.75 USD shared; "+kModel+" 2.75 USD shared" {
		t.Errorf("by dataset: %s", got)
	}
	// Window: only rows charged on the 26th from 10:00.
	a, err = e.Cost(ctx, query.CostRequest{Request: query.Request{From: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := json.Marshal(a.Cost.Total); string(j) != `[{"currency":"USD","amount":"21"}]` {
		t.Errorf("window total %s", j)
	}
	if a.Query.WindowFrom.IsZero() || a.Query.WindowTo.IsZero() {
		t.Errorf("the answer does not record its window: %+v", a.Query)
	}
	// Tag filters: rows whose FOCUS Tags hold every key=value given.
	for _, tc := range []struct {
		tags   []string
		total  string
		groups string
	}{
		{[]string{"team=revenue"}, "15.25", "Snowflake Warehouse 11.25 USD; Snowflake Storage 4 USD"},
		{[]string{"team=revenue", "env=prod"}, "11.25", "Snowflake Warehouse 11.25 USD"},
		{[]string{"team=nobody"}, "", ""},
	} {
		a, err = e.Cost(ctx, query.CostRequest{GroupBy: "service", Request: query.Request{Tags: tc.tags}})
		if err != nil {
			t.Fatal(err)
		}
		checkEntries(t, a)
		total := ""
		for _, am := range a.Cost.Total {
			total += string(am.Amount)
		}
		if total != tc.total || strings.Join(groups(a), "; ") != tc.groups || !slices.Equal(a.Query.Tags, slices.Sorted(slices.Values(tc.tags))) {
			t.Errorf("tags %q: total %q groups %q (query %+v); want %q %q", tc.tags, total, groups(a), a.Query, tc.total, tc.groups)
		}
	}

	// The cost to produce the model: its run and every run upstream, each
	// row once; the job-level S3 row and the unlinked support row are not
	// any run's.
	a, err = e.Cost(ctx, query.CostRequest{Node: &model})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	if j, _ := json.Marshal(a.Cost.Total); string(j) != `[{"currency":"USD","amount":"21"}]` {
		t.Errorf("model total %s", j)
	}
	sort.Strings(a.Cost.Runs)
	if strings.Join(a.Cost.Runs, ",") != strings.Join([]string{extract1, aggregate1, trainRun}, ",") {
		t.Errorf("runs %v", a.Cost.Runs)
	}
	var vias []string
	for _, r := range a.Cost.Rows {
		vias = append(vias, fmt.Sprintf("%d/%d %s via %s", r.Index, r.Row, r.Amount, r.Via))
	}
	sort.Strings(vias)
	want := []string{
		fmt.Sprintf("%d/0 11.25 via run:%s", eCosts, aggregate1),
		fmt.Sprintf("%d/1 3 via run:%s", eCosts, extract1),
		fmt.Sprintf("%d/3 4 via tag:billing-run=agg-2026-11-26", eCosts),
		fmt.Sprintf("%d/4 2.75 via run:%s", eCosts, trainRun),
	}
	if strings.Join(vias, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant\n%s", strings.Join(vias, "\n"), strings.Join(want, "\n"))
	}
	// As of before the costs were logged: nothing to sum.
	a, err = e.Cost(ctx, query.CostRequest{Node: &model, Request: query.Request{AsOfSize: eCosts}})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Cost.Total) != 0 || len(a.Cost.Rows) != 0 || len(a.Cost.Runs) != 3 {
		t.Errorf("before costs: %+v", a.Cost)
	}
	// The cost of day 2's revenue: its run and day 2's extract, no rows.
	a, err = e.Cost(ctx, query.CostRequest{Node: &revenue})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(a.Cost.Runs)
	if strings.Join(a.Cost.Runs, ",") != extract2+","+aggregate2 || len(a.Cost.Rows) != 0 {
		t.Errorf("day 2 revenue: %+v", a.Cost)
	}
}

// TestNamespaceFilter: a traversal stays inside the namespaces asked for;
// the queried node is always listed; bad filters are refused.
func TestNamespaceFilter(t *testing.T) {
	_, e := shop(t)
	ctx := context.Background()
	cases := []struct {
		name string
		ns   []string
		want []string
	}{
		{"jobs and two stores", []string{"airflow-prod", "snowflake://acme.eu-west-1", "s3://lake"}, []string{kRev, kAgg, kRaw, kExtract, kBackfill}},
		{"no job namespace: nothing to walk through", []string{"snowflake://acme.eu-west-1", "s3://lake"}, []string{kRev}},
		{"duplicates and order do not matter", []string{"s3://lake", "airflow-prod", "s3://lake", "postgres://db.example.com:5432", "snowflake://acme.eu-west-1"}, []string{kRev, kAgg, kRaw, kCust, kExtract, kBackfill, kPg}},
		{"none", nil, []string{kRev, kAgg, kRaw, kCust, kExtract, kBackfill, kPg}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := e.Upstream(ctx, revenue, query.Request{Namespaces: c.ns})
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, a)
			same(t, c.name, nodeKeys(a, "dataset", "job"), c.want)
			if c.ns != nil && (len(a.Query.Namespaces) == 0 || !sort.StringsAreSorted(a.Query.Namespaces)) {
				t.Errorf("answer query namespaces %q", a.Query.Namespaces)
			}
		})
	}
	// Impact and paths honour it too.
	a, err := e.Impact(ctx, pgOrders, query.Request{Namespaces: []string{"airflow-prod", "postgres://db.example.com:5432", "s3://lake"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range a.Nodes {
		if n.Ref.Kind != "run" && n.Ref.Kind != "tag" && !slices.Contains([]string{"airflow-prod", "postgres://db.example.com:5432", "s3://lake"}, n.Ref.Parts[0]) {
			t.Errorf("impact left the namespaces: %s", n.Key)
		}
	}
	for _, bad := range [][]string{{""}, make([]string, query.MaxNamespaces+1)} {
		if _, err := e.Upstream(ctx, revenue, query.Request{Namespaces: bad}); !errors.Is(err, query.ErrInvalid) {
			t.Errorf("filter %q: %v, want ErrInvalid", bad, err)
		}
	}
}
