package graph_test

import (
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/internal/testlog"
	"github.com/provledger/provledger/query/payload"
)

const staticDir = "../testdata/static"

// shopAndStatic is the shop scenario and then the static one
// (DatasetEvents and JobEvents), in batches of batch entries.
func shopAndStatic(t *testing.T, batch int) *testlog.Log {
	l := testlog.Open(t, graph.New(graph.Options{Logger: testlog.Logger}))
	ps := append(testlog.LoadDir(t, shopDir), testlog.LoadDir(t, staticDir)...)
	for i := 0; i < len(ps); i += batch {
		l.Apply(t, ps[i:min(i+batch, len(ps))]...)
	}
	return l
}

// Static lineage is indexed alike however it was batched, and when caught
// up on later.
func TestStaticDeterministic(t *testing.T) {
	one := dump(t, shopAndStatic(t, 100).DB())
	for _, n := range []int{1, 3} {
		if d := diff(one, dump(t, shopAndStatic(t, n).DB())); d != "" {
			t.Errorf("batches of %d differ from one batch:\n%s", n, d)
		}
	}
	plain := testlog.Open(t, nil)
	for _, p := range append(testlog.LoadDir(t, shopDir), testlog.LoadDir(t, staticDir)...) {
		plain.Apply(t, p)
	}
	dir := plain.Dir
	plain.Close()
	if d := diff(one, dump(t, testlog.OpenDir(t, dir, graph.New(graph.Options{Logger: testlog.Logger})).DB())); d != "" {
		t.Errorf("caught-up index differs:\n%s", d)
	}
}

// Redacting static events, or run events whose job, job version or
// dataset version a static event asserts again, gives the index a
// rebuild gives.
func TestRedactStaticMatchesRebuild(t *testing.T) {
	for _, tc := range []struct {
		name    string
		targets []uint64
	}{
		{"a JobEvent", []uint64{1}},
		{"a DatasetEvent with a version", []uint64{0}},
		{"only a later DatasetEvent asserts the version again", []uint64{0, 1, 3}},
		{"the JobEvent and the job's first run", []uint64{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := openRedactLog(t)
			dsEvent := func(at string) ledger.Entry {
				return rl.entry(t, payload.TypeOpenLineageDataset, []byte(`{"eventTime":"`+at+`","producer":"p","dataset":{"namespace":"wh","name":"clean","facets":{"version":{"datasetVersion":"v1"},"tags":{"tags":[{"key":"k","value":"v","field":"c"}]}}}}`))
			}
			jobEvent := func(job, in, out string) ledger.Entry {
				return rl.entry(t, payload.TypeOpenLineageJob, []byte(`{"eventTime":"2026-11-27T06:00:00Z","producer":"p","job":{"namespace":"ns","name":"`+job+`","facets":{"sourceCodeLocation":{"type":"git","url":"u","version":"abc"}}},"inputs":[{"namespace":"wh","name":"`+in+`"}],"outputs":[{"namespace":"wh","name":"`+out+`"}]}`))
			}
			rl.apply(t,
				dsEvent("2026-11-27T06:00:00Z"),  // 0: clean v1, column c tagged
				jobEvent("jobA", "raw", "clean"), // 1: jobA (code abc) reads raw, writes clean
				rl.event(t, 1, "jobA", [][2]string{{"wh", "raw"}}, [][2]string{{"wh", "clean"}}), // 2: a run of jobA: the job, its reads and writes again
			)
			rl.apply(t,
				rl.entry(t, payload.TypeOpenLineage, []byte(`{"eventType":"COMPLETE","eventTime":"2026-11-27T06:00:00Z","producer":"p","run":{"runId":"00000000-0000-4000-8000-000000000009"},"job":{"namespace":"ns","name":"jobA","facets":{"sourceCodeLocation":{"type":"git","url":"u","version":"abc"}}},"outputs":[{"namespace":"wh","name":"clean","facets":{"version":{"datasetVersion":"v1"}}}]}`)), // 3: jobA's code abc wrote clean v1
				jobEvent("jobB", "clean", "report"), // 4
				dsEvent("2026-11-27T07:00:00Z"),     // 5: clean v1 again
			)
			rl.apply(t, rl.redaction(t, tc.targets...))
			if d := diff(dump(t, rl.DB()), rebuilt(t, rl.Log)); d != "" {
				t.Fatalf("the index after the redaction differs from a rebuild:\n%s", d)
			}
		})
	}
}

// A format-2 index (static events ignored) of a log without static
// events is upgraded in place (a marker key stays); with one, it is
// rebuilt from the log (the marker goes).
func TestFormat2Upgrade(t *testing.T) {
	marker := []byte("qe-marker")
	for _, withStatic := range []bool{false, true} {
		l := openShop(t, 100)
		if withStatic {
			l.Apply(t, testlog.LoadDir(t, staticDir)[1])
		}
		want := dump(t, l.DB())
		b := l.DB().NewBatch()
		if err := b.Set(keyFormat, binary.BigEndian.AppendUint64(nil, 2), nil); err != nil {
			t.Fatal(err)
		}
		if err := b.Set(marker, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
		b.Close()
		dir := l.Dir
		l.Close()
		l = testlog.OpenDir(t, dir, graph.New(graph.Options{Logger: testlog.Logger}))
		got := dump(t, l.DB())
		_, kept := got[hex.EncodeToString(marker)]
		if kept == withStatic {
			t.Errorf("static lineage %v: marker kept %v (want an upgrade in place only without static lineage)", withStatic, kept)
		}
		delete(got, hex.EncodeToString(marker))
		if d := diff(want, got); d != "" {
			t.Errorf("static lineage %v: the upgraded index differs:\n%s", withStatic, d)
		}
	}
}

var keyFormat = []byte("qmformat")
