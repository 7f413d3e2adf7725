package policy_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
)

// TestIdentityErrors: every mistake in identities names the member to fix.
func TestIdentityErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no name", `{"policyVersion": 1, "identities": [{"roles": ["reader"]}]}`, "identities[0].name"},
		{"space in name", `{"policyVersion": 1, "identities": [{"name": "a b"}]}`, "identities[0].name"},
		{"same name", `{"policyVersion": 1, "identities": [{"name": "a"}, {"name": "a"}]}`, "identities[0] and identities[1] have the same name"},
		{"unknown role", `{"policyVersion": 1, "identities": [{"name": "a", "roles": ["root"]}]}`, "identities[0].roles[0]: unknown role"},
		{"bad certificate", `{"policyVersion": 1, "identities": [{"name": "a", "certificate": "spiffe://x"}]}`, "identities[0].certificate"},
		{"same certificate", `{"policyVersion": 1, "identities": [{"name": "a", "certificate": "cn:x"}, {"name": "b", "certificate": "cn:x"}]}`, "same certificate"},
		{"bad namespace", `{"policyVersion": 1, "identities": [{"name": "a", "namespaces": ["["]}]}`, "identities[0].namespaces[0]"},
		{"bad type", `{"policyVersion": 1, "identities": [{"name": "a", "payloadTypes": [""]}]}`, "identities[0].payloadTypes[0]"},
		{"bad key", `{"policyVersion": 1, "identities": [{"name": "a", "keys": ["abc"]}]}`, "identities[0].keys[0]"},
		{"in a chain statement", `{"provledger_log_successor": {"origin": "o", "vkey": "v"}, "identities": [{"name": "a"}]}`, "nothing else"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(tc.in))
			if !errors.Is(err, policy.ErrBadPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want ErrBadPolicy mentioning %q", err, tc.want)
			}
		})
	}
}

// TestIdentityFold: identities fold like keys (amend replaces the listed
// ones, replace drops the others), a certificate binds one identity, and
// the grants answer as documented.
func TestIdentityFold(t *testing.T) {
	full, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	teama, _ := keyID(t, "teama")
	s := (*policy.State)(nil).Apply(0, mustParse(t, string(full)))
	if !s.HasIdentities() || len(s.Identities()) != 3 {
		t.Fatalf("identities = %v", s.Identities())
	}
	a, ok := s.Identity("team-a")
	if !ok {
		t.Fatal("team-a not granted")
	}
	for _, tc := range []struct {
		name string
		got  bool
		want bool
	}{
		{"team-a appends", a.HasRole(policy.RoleAppender), true},
		{"team-a does not read", a.HasRole(policy.RoleReader), false},
		{"team-a may append to team-a/etl", a.AllowsNamespace("team-a/etl"), true},
		{"team-a may not append to team-b", a.AllowsNamespace("team-b"), false},
		{"team-a may append run events", a.AllowsPayloadType("application/vnd.openlineage.run-event+json"), true},
		{"team-a may not append policy", a.AllowsPayloadType(policy.PayloadType), false},
		{"team-a's key", a.AllowsKey(teama), true},
		{"another key", a.AllowsKey(keys.KeyID{1}), false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if ops, _ := s.Identity("ops"); !ops.HasRole(policy.RoleReader) || !ops.HasRole(policy.RoleAuditor) || !ops.AllowsNamespace("anything") {
		t.Errorf("ops (admin) = %+v", ops)
	}
	if g, ok := s.IdentityByCertificate([]string{"dns:ci.example", "uri:spiffe://prod.example/ci"}); !ok || g.Name != "ci" {
		t.Errorf("by certificate: %v %v", g, ok)
	}

	// Amend: team-a loses its rights, the certificate moves to ci2.
	s = s.Apply(3, mustParse(t, `{"policyVersion": 1, "identities": [{"name": "team-a"}, {"name": "ci2", "certificate": "uri:spiffe://prod.example/ci", "roles": ["reader"]}]}`))
	if a, _ := s.Identity("team-a"); a.HasRole(policy.RoleAppender) || a.GrantedAt != 3 {
		t.Errorf("team-a after amendment = %+v", a)
	}
	if _, ok := s.Identity("ci"); ok {
		t.Error("ci kept a certificate bound to ci2")
	}
	if g, ok := s.IdentityByCertificate([]string{"uri:spiffe://prod.example/ci"}); !ok || g.Name != "ci2" {
		t.Errorf("by certificate after amendment: %v", g)
	}
	if _, ok := s.Identity("ops"); !ok {
		t.Error("ops dropped by an amendment")
	}
	// The rendered policy keeps them and round-trips.
	doc, err := s.Policy().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := (*policy.State)(nil).Apply(9, mustParse(t, string(doc))).Policy().Marshal()
	if string(doc) != string(again) || !strings.Contains(string(doc), `"name":"ci2"`) {
		t.Fatalf("round trip:\n%s\n%s", doc, again)
	}
	// Replace: identities not listed are gone.
	s = s.Apply(5, mustParse(t, `{"policyVersion": 1, "replace": true}`))
	if s.HasIdentities() {
		t.Errorf("identities after replace = %v", s.Identities())
	}
}

// TestCheckEntry is the one rule of the node and the auditor.
func TestCheckEntry(t *testing.T) {
	admin, _ := keyID(t, "admin")
	teama, _ := keyID(t, "teama")
	logKey := keys.KeyID{9}
	full, _ := os.ReadFile("testdata/policy.yaml")
	st := (*policy.State)(nil).Apply(0, mustParse(t, string(full)))
	yes := func() bool { return true }
	for _, tc := range []struct {
		name    string
		st      *policy.State
		ns, typ string
		signer  keys.KeyID
		chain   func() bool
		want    error
	}{
		{"no policy: any key appends", nil, "x", typeOL, keys.KeyID{1}, nil, nil},
		{"no policy: log key bootstraps", nil, "p", policy.PayloadType, logKey, nil, nil},
		{"no policy: another key may not", nil, "p", policy.PayloadType, teama, nil, policy.ErrNoPolicy},
		{"no policy: a chain statement by any key", nil, "p", policy.PayloadType, teama, yes, nil},
		{"policy: admin key", st, "provledger.policy", policy.PayloadType, admin, nil, nil},
		{"policy: not admin", st, "provledger.policy", policy.PayloadType, teama, yes, policy.ErrNotAdmin},
		{"policy: log key is no admin", st, "provledger.policy", policy.PayloadType, logKey, nil, policy.ErrNotAdmin},
		{"policy: granted", st, "team-a", typeOL, teama, nil, nil},
		{"policy: namespace", st, "team-b", typeOL, teama, nil, policy.ErrNamespace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.st.CheckEntry(tc.ns, tc.typ, [][32]byte{tc.signer}, []keys.KeyID{logKey}, tc.chain)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("CheckEntry = %v, want %v", err, tc.want)
			}
		})
	}
}
