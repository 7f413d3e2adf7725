package olingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/olingest"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/payload"
)

const origin = "test.provledger/olingest"

var (
	logKey      = ed25519.NewKeyFromSeed(seed("olingest log key"))
	pipelineKey = ed25519.NewKeyFromSeed(seed("olingest pipeline key"))
	ingestKey   = ed25519.NewKeyFromSeed(seed("olingest ingest key"))
)

// Bearer tokens of the tests and the tokens file that holds their hashes.
const (
	airflowToken = "s3cr3t-airflow-token"
	sparkToken   = "s3cr3t-spark-token"
)

func seed(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// tokens parses a tokens file as provd does (api/auth's parser).
func tokens(t *testing.T, file []byte) *olingest.Tokens {
	t.Helper()
	ps, err := auth.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := olingest.NewTokens(ps)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func tokensFile() []byte {
	return []byte("# name  sha256 of the token\n" +
		"airflow-prod " + auth.HashToken(airflowToken) + "\n" +
		"spark/etl\t" + auth.HashToken(sparkToken) + "\n")
}

// env is a real ledger with the graph indexer, the Ledger service on gRPC
// and the OpenLineage endpoint mounted on the HTTP listener, as provd
// wires them.
type env struct {
	log     *ledger.Log
	ledger  provledgerpb.LedgerClient
	url     string
	handler *olingest.Handler
}

// start starts the env; opts change the handler's Config before New.
func start(t *testing.T, lim payload.Limits, opts ...func(*olingest.Config)) *env {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, err := checkpoint.NewSigner(origin, logKey)
	if err != nil {
		t.Fatal(err)
	}
	ix := graph.New(graph.Options{Logger: logger})
	l, err := ledger.Open(t.TempDir(), ledger.Options{Origin: origin, Signer: signer, Logger: logger, Indexer: ix, PebbleCacheSize: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Attach(l); err != nil {
		t.Fatal(err)
	}
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keys.NewKeyring(pipelineKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Service:      service.Config{Log: l, Sequencer: seq, Logger: logger, Verifier: &envelope.Verifier{Keyring: kr}, MaxBatch: 3},
		GRPCListener: gl, HTTPListener: hl, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	// As provd does: trust the ingest key, append through the service.
	if _, err := kr.Add(ingestKey.Public()); err != nil {
		t.Fatal(err)
	}
	is, err := keys.NewSigner(ingestKey)
	if err != nil {
		t.Fatal(err)
	}
	toks := tokens(t, tokensFile())
	hc := olingest.Config{Appender: srv.Service(), Signer: is, Tokens: toks, Limits: lim, MaxBatch: 10, AppendChunk: 3, Logger: logger}
	for _, o := range opts {
		o(&hc)
	}
	h, err := olingest.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	h.Register(srv.Mux())
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	conn, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
		<-done
		seq.Close()
		l.Close()
	})
	return &env{log: l, ledger: provledgerpb.NewLedgerClient(conn), url: "http://" + hl.Addr().String(), handler: h}
}

type reply struct {
	code int
	body []byte
	hdr  http.Header
}

func (e *env) post(t *testing.T, path, token string, body []byte, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, b, resp.Header}
}

// appendGRPC appends body through gRPC Append, signed by the pipeline key.
func (e *env) appendGRPC(t *testing.T, typ string, body []byte) uint64 {
	t.Helper()
	s, err := keys.NewSigner(pipelineKey)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := envelope.Sign(typ, body, s)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.ledger.Append(context.Background(), &provledgerpb.AppendRequest{Namespace: "airflow-prod", Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: ev.Marshal()}})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return resp.GetIndex()
}

func (e *env) record(t *testing.T, i uint64) *record.Record {
	t.Helper()
	raw, err := e.log.Record(i)
	if err != nil {
		t.Fatal(err)
	}
	r, err := record.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

type shopFile struct {
	name string
	typ  string
	body []byte
}

// shop reads the query package's shop scenario: OpenLineage events
// covering every facet the index uses, SLSA v1 provenance, FOCUS costs, a
// cycle, and an event with a bad run id.
func shop(t *testing.T) []shopFile {
	t.Helper()
	return scenario(t, "../../query/testdata/shop")
}

// scenario reads the payloads of a query testdata scenario, typed by
// their names as query/internal/testlog.LoadDir types them.
func scenario(t *testing.T, dir string) []shopFile {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s testdata: %v", dir, err)
	}
	var out []shopFile
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		typ := payload.TypeOpenLineage
		switch {
		case strings.HasSuffix(f, ".intoto.json"):
			typ = payload.TypeInToto
		case strings.HasSuffix(f, ".cost.json"):
			typ = payload.TypeCost
		case strings.HasSuffix(f, ".dataset.json"):
			typ = payload.TypeOpenLineageDataset
		case strings.HasSuffix(f, ".job.json"):
			typ = payload.TypeOpenLineageJob
		}
		out = append(out, shopFile{filepath.Base(f), typ, b})
	}
	return out
}

