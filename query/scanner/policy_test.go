package scanner_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/policyindex"
	"github.com/provledger/provledger/query/scanner"
)

// TestIntegrityByPolicyIndex: with Options.Policy (the node's policy
// index), the integrity detector re-checks every entry against the policy
// of its time: an entry signed before its key's revocation is fine, the
// same key after it is integrity.revokedKey; a key outside its namespace
// or payload types and a policy entry not signed by an admin are reported.
func TestIntegrityByPolicyIndex(t *testing.T) {
	k := func(name string) (ed25519.PrivateKey, keys.KeyID, string) {
		priv := ed25519.NewKeyFromSeed(seed("scanner policy " + name))
		id, _ := keys.IDOf(priv.Public())
		pem, _ := keys.MarshalPublicPEM(priv.Public())
		return priv, id, fmt.Sprintf("%q", pem)
	}
	admin, _, adminPEM := k("admin")
	team, teamID, teamPEM := k("team")
	logID, _ := keys.IDOf(testLogKey.Public())

	ix := policyindex.New(policyindex.Options{Bootstrap: []keys.KeyID{logID}, Logger: discard})
	s, err := checkpoint.NewSigner(testOrigin, testLogKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger"), ledger.Options{Origin: testOrigin, Signer: s, Logger: discard, Indexer: ix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := ix.Attach(l); err != nil {
		t.Fatal(err)
	}
	entry := func(ns, typ, body string, by ed25519.PrivateKey) ledger.Entry {
		sg, err := keys.NewSigner(by)
		if err != nil {
			t.Fatal(err)
		}
		env, err := envelope.Sign(typ, []byte(body), sg)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := keys.IDOf(by.Public())
		return ledger.Entry{Namespace: ns, PayloadType: typ, Envelope: env.Marshal(), Signers: [][32]byte{id}}
	}
	const ol = "application/vnd.openlineage.run-event+json"
	ev := func(n int) string {
		return fmt.Sprintf(`{"eventType":"COMPLETE","eventTime":"2026-11-27T00:00:%02dZ","producer":"https://example.test","run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a%02d"},"job":{"namespace":"team","name":"j"},"inputs":[{"namespace":"s3://x","name":"in"}]}`, n, n)
	}
	statement := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}],"predicateType":"https://example.test/v1","predicate":{}}`
	boot := fmt.Sprintf(`{"policyVersion": 1, "keys": [{"publicKey": %s, "admin": true}, {"publicKey": %s, "namespaces": ["team"], "payloadTypes": [%q]}]}`, adminPEM, teamPEM, ol)
	revoke := fmt.Sprintf(`{"policyVersion": 1, "revokedKeys": [%q]}`, teamID)
	entries := []ledger.Entry{
		entry("provledger.policy", policy.PayloadType, boot, testLogKey), // 0 bootstrap
		entry("team", ol, ev(1), team),                                   // 1 fine
		entry("other", ol, ev(2), team),                                  // 2 namespace
		entry("team", "application/vnd.in-toto+json", statement, team),   // 3 payload type
		entry("provledger.policy", policy.PayloadType, revoke, team),     // 4 not an admin: ignored
		entry("team", ol, ev(3), team),                                   // 5 fine (4 was ignored)
		entry("provledger.policy", policy.PayloadType, revoke, admin),    // 6 revocation
		entry("team", ol, ev(4), team),                                   // 7 revoked
	}
	if _, err := l.Apply(ledger.Batch{Time: time.Date(2026, 11, 27, 0, 1, 0, 0, time.UTC), Entries: entries}, ledger.ApplyOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	sc, _ := newScanner(t, l, nil, func(o *scanner.Options) {
		o.Policy = ix.At
		o.Lineage.Disabled, o.Time.Disabled, o.GitOps.Disabled = true, true, true
	})
	p, err := sc.Scan(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range p.Findings {
		// (integrity.payload, about the test statement's predicate, is not
		// a policy finding.)
		if f.Finding.Detector == "integrity" && f.Finding.Kind != "integrity.payload" {
			got = append(got, fmt.Sprintf("%s@%v", f.Finding.Kind, f.Finding.Entries))
		}
	}
	slices.Sort(got)
	want := []string{"integrity.namespace@[0 2]", "integrity.payloadType@[0 3]", "integrity.policySigner@[4]", "integrity.revokedKey@[6 7]"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("integrity findings\n got %v\nwant %v", got, want)
	}
}
