package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/queryservice"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
)

// startQueryServer is startServer with the lineage index and the Query
// service, as provd wires them.
func startQueryServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{dir: t.TempDir()}
	seed := sha256.Sum256([]byte("prov cli lineage test log key"))
	ts.logPriv = ed25519.NewKeyFromSeed(seed[:])
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, err := checkpoint.NewSigner(testOrigin, ts.logPriv)
	if err != nil {
		t.Fatal(err)
	}
	ix := graph.New(graph.Options{Logger: logger})
	l, err := ledger.Open(filepath.Join(ts.dir, "ledger"), ledger.Options{Origin: testOrigin, Signer: signer, Logger: logger, Indexer: ix, PebbleCacheSize: 32 << 20})
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
	kr, _ := keys.NewKeyring()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Service:      service.Config{Log: l, Sequencer: seq, Logger: logger, Verifier: &envelope.Verifier{Keyring: kr, TrustOnFirstUse: true}},
		GRPCListener: lis, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	qs, err := queryservice.New(queryservice.Config{Log: l, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	provledgerpb.RegisterQueryServer(srv.GRPC(), qs)
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
		<-done
		seq.Close()
		l.Close()
	})
	ts.addr = lis.Addr().String()
	pubPEM, _ := keys.MarshalPublicPEM(ts.logPriv.Public())
	ts.logPub = filepath.Join(ts.dir, "log.pub")
	if err := os.WriteFile(ts.logPub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return ts
}

// appendShop appends the query package's shop scenario with prov append.
func appendShop(t *testing.T, ts *testServer) (keyDir string) {
	t.Helper()
	dir := t.TempDir()
	keyDir = filepath.Join(dir, "keys")
	mustProv(t, "keygen", "--out", keyDir)
	files, err := filepath.Glob("../../query/testdata/shop/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("shop testdata: %v", err)
	}
	for _, f := range files {
		typ := "openlineage"
		switch {
		case strings.HasSuffix(f, ".intoto.json"):
			typ = "in-toto"
		case strings.HasSuffix(f, ".cost.json"):
			typ = "cost"
		}
		r := prov(t, "", ts.args("append", "--key", filepath.Join(keyDir, "signer.key"), "--type", typ, "--namespace", "airflow-prod", "--receipts", filepath.Join(dir, "receipts"), f)...)
		if r.code != 0 {
			t.Fatalf("append %s: %s", f, r.stderr)
		}
	}
	return keyDir
}

const (
	revNS   = "snowflake://acme.eu-west-1"
	revName = "ANALYTICS.PUBLIC.DAILY_REVENUE"
)

