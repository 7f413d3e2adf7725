package graph_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/ledger"

	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/internal/testlog"
	"github.com/provledger/provledger/query/payload"
)

const shopDir = "../testdata/shop"

// Run ids of the shop scenario.
const (
	dagRun     = "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"
	extract1   = "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a01"
	aggregate1 = "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a02"
	extract2   = "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1b01"
	aggregate2 = "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1b02"
	backfill   = "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1c01"
	trainRun   = "train-2026-11-26-001"
)

var (
	pgOrders  = graph.NodeID(graph.Dataset, "postgres://db.example.com:5432", "shop.public.orders")
	customers = graph.NodeID(graph.Dataset, "postgres://db.example.com:5432", "shop.public.customers")
	rawOrders = graph.NodeID(graph.Dataset, "s3://lake", "raw/orders")
	revenue   = graph.NodeID(graph.Dataset, "snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.DAILY_REVENUE")
	model     = graph.NodeID(graph.Dataset, "s3://models", "churn/model.onnx")
	extractJ  = graph.NodeID(graph.Job, "airflow-prod", "daily_orders.extract")
	aggJ      = graph.NodeID(graph.Job, "airflow-prod", "daily_orders.aggregate")
	backfillJ = graph.NodeID(graph.Job, "airflow-prod", "revenue_backfill")
)

func run(id string) graph.ID { return graph.NodeID(graph.Run, id) }

// dump returns every index key and value, rendered for comparison.
func dump(t *testing.T, db *pebble.DB) map[string]string {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'q'}, UpperBound: []byte{'r'}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	m := map[string]string{}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			t.Fatal(err)
		}
		m[hex.EncodeToString(it.Key())] = hex.EncodeToString(v)
	}
	return m
}

func diff(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "only in first: "+k)
		} else if v != w {
			out = append(out, "differs: "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "only in second: "+k)
		}
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("… %d more", len(out)-10))
	}
	return strings.Join(out, "\n")
}

// openShop indexes the shop scenario, split into batches of the given size.
func openShop(t *testing.T, batch int) *testlog.Log {
	l := testlog.Open(t, graph.New(graph.Options{Logger: testlog.Logger}))
	ps := testlog.LoadDir(t, shopDir)
	for i := 0; i < len(ps); i += batch {
		l.Apply(t, ps[i:min(i+batch, len(ps))]...)
	}
	return l
}

// The index is a function of the log alone: however the entries were
// batched, and whether they were indexed live or caught up on later, the
// index keys are byte for byte the same.
func TestDeterministicAcrossBatching(t *testing.T) {
	one := dump(t, openShop(t, 100).DB())
	if len(one) == 0 {
		t.Fatal("empty index")
	}
	for _, n := range []int{1, 2, 5} {
		if d := diff(one, dump(t, openShop(t, n).DB())); d != "" {
			t.Errorf("batches of %d differ from one batch:\n%s", n, d)
		}
	}
	// A log built without the indexer, then opened with it: Attach
	// catches up.
	plain := testlog.Open(t, nil)
	for _, p := range testlog.LoadDir(t, shopDir) {
		plain.Apply(t, p)
	}
	dir := plain.Dir
	plain.Close()
	caught := testlog.OpenDir(t, dir, graph.New(graph.Options{Logger: testlog.Logger}))
	if d := diff(one, dump(t, caught.DB())); d != "" {
		t.Errorf("caught-up index differs:\n%s", d)
	}
	// Appending more after the catch-up continues at the right place.
	caught.Apply(t, testlog.Payload{Type: payload.TypeCost, Body: []byte(`{"BilledCost":1,"BillingCurrency":"USD","ChargePeriodStart":"2026-11-28T00:00:00Z","ChargePeriodEnd":"2026-11-28T01:00:00Z"}`)})
	r := reader(t, caught.Log.DB(), caught.Latest().Size)
	if n, err := r.Indexed(); err != nil || n != caught.Latest().Size {
		t.Errorf("indexed %d, log size %d (%v)", n, caught.Latest().Size, err)
	}
}