func ds(ns, name string) answer.Ref { return answer.Ref{Kind: "dataset", Parts: []string{ns, name}} }

// question is a query both ingest paths must answer alike.
type question struct {
	name string
	ask  func(*query.Engine) (*answer.Answer, error)
}

// answerAlike asks each question of both engines and checks the answers
// are byte for byte the same; it returns the second engine's answers.
func answerAlike(t *testing.T, qg, qh *query.Engine, qs []question) []*answer.Answer {
	t.Helper()
	var out []*answer.Answer
	for _, q := range qs {
		ag, err := q.ask(qg)
		if err != nil {
			t.Fatalf("%s (gRPC): %v", q.name, err)
		}
		ah, err := q.ask(qh)
		if err != nil {
			t.Fatalf("%s (HTTP): %v", q.name, err)
		}
		jg, _ := json.Marshal(ag)
		jh, _ := json.Marshal(ah)
		if !bytes.Equal(jg, jh) {
			t.Errorf("%s: the answers differ\ngRPC: %s\nHTTP: %s", q.name, jg, jh)
		}
		out = append(out, ah)
	}
	return out
}

// questions are the queries both ingest paths must answer alike.
var questions = []question{
	{"upstream revenue", func(q *query.Engine) (*answer.Answer, error) {
		return q.Upstream(context.Background(), ds("snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.DAILY_REVENUE"), query.Request{})
	}},
	{"downstream orders", func(q *query.Engine) (*answer.Answer, error) {
		return q.Downstream(context.Background(), ds("postgres://db.example.com:5432", "shop.public.orders"), query.Request{})
	}},
	{"impact orders", func(q *query.Engine) (*answer.Answer, error) {
		return q.Impact(context.Background(), ds("postgres://db.example.com:5432", "shop.public.orders"), query.Request{})
	}},
	{"paths orders to model", func(q *query.Engine) (*answer.Answer, error) {
		return q.Paths(context.Background(), ds("postgres://db.example.com:5432", "shop.public.orders"), ds("s3://models", "churn/model.onnx"), 0, query.Request{})
	}},
	{"history raw orders", func(q *query.Engine) (*answer.Answer, error) {
		return q.History(context.Background(), ds("s3://lake", "raw/orders"), query.Request{})
	}},
	{"columns revenue", func(q *query.Engine) (*answer.Answer, error) {
		return q.Columns(context.Background(), ds("snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.DAILY_REVENUE"), query.Request{})
	}},
	{"cost of the model", func(q *query.Engine) (*answer.Answer, error) {
		n := ds("s3://models", "churn/model.onnx")
		return q.Cost(context.Background(), query.CostRequest{Node: &n})
	}},
	{"cost by job", func(q *query.Engine) (*answer.Answer, error) {
		return q.Cost(context.Background(), query.CostRequest{GroupBy: "job"})
	}},
	{"upstream as of size 4", func(q *query.Engine) (*answer.Answer, error) {
		return q.Upstream(context.Background(), ds("snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.DAILY_REVENUE"), query.Request{AsOfSize: 5})
	}},
}