func TestLineageCLI(t *testing.T) {
	ts := startQueryServer(t)
	keyDir := appendShop(t, ts)
	dir := t.TempDir()

	// Table (default), with the proof checked here.
	r := mustProv(t, ts.args("lineage", "upstream", "dataset", revNS, revName, "--prove")...)
	for _, want := range []string{"upstream of dataset " + revNS + " " + revName + ", as of log size 13", "job:airflow-prod:revenue_backfill", "DEPTH", "rests on", "verified: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table output lacks %q", want)
		}
	}
	// Flags before the query and global flags after it.
	r = mustProv(t, append([]string{"lineage", "--depth", "1"}, ts.args("downstream", "dataset", "postgres://db.example.com:5432", "shop.public.orders")...)...)
	if !strings.Contains(r.stdout, "CUT SHORT: nodes at depth 1") {
		t.Errorf("depth cut not reported:\n%s", r.stdout)
	}
	// Tree: a cycle prints finitely.
	r = mustProv(t, ts.args("lineage", "upstream", "dataset", revNS, revName, "--format", "tree")...)
	if !strings.Contains(r.stdout, "└── ") || !strings.Contains(r.stdout, "(see above)") {
		t.Errorf("tree:\n%s", r.stdout)
	}
	// A namespace filter: the Postgres tables are left out.
	r = mustProv(t, ts.args("lineage", "upstream", "dataset", revNS, revName, "--namespace", "airflow-prod", "--namespace", revNS, "--namespace", "s3://lake")...)
	if strings.Contains(r.stdout, "postgres://") || !strings.Contains(r.stdout, "s3://lake") {
		t.Errorf("--namespace:\n%s", r.stdout)
	}
	// DOT and Mermaid.
	r = mustProv(t, ts.args("lineage", "impact", "column", "postgres://db.example.com:5432", "shop.public.orders", "amount", "--format", "dot")...)
	if !strings.HasPrefix(r.stdout, "digraph lineage {") || !strings.Contains(r.stdout, `-> "datasetField:s3://lake:raw/orders:amount"`) {
		t.Errorf("dot:\n%s", r.stdout)
	}
	r = mustProv(t, ts.args("lineage", "paths", "dataset", "postgres://db.example.com:5432", "shop.public.orders", "dataset", "s3://models", "churn/model.onnx", "--format", "mermaid")...)
	if !strings.HasPrefix(r.stdout, "flowchart LR") || strings.Count(r.stdout, "-->") != 6 {
		t.Errorf("mermaid:\n%s", r.stdout)
	}
	// PROV-JSON.
	r = mustProv(t, ts.args("lineage", "upstream", "run", "0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a02", "--format", "prov")...)
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"prefix", "entity", "activity", "used", "wasGeneratedBy", "wasInfluencedBy"} {
		if doc[k] == nil {
			t.Errorf("PROV-JSON lacks %s", k)
		}
	}
	// History and columns tables.
	r = mustProv(t, ts.args("lineage", "history", "dataset", "s3://lake", "raw/orders")...)
	if !strings.Contains(r.stdout, "orders-2026-11-26") || !strings.Contains(r.stdout, "1500") || !strings.Contains(r.stdout, "schema of orders-2026-11-26: order_id BIGINT") {
		t.Errorf("history:\n%s", r.stdout)
	}
	r = mustProv(t, ts.args("lineage", "columns", "dataset", revNS, revName)...)
	if !strings.Contains(r.stdout, "DIRECT/AGGREGATION") || !strings.Contains(r.stdout, "affects") {
		t.Errorf("columns:\n%s", r.stdout)
	}

	// Save a proven answer, verify it offline, then tamper with it.
	saved := filepath.Join(dir, "answer.json")
	r = mustProv(t, ts.args("lineage", "upstream", "version", "s3://models", "churn/model.onnx", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "--prove", "--format", "json", "--out", saved, "--trust", filepath.Join(keyDir, "signer.pub"))...)
	if !strings.Contains(r.stderr, "verified: ") || !strings.Contains(r.stderr, "signatures re-verified") {
		t.Errorf("stderr: %s", r.stderr)
	}
	r = mustProv(t, "verify-answer", "--log-key", ts.logPub, "--trust", filepath.Join(keyDir, "signer.pub"), saved)
	if !strings.Contains(r.stdout, "verified: ") || !strings.Contains(r.stdout, "as of size 13") {
		t.Errorf("verify-answer: %s", r.stdout)
	}
	r = prov(t, "", "verify-answer", "--log-key", ts.logPub, "--json", saved)
	if r.code != 0 || !strings.Contains(r.stdout, `"verified": true`) {
		t.Errorf("verify-answer --json: %d %s", r.code, r.stdout)
	}
	b, _ := os.ReadFile(saved)
	var a answer.Answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	a.Edges[0].Index = a.Entries[0]
	if a.Edges[0].Index == a.Entries[0] && len(a.Entries) > 1 {
		a.Edges[0].Index = a.Entries[1]
	}
	tb, _ := json.Marshal(a)
	tampered := writeFile(t, filepath.Join(dir, "tampered.json"), string(tb))
	if r := prov(t, "", "verify-answer", "--log-key", ts.logPub, tampered); r.code != exitFailed || !strings.Contains(r.stderr, "FAILED") {
		t.Errorf("tampered answer: exit %d: %s", r.code, r.stderr)
	}
	// From standard input.
	if r := prov(t, string(b), "verify-answer", "--log-key", ts.logPub, "-"); r.code != 0 {
		t.Errorf("stdin: %d %s", r.code, r.stderr)
	}
	if r := prov(t, "", "verify-answer", saved); r.code != exitUsage && r.code != exitOK {
		t.Errorf("no log key: %d", r.code)
	}
	// Static lineage (a DatasetEvent and a JobEvent) appended with the
	// shorthands: a declared version in the history, the job upstream.
	for _, f := range []struct{ typ, file string }{
		{"openlineage-dataset", "../../query/testdata/static/01-forecast.dataset.json"},
		{"openlineage-job", "../../query/testdata/static/02-forecast.job.json"},
	} {
		mustProv(t, ts.args("append", "--key", filepath.Join(keyDir, "signer.key"), "--type", f.typ, "--namespace", "dbt-prod", "--receipts", filepath.Join(dir, "receipts"), f.file)...)
	}
	r = mustProv(t, ts.args("lineage", "history", "dataset", revNS, "ANALYTICS.PUBLIC.REVENUE_FORECAST")...)
	if !strings.Contains(r.stdout, "(declared)") || !strings.Contains(r.stdout, "schema:") || !strings.Contains(r.stdout, "forecast NUMBER(18,2)") {
		t.Errorf("history of a declared dataset:\n%s", r.stdout)
	}
	r = mustProv(t, ts.args("lineage", "upstream", "dataset", revNS, "ANALYTICS.PUBLIC.REVENUE_FORECAST", "--depth", "1", "--prove")...)
	if !strings.Contains(r.stdout, "job:dbt-prod:analytics.revenue_forecast") || !strings.Contains(r.stdout, "verified: ") {
		t.Errorf("upstream through a JobEvent:\n%s", r.stdout)
	}
}

