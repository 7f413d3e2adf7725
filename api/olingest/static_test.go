package olingest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/provledger/provledger/api/olingest"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/query"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/payload"
)

// TestStaticLineage: DatasetEvents and JobEvents (OpenLineage static
// lineage) are accepted alone and in a batch mixed with RunEvents; each
// entry holds the event's exact bytes under the payload type of its kind,
// signed by the ingest key, in the token's namespace.
func TestStaticLineage(t *testing.T) {
	e := start(t, payload.Limits{})
	dsEvent := readFile(t, "../../query/payload/testdata/static/dataset-event.json")
	jobEvent := readFile(t, "../../query/payload/testdata/static/job-event.json")
	runEvent := event(nil)
	check := func(t *testing.T, idx uint64, body []byte, typ, ns string) {
		t.Helper()
		rec := e.record(t, idx)
		if rec.PayloadType != typ || rec.Namespace != ns {
			t.Errorf("entry %d: type %q namespace %q, want %q %q", idx, rec.PayloadType, rec.Namespace, typ, ns)
		}
		raw, err := e.log.Envelope(rec.EnvelopeDigest)
		if err != nil {
			t.Fatal(err)
		}
		env, err := envelope.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(env.Payload, body) || env.PayloadType != typ || len(env.Signatures) != 1 || env.Signatures[0].KeyID != e.handler.KeyID() {
			t.Errorf("entry %d: envelope %s %d signatures; payload is the event: %v", idx, env.PayloadType, len(env.Signatures), bytes.Equal(env.Payload, body))
		}
	}
	for _, c := range []struct {
		name string
		body []byte
		typ  string
	}{
		{"DatasetEvent", dsEvent, payload.TypeOpenLineageDataset},
		{"JobEvent", jobEvent, payload.TypeOpenLineageJob},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.post(t, olingest.PathEvent, airflowToken, c.body)
			var res olingest.EventResult
			if err := json.Unmarshal(r.body, &res); err != nil || r.code != http.StatusOK || res.Entry == nil {
				t.Fatalf("%d %s", r.code, r.body)
			}
			check(t, *res.Entry, c.body, c.typ, "airflow-prod")
		})
	}
	t.Run("batch", func(t *testing.T) {
		// The array holds the files without their final newline: other
		// bytes than sent alone, so new entries.
		evs := [][]byte{dsEvent, jobEvent, runEvent, []byte(`{"eventTime":"2026-11-26T10:05:00Z","producer":"p","job":{"namespace":"a"}}`)}
		body := []byte("[" + string(bytes.Join(evs, []byte(","))) + "]")
		r := e.post(t, olingest.PathBatch, sparkToken, body)
		var resp olingest.BatchResponse
		if err := json.Unmarshal(r.body, &resp); err != nil || r.code != http.StatusOK {
			t.Fatalf("%d %s", r.code, r.body)
		}
		if resp.Status != "partial_success" || resp.Summary.Successful != 3 || len(resp.FailedEvents) != 1 || resp.FailedEvents[0].Field != "job.name" {
			t.Fatalf("%+v", resp)
		}
		check(t, *resp.Results[0].Entry, bytes.TrimSpace(dsEvent), payload.TypeOpenLineageDataset, "spark/etl")
		check(t, *resp.Results[1].Entry, bytes.TrimSpace(jobEvent), payload.TypeOpenLineageJob, "spark/etl")
		check(t, *resp.Results[2].Entry, runEvent, payload.TypeOpenLineage, "spark/etl")
		// Sent again: duplicates, the same entries.
		r = e.post(t, olingest.PathBatch, sparkToken, body)
		var again olingest.BatchResponse
		if err := json.Unmarshal(r.body, &again); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if res := again.Results[i]; !res.Duplicate || *res.Entry != *resp.Results[i].Entry {
				t.Errorf("again %d: %+v", i, res)
			}
		}
	})
	if n := e.log.Latest().Size; n != 5 {
		t.Errorf("log size %d, want 5", n)
	}
}

