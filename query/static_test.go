package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/provledger/provledger/query"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/internal/testlog"
	"github.com/provledger/provledger/query/payload"
)

// The static scenario (testdata/static), appended after the shop:
// OpenLineage DatasetEvents and JobEvents about the shop's tables and two
// new ones; the reverse ETL job closes a cycle through static edges
// (customers → aggregate → revenue → forecast → push → customers).
const staticDir = "testdata/static"

const (
	sForecastDS  = eEnd + iota // DatasetEvent: REVENUE_FORECAST with a schema (no version facet)
	sForecastJob               // JobEvent: dbt reads DAILY_REVENUE, writes REVENUE_FORECAST (column lineage)
	sReverseETL                // JobEvent: push_forecast reads REVENUE_FORECAST, writes customers
	sForecastV2                // DatasetEvent: REVENUE_FORECAST version 2026-11-27
	sCatalog                   // DatasetEvent: customers, a pii tag on its email column
	sEnd
)

const (
	kForecast = "dataset:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.REVENUE_FORECAST"
	kDbt      = "job:dbt-prod:analytics.revenue_forecast"
	kPush     = "job:airflow-prod:crm_sync.push_forecast"
)

var (
	forecast = answer.Ref{Kind: "dataset", Parts: []string{"snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.REVENUE_FORECAST"}}
	dbtJob   = answer.Ref{Kind: "job", Parts: []string{"dbt-prod", "analytics.revenue_forecast"}}
)

// shopAndStatic is the shop scenario, then the static one, one entry per
// batch.
func shopAndStatic(t testing.TB) (*testlog.Log, *query.Engine) {
	t.Helper()
	l, e := shop(t)
	for _, p := range testlog.LoadDir(t, staticDir) {
		l.Apply(t, p)
	}
	if n := l.Latest().Size; n != sEnd {
		t.Fatalf("log size %d, want %d", n, sEnd)
	}
	return l, e
}

func TestStaticLineage(t *testing.T) {
	_, e := shopAndStatic(t)
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		ask   func() (*answer.Answer, error)
		nodes []string // datasets and jobs
		edges []string // input and output edges, "" to skip
	}{
		{"upstream of the forecast", func() (*answer.Answer, error) { return e.Upstream(ctx, forecast, query.Request{Depth: 2}) },
			[]string{kForecast, kDbt, kRev, kAgg, kRaw, kCust},
			[]string{
				kAgg + " -output-> " + kRev + " @3",
				kCust + " -input-> " + kAgg + " @3",
				kDbt + fmt.Sprintf(" -output-> %s @%d", kForecast, sForecastJob),
				kRaw + " -input-> " + kAgg + " @3",
				kRev + fmt.Sprintf(" -input-> %s @%d", kDbt, sForecastJob),
			}},
		{"upstream of the dbt job", func() (*answer.Answer, error) { return e.Upstream(ctx, dbtJob, query.Request{Depth: 1}) },
			[]string{kDbt, kRev, kAgg, kRaw, kCust}, nil},
		{"downstream of revenue", func() (*answer.Answer, error) { return e.Downstream(ctx, revenue, query.Request{Depth: 2}) },
			[]string{kRev, kDbt, kForecast, kPush, kCust, kTrainer, kModel, kCard, kBackfill, kRaw, kAgg}, nil},
		{"impact of pg orders, round the cycle", func() (*answer.Answer, error) { return e.Impact(ctx, pgOrders, query.Request{}) },
			[]string{kPg, kExtract, kRaw, kAgg, kRev, kTrainer, kModel, kCard, kBackfill, kDbt, kForecast, kPush, kCust}, nil},
		{"impact of customers, a cycle through static edges", func() (*answer.Answer, error) { return e.Impact(ctx, customers, query.Request{}) },
			[]string{kCust, kAgg, kRev, kTrainer, kModel, kCard, kBackfill, kRaw, kDbt, kForecast, kPush}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := c.ask()
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, a)
			same(t, "datasets and jobs", nodeKeys(a, "dataset", "job"), c.nodes)
			if c.edges != nil {
				same(t, "edges", edgeStrings(a, answer.RelInput, answer.RelOutput), c.edges)
			}
			if a.Truncated != nil && a.Truncated.Budget {
				t.Errorf("cut by the budget: %+v", a.Truncated)
			}
		})
	}
}