// TestEndToEnd ingests the shop scenario twice — once all through gRPC
// Append (signed by the pipeline), once with every OpenLineage event sent
// over HTTP (some alone, the rest in batches) and the in-toto and cost
// records through gRPC — and checks that both logs answer every query
// alike, that the HTTP-ingested entries record their token and the ingest
// key, and that a proven answer over HTTP-ingested entries verifies.
func TestEndToEnd(t *testing.T) {
	files := shop(t)
	viaGRPC, viaHTTP := start(t, payload.Limits{}), start(t, payload.Limits{})

	for _, f := range files {
		if strings.Contains(f.name, "bad-uuid") {
			continue // the HTTP endpoint refuses it (below); keep the logs alike
		}
		viaGRPC.appendGRPC(t, f.typ, f.body)
	}

	var batch [][]byte
	var batchNames []string
	flush := func() {
		if len(batch) == 0 {
			return
		}
		body := []byte("[\n" + string(bytes.Join(batch, []byte(",\n"))) + "\n]")
		r := viaHTTP.post(t, olingest.PathBatch, airflowToken, body)
		var br olingest.BatchResponse
		if err := json.Unmarshal(r.body, &br); err != nil {
			t.Fatalf("batch %v: %d %s", batchNames, r.code, r.body)
		}
		for i, res := range br.Results {
			bad := strings.Contains(batchNames[i], "bad-uuid")
			switch {
			case bad && (res.Status != "failed" || res.Field != "run.runId"):
				t.Errorf("%s: %+v, want failed at run.runId", batchNames[i], res)
			case !bad && res.Status != "ok":
				t.Errorf("%s: %+v", batchNames[i], res)
			}
		}
		if r.code != http.StatusOK || br.Summary.Received != len(batch) {
			t.Errorf("batch %v: %d %s", batchNames, r.code, r.body)
		}
		batch, batchNames = nil, nil
	}
	for i, f := range files {
		switch {
		case f.typ != payload.TypeOpenLineage:
			flush()
			viaHTTP.appendGRPC(t, f.typ, f.body)
		case i < 3: // the first events one by one
			r := viaHTTP.post(t, olingest.PathEvent, airflowToken, f.body)
			if r.code != http.StatusOK {
				t.Fatalf("%s: %d %s", f.name, r.code, r.body)
			}
		default:
			batch, batchNames = append(batch, f.body), append(batchNames, f.name)
		}
	}
	flush()

	if g, h := viaGRPC.log.Latest().Size, viaHTTP.log.Latest().Size; g != h || g != uint64(len(files)-1) {
		t.Fatalf("log sizes: gRPC %d, HTTP %d, want %d", g, h, len(files)-1)
	}
	// The HTTP-ingested entries: namespace = token name, signer = ingest
	// key, payload = the event's bytes.
	ingestID, _ := keys.IDOf(ingestKey.Public())
	for i := uint64(0); i < viaHTTP.log.Latest().Size; i++ {
		r := viaHTTP.record(t, i)
		if r.PayloadType != payload.TypeOpenLineage {
			continue
		}
		if r.Namespace != "airflow-prod" || len(r.Signers) != 1 || r.Signers[0] != [32]byte(ingestID) {
			t.Errorf("entry %d: namespace %q, signers %x", i, r.Namespace, r.Signers)
		}
		envJSON, err := viaHTTP.log.Envelope(r.EnvelopeDigest)
		if err != nil {
			t.Fatal(err)
		}
		env, err := envelope.Parse(envJSON)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range files {
			found = found || bytes.Equal(f.body, env.Payload) || bytes.Equal(bytes.TrimSpace(f.body), env.Payload)
		}
		if !found {
			t.Errorf("entry %d: the payload is not one of the events sent", i)
		}
	}

	qg, qh := query.New(viaGRPC.log), query.New(viaHTTP.log)
	for i, ah := range answerAlike(t, qg, qh, questions) {
		if len(ah.Nodes) == 0 && ah.Cost == nil {
			t.Errorf("%s: empty answer", questions[i].name)
		}
	}

	// A proven answer over HTTP-ingested entries verifies offline, with
	// the signatures re-checked against the ingest and pipeline keys.
	a, err := qh.Upstream(context.Background(), ds("s3://models", "churn/model.onnx"), query.Request{Prove: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := checkpoint.NewVerifier(origin, logKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := keys.NewKeyring(pipelineKey.Public(), ingestKey.Public())
	rep, err := answer.Verify(a, v, answer.VerifyOptions{Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Facts == 0 || rep.SignaturesChecked != len(a.Entries) {
		t.Errorf("report %+v for %d entries", rep, len(a.Entries))
	}
}

func event(mut func(m map[string]any)) []byte {
	m := map[string]any{
		"eventType": "COMPLETE",
		"eventTime": "2026-11-26T10:05:00Z",
		"producer":  "https://example.test/producer",
		"schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
		"run":       map[string]any{"runId": "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a77"},
		"job":       map[string]any{"namespace": "etl", "name": "daily"},
		"inputs":    []any{map[string]any{"namespace": "s3://lake", "name": "in"}},
		"outputs":   []any{map[string]any{"namespace": "s3://lake", "name": "out"}},
	}
	if mut != nil {
		mut(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadEvents: every malformed event is answered 400 naming the field,
// and nothing is appended.
func TestBadEvents(t *testing.T) {
	e := start(t, payload.Limits{MaxFacetSize: 1024})
	big := strings.Repeat("x", 2000)
	cases := []struct {
		name  string
		body  []byte
		field string
		msg   string
	}{
		{"missing runId", readFile(t, "../../query/payload/testdata/bad/missing-runid.json"), "run.runId", "required"},
		{"bad UUID", readFile(t, "../../query/payload/testdata/bad/bad-uuid.json"), "run.runId", "not a UUID"},
		{"unknown eventType", readFile(t, "../../query/payload/testdata/bad/unknown-eventtype.json"), "eventType", "DONE"},
		{"dataset event without name", []byte(`{"eventTime":"2026-11-26T10:05:00Z","producer":"p","dataset":{"namespace":"s3://lake"}}`), "dataset.name", "required"},
		{"dataset and job without run", []byte(`{"eventTime":"2026-11-26T10:05:00Z","producer":"p","dataset":{"namespace":"s3://lake","name":"x"},"job":{"namespace":"a","name":"b"}}`), "dataset", "not both"},
		{"job event with bad input", []byte(`{"eventTime":"2026-11-26T10:05:00Z","producer":"p","job":{"namespace":"a","name":"b"},"inputs":[{"name":"x"}]}`), "inputs[0].namespace", "required"},
		{"giant facet", event(func(m map[string]any) {
			m["outputs"] = []any{map[string]any{"namespace": "s3://lake", "name": "out", "facets": map[string]any{"schema": map[string]any{"fields": []any{map[string]any{"name": big}}}}}}
		}), "outputs[0].facets.schema", "limit is 1024"},
		{"missing job name", event(func(m map[string]any) { m["job"] = map[string]any{"namespace": "etl"} }), "job.name", ""},
		{"bad eventTime", event(func(m map[string]any) { m["eventTime"] = "yesterday" }), "eventTime", ""},
		{"not JSON", []byte(`{"eventType": "START",`), "", ""},
		{"an array", []byte(`[]`), "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.post(t, olingest.PathEvent, airflowToken, c.body)
			if r.code != http.StatusBadRequest {
				t.Fatalf("%d %s", r.code, r.body)
			}
			var eb struct{ Error, Field string }
			if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error == "" {
				t.Fatalf("body %s: %v", r.body, err)
			}
			if c.field != "" && eb.Field != c.field {
				t.Errorf("field %q, want %q (%s)", eb.Field, c.field, eb.Error)
			}
			if !strings.Contains(eb.Error, c.msg) {
				t.Errorf("error %q does not say %q", eb.Error, c.msg)
			}
		})
	}
	if n := e.log.Latest().Size; n != 0 {
		t.Errorf("log size %d after bad events, want 0", n)
	}
}

// TestBatch: good events of a batch commit, bad ones are reported by
// position, and the counts add up.
func TestBatch(t *testing.T) {
	e := start(t, payload.Limits{})
	runID := func(i int) string { return fmt.Sprintf("0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1b%02d", i) }
	good := func(i int) []byte {
		return event(func(m map[string]any) { m["run"] = map[string]any{"runId": runID(i)} })
	}
	bad := event(func(m map[string]any) { m["eventType"] = "FINISHED" })
	// 7 good events and 2 bad: the good ones go to the service in chunks
	// of 3 (AppendChunk), the service's own batch limit.
	evs := [][]byte{good(0), bad, good(1), good(2), good(3), []byte(`{"run": 1}`), good(4), good(5), good(6)}
	body := []byte("[" + string(bytes.Join(evs, []byte(","))) + "]")
	r := e.post(t, olingest.PathBatch, sparkToken, body)
	if r.code != http.StatusOK {
		t.Fatalf("%d %s", r.code, r.body)
	}
	var br olingest.BatchResponse
	if err := json.Unmarshal(r.body, &br); err != nil {
		t.Fatal(err)
	}
	want := olingest.BatchSummary{Received: 9, Successful: 7, Failed: 2, NonRetriable: 2}
	if br.Status != "partial_success" || br.Summary != want {
		t.Errorf("status %q summary %+v, want partial_success %+v", br.Status, br.Summary, want)
	}
	if len(br.FailedEvents) != 2 || br.FailedEvents[0].Index != 1 || br.FailedEvents[0].Field != "eventType" || br.FailedEvents[1].Index != 5 || br.FailedEvents[1].Field != "eventTime" {
		t.Errorf("failed events %+v", br.FailedEvents)
	}
	if e.log.Latest().Size != 7 {
		t.Errorf("log size %d, want 7", e.log.Latest().Size)
	}
	for i, res := range br.Results {
		if res.Status == "ok" && (res.Entry == nil || e.record(t, *res.Entry).Namespace != "spark/etl") {
			t.Errorf("result %d: %+v", i, res)
		}
	}

	// The same batch again: the good events are duplicates (the ingest
	// key signs deterministically), the log does not grow.
	r = e.post(t, olingest.PathBatch, sparkToken, body)
	if err := json.Unmarshal(r.body, &br); err != nil {
		t.Fatal(err)
	}
	if !br.Results[0].Duplicate || *br.Results[0].Entry != 0 || e.log.Latest().Size != 7 {
		t.Errorf("replay: %+v, log size %d", br.Results[0], e.log.Latest().Size)
	}

	// All bad: 400 with the per-event results.
	r = e.post(t, olingest.PathBatch, sparkToken, []byte("["+string(bad)+"]"))
	if err := json.Unmarshal(r.body, &br); err != nil {
		t.Fatal(err)
	}
	if r.code != http.StatusBadRequest || br.Status != "failure" || br.Summary.Failed != 1 {
		t.Errorf("all bad: %d %s", r.code, r.body)
	}

	for _, c := range []struct {
		name string
		body string
		msg  string
	}{
		{"not an array", `{"eventType": "START"}`, "JSON array"},
		{"not JSON", `[{"a": }]`, "not JSON"},
		{"unclosed", `[{}`, ""},
		{"trailing data", `[] []`, "after its closing"},
		{"too many", "[" + strings.TrimSuffix(strings.Repeat("{},", 11), ",") + "]", "more than 10 events"},
	} {
		r := e.post(t, olingest.PathBatch, sparkToken, []byte(c.body))
		if r.code != http.StatusBadRequest || !strings.Contains(string(r.body), c.msg) {
			t.Errorf("%s: %d %s", c.name, r.code, r.body)
		}
	}
	// An empty batch is fine and does nothing.
	if r := e.post(t, olingest.PathBatch, sparkToken, []byte(`[]`)); r.code != http.StatusOK {
		t.Errorf("empty batch: %d %s", r.code, r.body)
	}
}

// TestHTTP covers authentication, methods, media types, sizes, gzip and
// the single-event answer.
func TestHTTP(t *testing.T) {
	e := start(t, payload.Limits{})
	ev := event(nil)
	t.Run("auth", func(t *testing.T) {
		for _, c := range []struct{ name, auth string }{
			{"none", ""}, {"wrong token", "Bearer nope"}, {"basic", "Basic " + airflowToken}, {"empty", "Bearer "},
			{"token hash instead of token", "Bearer " + auth.HashToken(airflowToken)},
		} {
			r := e.post(t, olingest.PathEvent, "", ev, "Authorization", c.auth)
			if r.code != http.StatusUnauthorized || !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(string(r.body), "bearer token") {
				t.Errorf("%s: %d %s", c.name, r.code, r.body)
			}
		}
		if r := e.post(t, olingest.PathEvent, "", ev, "Authorization", "bearer "+airflowToken); r.code != http.StatusOK {
			t.Errorf("lower-case scheme: %d %s", r.code, r.body)
		}
	})
	t.Run("receipt", func(t *testing.T) {
		r := e.post(t, olingest.PathEvent, airflowToken, ev)
		var res olingest.EventResult
		if err := json.Unmarshal(r.body, &res); err != nil || r.code != http.StatusOK || res.Status != "ok" || res.Entry == nil {
			t.Fatalf("%d %s", r.code, r.body)
		}
		raw, _ := e.log.Record(*res.Entry)
		h := sha256.Sum256(append([]byte{0}, raw...))
		if res.LeafHash != hex.EncodeToString(h[:]) || !res.Duplicate {
			t.Errorf("receipt %+v (the event was sent in the auth test: a duplicate)", res)
		}
	})
	t.Run("method", func(t *testing.T) {
		resp, err := http.Get(e.url + olingest.PathEvent)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET: %d allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
	t.Run("content type", func(t *testing.T) {
		if r := e.post(t, olingest.PathEvent, airflowToken, ev, "Content-Type", "text/plain"); r.code != http.StatusUnsupportedMediaType {
			t.Errorf("text/plain: %d %s", r.code, r.body)
		}
		if r := e.post(t, olingest.PathEvent, airflowToken, ev, "Content-Type", "application/json; charset=utf-8"); r.code != http.StatusOK {
			t.Errorf("json with charset: %d %s", r.code, r.body)
		}
	})
	t.Run("gzip", func(t *testing.T) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(event(func(m map[string]any) { m["eventType"] = "START" }))
		zw.Close()
		if r := e.post(t, olingest.PathEvent, airflowToken, buf.Bytes(), "Content-Encoding", "gzip"); r.code != http.StatusOK {
			t.Errorf("gzip: %d %s", r.code, r.body)
		}
		if r := e.post(t, olingest.PathEvent, airflowToken, ev, "Content-Encoding", "gzip"); r.code != http.StatusBadRequest {
			t.Errorf("not gzip: %d %s", r.code, r.body)
		}
		if r := e.post(t, olingest.PathEvent, airflowToken, ev, "Content-Encoding", "br"); r.code != http.StatusUnsupportedMediaType {
			t.Errorf("br: %d %s", r.code, r.body)
		}
	})
	t.Run("too large", func(t *testing.T) {
		huge := event(func(m map[string]any) { m["producer"] = strings.Repeat("p", olingest.DefaultMaxEventSize) })
		if r := e.post(t, olingest.PathEvent, airflowToken, huge); r.code != http.StatusRequestEntityTooLarge {
			t.Errorf("huge: %d %.200s", r.code, r.body)
		}
	})
	t.Run("tiles still served", func(t *testing.T) {
		resp, err := http.Get(e.url + "/checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/checkpoint: %d", resp.StatusCode)
		}
	})
}

// TestUntrustedIngestKey: a node that forgot to trust its ingest key
// answers 500 (its fault), not 400.
func TestUntrustedIngestKey(t *testing.T) {
	e := start(t, payload.Limits{})
	other := ed25519.NewKeyFromSeed(seed("not trusted"))
	s, _ := keys.NewSigner(other)
	toks := tokens(t, tokensFile())
	h, err := olingest.New(olingest.Config{Appender: appenderFunc(func(ctx context.Context, r *provledgerpb.AppendBatchRequest) (*provledgerpb.AppendBatchResponse, error) {
		return e.ledger.AppendBatch(ctx, r)
	}), Signer: s, Tokens: toks})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	rec := &recorder{header: http.Header{}}
	req, _ := http.NewRequest(http.MethodPost, olingest.PathEvent, bytes.NewReader(event(nil)))
	req.Header.Set("Authorization", "Bearer "+airflowToken)
	mux.ServeHTTP(rec, req)
	if rec.code != http.StatusInternalServerError || !strings.Contains(rec.body.String(), "not trusted") {
		t.Errorf("%d %s", rec.code, rec.body.String())
	}
}

type appenderFunc func(context.Context, *provledgerpb.AppendBatchRequest) (*provledgerpb.AppendBatchResponse, error)

func (f appenderFunc) AppendBatch(ctx context.Context, r *provledgerpb.AppendBatchRequest) (*provledgerpb.AppendBatchResponse, error) {
	return f(ctx, r)
}

type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(c int)           { r.code = c }