// staticQuestions are asked of the shop followed by the static scenario
// (query/testdata/static): answers that rest on DatasetEvents and
// JobEvents.
var staticQuestions = []question{
	{"upstream of the forecast", func(q *query.Engine) (*answer.Answer, error) {
		return q.Upstream(context.Background(), ds("snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.REVENUE_FORECAST"), query.Request{})
	}},
	{"impact of customers (a cycle through static edges)", func(q *query.Engine) (*answer.Answer, error) {
		return q.Impact(context.Background(), ds("postgres://db.example.com:5432", "shop.public.customers"), query.Request{})
	}},
	{"paths orders to forecast", func(q *query.Engine) (*answer.Answer, error) {
		return q.Paths(context.Background(), ds("postgres://db.example.com:5432", "shop.public.orders"), ds("snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.REVENUE_FORECAST"), 0, query.Request{})
	}},
	{"columns of the forecast", func(q *query.Engine) (*answer.Answer, error) {
		return q.Columns(context.Background(), ds("snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.REVENUE_FORECAST"), query.Request{})
	}},
	{"history of the forecast", func(q *query.Engine) (*answer.Answer, error) {
		return q.History(context.Background(), ds("snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.REVENUE_FORECAST"), query.Request{})
	}},
	{"downstream of revenue before the reverse ETL JobEvent", func(q *query.Engine) (*answer.Answer, error) {
		return q.Downstream(context.Background(), ds("snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.DAILY_REVENUE"), query.Request{AsOfSize: 14})
	}},
}

// TestStaticEndToEnd ingests the shop and then the static scenario twice:
// all through gRPC Append, and with the OpenLineage events (static ones
// included: the first alone, the rest in one batch) over HTTP. Both logs
// answer the static questions alike, each answer rests on a static event,
// and proven answers over the HTTP-ingested static events verify offline
// with their signatures.
func TestStaticEndToEnd(t *testing.T) {
	shopFiles := shop(t)
	files := scenario(t, "../../query/testdata/static")
	viaGRPC, viaHTTP := start(t, payload.Limits{}), start(t, payload.Limits{})
	for _, f := range shopFiles {
		if strings.Contains(f.name, "bad-uuid") {
			continue
		}
		viaGRPC.appendGRPC(t, f.typ, f.body)
		viaHTTP.appendGRPC(t, f.typ, f.body)
	}
	base := viaHTTP.log.Latest().Size
	for _, f := range files {
		viaGRPC.appendGRPC(t, f.typ, f.body)
	}
	r := viaHTTP.post(t, olingest.PathEvent, airflowToken, files[0].body)
	if r.code != http.StatusOK {
		t.Fatalf("%s: %d %s", files[0].name, r.code, r.body)
	}
	var evs [][]byte
	for _, f := range files[1:] {
		evs = append(evs, f.body)
	}
	r = viaHTTP.post(t, olingest.PathBatch, airflowToken, []byte("["+string(bytes.Join(evs, []byte(",")))+"]"))
	var br olingest.BatchResponse
	if err := json.Unmarshal(r.body, &br); err != nil || r.code != http.StatusOK || br.Summary.Successful != len(evs) {
		t.Fatalf("batch: %d %s", r.code, r.body)
	}
	for i, f := range files {
		if rec := viaHTTP.record(t, base+uint64(i)); rec.PayloadType != f.typ {
			t.Errorf("%s: entry %d has type %s", f.name, base+uint64(i), rec.PayloadType)
		}
	}
	qg, qh := query.New(viaGRPC.log), query.New(viaHTTP.log)
	for i, ah := range answerAlike(t, qg, qh, staticQuestions) {
		static := false
		for _, i := range ah.Entries {
			static = static || i >= base
		}
		if !static {
			t.Errorf("%s: rests on no static event: %v", staticQuestions[i].name, ah.Entries)
		}
	}
	v, err := checkpoint.NewVerifier(origin, logKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := keys.NewKeyring(pipelineKey.Public(), ingestKey.Public())
	for _, q := range []func() (*answer.Answer, error){
		func() (*answer.Answer, error) {
			return qh.Impact(context.Background(), ds("postgres://db.example.com:5432", "shop.public.orders"), query.Request{Prove: true})
		},
		func() (*answer.Answer, error) {
			return qh.History(context.Background(), ds("snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.REVENUE_FORECAST"), query.Request{Prove: true})
		},
	} {
		a, err := q()
		if err != nil {
			t.Fatal(err)
		}
		rep, err := answer.Verify(a, v, answer.VerifyOptions{Keyring: kr})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Facts == 0 || rep.SignaturesChecked != len(a.Entries) || len(rep.Unchecked) != 0 {
			t.Errorf("report %+v for %d entries", rep, len(a.Entries))
		}
	}
}