// Column lineage of a JobEvent's output: derivations and whole-dataset
// dependencies, attributed to the job with no run; a column's impact
// names the job that derived it.
func TestStaticColumns(t *testing.T) {
	_, e := shopAndStatic(t)
	ctx := context.Background()
	a, err := e.Columns(ctx, forecast, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	at := fmt.Sprintf(" @%d", sForecastJob)
	var static []string
	for _, s := range edgeStrings(a, answer.RelDerives, answer.RelAffects) {
		if strings.HasSuffix(s, at) {
			static = append(static, s)
		}
	}
	same(t, "forecast's column lineage from the JobEvent", static, []string{
		"datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE:day -affects-> " + kForecast + at,
		"datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE:day -derives-> datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.REVENUE_FORECAST:day" + at,
		"datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE:revenue -derives-> datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.REVENUE_FORECAST:forecast" + at,
	})
	for _, ed := range a.Edges {
		if ed.Rel == answer.RelDerives && ed.Index == sForecastJob && ed.RunID != "" {
			t.Errorf("static derivation %s → %s names run %q", ed.From, ed.To, ed.RunID)
		}
	}
	rev := answer.Ref{Kind: "column", Parts: []string{"snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.DAILY_REVENUE", "revenue"}}
	a, err = e.Impact(ctx, rev, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	same(t, "columns impacted by revenue", nodeKeys(a, "column"), []string{
		"datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE:revenue",
		"datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.REVENUE_FORECAST:forecast",
	})
	same(t, "the job that derived them", nodeKeys(a, "job"), []string{kDbt})
}

// A DatasetEvent's versions: one named by its schema (no version facet),
// one by its version facet; neither has a run.
func TestStaticHistory(t *testing.T) {
	_, e := shopAndStatic(t)
	a, err := e.History(context.Background(), forecast, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	if len(a.Versions) != 2 {
		t.Fatalf("versions %+v", a.Versions)
	}
	v1, v2 := a.Versions[0], a.Versions[1]
	if !strings.HasPrefix(v1.Version, "schema:") || len(v1.Version) != len("schema:")+32 || v1.Explicit || v1.RunID != "" || v1.RunState != "" ||
		len(v1.Schema) != 3 || len(v1.Schema[2].Fields) != 2 || v1.Lifecycle != "CREATE" || v1.DataSource == nil || fmt.Sprint(v1.Indexes) != fmt.Sprint([]uint64{sForecastDS}) {
		t.Errorf("schema version %+v", v1)
	}
	if v2.Version != "2026-11-27" || !v2.Explicit || v2.RunID != "" || v2.RowCount == nil || *v2.RowCount != 365 || len(v2.Schema) != 2 ||
		fmt.Sprint(v2.Indexes) != fmt.Sprint([]uint64{sForecastV2}) {
		t.Errorf("explicit version %+v", v2)
	}
	// A dataset event without a version or schema adds no version.
	a, err = e.History(context.Background(), customers, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Versions) != 0 {
		t.Errorf("customers' versions %+v", a.Versions)
	}
}

// As of the size before a JobEvent, its edges are not there; at the next
// size they are. Answers as of the shop's end are byte for byte the shop
// log's.
func TestStaticAsOf(t *testing.T) {
	l, e := shopAndStatic(t)
	ctx := context.Background()
	up := func(size uint64) *answer.Answer {
		t.Helper()
		a, err := e.Upstream(ctx, forecast, query.Request{AsOfSize: size, Depth: 1})
		if err != nil {
			t.Fatal(err)
		}
		checkEntries(t, a)
		return a
	}
	same(t, "forecast upstream before the JobEvent", nodeKeys(up(sForecastJob), "dataset", "job"), []string{kForecast})
	same(t, "forecast upstream after the JobEvent", nodeKeys(up(sForecastJob+1), "dataset", "job"), []string{kForecast, kDbt, kRev})
	if _, err := e.Upstream(ctx, forecast, query.Request{AsOfSize: sForecastDS}); !errors.Is(err, query.ErrNotFound) {
		t.Errorf("forecast before its DatasetEvent: %v", err)
	}
	imp := func(size uint64) []string {
		a, err := e.Impact(ctx, revenue, query.Request{AsOfSize: size})
		if err != nil {
			t.Fatal(err)
		}
		return nodeKeys(a, "job")
	}
	same(t, "impact of revenue before the reverse ETL JobEvent", imp(sReverseETL), []string{kAgg, kBackfill, kDbt, kTrainer})
	same(t, "impact of revenue after it", imp(sReverseETL+1), []string{kAgg, kBackfill, kDbt, kTrainer, kPush})

	// The shop alone answers as the shop with static lineage after it,
	// as of the shop's size.
	_, alone := shop(t)
	for _, q := range []struct {
		name string
		ask  func(*query.Engine, uint64) (*answer.Answer, error)
	}{
		{"upstream", func(e *query.Engine, n uint64) (*answer.Answer, error) {
			return e.Upstream(ctx, revenue, query.Request{AsOfSize: n})
		}},
		{"impact", func(e *query.Engine, n uint64) (*answer.Answer, error) {
			return e.Impact(ctx, pgOrders, query.Request{AsOfSize: n})
		}},
		{"columns", func(e *query.Engine, n uint64) (*answer.Answer, error) {
			return e.Columns(ctx, revenue, query.Request{AsOfSize: n})
		}},
		{"history", func(e *query.Engine, n uint64) (*answer.Answer, error) {
			return e.History(ctx, rawOrders, query.Request{AsOfSize: n})
		}},
	} {
		a, err := q.ask(alone, eEnd)
		if err != nil {
			t.Fatal(err)
		}
		b, err := q.ask(e, eEnd)
		if err != nil {
			t.Fatal(err)
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("%s as of the shop's size differs with static lineage after it:\n%s\n%s", q.name, ja, jb)
		}
	}
	_ = l
}

// Cycles through static edges end: every simple path, bounded.
func TestStaticCyclePaths(t *testing.T) {
	_, e := shopAndStatic(t)
	ctx := context.Background()
	a, err := e.Paths(ctx, customers, forecast, 0, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a)
	if len(a.Paths) == 0 {
		t.Fatal("no path from customers to the forecast")
	}
	for _, p := range a.Paths {
		seen := map[string]bool{}
		for _, k := range p {
			if seen[k] {
				t.Errorf("path %v repeats %s", p, k)
			}
			seen[k] = true
		}
		if p[0] != kCust || p[len(p)-1] != kForecast {
			t.Errorf("path %v", p)
		}
	}
	// And back round the cycle: the forecast feeds customers.
	a, err = e.Paths(ctx, forecast, customers, 0, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Paths) != 1 || strings.Join(a.Paths[0], " ") != kForecast+" "+kPush+" "+kCust {
		t.Errorf("forecast to customers: %v", a.Paths)
	}
}

// Proven answers resting on static events verify offline, signatures
// and facts included.
func TestStaticProveAndVerify(t *testing.T) {
	l, e := shopAndStatic(t)
	ctx := context.Background()
	prove := query.Request{Prove: true}
	rev := answer.Ref{Kind: "column", Parts: []string{"snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.DAILY_REVENUE", "revenue"}}
	for _, c := range []struct {
		name string
		ask  func() (*answer.Answer, error)
	}{
		{"upstream", func() (*answer.Answer, error) { return e.Upstream(ctx, forecast, prove) }},
		{"job upstream", func() (*answer.Answer, error) { return e.Upstream(ctx, dbtJob, prove) }},
		{"impact", func() (*answer.Answer, error) { return e.Impact(ctx, customers, prove) }},
		{"column impact", func() (*answer.Answer, error) { return e.Impact(ctx, rev, prove) }},
		{"paths", func() (*answer.Answer, error) { return e.Paths(ctx, customers, forecast, 0, prove) }},
		{"columns", func() (*answer.Answer, error) { return e.Columns(ctx, forecast, prove) }},
		{"history", func() (*answer.Answer, error) { return e.History(ctx, forecast, prove) }},
		{"as of", func() (*answer.Answer, error) {
			return e.Downstream(ctx, revenue, query.Request{Prove: true, AsOfSize: sReverseETL})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := c.ask()
			if err != nil {
				t.Fatal(err)
			}
			static := false
			for _, i := range a.Entries {
				static = static || i >= eEnd
			}
			if !static {
				t.Fatalf("the answer rests on no static event: %v", a.Entries)
			}
			checkProven(t, l, a)
		})
	}
	// A static edge attributed to an entry that does not assert it fails.
	a, err := e.Upstream(ctx, forecast, prove)
	if err != nil {
		t.Fatal(err)
	}
	a = saved(t, a)
	for i := range a.Edges {
		if a.Edges[i].Index == sForecastJob && a.Edges[i].Rel == answer.RelOutput {
			a.Edges[i].Index = sForecastDS
		}
	}
	if _, err := answer.Verify(a, logVerifier(t), answer.VerifyOptions{}); !errors.Is(err, answer.ErrVerify) {
		t.Errorf("a job's output attributed to a DatasetEvent verified: %v", err)
	}
}

// The graph keys of a static event: nodes and edges with the event's
// index, a history record, and nothing a run would assert.
func TestStaticIndexKeys(t *testing.T) {
	l, _ := shopAndStatic(t)
	r, err := graph.NewReader(l.DB(), l.Latest().Size)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	job := graph.NodeID(graph.Job, "dbt-prod", "analytics.revenue_forecast")
	var reads []string
	if err := r.Out(job, graph.JobReads, func(ed graph.Edge) bool {
		reads = append(reads, fmt.Sprintf("%x@%d", ed.Dst, ed.Index))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	rev := graph.NodeID(graph.Dataset, revenue.Parts...)
	same(t, "dbt reads", reads, []string{fmt.Sprintf("%x@%d", rev, sForecastJob)})
	jv := graph.NodeID(graph.JobVersion, "dbt-prod", "analytics.revenue_forecast", "9c1185a5c5e9fc54612808977ee8f548b2258d31")
	if n, ok, err := r.Node(jv); err != nil || !ok || n.Index != sForecastJob {
		t.Errorf("job version: %+v %v %v", n, ok, err)
	}
	if ok, err := r.HasOut(job, graph.Tagged); err != nil || !ok {
		t.Errorf("job tags: %v %v", ok, err)
	}
	email := graph.NodeID(graph.Column, "postgres://db.example.com:5432", "shop.public.customers", "email")
	pii := graph.NodeID(graph.TagNode, "pii", "true")
	retention := graph.NodeID(graph.TagNode, "retention", "P2Y")
	var tagged []string
	if err := r.Out(email, graph.Tagged, func(ed graph.Edge) bool {
		tagged = append(tagged, fmt.Sprintf("%x@%d", ed.Dst, ed.Index))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	// pii was said by the shop's extract run first, retention only by
	// the DatasetEvent.
	same(t, "the email column's tags", tagged, []string{fmt.Sprintf("%x@4", pii), fmt.Sprintf("%x@%d", retention, sCatalog)})
	var runs int
	if err := r.In(job, graph.RunOf, func(graph.Edge) bool { runs++; return true }); err != nil || runs != 0 {
		t.Errorf("a JobEvent made %d runs (%v)", runs, err)
	}
	if _, ok, err := r.SkipOf(sForecastJob); err != nil || ok {
		t.Errorf("the JobEvent was skipped: %v %v", ok, err)
	}
	_ = payload.TypeOpenLineageJob
}

// A JobEvent whose job reads and writes the same table, and two jobs
// feeding each other: every traversal ends, nothing is cut short, and
// paths stay simple.
func TestStaticSelfLoops(t *testing.T) {
	l := testlog.Open(t, graph.New(graph.Options{Logger: testlog.Logger}))
	job := func(name, in, out string) testlog.Payload {
		return testlog.Payload{Type: payload.TypeOpenLineageJob, Body: []byte(`{"eventTime":"2026-11-27T06:00:00Z","producer":"p","job":{"namespace":"ns","name":"` + name + `"},"inputs":[{"namespace":"wh","name":"` + in + `"}],"outputs":[{"namespace":"wh","name":"` + out + `"}]}`)}
	}
	l.Apply(t, job("dedup", "t", "t"), job("ab", "a", "b"), job("ba", "b", "a"), job("bt", "b", "t"))
	e := query.New(l.Log)
	ctx := context.Background()
	ref := func(name string) answer.Ref { return answer.Ref{Kind: "dataset", Parts: []string{"wh", name}} }
	for _, c := range []struct {
		name string
		ask  func() (*answer.Answer, error)
		want []string
	}{
		{"impact of a", func() (*answer.Answer, error) { return e.Impact(ctx, ref("a"), query.Request{}) },
			[]string{"dataset:wh:a", "dataset:wh:b", "dataset:wh:t", "job:ns:ab", "job:ns:ba", "job:ns:bt", "job:ns:dedup"}},
		{"upstream of t", func() (*answer.Answer, error) { return e.Upstream(ctx, ref("t"), query.Request{Depth: 100}) },
			[]string{"dataset:wh:a", "dataset:wh:b", "dataset:wh:t", "job:ns:ab", "job:ns:ba", "job:ns:bt", "job:ns:dedup"}},
		{"downstream of t", func() (*answer.Answer, error) { return e.Downstream(ctx, ref("t"), query.Request{Depth: 100}) },
			[]string{"dataset:wh:t", "job:ns:dedup"}},
	} {
		a, err := c.ask()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		checkEntries(t, a)
		same(t, c.name, nodeKeys(a, "dataset", "job"), c.want)
		if a.Truncated != nil {
			t.Errorf("%s: cut short %+v", c.name, a.Truncated)
		}
	}
	a, err := e.Paths(ctx, ref("a"), ref("t"), 0, query.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Paths) != 1 || strings.Join(a.Paths[0], " ") != "dataset:wh:a job:ns:ab dataset:wh:b job:ns:bt dataset:wh:t" {
		t.Errorf("paths a → t: %v", a.Paths)
	}
}
