package queryservice_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/queryservice"
	"github.com/provledger/provledger/api/queryservice/answerpb"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/payload"
)

const origin = "test.provledger/queryservice"

var (
	logKey      = ed25519.NewKeyFromSeed(seed("queryservice log key"))
	pipelineKey = ed25519.NewKeyFromSeed(seed("queryservice pipeline key"))
)

func seed(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

type env struct {
	log    *ledger.Log
	ledger provledgerpb.LedgerClient
	query  provledgerpb.QueryClient
}

// start runs a real ledger with the graph indexer, the Ledger and Query
// services on loopback, as provd wires them.
func start(t testing.TB) *env {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, err := checkpoint.NewSigner(origin, logKey)
	if err != nil {
		t.Fatal(err)
	}
	ix := graph.New(graph.Options{Logger: logger})
	l, err := ledger.Open(t.TempDir(), ledger.Options{Origin: origin, Signer: signer, Logger: logger, Indexer: ix, PebbleCacheSize: 32 << 20})
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
	kr, err := keys.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
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
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
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
	return &env{log: l, ledger: provledgerpb.NewLedgerClient(conn), query: provledgerpb.NewQueryClient(conn)}
}

// appendShop appends the query package's shop scenario through gRPC
// Append, one envelope at a time, signed by the pipeline's key.
func (e *env) appendShop(t testing.TB) {
	t.Helper()
	files, err := filepath.Glob("../../query/testdata/shop/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("shop testdata: %v", err)
	}
	s, err := keys.NewSigner(pipelineKey)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := keys.MarshalPublicPEM(pipelineKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		typ := payload.TypeOpenLineage
		switch {
		case strings.HasSuffix(f, ".intoto.json"):
			typ = payload.TypeInToto
		case strings.HasSuffix(f, ".cost.json"):
			typ = payload.TypeCost
		}
		ev, err := envelope.Sign(typ, body, s)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.ledger.Append(context.Background(), &provledgerpb.AppendRequest{Namespace: "airflow-prod", Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: ev.Marshal()}, PublicKeys: [][]byte{pem}})
		if err != nil {
			t.Fatalf("append %s: %v", f, err)
		}
		if resp.GetIndex() != uint64(i) {
			t.Fatalf("%s at index %d", f, resp.GetIndex())
		}
	}
}

func ref(kind string, parts ...string) *provledgerpb.NodeRef {
	return &provledgerpb.NodeRef{Kind: kind, Parts: parts}
}

var (
	revenue = ref("dataset", "snowflake://acme.eu-west-1", "ANALYTICS.PUBLIC.DAILY_REVENUE")
	pg      = ref("dataset", "postgres://db.example.com:5432", "shop.public.orders")
	model   = ref("dataset", "s3://models", "churn/model.onnx")
	raw     = ref("dataset", "s3://lake", "raw/orders")
)

func keysOf(a *provledgerpb.Answer, kinds ...string) []string {
	var out []string
	for _, n := range a.GetNodes() {
		for _, k := range kinds {
			if n.GetRef().GetKind() == k {
				out = append(out, n.GetKey())
			}
		}
	}
	sort.Strings(out)
	return out
}

