package policy_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
)

// keyID reads testdata/<name>.pub and returns its key id and PEM.
func keyID(t testing.TB, name string) (keys.KeyID, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.ParsePublicPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	id, err := keys.IDOf(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id, string(b)
}

func mustParse(t testing.TB, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse(%q): %v", doc, err)
	}
	return p
}

// TestYAMLAndJSONGiveTheCanonicalPayload: the YAML fixture, and the JSON of
// its canonical payload, parse to the same canonical bytes, which are the
// test vector testdata/policy.json.
func TestYAMLAndJSONGiveTheCanonicalPayload(t *testing.T) {
	y, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, string(y))
	canon, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/policy.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(canon, bytes.TrimSpace(want)) {
		t.Fatalf("canonical payload differs from testdata/policy.json:\n got %s\nwant %s", canon, want)
	}
	for _, in := range [][]byte{canon, append([]byte("  \n"), canon...)} {
		q, err := policy.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := q.Marshal()
		if !bytes.Equal(again, canon) {
			t.Fatalf("re-marshalled payload differs:\n%s\n%s", again, canon)
		}
	}
	admin, _ := keyID(t, "admin")
	if len(p.Keys) != 3 || p.Keys[0].ID() != admin || !p.Keys[0].Admin {
		t.Fatalf("keys = %+v, want admin %s first", p.Keys, admin)
	}
	if p.Budgets[0].Amount() != 12000 || p.Datasets[0].Interval().Hours() != 26 {
		t.Fatalf("budget %v interval %v", p.Budgets[0].Amount(), p.Datasets[0].Interval())
	}
}

// TestExamplePolicyParses keeps examples/policy.yaml valid.
func TestExamplePolicyParses(t *testing.T) {
	b, err := os.ReadFile("../../examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, string(b))
	var admins int
	for _, k := range p.Keys {
		if k.Admin {
			admins++
		}
	}
	if admins == 0 {
		t.Fatal("examples/policy.yaml grants no admin key")
	}
	// Its admin may redact (prov redact's default namespace is admin).
	st := (*policy.State)(nil).Apply(0, p)
	redacts := false
	for _, g := range st.Grants() {
		redacts = redacts || g.Admin && st.Allows(g.ID, "admin", "application/vnd.provledger.redaction+json") == nil
	}
	if !redacts || !st.HasIdentities() {
		t.Fatalf("examples/policy.yaml: an admin key granted redaction: %v; identities: %v", redacts, st.HasIdentities())
	}
}

func TestParseErrors(t *testing.T) {
	_, apub := keyID(t, "admin")
	key := `{"publicKey": ` + quote(apub) + `}`
	big := "policyVersion: 1\n#" + strings.Repeat("x", policy.MaxSize) + "\n"
	for _, tc := range []struct{ name, in, want string }{
		{"version", `{"policyVersion": 2}`, "policyVersion 2"},
		{"no version yaml", "keys: []", "policyVersion 0"},
		{"empty yaml", "", "empty"},
		{"unknown member", `{"policyVersion": 1, "budget": []}`, "unknown field"},
		{"unknown member yaml", "policyVersion: 1\nreplce: true", "unknown field"},
		{"yaml syntax", "policyVersion: [1", "not YAML"},
		{"unquoted number", "policyVersion: 1\nbudgets: [{series: s, currency: USD, monthly: 12.5}]", "quoted"},
		{"bad key", `{"policyVersion": 1, "keys": [{"publicKey": "nope"}]}`, "keys[0].publicKey"},
		{"same key twice", `{"policyVersion": 1, "keys": [` + key + `, ` + key + `]}`, "keys[0] and keys[1] are the same key"},
		{"bad namespace", `{"policyVersion": 1, "keys": [{"publicKey": ` + quote(apub) + `, "namespaces": ["["]}]}`, "keys[0].namespaces[0]"},
		{"bad type", `{"policyVersion": 1, "keys": [{"publicKey": ` + quote(apub) + `, "payloadTypes": [""]}]}`, "keys[0].payloadTypes[0]"},
		{"bad revocation", `{"policyVersion": 1, "revokedKeys": ["zz"]}`, "revokedKeys[0]"},
		{"job without name", `{"policyVersion": 1, "jobs": [{"namespace": "a", "approvedVersions": []}]}`, "jobs[0]"},
		{"empty version", `{"policyVersion": 1, "jobs": [{"namespace": "a", "name": "b", "approvedVersions": [""]}]}`, "approvedVersions[0]"},
		{"negative budget", `{"policyVersion": 1, "budgets": [{"series": "s", "currency": "USD", "monthly": "-1"}]}`, "budgets[0].monthly"},
		{"bad currency", `{"policyVersion": 1, "budgets": [{"series": "s", "currency": "US", "monthly": "1"}]}`, "budgets[0]"},
		{"bad interval", `{"policyVersion": 1, "datasets": [{"namespace": "a", "name": "b", "maxInterval": "soon"}]}`, "maxInterval"},
		{"bad commit", `{"policyVersion": 1, "source": {"gitCommit": "HEAD"}}`, "source.gitCommit"},
		{"bad threshold", `{"policyVersion": 1, "scanner": {"freshnessFactor": 0.5}}`, "scanner.freshnessFactor"},
		{"bad lag", `{"policyVersion": 1, "scanner": {"maxClockLag": "-1h"}}`, "scanner.maxClockLag"},
		{"bad window", `{"policyVersion": 1, "scanner": {"volumeWindow": 1001}}`, "scanner.volumeWindow"},
		{"negative min points", `{"policyVersion": 1, "scanner": {"costMinPoints": -1}}`, "scanner.costMinPoints"},
		{"min points above window", `{"policyVersion": 1, "scanner": {"costWindow": 3, "costMinPoints": 4}}`, "must not exceed its window"},
		{"bad run window", `{"policyVersion": 1, "scanner": {"runWindow": "soon"}}`, "scanner.runWindow"},
		{"trailing", `{"policyVersion": 1} {}`, "trailing"},
		{"too large", big, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(tc.in))
			if err == nil || !errors.Is(err, policy.ErrBadPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want ErrBadPolicy mentioning %q", err, tc.want)
			}
		})
	}
	t.Run("grant and revoke", func(t *testing.T) {
		id, pem := keyID(t, "teama")
		_, err := policy.Parse([]byte(`{"policyVersion": 1, "keys": [{"publicKey": ` + quote(pem) + `}], "revokedKeys": ["` + id.String() + `"]}`))
		if !errors.Is(err, policy.ErrBadPolicy) || !strings.Contains(err.Error(), "do one or the other") {
			t.Fatalf("Parse = %v", err)
		}
	})
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"` }