func TestCostCLI(t *testing.T) {
	ts := startQueryServer(t)
	appendShop(t, ts)
	r := mustProv(t, ts.args("cost", "--group-by", "job")...)
	for _, want := range []string{"cost by job, as of log size 13", "job:airflow-prod:daily_orders.aggregate", "15.25", "(unattributed)", "TOTAL  121.03 USD"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("cost by job lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustProv(t, ts.args("cost", "dataset", "s3://models", "churn/model.onnx", "--prove")...)
	for _, want := range []string{"cost to produce dataset s3://models churn/model.onnx", "TOTAL  21 USD", "VIA", "tag:billing-run=agg-2026-11-26", "runs included:", "verified: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("cost of the model lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustProv(t, ts.args("cost", "--group-by", "tag:team", "--from", "2026-11-26T10:00:00Z", "--to", "2026-11-27", "--json")...)
	var a answer.Answer
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil || len(a.Cost.Groups) != 3 {
		t.Errorf("--json: %v %+v", err, a.Cost)
	}
	r = mustProv(t, ts.args("cost", "--group-by", "service", "--tag", "team=revenue", "--tag", "env=prod", "--json")...)
	a = answer.Answer{}
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil || len(a.Cost.Groups) != 1 || a.Cost.Groups[0].Key != "Snowflake Warehouse" || strings.Join(a.Query.Tags, ",") != "env=prod,team=revenue" {
		t.Errorf("--tag: %v %+v %+v", err, a.Cost, a.Query)
	}
	r = mustProv(t, ts.args("lineage", "history", "dataset", revNS, revName, "--from", "2026-11-27", "--json")...)
	a = answer.Answer{}
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil || len(a.Versions) != 1 || a.Query.WindowFrom.IsZero() {
		t.Errorf("history --from: %v %+v", err, a.Versions)
	}
	r = mustProv(t, ts.args("cost", "--group-by", "service", "--as-of-size", "7")...)
	if !strings.Contains(r.stdout, "TOTAL  0 (no cost rows)") {
		t.Errorf("before the costs:\n%s", r.stdout)
	}
}

func TestLineageCLIErrors(t *testing.T) {
	ts := startQueryServer(t)
	appendShop(t, ts)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"lineage"}, exitUsage, "needs a query"},
		{[]string{"lineage", "sideways", "dataset", "a", "b"}, exitUsage, "the queries are"},
		{[]string{"lineage", "upstream", "table", "a", "b"}, exitUsage, "not a node kind"},
		{[]string{"lineage", "upstream", "dataset", "a"}, exitUsage, "NAMESPACE NAME"},
		{[]string{"lineage", "upstream", "dataset", "a", "b", "c"}, exitUsage, "unexpected arguments"},
		{[]string{"lineage", "paths", "dataset", "a", "b"}, exitUsage, "two nodes"},
		{[]string{"lineage", "upstream", "dataset", "a", "b", "--format", "svg"}, exitUsage, "--format"},
		{[]string{"lineage", "upstream", "dataset", "a", "b", "--as-of-time", "yesterday"}, exitUsage, "RFC 3339"},
		{[]string{"lineage", "upstream", "dataset", "a", "b", "--as-of-size", "3", "--as-of-time", "2026-11-26"}, exitUsage, "not both"},
		{[]string{"lineage", "upstream", "dataset", "a", "b", "--trust", "x"}, exitUsage, "add --prove"},
		{[]string{"lineage", "upstream", "dataset", "s3://nowhere", "x"}, exitFailed, "NotFound"},
		{[]string{"lineage", "upstream", "dataset", revNS, revName, "--as-of-size", "99"}, exitFailed, "OutOfRange"},
		{[]string{"lineage", "history", "job", "airflow-prod", "daily_orders.extract"}, exitFailed, "takes a dataset"},
		{[]string{"cost", "--group-by", "colour"}, exitFailed, "cannot group by"},
		{[]string{"cost", "--group-by", "job", "dataset", "a", "b"}, exitUsage, "not both"},
		{[]string{"cost", "--tag", "team"}, exitUsage, "KEY=VALUE"},
		{[]string{"lineage", "upstream", "dataset", "a", "b", "--from", "2026-11-26"}, exitUsage, "for history"},
		{[]string{"lineage", "history", "dataset", revNS, revName, "--from", "2026-11-27", "--to", "2026-11-26"}, exitFailed, "not before"},
	} {
		r := prov(t, "", ts.args(c.args...)...)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("prov %s: exit %d, stderr %q; want %d and %q", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.msg)
		}
	}
	// No server.
	if r := prov(t, "", "--server", "127.0.0.1:1", "--timeout", "2s", "lineage", "upstream", "dataset", "a", "b"); r.code != exitUnreachable {
		t.Errorf("unreachable: %d %s", r.code, r.stderr)
	}
}
