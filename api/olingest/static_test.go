package olingest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/provledger/provledger/api/olingest"
	"github.com/provledger/provledger/crypto/envelope"
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