// Chain-of-logs statements (docs/audit.md) are policy payloads too: a
// node enforcing policy must take them, and they carry nothing else.
func TestChainStatements(t *testing.T) {
	for _, tc := range []struct {
		name, doc, wantErr string
	}{
		{"successor", `{"provledger_log_successor":{"origin":"new.example/log","vkey":"new.example/log+01020304+AQID","url":"https://new.example:7401"}}`, ""},
		{"predecessor", `{"provledger_log_predecessor":{"origin":"old.example/log","vkey":"old.example/log+01020304+AQID","handoff_bundle":"AAAA"}}`, ""},
		{"with version", `{"policyVersion":1,"provledger_log_successor":{"origin":"n","vkey":"v"}}`, ""},
		{"both links", `{"provledger_log_successor":{"origin":"n","vkey":"v"},"provledger_log_predecessor":{"origin":"o","vkey":"v","handoff_bundle":"A"}}`, "separate entries"},
		{"with rules", `{"provledger_log_successor":{"origin":"n","vkey":"v"},"revokedKeys":["00"]}`, "nothing else"},
		{"no origin", `{"provledger_log_successor":{"vkey":"v"}}`, "origin is required"},
		{"no vkey", `{"provledger_log_successor":{"origin":"n"}}`, "vkey is required"},
		{"no bundle", `{"provledger_log_predecessor":{"origin":"o","vkey":"v"}}`, "handoff_bundle is required"},
		{"unknown link member", `{"provledger_log_successor":{"origin":"n","vkey":"v","x":1}}`, "unknown field"},
		{"wrong version", `{"policyVersion":7,"provledger_log_successor":{"origin":"n","vkey":"v"}}`, "policyVersion 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.ParseJSON([]byte(tc.doc))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseJSON: %v", err)
				}
				if !p.IsChainStatement() {
					t.Fatal("not a chain statement")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, policy.ErrBadPolicy) {
				t.Fatalf("ParseJSON = %v, want an ErrBadPolicy saying %q", err, tc.wantErr)
			}
		})
	}
	// A rule-less policy is still refused without its version.
	if _, err := policy.ParseJSON([]byte(`{}`)); err == nil {
		t.Error("an empty document without policyVersion was accepted")
	}
}
