package policy_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
)

const (
	typeOL   = "application/vnd.openlineage.run-event+json"
	typeCost = "application/vnd.provledger.cost+json"
)

// check is one Allows question and its expected answer (nil: allowed).
type check struct {
	key      string // testdata key name, or "other"
	ns, typ  string
	want     error
	wantText string
}

// TestStateFold folds policy entries in order and asks Allows after each.
func TestStateFold(t *testing.T) {
	ids := map[string]keys.KeyID{}
	pems := map[string]string{}
	for _, n := range []string{"admin", "teama", "teamb"} {
		ids[n], pems[n] = keyID(t, n)
	}
	ids["other"] = keys.KeyID{7}
	full, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		index  uint64
		doc    string
		checks []check
	}{
		{"no policy allows everyone", 0, "", []check{
			{key: "other", ns: "any", typ: typeOL},
		}},
		{"bootstrap", 0, string(full), []check{
			{key: "teama", ns: "team-a", typ: typeOL},
			{key: "teama", ns: "team-a/etl", typ: typeCost},
			{key: "teama", ns: "team-b", typ: typeOL, want: policy.ErrNamespace, wantText: `namespace "team-b"`},
			{key: "teama", ns: "team-a", typ: "application/vnd.in-toto+json", want: policy.ErrPayloadType, wantText: "policy entry 0"},
			{key: "teamb", ns: "team-b", typ: "application/vnd.in-toto+json"},
			{key: "other", ns: "team-a", typ: typeOL, want: policy.ErrUnknownKey},
		}},
		{"amend: revoke team-b", 5, `{"policyVersion": 1, "revokedKeys": ["` + ids["teamb"].String() + `"]}`, []check{
			{key: "teamb", ns: "team-b", typ: typeOL, want: policy.ErrRevokedKey, wantText: "revoked by policy entry 5"},
			{key: "teama", ns: "team-a", typ: typeOL},
		}},
		{"amend: widen team-a", 9, `{"policyVersion": 1, "keys": [{"publicKey": ` + quote(pems["teama"]) + `, "namespaces": ["team-b"]}]}`, []check{
			{key: "teama", ns: "team-b", typ: "application/vnd.in-toto+json"},
			{key: "teama", ns: "team-a", typ: typeOL, want: policy.ErrNamespace, wantText: "policy entry 9"},
		}},
		{"replace drops unlisted keys, keeps revocations", 12, `{"policyVersion": 1, "replace": true, "keys": [{"publicKey": ` + quote(pems["admin"]) + `, "admin": true}]}`, []check{
			{key: "teama", ns: "team-b", typ: typeOL, want: policy.ErrUnknownKey},
			{key: "teamb", ns: "team-b", typ: typeOL, want: policy.ErrRevokedKey, wantText: "entry 5"},
			{key: "admin", ns: "anything", typ: typeOL},
		}},
		{"granting again lifts a revocation", 20, `{"policyVersion": 1, "keys": [{"publicKey": ` + quote(pems["teamb"]) + `}]}`, []check{
			{key: "teamb", ns: "team-b", typ: typeOL},
		}},
	}
	var s *policy.State
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.doc != "" {
				s = s.Apply(st.index, mustParse(t, st.doc))
				if s.Index() != st.index {
					t.Fatalf("Index = %d, want %d", s.Index(), st.index)
				}
			}
			for _, c := range st.checks {
				err := s.Allows(ids[c.key], c.ns, c.typ)
				if c.want == nil {
					if err != nil {
						t.Errorf("Allows(%s, %s, %s) = %v, want nil", c.key, c.ns, c.typ, err)
					}
					continue
				}
				var de *policy.DeniedError
				if !errors.Is(err, c.want) || !errors.As(err, &de) {
					t.Errorf("Allows(%s, %s, %s) = %v, want %v", c.key, c.ns, c.typ, err, c.want)
					continue
				}
				msg := err.Error()
				for _, w := range []string{ids[c.key].String(), c.ns, c.typ, c.wantText} {
					if !strings.Contains(msg, w) {
						t.Errorf("message %q does not mention %q", msg, w)
					}
				}
			}
		})
	}
}

