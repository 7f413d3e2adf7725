package service_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/policyindex"
)

const typeOL = "application/vnd.openlineage.run-event+json"

func policyKey(name string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("policy test " + name))
	return ed25519.NewKeyFromSeed(s[:])
}

func pemOf(t testing.TB, k ed25519.PrivateKey) string {
	b, err := keys.MarshalPublicPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%q", b)
}

// policyEnv is a served ledger with the policy index and the policy
// enforced, bootstrapped with a policy granting admin (policy), team-a
// (namespace team-a, OpenLineage only) and team-b (team-b).
type policyEnv struct {
	*apitest.Env
	ix                  *policyindex.Index
	admin, teamA, teamB ed25519.PrivateKey
}

func startPolicyEnv(t *testing.T) *policyEnv {
	t.Helper()
	pe := &policyEnv{admin: policyKey("admin"), teamA: policyKey("team-a"), teamB: policyKey("team-b")}
	// The trust file holds a key the policy does not grant.
	kr, err := keys.NewKeyring(apitest.TrustedKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	pe.ix = policyindex.New(policyindex.Options{Bootstrap: []keys.KeyID{apitest.KeyID(apitest.LogKey)}, Keyring: kr, Logger: slog.New(slog.DiscardHandler)})
	env := apitest.Start(t, apitest.Options{
		Ledger: func(o *ledger.Options) { o.Indexer = pe.ix },
		Service: func(c *service.Config) {
			// The trust file keys and the keys the policy grants verify.
			c.Verifier = &envelope.Verifier{Keyring: kr}
			c.Sequencer = service.NewPolicySequencer(c.Sequencer, pe.ix)
		},
	})
	pe.Env = env
	if err := pe.ix.Attach(env.Log); err != nil {
		t.Fatal(err)
	}
	boot := fmt.Sprintf(`{"policyVersion": 1, "replace": true, "keys": [
		{"name": "admin", "publicKey": %s, "admin": true, "namespaces": ["provledger.policy"]},
		{"name": "team-a", "publicKey": %s, "namespaces": ["team-a"], "payloadTypes": [%q]},
		{"name": "team-b", "publicKey": %s, "namespaces": ["team-b"]}]}`,
		pemOf(t, pe.admin), pemOf(t, pe.teamA), typeOL, pemOf(t, pe.teamB))
	p, err := policy.Parse([]byte(boot))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := keys.NewSigner(apitest.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	env2, err := policy.Sign(p, ls)
	if err != nil {
		t.Fatal(err)
	}
	// The node writes the bootstrap entry itself (provd --policy).
	rs, err := env.Seq.Submit(context.Background(), []ledger.Entry{{Namespace: "provledger.policy", PayloadType: policy.PayloadType,
		Envelope: env2.Marshal(), Signers: [][32]byte{apitest.KeyID(apitest.LogKey)}}})
	if err != nil || rs[0].Err != nil || rs[0].Index != 0 {
		t.Fatalf("bootstrap: %v %+v", err, rs)
	}
	if !pe.ix.Current().InForce() {
		t.Fatal("bootstrap policy not in force")
	}
	return pe
}

func req(ns, typ string, body []byte, by ...ed25519.PrivateKey) *provledgerpb.AppendRequest {
	return &provledgerpb.AppendRequest{Namespace: ns, Body: &provledgerpb.AppendRequest_Envelope{Envelope: apitest.Sign(typ, body, by...)}}
}

// TestPolicyEnforcedAtAppend: namespaces and types per key, admin-only
// policy entries, revocation from its index on, and the audit re-check of
// the entries before it.
func TestPolicyEnforcedAtAppend(t *testing.T) {
	pe := startPolicyEnv(t)
	ctx := context.Background()
	revoke := fmt.Appendf(nil, `{"policyVersion": 1, "revokedKeys": [%q]}`, apitest.KeyID(pe.teamA).String())
	type step struct {
		name     string
		req      *provledgerpb.AppendRequest
		code     codes.Code
		mentions []string
	}
	idA := apitest.KeyID(pe.teamA).String()
	var before uint64
	for i, st := range []step{
		{"team-a in its namespace", req("team-a", typeOL, []byte(`{"n":1}`), pe.teamA), codes.OK, nil},
		{"team-a in team-b", req("team-b", typeOL, []byte(`{"n":2}`), pe.teamA), codes.PermissionDenied, []string{idA, `"team-b"`, typeOL, "policy entry 0"}},
		{"team-a, a type it may not sign", req("team-a", apitest.PayloadType, []byte(`{"n":3}`), pe.teamA), codes.PermissionDenied, []string{idA, apitest.PayloadType, "payload types"}},
		{"a key no policy grants", req("team-a", typeOL, []byte(`{"n":4}`), apitest.TrustedKey), codes.PermissionDenied, []string{"no policy entry grants it"}},
		{"policy entry by an appender", req("provledger.policy", policy.PayloadType, revoke, pe.teamB), codes.PermissionDenied, []string{"admin key", "policy entry 0"}},
		{"policy entry that does not parse", req("provledger.policy", policy.PayloadType, []byte(`{"policyVersion": 1, "nope": 1}`), pe.admin), codes.OK, nil},
		{"revocation by the admin", req("provledger.policy", policy.PayloadType, revoke, pe.admin), codes.OK, nil},
		{"team-a after its revocation", req("team-a", typeOL, []byte(`{"n":5}`), pe.teamA), codes.PermissionDenied, []string{idA, "revoked by policy entry 3"}},
		{"team-b still appends", req("team-b", typeOL, []byte(`{"n":6}`), pe.teamB), codes.OK, nil},
	} {
		resp, err := pe.Client.Append(ctx, st.req)
		if status.Code(err) != st.code {
			t.Fatalf("step %d %s: %v, want %v", i, st.name, err, st.code)
		}
		for _, m := range st.mentions {
			if !strings.Contains(status.Convert(err).Message(), m) {
				t.Errorf("step %d %s: message %q does not mention %q", i, st.name, status.Convert(err).Message(), m)
			}
		}
		if i == 0 {
			before = resp.GetIndex()
		}
	}
	// The auditor's re-check: the team-a entry before the revocation was
	// allowed by the policy of its time, and would not be after it.
	if err := pe.ix.At(before).Allows(apitest.KeyID(pe.teamA), "team-a", typeOL); err != nil {
		t.Fatalf("entry %d under the policy of its time: %v", before, err)
	}
	if err := pe.ix.At(pe.Log.Latest().Size).Allows(apitest.KeyID(pe.teamA), "team-a", typeOL); err == nil {
		t.Fatal("team-a allowed after its revocation")
	}
	es := pe.ix.Entries(0, 100)
	if len(es) != 3 || !es[0].Honoured || es[1].Honoured || !es[2].Honoured || es[2].Index != 3 {
		t.Fatalf("policy entries %+v", es)
	}
}

// TestPolicyBatch: in an AppendBatch the refused requests get their own
// PermissionDenied and the others commit.
func TestPolicyBatch(t *testing.T) {
	pe := startPolicyEnv(t)
	resp, err := pe.Client.AppendBatch(context.Background(), &provledgerpb.AppendBatchRequest{Requests: []*provledgerpb.AppendRequest{
		req("team-a", typeOL, []byte(`{"n":1}`), pe.teamA),
		req("team-a", typeOL, []byte(`{"n":2}`), pe.teamB),
		req("team-b", typeOL, []byte(`{"n":3}`), pe.teamB),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []codes.Code{codes.OK, codes.PermissionDenied, codes.OK} {
		got := codes.OK
		if e := resp.Responses[i].GetError(); e != nil {
			got = codes.Code(e.GetCode())
		}
		if got != want {
			t.Errorf("response %d: %v (%v), want %v", i, got, resp.Responses[i].GetError(), want)
		}
	}
}

// TestPolicySequencerRechecks: an entry checked under the old policy but
// submitted after a policy entry revoked its key is refused at
// sequencing, so the log never holds an entry its policy refuses.
func TestPolicySequencerRechecks(t *testing.T) {
	pe := startPolicyEnv(t)
	seq := service.NewPolicySequencer(pe.Seq, pe.ix)
	entry := func(ns, typ string, body []byte, k ed25519.PrivateKey) ledger.Entry {
		sg, err := keys.NewSigner(k)
		if err != nil {
			t.Fatal(err)
		}
		env, err := envelope.Sign(typ, body, sg)
		if err != nil {
			t.Fatal(err)
		}
		return ledger.Entry{Namespace: ns, PayloadType: typ, Envelope: env.Marshal(), Signers: [][32]byte{apitest.KeyID(k)}}
	}
	early := entry("team-a", typeOL, []byte(`{"n":1}`), pe.teamA)
	if err := seq.Check(&early); err != nil {
		t.Fatalf("checked under the bootstrap policy: %v", err)
	}
	revoke := fmt.Appendf(nil, `{"policyVersion": 1, "revokedKeys": [%q]}`, apitest.KeyID(pe.teamA).String())
	// One Submit with the revocation first and the checked entry after it.
	rs, err := seq.Submit(context.Background(), []ledger.Entry{
		entry("provledger.policy", policy.PayloadType, revoke, pe.admin),
		early,
		entry("team-b", typeOL, []byte(`{"n":2}`), pe.teamB),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Err != nil || rs[2].Err != nil {
		t.Fatalf("receipts %v %v", rs[0].Err, rs[2].Err)
	}
	if status.Code(rs[1].Err) != codes.PermissionDenied || !strings.Contains(rs[1].Err.Error(), "revoked by policy entry 1") {
		t.Fatalf("entry after the revocation: %v", rs[1].Err)
	}
	if rs[2].Index != 2 {
		t.Fatalf("team-b entry at %d, want 2", rs[2].Index)
	}
}

// TestPolicyBootstrapKey: while no policy is in force, only a policy
// entry signed by a bootstrap key (the log key) is sequenced.
func TestPolicyBootstrapKey(t *testing.T) {
	ix := policyindex.New(policyindex.Options{Bootstrap: []keys.KeyID{apitest.KeyID(apitest.LogKey)}, Logger: slog.New(slog.DiscardHandler)})
	env := apitest.Start(t, apitest.Options{Ledger: func(o *ledger.Options) { o.Indexer = ix }})
	if err := ix.Attach(env.Log); err != nil {
		t.Fatal(err)
	}
	seq := service.NewPolicySequencer(env.Seq, ix, apitest.KeyID(apitest.LogKey))
	doc := fmt.Sprintf(`{"policyVersion": 1, "keys": [{"publicKey": %s, "admin": true}]}`, pemOf(t, policyKey("admin")))
	// A chain-of-logs statement (docs/audit.md) changes no rule: with no
	// policy in force any trusted key appends it, and it puts no policy
	// in force; once one is, it needs an admin key like any policy entry.
	chain := `{"provledger_log_successor":{"origin":"new.example/log","vkey":"new.example/log+01020304+AQID"}}`
	for _, tc := range []struct {
		name string
		doc  string
		by   ed25519.PrivateKey
		code codes.Code
	}{
		{"a chain statement before any policy", chain, apitest.TrustedKey, codes.OK},
		{"another key", doc, apitest.TrustedKey, codes.PermissionDenied},
		{"the log key", doc, apitest.LogKey, codes.OK},
		{"a chain statement by a non-admin", chain + " ", apitest.TrustedKey, codes.PermissionDenied},
	} {
		if tc.name == "another key" && ix.Current().InForce() {
			t.Fatal("a chain statement put a policy in force")
		}
		sg, err := keys.NewSigner(tc.by)
		if err != nil {
			t.Fatal(err)
		}
		e, err := envelope.Sign(policy.PayloadType, []byte(tc.doc), sg)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := seq.Submit(context.Background(), []ledger.Entry{{Namespace: "provledger.policy", PayloadType: policy.PayloadType, Envelope: e.Marshal(), Signers: [][32]byte{apitest.KeyID(tc.by)}}})
		if err != nil {
			t.Fatal(err)
		}
		if status.Code(rs[0].Err) != tc.code {
			t.Fatalf("%s: %v, want %v", tc.name, rs[0].Err, tc.code)
		}
		if tc.code != codes.OK && tc.doc == doc && !strings.Contains(rs[0].Err.Error(), "provd --policy") {
			t.Fatalf("%s: message %q does not say how to bootstrap", tc.name, rs[0].Err)
		}
	}
	if !ix.Current().InForce() {
		t.Fatal("the log-key-signed policy is not in force")
	}
}