func verify(t *testing.T, p *provledgerpb.Answer) *answer.Report {
	t.Helper()
	a, err := answerpb.FromProto(p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := checkpoint.NewVerifier(origin, logKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := keys.NewKeyring(pipelineKey.Public())
	rep, err := answer.Verify(a, v, answer.VerifyOptions{Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestQueryOverGRPC(t *testing.T) {
	e := start(t)
	e.appendShop(t)
	ctx := context.Background()
	prove := &provledgerpb.QueryOptions{Prove: true}

	a, err := e.query.Upstream(ctx, &provledgerpb.NodeQuery{Node: revenue, Options: prove})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keysOf(a, "dataset", "job"), " "); got != strings.Join([]string{
		"dataset:postgres://db.example.com:5432:shop.public.customers", "dataset:postgres://db.example.com:5432:shop.public.orders",
		"dataset:s3://lake:raw/orders", "dataset:snowflake://acme.eu-west-1:ANALYTICS.PUBLIC.DAILY_REVENUE",
		"job:airflow-prod:daily_orders.aggregate", "job:airflow-prod:daily_orders.extract", "job:airflow-prod:revenue_backfill"}, " ") {
		t.Errorf("upstream: %s", got)
	}
	if rep := verify(t, a); rep.Facts == 0 || rep.SignaturesChecked != len(a.GetEntries()) {
		t.Errorf("report %+v", rep)
	}

	a, err = e.query.Downstream(ctx, &provledgerpb.NodeQuery{Node: pg, Options: &provledgerpb.QueryOptions{Depth: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if a.GetTruncated() == nil || !a.GetTruncated().GetDepth() {
		t.Errorf("downstream depth 1 not marked truncated: %+v", a.GetTruncated())
	}
	a, err = e.query.Impact(ctx, &provledgerpb.NodeQuery{Node: pg, Options: prove})
	if err != nil {
		t.Fatal(err)
	}
	verify(t, a)
	if len(keysOf(a, "dataset")) != 5 {
		t.Errorf("impact: %v", keysOf(a, "dataset"))
	}
	a, err = e.query.Paths(ctx, &provledgerpb.PathsQuery{From: pg, To: model, Options: prove})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.GetPaths()) != 1 || len(a.GetPaths()[0].GetNodes()) != 7 {
		t.Errorf("paths %v", a.GetPaths())
	}
	verify(t, a)
	a, err = e.query.History(ctx, &provledgerpb.NodeQuery{Node: raw, Options: prove})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.GetVersions()) != 3 || a.GetVersions()[0].GetRowCount() != 1500 || a.GetVersions()[0].GetCodeVersion() == "" || len(a.GetVersions()[0].GetSchema()) != 4 {
		t.Errorf("history %v", a.GetVersions())
	}
	verify(t, a)
	a, err = e.query.Columns(ctx, &provledgerpb.NodeQuery{Node: revenue, Options: prove})
	if err != nil {
		t.Fatal(err)
	}
	verify(t, a)
	a, err = e.query.Cost(ctx, &provledgerpb.CostQuery{Node: model, Options: prove})
	if err != nil {
		t.Fatal(err)
	}
	if tot := a.GetCost().GetTotal(); len(tot) != 1 || tot[0].GetAmount() != "21" || tot[0].GetCurrency() != "USD" {
		t.Errorf("cost of the model %v", tot)
	}
	verify(t, a)
	a, err = e.query.Cost(ctx, &provledgerpb.CostQuery{GroupBy: "tag:team", From: timestamppb.New(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.GetCost().GetGroups()) != 3 {
		t.Errorf("by team since 10:00: %v", a.GetCost().GetGroups())
	}
	// As of a time: before the backfill's batch.
	cp := e.log.Latest()
	a, err = e.query.Upstream(ctx, &provledgerpb.NodeQuery{Node: raw, Options: &provledgerpb.QueryOptions{AsOfSize: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if a.GetSize() != 10 || len(keysOf(a, "job")) != 1 {
		t.Errorf("as of 10: size %d, jobs %v", a.GetSize(), keysOf(a, "job"))
	}
	a, err = e.query.Upstream(ctx, &provledgerpb.NodeQuery{Node: raw, Options: &provledgerpb.QueryOptions{AsOfTime: timestamppb.New(time.Now().Add(time.Hour))}})
	if err != nil || a.GetSize() != cp.Size {
		t.Errorf("as of the future: %v %v", a.GetSize(), err)
	}
}

func TestErrorsOverGRPC(t *testing.T) {
	e := start(t)
	e.appendShop(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"no node", func() error { _, err := e.query.Upstream(ctx, &provledgerpb.NodeQuery{}); return err }, codes.InvalidArgument, "node is required"},
		{"bad kind", func() error {
			_, err := e.query.Upstream(ctx, &provledgerpb.NodeQuery{Node: ref("table", "a", "b")})
			return err
		}, codes.InvalidArgument, "node kind \"table\" is unknown"},
		{"bad parts", func() error {
			_, err := e.query.Downstream(ctx, &provledgerpb.NodeQuery{Node: ref("dataset", "a")})
			return err
		}, codes.InvalidArgument, "2 parts"},
		{"unknown dataset", func() error {
			_, err := e.query.Upstream(ctx, &provledgerpb.NodeQuery{Node: ref("dataset", "s3://nowhere", "x")})
			return err
		}, codes.NotFound, "no entry below size"},
		{"as of beyond", func() error {
			_, err := e.query.Upstream(ctx, &provledgerpb.NodeQuery{Node: raw, Options: &provledgerpb.QueryOptions{AsOfSize: 1000}})
			return err
		}, codes.OutOfRange, "beyond the latest checkpoint"},
		{"both as-ofs", func() error {
			_, err := e.query.Upstream(ctx, &provledgerpb.NodeQuery{Node: raw, Options: &provledgerpb.QueryOptions{AsOfSize: 3, AsOfTime: timestamppb.Now()}})
			return err
		}, codes.InvalidArgument, "not both"},
		{"budget", func() error {
			_, err := e.query.Upstream(ctx, &provledgerpb.NodeQuery{Node: raw, Options: &provledgerpb.QueryOptions{Budget: query.MaxBudget + 1}})
			return err
		}, codes.InvalidArgument, "budget"},
		{"history of a job", func() error {
			_, err := e.query.History(ctx, &provledgerpb.NodeQuery{Node: ref("job", "airflow-prod", "daily_orders.extract")})
			return err
		}, codes.InvalidArgument, "history query takes a dataset"},
		{"paths without to", func() error { _, err := e.query.Paths(ctx, &provledgerpb.PathsQuery{From: raw}); return err }, codes.InvalidArgument, "to is required"},
		{"group by", func() error { _, err := e.query.Cost(ctx, &provledgerpb.CostQuery{GroupBy: "colour"}); return err }, codes.InvalidArgument, "cannot group by"},
		{"window twice", func() error {
			_, err := e.query.Cost(ctx, &provledgerpb.CostQuery{From: timestamppb.Now(), Options: &provledgerpb.QueryOptions{From: timestamppb.Now()}})
			return err
		}, codes.InvalidArgument, "given twice"},
		{"window on upstream", func() error {
			_, err := e.query.Upstream(ctx, &provledgerpb.NodeQuery{Node: raw, Options: &provledgerpb.QueryOptions{To: timestamppb.Now()}})
			return err
		}, codes.InvalidArgument, "applies to history and cost"},
		{"bad tag", func() error {
			_, err := e.query.Cost(ctx, &provledgerpb.CostQuery{Options: &provledgerpb.QueryOptions{Tags: []string{"=x"}}})
			return err
		}, codes.InvalidArgument, "key=value"},
	} {
		err := c.call()
		st, _ := status.FromError(err)
		if st.Code() != c.code || !strings.Contains(st.Message(), c.msg) {
			t.Errorf("%s: %v; want %s containing %q", c.name, err, c.code, c.msg)
		}
	}
}

// The proto form carries an answer losslessly: converting every kind of
// answer to proto and back gives the same JSON.
func TestProtoRoundTrip(t *testing.T) {
	e := start(t)
	e.appendShop(t)
	ctx := context.Background()
	eng := query.New(e.log)
	req := query.Request{Prove: true}
	rv := answer.Ref{Kind: "dataset", Parts: revenue.Parts}
	mv := answer.Ref{Kind: "dataset", Parts: model.Parts}
	rw := answer.Ref{Kind: "dataset", Parts: raw.Parts}
	var answers []*answer.Answer
	for _, f := range []func() (*answer.Answer, error){
		func() (*answer.Answer, error) { return eng.Upstream(ctx, rv, req) },
		func() (*answer.Answer, error) { return eng.Columns(ctx, rv, req) },
		func() (*answer.Answer, error) { return eng.History(ctx, rv, req) },
		func() (*answer.Answer, error) { return eng.History(ctx, rw, query.Request{AsOfTime: time.Now()}) },
		func() (*answer.Answer, error) { return eng.Paths(ctx, rw, mv, 0, req) },
		func() (*answer.Answer, error) { return eng.Cost(ctx, query.CostRequest{Node: &mv, Request: req}) },
		func() (*answer.Answer, error) { return eng.Cost(ctx, query.CostRequest{GroupBy: "dataset"}) },
		func() (*answer.Answer, error) {
			return eng.Cost(ctx, query.CostRequest{GroupBy: "service", Request: query.Request{Tags: []string{"team=revenue"}, From: time.Unix(1e9, 0)}})
		},
		func() (*answer.Answer, error) {
			return eng.History(ctx, rv, query.Request{From: time.Unix(1e9, 0), To: time.Now()})
		},
		func() (*answer.Answer, error) { return eng.Upstream(ctx, rv, query.Request{Budget: 3}) },
		func() (*answer.Answer, error) {
			return eng.Upstream(ctx, rv, query.Request{Namespaces: []string{"airflow-prod", "s3://lake"}})
		},
	} {
		a, err := f()
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, a)
	}
	for i, a := range answers {
		back, err := answerpb.FromProto(answerpb.ToProto(a))
		if err != nil {
			t.Fatal(err)
		}
		j1, _ := json.Marshal(a)
		j2, _ := json.Marshal(back)
		if string(j1) != string(j2) {
			t.Errorf("answer %d changed:\n%s\n%s", i, j1, j2)
		}
	}
}

// Queries run while appends commit: each answer is consistent with its
// own size (run with -race).
func TestQueriesDuringAppends(t *testing.T) {
	e := start(t)
	e.appendShop(t)
	s, _ := keys.NewSigner(pipelineKey)
	pem, _ := keys.MarshalPublicPEM(pipelineKey.Public())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 40; i++ {
			body := fmt.Appendf(nil, `{"eventType":"COMPLETE","eventTime":"2026-11-28T00:00:00Z","producer":"p","run":{"runId":"00000000-0000-4000-8000-%012x"},"job":{"namespace":"more","name":"j%d"},"inputs":[{"namespace":"s3://lake","name":"raw/orders"}],"outputs":[{"namespace":"more","name":"d%d"}]}`, i, i, i)
			ev, err := envelope.Sign(payload.TypeOpenLineage, body, s)
			if err != nil {
				done <- err
				return
			}
			if _, err := e.ledger.Append(ctx, &provledgerpb.AppendRequest{Namespace: "more", Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: ev.Marshal()}, PublicKeys: [][]byte{pem}}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			a, err := e.query.Downstream(ctx, &provledgerpb.NodeQuery{Node: raw, Options: &provledgerpb.QueryOptions{Depth: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(keysOf(a, "job")); got != 41 { // the aggregate and the 40 new jobs
				t.Errorf("jobs downstream of raw/orders: %d, want 41", got)
			}
			return
		default:
		}
		a, err := e.query.Downstream(ctx, &provledgerpb.NodeQuery{Node: raw, Options: &provledgerpb.QueryOptions{Depth: 1, Prove: true}})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range a.GetEntries() {
			if i >= a.GetSize() {
				t.Fatalf("entry %d not below size %d", i, a.GetSize())
			}
		}
		verify(t, a)
	}
}