// TestStateRecords: jobs, budgets, datasets, thresholds and source fold
// as documented.
func TestStateRecords(t *testing.T) {
	full, _ := os.ReadFile("testdata/policy.yaml")
	s := (*policy.State)(nil).Apply(0, mustParse(t, string(full)))
	s = s.Apply(3, mustParse(t, `{"policyVersion": 1, "source": {"gitCommit": "abcdef1"}, "jobs": [{"namespace": "team-a", "name": "daily_orders.aggregate", "approvedVersions": ["4f1c2e9ab3d0", "aaaaaaa"]}], "scanner": {"costK": 7}}`))
	if vs, ok := s.ApprovedVersions("team-a", "daily_orders.aggregate"); !ok || strings.Join(vs, ",") != "4f1c2e9ab3d0,9d8e7f6a5b4c,aaaaaaa" {
		t.Fatalf("approved = %v %v", vs, ok)
	}
	if _, ok := s.ApprovedVersions("team-a", "other"); ok {
		t.Fatal("unlisted job is listed")
	}
	if b, ok := s.Budget("tag:team=analytics", "USD"); !ok || b != 12000 {
		t.Fatalf("budget = %v %v", b, ok)
	}
	if d, ok := s.FreshnessInterval("s3://lake", "raw/orders"); !ok || d.Hours() != 26 {
		t.Fatalf("interval = %v %v", d, ok)
	}
	if th := s.Thresholds(); th.CostK != 7 || th.VolumeK != 6 || th.MaxClockLead != "5m" {
		t.Fatalf("thresholds = %+v", th)
	}
	if src := s.Source(); src.GitCommit != "abcdef1" {
		t.Fatalf("source = %+v", src)
	}
	if s.Count() != 2 || !s.InForce() {
		t.Fatalf("count = %d", s.Count())
	}
}

// TestPolicyOfState: the State rendered as one replacing document, folded
// into an empty State, gives the same document.
func TestPolicyOfState(t *testing.T) {
	full, _ := os.ReadFile("testdata/policy.yaml")
	s := (*policy.State)(nil).Apply(0, mustParse(t, string(full)))
	_, pb := keyID(t, "teamb")
	s = s.Apply(4, mustParse(t, `{"policyVersion": 1, "keys": [{"publicKey": `+quote(pb)+`, "namespaces": ["x"]}], "revokedKeys": ["`+strings.Repeat("ab", 32)+`"]}`))
	doc, err := s.Policy().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := (*policy.State)(nil).Apply(9, mustParse(t, string(doc))).Policy().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != string(again) {
		t.Fatalf("round trip differs:\n%s\n%s", doc, again)
	}
	if !strings.Contains(string(doc), `"replace":true`) || strings.Count(string(doc), `"publicKey"`) != 3 {
		t.Fatalf("document = %s", doc)
	}
}

func TestCheckAdmin(t *testing.T) {
	admin, _ := keyID(t, "admin")
	teama, _ := keyID(t, "teama")
	var none *policy.State
	if err := none.CheckAdmin("p", []keys.KeyID{admin}); !errors.Is(err, policy.ErrNoPolicy) {
		t.Fatalf("no policy: %v", err)
	}
	full, _ := os.ReadFile("testdata/policy.yaml")
	s := none.Apply(2, mustParse(t, string(full)))
	for _, tc := range []struct {
		name    string
		signers []keys.KeyID
		ok      bool
	}{
		{"admin", []keys.KeyID{admin}, true},
		{"admin among others", []keys.KeyID{teama, admin}, true},
		{"appender key", []keys.KeyID{teama}, false},
		{"unsigned", nil, false},
	} {
		err := s.CheckAdmin("provledger.policy", tc.signers)
		if tc.ok != (err == nil) {
			t.Errorf("%s: CheckAdmin = %v", tc.name, err)
		}
		if !tc.ok && (!errors.Is(err, policy.ErrNotAdmin) || !strings.Contains(err.Error(), "policy entry 2")) {
			t.Errorf("%s: error %v, want ErrNotAdmin naming policy entry 2", tc.name, err)
		}
	}
	// Revoking the admin key takes its power away.
	s = s.Apply(3, mustParse(t, `{"policyVersion": 1, "revokedKeys": ["`+admin.String()+`"]}`))
	if err := s.CheckAdmin("p", []keys.KeyID{admin}); !errors.Is(err, policy.ErrNotAdmin) {
		t.Fatalf("revoked admin: %v", err)
	}
}

