package query_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/query"
	"github.com/provledger/provledger/query/answer"
	"github.com/provledger/provledger/query/internal/testlog"
)

type ed25519Pub = ed25519.PublicKey

func logVerifier(t testing.TB) note.Verifier {
	t.Helper()
	v, err := checkpoint.NewVerifier(testlog.Origin, testlog.LogKey.Public().(ed25519Pub))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// saved round-trips an answer through JSON, as prov saves it.
func saved(t *testing.T, a *answer.Answer) *answer.Answer {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var out answer.Answer
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// checkProven verifies a proven answer as prov verify-answer does, with
// the pipeline's key: every entry proven, its content and signature
// checked, against the log's latest checkpoint.
func checkProven(t *testing.T, l *testlog.Log, a *answer.Answer) {
	t.Helper()
	if a.Proof == nil || len(a.Proof.Entries) != len(a.Entries) || len(a.Entries) == 0 {
		t.Fatalf("proof %+v", a.Proof)
	}
	kr, err := keys.NewKeyring(testlog.SignerKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := answer.Verify(saved(t, a), logVerifier(t), answer.VerifyOptions{Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != len(a.Entries) || rep.ContentChecked != len(a.Entries) || rep.SignaturesChecked != len(a.Entries) || len(rep.Unchecked) != 0 || rep.Facts == 0 {
		t.Errorf("report %+v", rep)
	}
	if rep.Checkpoint.Size != l.Latest().Size {
		t.Errorf("checkpoint size %d", rep.Checkpoint.Size)
	}
}

// Every kind of answer, proven, verifies offline with the log key alone;
// with the pipeline's key, the signatures too.
func TestProveAndVerifyEveryQuery(t *testing.T) {
	l, e := shop(t)
	ctx := context.Background()
	prove := query.Request{Prove: true}
	amount := answer.Ref{Kind: "column", Parts: []string{"postgres://db.example.com:5432", "shop.public.orders", "amount"}}
	run := func(name string, f func() (*answer.Answer, error)) {
		t.Run(name, func(t *testing.T) {
			a, err := f()
			if err != nil {
				t.Fatal(err)
			}
			checkProven(t, l, a)
		})
	}
	run("upstream", func() (*answer.Answer, error) { return e.Upstream(ctx, revenue, prove) })
	run("downstream", func() (*answer.Answer, error) { return e.Downstream(ctx, pgOrders, prove) })
	run("run level", func() (*answer.Answer, error) {
		return e.Upstream(ctx, answer.Ref{Kind: "datasetVersion", Parts: []string{"s3://models", "churn/model.onnx", modelV}}, prove)
	})
	run("impact", func() (*answer.Answer, error) { return e.Impact(ctx, pgOrders, prove) })
	run("column impact", func() (*answer.Answer, error) { return e.Impact(ctx, amount, prove) })
	run("paths", func() (*answer.Answer, error) { return e.Paths(ctx, pgOrders, model, 0, prove) })
	run("history", func() (*answer.Answer, error) { return e.History(ctx, rawOrders, prove) })
	run("columns", func() (*answer.Answer, error) { return e.Columns(ctx, revenue, prove) })
	run("cost by job", func() (*answer.Answer, error) { return e.Cost(ctx, query.CostRequest{GroupBy: "job", Request: prove}) })
	run("cost by dataset", func() (*answer.Answer, error) {
		return e.Cost(ctx, query.CostRequest{GroupBy: "dataset", Request: prove})
	})
	run("cost of the model", func() (*answer.Answer, error) { return e.Cost(ctx, query.CostRequest{Node: &model, Request: prove}) })
	run("as of", func() (*answer.Answer, error) {
		return e.Upstream(ctx, rawOrders, query.Request{Prove: true, AsOfSize: eBackfill})
	})
}

func TestVerifyWithoutEnvelopes(t *testing.T) {
	_, e := shop(t)
	a, err := e.Upstream(context.Background(), revenue, query.Request{Prove: true, NoEnvelopes: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := answer.Verify(saved(t, a), logVerifier(t), answer.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ContentChecked != 0 || rep.Facts != 0 || len(rep.Unchecked) != len(a.Nodes)+len(a.Edges) {
		t.Errorf("report %+v", rep)
	}
}

// Every kind of tampering is caught, and the error says what.
func TestVerifyCatchesTampering(t *testing.T) {
	_, e := shop(t)
	ctx := context.Background()
	v := logVerifier(t)
	base, err := e.Upstream(ctx, revenue, query.Request{Prove: true})
	if err != nil {
		t.Fatal(err)
	}
	cost, err := e.Cost(ctx, query.CostRequest{Node: &model, Request: query.Request{Prove: true}})
	if err != nil {
		t.Fatal(err)
	}
	hist, err := e.History(ctx, rawOrders, query.Request{Prove: true})
	if err != nil {
		t.Fatal(err)
	}
	find := func(a *answer.Answer, key string) int {
		for i, n := range a.Nodes {
			if n.Key == key {
				return i
			}
		}
		t.Fatalf("no node %s", key)
		return -1
	}
	for _, c := range []struct {
		name   string
		of     *answer.Answer
		tamper func(a *answer.Answer)
		want   string
	}{
		{"no proof", base, func(a *answer.Answer) { a.Proof = nil }, "no proof"},
		{"edge moved to another entry", base, func(a *answer.Answer) {
			for i := range a.Edges {
				if a.Edges[i].From == kBackfill {
					a.Edges[i].Index = a.Edges[0].Index
				}
			}
		}, "does not assert it"},
		{"invented edge", base, func(a *answer.Answer) {
			a.Edges = append(a.Edges, answer.Edge{From: kPg, To: kAgg, Rel: answer.RelInput, Index: a.Edges[0].Index})
		}, "does not assert it"},
		{"renamed node", base, func(a *answer.Answer) {
			i := find(a, kExtract)
			a.Nodes[i].Parts = []string{"airflow-prod", "daily_orders.evil"}
		}, "does not assert it"},
		{"entry dropped", base, func(a *answer.Answer) {
			a.Entries = a.Entries[1:]
			a.Proof.Entries = a.Proof.Entries[1:]
		}, "does not cover"},
		{"proof hash flipped", base, func(a *answer.Answer) { a.Proof.Entries[0].Hashes[0][0] ^= 1 }, "inclusion"},
		{"record swapped", base, func(a *answer.Answer) { a.Proof.Entries[0].Record = a.Proof.Entries[1].Record }, "inclusion"},
		{"envelope swapped", base, func(a *answer.Answer) { a.Proof.Entries[0].Envelope = a.Proof.Entries[1].Envelope }, "envelope digest"},
		{"size beyond checkpoint", base, func(a *answer.Answer) { a.Size = 1000 }, "beyond the checkpoint"},
		{"entry above size", base, func(a *answer.Answer) { a.Size = a.Entries[len(a.Entries)-1] }, "not below the answer's size"},
		{"unsorted", base, func(a *answer.Answer) {
			a.Entries[0], a.Entries[1] = a.Entries[1], a.Entries[0]
			a.Proof.Entries[0], a.Proof.Entries[1] = a.Proof.Entries[1], a.Proof.Entries[0]
		}, "ascending"},
		{"checkpoint forged", base, func(a *answer.Answer) {
			a.Proof.Checkpoint = strings.Replace(a.Proof.Checkpoint, "\n13\n", "\n14\n", 1)
		}, "checkpoint"},
		{"path through no edge", base, func(a *answer.Answer) { a.Paths = [][]string{{kPg, kRev}} }, "no edge"},
		{"cost amount", cost, func(a *answer.Answer) { a.Cost.Rows[0].Amount = "0.01" }, "does not assert it"},
		{"cost total", cost, func(a *answer.Answer) { a.Cost.Total[0].Amount = "20" }, "add up to"},
		{"history version", hist, func(a *answer.Answer) { a.Versions[0].Version = "orders-2026-12-01" }, "does not assert it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := saved(t, c.of)
			c.tamper(a)
			_, err := answer.Verify(a, v, answer.VerifyOptions{})
			if !errors.Is(err, answer.ErrVerify) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an ErrVerify mentioning %q", err, c.want)
			}
		})
	}
	// The wrong log key.
	other, err := checkpoint.NewVerifier(testlog.Origin, testlog.SignerKey.Public().(ed25519Pub))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := answer.Verify(saved(t, base), other, answer.VerifyOptions{}); !errors.Is(err, answer.ErrVerify) {
		t.Errorf("wrong key: %v", err)
	}
	// A keyring without the pipeline's key.
	empty, _ := keys.NewKeyring()
	if _, err := answer.Verify(saved(t, base), v, answer.VerifyOptions{Keyring: empty}); !errors.Is(err, answer.ErrVerify) || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("untrusted signer: %v", err)
	}
}
