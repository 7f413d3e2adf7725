package graph_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/ledger/redaction"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/internal/testlog"
	"github.com/provledger/provledger/query/payload"
)

// redactLog is a real ledger with the lineage indexer and one admin key.
type redactLog struct {
	*ledger.Log
	ix            *graph.Indexer
	user, admin   signature.Signer
	userID, admID [32]byte
	now           time.Time
}

func openRedactLog(t testing.TB) *redactLog {
	t.Helper()
	s, err := checkpoint.NewSigner(testlog.Origin, testlog.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	seed := sha256.Sum256([]byte("graph redaction admin key"))
	adminKey := ed25519.NewKeyFromSeed(seed[:])
	admID, err := keys.IDOf(adminKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	ix := graph.New(graph.Options{Logger: testlog.Logger})
	l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger"), ledger.Options{
		Origin: testlog.Origin, Signer: s, Logger: testlog.Logger, Indexer: ix, AdminKeys: ledger.NewAdminKeySet(admID),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := ix.Attach(l); err != nil {
		t.Fatal(err)
	}
	rl := &redactLog{Log: l, ix: ix, admID: admID, now: time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)}
	if rl.user, err = keys.NewSigner(testlog.SignerKey); err != nil {
		t.Fatal(err)
	}
	if rl.userID, err = keys.IDOf(testlog.SignerKey.Public()); err != nil {
		t.Fatal(err)
	}
	if rl.admin, err = keys.NewSigner(adminKey); err != nil {
		t.Fatal(err)
	}
	return rl
}

func (rl *redactLog) entry(t testing.TB, typ string, body []byte) ledger.Entry {
	t.Helper()
	signer, id := rl.user, rl.userID
	if typ == redaction.PayloadType {
		signer, id = rl.admin, rl.admID
	}
	env, err := envelope.Sign(typ, body, signer)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.Entry{Namespace: "test", PayloadType: typ, Envelope: env.Marshal(), Signers: [][32]byte{id}}
}

func (rl *redactLog) redaction(t testing.TB, idx ...uint64) ledger.Entry {
	t.Helper()
	p := redaction.Payload{Reason: "erasure request"}
	for _, i := range idx {
		raw, err := rl.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		p.Targets = append(p.Targets, redaction.Target{Index: i, EnvelopeDigest: recordOf(t, raw).EnvelopeDigest})
	}
	b, err := redaction.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	return rl.entry(t, redaction.PayloadType, b)
}

func (rl *redactLog) apply(t testing.TB, es ...ledger.Entry) []uint64 {
	t.Helper()
	a, err := rl.Apply(ledger.Batch{Time: rl.now, Entries: es}, ledger.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rl.now = rl.now.Add(time.Second)
	out := make([]uint64, len(a.Results))
	for i, r := range a.Results {
		if r.Err != nil {
			t.Fatalf("entry %d of the batch: %v", i, r.Err)
		}
		out[i] = r.Index
	}
	return out
}

func (rl *redactLog) event(t testing.TB, run uint64, job string, ins, outs [][2]string) ledger.Entry {
	return rl.entry(t, payload.TypeOpenLineage, testlog.Event(run, "ns", job, ins, outs))
}

func recordOf(t testing.TB, raw []byte) record.Record {
	t.Helper()
	r, err := record.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rebuilt is the index Attach builds from the log as it now is (redacted
// envelopes absent), dumped; the live index is wiped in the process.
func rebuilt(t *testing.T, l *ledger.Log) map[string]string {
	t.Helper()
	b := l.DB().NewBatch()
	if err := b.DeleteRange([]byte{'q'}, []byte{'r'}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := graph.New(graph.Options{Logger: testlog.Logger}).Attach(l); err != nil {
		t.Fatal(err)
	}
	return dump(t, l.DB())
}

var (
	raw    = [2]string{"s3://lake", "raw"}
	clean  = [2]string{"wh", "clean"}
	report = [2]string{"wh", "report"}
	other  = [2]string{"s3://lake", "other"}
	secret = [2]string{"wh", "secret"}
)

const costBody = `{"BilledCost":1,"BillingCurrency":"USD","ChargePeriodStart":"2026-11-28T00:00:00Z","ChargePeriodEnd":"2026-11-28T01:00:00Z"}`

// After a redaction the index is exactly the one a rebuild from the
// redacted log gives: what only the targets asserted is gone, what later
// entries assert too is kept and restamped with the first of them.
func TestRedactMatchesRebuild(t *testing.T) {
	for _, tc := range []struct {
		name string
		// redact builds the batch that redacts, given the log.
		redact func(t *testing.T, rl *redactLog) []ledger.Entry
	}{
		{"one redaction, two targets", func(t *testing.T, rl *redactLog) []ledger.Entry {
			return []ledger.Entry{rl.redaction(t, 0, 3, 4)}
		}},
		{"two redactions in one batch", func(t *testing.T, rl *redactLog) []ledger.Entry {
			return []ledger.Entry{rl.redaction(t, 0), rl.redaction(t, 3), rl.redaction(t, 4)}
		}},
		{"a later entry in the same batch asserts again", func(t *testing.T, rl *redactLog) []ledger.Entry {
			return []ledger.Entry{rl.event(t, 9, "jobC", [][2]string{other}, nil), rl.redaction(t, 0, 3)}
		}},
		{"the run's other event asserts again", func(t *testing.T, rl *redactLog) []ledger.Entry {
			// 2 goes too: it resolved its read of clean to the version 1
			// wrote (see TestRedactKeepsResolvedReads).
			return []ledger.Entry{rl.redaction(t, 1, 2)}
		}},
		{"a reader of a version", func(t *testing.T, rl *redactLog) []ledger.Entry {
			return []ledger.Entry{rl.redaction(t, 2)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := openRedactLog(t)
			rl.apply(t,
				rl.event(t, 1, "jobA", [][2]string{raw}, [][2]string{clean}), // 0
				rl.event(t, 2, "jobA", [][2]string{raw}, [][2]string{clean}), // 1: asserts jobA, raw, clean again
			)
			rl.apply(t,
				rl.event(t, 3, "jobB", [][2]string{clean}, [][2]string{report}),                // 2: reads clean as of run:2
				rl.event(t, 4, "jobC", [][2]string{other}, [][2]string{secret}),                // 3: only entry naming jobC, other, secret
				rl.entry(t, payload.TypeCost, []byte(costBody)),                                // 4: cost rows
				rl.entry(t, payload.TypeOpenLineage, testlog.Event(2, "ns", "jobA", nil, nil)), // 5: run 2 again
			)
			rl.apply(t, tc.redact(t, rl)...)
			live := dump(t, rl.DB())
			if d := diff(live, rebuilt(t, rl.Log)); d != "" {
				t.Fatalf("the index after the redaction differs from a rebuild:\n%s", d)
			}
		})
	}
}

// A lineage query after a redaction no longer returns the target's facts,
// even when the adjacency cache held them.
func TestRedactedFactsLeaveQueries(t *testing.T) {
	rl := openRedactLog(t)
	rl.apply(t,
		rl.event(t, 1, "jobA", [][2]string{raw}, [][2]string{clean}),
		rl.event(t, 2, "jobA", [][2]string{raw}, [][2]string{clean}),
		rl.event(t, 4, "jobC", [][2]string{other}, [][2]string{secret}),
	)
	jobA := graph.NodeID(graph.Job, "ns", "jobA")
	jobC := graph.NodeID(graph.Job, "ns", "jobC")
	runsOf := func(size uint64, job graph.ID) []string {
		t.Helper()
		r, err := rl.ix.NewReader(rl.DB(), size, rl.Latest().Size)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		es, err := r.AppendIn(nil, job, graph.RunOf)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			_, name, err := graph.DecodeNamed(e.Src, e.Name)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, name)
		}
		sort.Strings(out)
		return out
	}
	size := rl.Latest().Size
	if got := runsOf(size, jobA); len(got) != 2 { // and now cached
		t.Fatalf("runs of jobA before: %v", got)
	}
	if got := runsOf(size, jobC); len(got) != 1 {
		t.Fatalf("runs of jobC before: %v", got)
	}
	rl.apply(t, rl.redaction(t, 0, 2))
	for _, n := range []uint64{size, rl.Latest().Size} {
		if got := runsOf(n, jobA); len(got) != 1 || got[0] != "run:"+testlog.RunID(2) {
			t.Fatalf("runs of jobA at size %d after the redaction: %v", n, got)
		}
		if got := runsOf(n, jobC); len(got) != 0 {
			t.Fatalf("runs of jobC at size %d after the redaction: %v", n, got)
		}
	}
	r, err := graph.NewReader(rl.DB(), rl.Latest().Size)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok, err := r.Node(graph.NodeID(graph.Run, testlog.RunID(4))); err != nil || ok {
		t.Fatalf("the redacted run is still a node (%v)", err)
	}
	n, ok, err := r.Node(jobA)
	if err != nil || !ok || n.Index != 1 {
		t.Fatalf("jobA: %+v %v %v; want it first asserted by entry 1 now", n, ok, err)
	}
	if s, ok, err := r.SkipOf(0); err != nil || !ok || s.Class != graph.SkipRedacted {
		t.Fatalf("entry 0 is not marked redacted: %+v %v %v", s, ok, err)
	}
	var facts int
	if err := r.RunFacts(graph.NodeID(graph.Run, testlog.RunID(1)), func(uint64, graph.RunFacts) bool { facts++; return true }); err != nil || facts != 0 {
		t.Fatalf("run facts of the redacted run: %d (%v)", facts, err)
	}
}

// The documented exception: a later entry that read a dataset without a
// version had it resolved to the version a redacted entry wrote; that
// read (and the version node it names) is the later entry's own assertion
// and stays, now first asserted by the reader.
func TestRedactKeepsResolvedReads(t *testing.T) {
	rl := openRedactLog(t)
	rl.apply(t,
		rl.event(t, 1, "jobA", [][2]string{raw}, [][2]string{clean}),
		rl.event(t, 3, "jobB", [][2]string{clean}, [][2]string{report}),
	)
	rl.apply(t, rl.redaction(t, 0))
	r, err := graph.NewReader(rl.DB(), rl.Latest().Size)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dv := graph.NodeID(graph.DatasetVersion, clean[0], clean[1], graph.RunVersion(testlog.RunID(1)))
	n, ok, err := r.Node(dv)
	if err != nil || !ok || n.Index != 1 {
		t.Fatalf("version node read by entry 1: %+v %v %v", n, ok, err)
	}
	es, err := r.AppendOut(nil, graph.NodeID(graph.Run, testlog.RunID(3)), graph.Read)
	if err != nil || len(es) != 1 || es[0].Dst != dv || es[0].Index != 1 {
		t.Fatalf("entry 1's read: %+v %v", es, err)
	}
	if es, err := r.AppendIn(nil, dv, graph.Wrote); err != nil || len(es) != 0 {
		t.Fatalf("the redacted run still wrote the version: %+v %v", es, err)
	}
}

// BenchmarkRedact measures one redaction batch (the ledger's checks, the
// envelope's deletion and the lineage index forgetting the target) in a
// log of 20,000 events of 200 jobs over 500 datasets. Each iteration
// redacts another early event, whose run is its own but whose job and
// datasets later events name again: the common case.
//
//	go test -run XXX -bench BenchmarkRedact -benchtime 200x ./query/graph
func BenchmarkRedact(b *testing.B) {
	rl := openRedactLog(b)
	const events = 20_000
	for i := 0; i < events; i += 1000 {
		es := make([]ledger.Entry, 0, 1000)
		for j := i; j < i+1000; j++ {
			n := uint64(j)
			es = append(es, rl.event(b, n+1, fmt.Sprintf("job%03d", j%200),
				[][2]string{{"s3://lake", fmt.Sprintf("in%03d", j%500)}}, [][2]string{{"wh", fmt.Sprintf("out%03d", (j+7)%500)}}))
		}
		rl.apply(b, es...)
	}
	if b.N > events/2 {
		b.Fatalf("at most %d iterations (one target each)", events/2)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rl.apply(b, rl.redaction(b, uint64(i)))
	}
}

// The shop scenario (parent runs, column lineage, tags, in-toto, costs):
// redacting the DAG's start event (its run is also named by its child
// runs as their parent) and the first extract's events, the index equals
// a rebuild.
func TestRedactShopMatchesRebuild(t *testing.T) {
	rl := openRedactLog(t)
	var es []ledger.Entry
	for _, p := range testlog.LoadDir(t, shopDir) {
		es = append(es, rl.entry(t, p.Type, p.Body))
	}
	rl.apply(t, es...)
	rl.apply(t, rl.redaction(t, 0, 1, 7))
	if d := diff(dump(t, rl.DB()), rebuilt(t, rl.Log)); d != "" {
		t.Fatalf("the index after the redaction differs from a rebuild:\n%s", d)
	}
}