// A gap (entries the index never saw, e.g. appended while no indexer was
// attached) is filled inside the next batch; entries already indexed (a
// replay) are left alone.
func TestGapAndReplay(t *testing.T) {
	l := testlog.Open(t, nil)
	for _, p := range testlog.LoadDir(t, shopDir) {
		l.Apply(t, p)
	}
	ix := graph.New(graph.Options{Logger: testlog.Logger})
	ix.AttachOnly(l.Log)
	entries, err := ix.Load(6, eEnd)
	if err != nil {
		t.Fatal(err)
	}
	index := func(es []ledger.IndexedEntry) {
		b := l.DB().NewBatch()
		defer b.Close()
		if err := ix.IndexBatch(b, es); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	index(entries)
	want := dump(t, openShop(t, 100).DB())
	if d := diff(want, dump(t, l.DB())); d != "" {
		t.Errorf("index differs:\n%s", d)
	}
	index(entries[3:])
	if d := diff(want, dump(t, l.DB())); d != "" {
		t.Errorf("replay changed the index:\n%s", d)
	}
}

func reader(t *testing.T, db *pebble.DB, size uint64) *graph.Reader {
	t.Helper()
	r, err := graph.NewReader(db, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

type edgeSet map[string]uint64

func names(t *testing.T, r *graph.Reader, ids ...graph.ID) []string {
	var out []string
	for _, id := range ids {
		n, ok, err := r.Node(id)
		if err != nil || !ok {
			t.Fatalf("node %x: %v %v", id, ok, err)
		}
		out = append(out, n.Name())
	}
	return out
}

func out(t *testing.T, r *graph.Reader, src graph.ID, rel graph.Rel) edgeSet {
	t.Helper()
	m := edgeSet{}
	if err := r.Out(src, rel, func(e graph.Edge) bool {
		m[names(t, r, e.Dst)[0]] = e.Index
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

func in(t *testing.T, r *graph.Reader, dst graph.ID, rel graph.Rel) edgeSet {
	t.Helper()
	m := edgeSet{}
	if err := r.In(dst, rel, func(e graph.Edge) bool {
		m[names(t, r, e.Src)[0]] = e.Index
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

func eq(t *testing.T, what string, got, want edgeSet) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// Entry indexes of the shop scenario (one file per entry, in order).
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

func TestShopGraph(t *testing.T) {
	l := openShop(t, 3)
	r := reader(t, l.DB(), l.Latest().Size)

	// Dataset-level lineage, each edge with the entry that first said it.
	eq(t, "aggregate reads", out(t, r, aggJ, graph.JobReads), edgeSet{
		"dataset:postgres://db.example.com:5432:shop.public.customers": eAggStart,
		"dataset:s3://lake:raw/orders":                                 eAggStart,
	})
	eq(t, "raw/orders writers", in(t, r, rawOrders, graph.JobWrites), edgeSet{
		"job:airflow-prod:daily_orders.extract": eExtractStart,
		"job:airflow-prod:revenue_backfill":     eBackfill,
	})
	eq(t, "revenue readers", in(t, r, revenue, graph.JobReads), edgeSet{
		"job:airflow-prod:revenue_backfill":                                  eBackfill,
		"job:https://ml.example.com/trainer:https://ml.example.com/train@v1": eTrain,
	})

	// Run level: the versions each run read and wrote. A read without a
	// version facet resolves to the latest completed version below it: the
	// day-1 aggregate's START to day 1's extract (its COMPLETE then names
	// the same version), day 2's aggregate to day 2's extract.
	eq(t, "aggregate 1 read", out(t, r, run(aggregate1), graph.Read), edgeSet{
		"datasetVersion:postgres://db.example.com:5432:shop.public.customers:": eAggStart,
		"datasetVersion:s3://lake:raw/orders:orders-2026-11-26":                eAggStart,
	})
	eq(t, "aggregate 2 read", out(t, r, run(aggregate2), graph.Read), edgeSet{
		"datasetVersion:postgres://db.example.com:5432:shop.public.customers:": eAgg2,
		"datasetVersion:s3://lake:raw/orders:orders-2026-11-27":                eAgg2,
	})
	eq(t, "aggregate 1 wrote", out(t, r, run(aggregate1), graph.Wrote), edgeSet{
		"datasetVersion:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE:run:" + aggregate1:                                                       eAggStart,
		"datasetVersion:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE:sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9": eAggComplete,
	})
	eq(t, "training read the aggregate's digest", in(t, r, graph.NodeID(graph.DatasetVersion, "snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.DAILY_REVENUE", "sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"), graph.Read), edgeSet{
		"run:" + trainRun: eTrain,
	})
	eq(t, "parent", out(t, r, run(extract1), graph.ParentRun), edgeSet{"run:" + dagRun: eExtractStart})
	eq(t, "children", in(t, r, run(dagRun), graph.ParentRun), edgeSet{"run:" + extract1: eExtractStart, "run:" + aggregate1: eAggStart})
	eq(t, "code versions", in(t, r, extractJ, graph.VersionOf), edgeSet{
		"jobVersion:airflow-prod:daily_orders.extract:aaaa111aaaa111aaaa111aaaa111aaaa111aaaa1": eExtractComplete,
		"jobVersion:airflow-prod:daily_orders.extract:bbbb222bbbb222bbbb222bbbb222bbbb222bbbb2": eExtract2,
	})

	// Column lineage, both ways, with the run that said it.
	amount := graph.NodeID(graph.Column, "snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.DAILY_REVENUE", "revenue")
	eq(t, "revenue column", out(t, r, amount, graph.DerivedFrom), edgeSet{"datasetField:s3://lake:raw/orders:amount": eAggComplete})
	var attrs graph.DerivationAttrs
	r.Out(amount, graph.DerivedFrom, func(e graph.Edge) bool { json.Unmarshal(e.Attrs, &attrs); return false })
	if attrs.RunID != aggregate1 || len(attrs.Transformations) != 1 || attrs.Transformations[0].Subtype != "AGGREGATION" {
		t.Errorf("derivation attrs %+v", attrs)
	}
	eq(t, "downstream of raw amount", in(t, r, graph.NodeID(graph.Column, "s3://lake", "raw/orders", "amount"), graph.DerivedFrom), edgeSet{
		"datasetField:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE:revenue": eAggComplete,
	})
	eq(t, "indirect", in(t, r, graph.NodeID(graph.Column, "postgres://db.example.com:5432", "shop.public.customers", "customer_id"), graph.Affects), edgeSet{
		"dataset:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE": eAggComplete,
	})
	eq(t, "tagged", in(t, r, graph.NodeID(graph.TagNode, "billing-run", "agg-2026-11-26"), graph.Tagged), edgeSet{"run:" + aggregate1: eAggComplete})
	eq(t, "column tag", out(t, r, graph.NodeID(graph.Column, "postgres://db.example.com:5432", "shop.public.customers", "email"), graph.Tagged), edgeSet{"tag:pii=true": eAggComplete})

	// History of raw/orders: one record per output event, in log order.
	var hist []string
	r.History(rawOrders, func(idx uint64, f graph.VersionFacts) bool {
		rc := "-"
		if f.RowCount != nil {
			rc = fmt.Sprint(*f.RowCount)
		}
		hist = append(hist, fmt.Sprintf("%d %s %s %s rows=%s schema=%d", idx, f.Version, f.EventType, f.CodeVersion, rc, len(f.Schema)))
		return true
	})
	want := []string{
		fmt.Sprintf("%d run:%s START  rows=- schema=0", eExtractStart, extract1),
		fmt.Sprintf("%d orders-2026-11-26 COMPLETE aaaa111aaaa111aaaa111aaaa111aaaa111aaaa1 rows=1500 schema=4", eExtractComplete),
		fmt.Sprintf("%d orders-2026-11-27 COMPLETE bbbb222bbbb222bbbb222bbbb222bbbb222bbbb2 rows=1620 schema=0", eExtract2),
		fmt.Sprintf("%d run:%s COMPLETE  rows=- schema=0", eBackfill, backfill),
	}
	if strings.Join(hist, "\n") != strings.Join(want, "\n") {
		t.Errorf("history:\n%s\nwant\n%s", strings.Join(hist, "\n"), strings.Join(want, "\n"))
	}
	if v, idx, ok, err := r.LatestVersion(rawOrders); err != nil || !ok || v != "run:"+backfill || idx != eBackfill {
		t.Errorf("latest version %q %d %v %v", v, idx, ok, err)
	}

	// Costs and their links.
	var links []string
	r.CostsOf(run(aggregate1), func(ref graph.CostRef) bool { links = append(links, fmt.Sprint(ref)); return true })
	r.CostsOf(extractJ, func(ref graph.CostRef) bool { links = append(links, fmt.Sprint(ref)); return true })
	r.CostsOf(graph.NodeID(graph.TagNode, "billing-run", "agg-2026-11-26"), func(ref graph.CostRef) bool { links = append(links, fmt.Sprint(ref)); return true })
	if got := strings.Join(links, " "); got != fmt.Sprintf("{%d 0} {%d 2} {%d 3}", eCosts, eCosts, eCosts) {
		t.Errorf("cost links %s", got)
	}
	n := 0
	r.Costs(func(graph.CostRef, payload.CostRow) bool { n++; return true })
	if n != 6 {
		t.Errorf("%d cost rows", n)
	}

	// Skipped payloads say why.
	var skips []string
	r.Skipped(func(s graph.Skip) bool {
		skips = append(skips, fmt.Sprintf("%d %c %s", s.Index, s.Class, s.Reason))
		return true
	})
	if len(skips) != 2 || !strings.HasPrefix(skips[0], fmt.Sprintf("%d m run.runId:", eBadUUID)) || !strings.HasPrefix(skips[1], fmt.Sprintf("%d n in-toto predicate type", eVulnScan)) {
		t.Errorf("skips %q", skips)
	}
}

// A reader at size N sees exactly what entries below N asserted.
func TestAsOf(t *testing.T) {
	l := openShop(t, 100)
	for _, c := range []struct {
		size    uint64
		writers edgeSet
		latest  string
	}{
		{eExtractStart, edgeSet{}, ""},
		{eExtractStart + 1, edgeSet{"job:airflow-prod:daily_orders.extract": eExtractStart}, ""},
		{eExtractComplete + 1, edgeSet{"job:airflow-prod:daily_orders.extract": eExtractStart}, "orders-2026-11-26"},
		{eBackfill, edgeSet{"job:airflow-prod:daily_orders.extract": eExtractStart}, "orders-2026-11-27"},
		{eEnd, edgeSet{"job:airflow-prod:daily_orders.extract": eExtractStart, "job:airflow-prod:revenue_backfill": eBackfill}, "run:" + backfill},
	} {
		r := reader(t, l.DB(), c.size)
		eq(t, fmt.Sprintf("writers at %d", c.size), in(t, r, rawOrders, graph.JobWrites), c.writers)
		v, _, _, err := r.LatestVersion(rawOrders)
		if err != nil || v != c.latest {
			t.Errorf("latest at %d: %q %v, want %q", c.size, v, err, c.latest)
		}
		if _, ok, _ := r.Node(backfillJ); ok != (c.size > eBackfill) {
			t.Errorf("backfill job visible at %d: %v", c.size, ok)
		}
		h := 0
		r.History(rawOrders, func(uint64, graph.VersionFacts) bool { h++; return true })
		if want := map[uint64]int{eExtractStart: 0, eExtractStart + 1: 1, eExtractComplete + 1: 2, eBackfill: 3, eEnd: 4}[c.size]; h != want {
			t.Errorf("history at %d has %d records, want %d", c.size, h, want)
		}
	}
}

// Several events of one run in one batch: each edge is stored once, with
// the first entry that asserted it; the forward and reverse keys agree.
func TestSameRunInOneBatch(t *testing.T) {
	l := openShop(t, 100)
	r := reader(t, l.DB(), l.Latest().Size)
	fwd, rev := 0, 0
	it, _ := l.DB().NewIter(&pebble.IterOptions{LowerBound: []byte("qe"), UpperBound: []byte("qf")})
	for ok := it.First(); ok; ok = it.Next() {
		fwd++
	}
	it.Close()
	it, _ = l.DB().NewIter(&pebble.IterOptions{LowerBound: []byte("qr"), UpperBound: []byte("qs")})
	for ok := it.First(); ok; ok = it.Next() {
		rev++
	}
	it.Close()
	if fwd != rev || fwd == 0 {
		t.Errorf("%d forward edges, %d reverse", fwd, rev)
	}
	eq(t, "extract run wrote", out(t, r, run(extract1), graph.Wrote), edgeSet{
		"datasetVersion:s3://lake:raw/orders:orders-2026-11-26": eExtractComplete,
		"datasetVersion:s3://lake:raw/orders:run:" + extract1:   eExtractStart,
	})
	eq(t, "extract run of", out(t, r, run(extract1), graph.RunOf), edgeSet{"job:airflow-prod:daily_orders.extract": eExtractStart})
	var facts []string
	r.RunFacts(run(extract1), func(idx uint64, f graph.RunFacts) bool {
		facts = append(facts, fmt.Sprintf("%d %s", idx, f.EventType))
		return true
	})
	if strings.Join(facts, ",") != fmt.Sprintf("%d START,%d COMPLETE", eExtractStart, eExtractComplete) {
		t.Errorf("run facts %v", facts)
	}
}

// Content never fails a batch: malformed payloads, envelopes of types the
// index ignores and hostile names are recorded or skipped, and the entries
// after them are indexed.
func TestContentNeverFails(t *testing.T) {
	l := testlog.Open(t, graph.New(graph.Options{Logger: testlog.Logger, Limits: payload.Limits{MaxFacetSize: 512}}))
	big := `{"eventType":"START","eventTime":"2026-01-01T00:00:00Z","producer":"p","run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"},"job":{"namespace":"n","name":"j"},"outputs":[{"namespace":"n","name":"d","facets":{"schema":{"fields":[{"name":"` + strings.Repeat("x", 1000) + `"}]}}}]}`
	weird := `{"eventType":"COMPLETE","eventTime":"2026-01-01T00:00:00Z","producer":"p","run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a09"},"job":{"namespace":"n\u0000x","name":"j:k"},"inputs":[{"namespace":"\u00ff","name":"a\u0000b"}],"outputs":[{"namespace":"n","name":"a\u0000b"}]}`
	idx := l.Apply(t,
		testlog.Payload{Type: payload.TypeOpenLineage, Body: []byte(`{"not":"an event"}`)},
		testlog.Payload{Type: payload.TypeOpenLineage, Body: []byte(big)},
		testlog.Payload{Type: "application/vnd.provledger.policy+json", Body: []byte(`{}`)},
		testlog.Payload{Type: payload.TypeCost, Body: []byte(`[]`)},
		testlog.Payload{Type: payload.TypeOpenLineage, Body: []byte(weird)},
	)
	r := reader(t, l.DB(), l.Latest().Size)
	var skips []string
	r.Skipped(func(s graph.Skip) bool {
		skips = append(skips, fmt.Sprintf("%d %c %s", s.Index, s.Class, s.Reason))
		return true
	})
	if len(skips) != 3 || !strings.Contains(skips[1], "outputs[0].facets.schema: facet is") || !strings.HasPrefix(skips[2], "3 m") {
		t.Errorf("skips: %q", skips)
	}
	if _, ok, _ := r.SkipOf(idx[2]); ok {
		t.Error("a policy entry is not a skipped lineage payload")
	}
	w := graph.NodeID(graph.Job, "n\x00x", "j:k")
	eq(t, "odd names", out(t, r, w, graph.JobWrites), edgeSet{"dataset:n:a\x00b": idx[4]})
	if _, ok, _ := r.Node(graph.NodeID(graph.Job, "n", "x\x00j:k")); ok {
		t.Error("names with separators collide")
	}
}

func TestNotAttached(t *testing.T) {
	ix := graph.New(graph.Options{Logger: testlog.Logger})
	l := testlog.Open(t, nil)
	b := l.DB().NewBatch()
	defer b.Close()
	err := ix.IndexBatch(b, []ledger.IndexedEntry{{Index: 0}})
	if err == nil || !strings.Contains(err.Error(), "Attach") {
		t.Errorf("IndexBatch before Attach: %v", err)
	}
}

// A batch whose commit fails leaves keys in the indexer's key filter that
// the store does not hold; the next batch (starting at the same place)
// must still write everything.
func TestFailedCommitThenRetry(t *testing.T) {
	l := testlog.Open(t, nil)
	for _, p := range testlog.LoadDir(t, shopDir) {
		l.Apply(t, p)
	}
	ix := graph.New(graph.Options{Logger: testlog.Logger})
	ix.AttachOnly(l.Log)
	entries, err := ix.Load(0, eEnd)
	if err != nil {
		t.Fatal(err)
	}
	lost := l.DB().NewBatch()
	if err := ix.IndexBatch(lost, entries[:7]); err != nil {
		t.Fatal(err)
	}
	lost.Close() // never committed
	for _, part := range [][]ledger.IndexedEntry{entries[:7], entries[7:]} {
		b := l.DB().NewBatch()
		if err := ix.IndexBatch(b, part); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	if d := diff(dump(t, openShop(t, 100).DB()), dump(t, l.DB())); d != "" {
		t.Errorf("index differs after a lost batch:\n%s", d)
	}
}

// An index in an older format is dropped and rebuilt by Attach.
func TestOldFormatRebuilt(t *testing.T) {
	l := openShop(t, 100)
	want := dump(t, l.DB())
	b := l.DB().NewBatch()
	b.Delete([]byte("qmformat"), nil)
	b.Set([]byte("qe-stale-junk"), []byte("x"), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	dir := l.Dir
	l.Close()
	l = testlog.OpenDir(t, dir, graph.New(graph.Options{Logger: testlog.Logger}))
	if d := diff(want, dump(t, l.DB())); d != "" {
		t.Errorf("rebuilt index differs:\n%s", d)
	}
}

func TestDecodeNamedMatchesDecodeName(t *testing.T) {
	for _, c := range []struct {
		k     graph.Kind
		parts []string
	}{
		{graph.Dataset, []string{"s3://lake", "raw/orders"}},
		{graph.DatasetVersion, []string{"s3://lake", "raw/orders", ""}},
		{graph.Column, []string{"pg", "shop.orders", "amount"}},
		{graph.TagNode, []string{"team", "revenue"}},
		{graph.Run, []string{"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"}},
		{graph.Job, []string{"a:b", "c:d"}},
		{graph.Job, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}},
		{graph.Job, nil},
	} {
		id := graph.NodeID(c.k, c.parts...)
		b := graph.EncodeName(c.k, c.parts...)
		want, err := graph.DecodeName(id, b)
		if err != nil {
			t.Fatal(err)
		}
		got, name, err := graph.DecodeNamed(id, b)
		if err != nil {
			t.Fatal(err)
		}
		if name != want.Name() || got.Kind != want.Kind || strings.Join(got.Parts, "\x00") != strings.Join(want.Parts, "\x00") || len(got.Parts) != len(want.Parts) {
			t.Errorf("%v %q: got %q %q, want %q %q", c.k, c.parts, name, got.Parts, want.Name(), want.Parts)
		}
	}
	if _, _, err := graph.DecodeNamed(graph.ID{}, []byte{byte(graph.Dataset), 9, 'x'}); err == nil {
		t.Error("a truncated part decoded")
	}
}