// TestSign: the envelope of a signed policy carries the canonical payload
// and verifies with the signer's key.
func TestSign(t *testing.T) {
	b, err := os.ReadFile("testdata/admin.key")
	if err != nil {
		t.Fatal(err)
	}
	priv, err := keys.ParsePrivatePEM(b)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := keys.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile("testdata/policy.yaml")
	p := mustParse(t, string(full))
	env, err := policy.Sign(p, sg)
	if err != nil {
		t.Fatal(err)
	}
	canon, _ := p.Marshal()
	if env.PayloadType != policy.PayloadType || string(env.Payload) != string(canon) {
		t.Fatalf("envelope %s %s", env.PayloadType, env.Payload)
	}
	kr, err := keys.NewKeyring(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := keyID(t, "admin")
	ids, err := (&envelope.Verifier{Keyring: kr}).Verify(env)
	if err != nil || len(ids) != 1 || ids[0] != admin {
		t.Fatalf("Verify = %v, %v", ids, err)
	}
	if _, err := policy.Sign(&policy.Policy{Version: 3}, sg); !errors.Is(err, policy.ErrBadPolicy) {
		t.Fatalf("Sign(bad) = %v", err)
	}
}

// TestAccept: the rule that decides which policy entries count.
func TestAccept(t *testing.T) {
	admin, _ := keyID(t, "admin")
	teama, _ := keyID(t, "teama")
	logKey := keys.KeyID{9}
	full, _ := os.ReadFile("testdata/policy.json")
	b, _ := os.ReadFile("testdata/admin.key")
	priv, err := keys.ParsePrivatePEM(b)
	if err != nil {
		t.Fatal(err)
	}
	sg, _ := keys.NewSigner(priv)
	env := func(doc string) []byte {
		e, err := envelope.Sign(policy.PayloadType, []byte(doc), sg)
		if err != nil {
			t.Fatal(err)
		}
		return e.Marshal()
	}
	var none *policy.State
	inForce := none.Apply(0, mustParse(t, string(full)))
	other, _ := envelope.Sign("application/vnd.in-toto+json", []byte(`{}`), sg)
	for _, tc := range []struct {
		name    string
		st      *policy.State
		env     []byte
		signers []keys.KeyID
		want    string // "" accepted
	}{
		{"bootstrap by the log key", none, env(string(full)), []keys.KeyID{logKey}, ""},
		{"bootstrap by another key", none, env(string(full)), []keys.KeyID{admin}, "not signed by the log key"},
		{"admin amends", inForce, env(`{"policyVersion": 1}`), []keys.KeyID{admin}, ""},
		{"appender amends", inForce, env(`{"policyVersion": 1}`), []keys.KeyID{teama}, "admin key"},
		{"log key once a policy is in force", inForce, env(`{"policyVersion": 1}`), []keys.KeyID{logKey}, "admin key"},
		{"bad payload", inForce, env(`{"policyVersion": 7}`), []keys.KeyID{admin}, "policyVersion 7"},
		{"redacted", inForce, nil, []keys.KeyID{admin}, "redacted"},
		{"not an envelope", inForce, []byte("{"), []keys.KeyID{admin}, "does not parse"},
		{"another type", inForce, other.Marshal(), []keys.KeyID{admin}, "payload type"},
	} {
		p, err := tc.st.Accept(tc.env, "provledger.policy", tc.signers, []keys.KeyID{logKey})
		if tc.want == "" {
			if err != nil || p == nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, policy.ErrIgnored) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrIgnored mentioning %q", tc.name, err, tc.want)
		}
	}
}
