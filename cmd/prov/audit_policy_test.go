package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/ledger"
)

// policyEntry signs the policy document doc with priv as a policy entry.
func policyLedgerEntry(t *testing.T, doc string, priv ed25519.PrivateKey) ledger.Entry {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	s, err := keys.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	env, err := policy.Sign(p, s)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := keys.IDOf(priv.Public())
	return ledger.Entry{Namespace: defaultPolicyNamespace, PayloadType: policy.PayloadType, Envelope: env.Marshal(), Signers: [][32]byte{id}}
}

// applyEntries appends es as one batch, as a node that enforces nothing
// would (the log library itself).
func (f *logFixture) applyEntries(t *testing.T, es ...ledger.Entry) {
	t.Helper()
	if _, err := f.log.Apply(ledger.Batch{Time: time.UnixMilli(1_800_000_000_000), Entries: es}, ledger.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	f.n += uint64(len(es))
	if err := f.log.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestAuditPolicyFromLog: prov audit --policy-from-log folds the log's own
// policy entries (the log key is the only trust given) and checks every
// entry against the policy of its index: a key revoked at entry k passes
// before k; an entry it signs after k, appended by a node that did not
// enforce the policy, fails the audit, named with its key, namespace,
// type and the policy entry in force. So do a policy entry signed by a
// non-admin key and an entry by a key the policy never granted.
func TestAuditPolicyFromLog(t *testing.T) {
	s := sha256.Sum256([]byte("prov audit policy admin"))
	admin := ed25519.NewKeyFromSeed(s[:])
	s = sha256.Sum256([]byte("prov audit policy stranger"))
	stranger := ed25519.NewKeyFromSeed(s[:])
	adminPEM, _ := keys.MarshalPublicPEM(admin.Public())
	for _, tc := range []struct {
		name   string
		inject func(f *logFixture) ledger.Entry
		want   []string
	}{
		{"revoked key after its revocation", func(f *logFixture) ledger.Entry { return f.entry(t, f.n, "late") },
			[]string{"revoked by policy entry 4", `namespace "audit"`, "application/vnd.provledger.cost+json", "(policy in force from entry 4)"}},
		{"policy entry by a non-admin key", func(f *logFixture) ledger.Entry {
			return policyLedgerEntry(t, `{"policyVersion": 1, "jobs": [{"namespace": "a", "name": "b", "approvedVersions": ["c"]}]}`, f.signer)
		}, []string{"not signed by an admin key", "policy entry 4"}},
		{"key never granted", func(f *logFixture) ledger.Entry {
			ks, _ := keys.NewSigner(stranger)
			env, err := envelope.Sign("application/vnd.provledger.cost+json", []byte(`{"BilledCost": 1, "BillingCurrency": "USD"}`), ks)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := keys.IDOf(stranger.Public())
			return ledger.Entry{Namespace: "audit", PayloadType: env.PayloadType, Envelope: env.Marshal(), Signers: [][32]byte{id}}
		}, []string{"no policy entry grants it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newLogFixture(t, t.TempDir())
			teamPEM, _ := keys.MarshalPublicPEM(f.signer.Public())
			teamID, _ := keys.IDOf(f.signer.Public())
			boot := fmt.Sprintf(`{"policyVersion": 1, "replace": true, "keys": [{"name": "admin", "admin": true, "publicKey": %q}, {"name": "team", "namespaces": ["audit"], "payloadTypes": ["application/vnd.provledger.cost+json"], "publicKey": %q}]}`, adminPEM, teamPEM)
			f.applyEntries(t, policyLedgerEntry(t, boot, f.logPriv))
			f.append(t, 3, 3, "")
			f.applyEntries(t, policyLedgerEntry(t, fmt.Sprintf(`{"policyVersion": 1, "revokedKeys": [%q]}`, teamID.String()), admin))
			state := filepath.Join(t.TempDir(), "state")
			code, rep := auditJSON(t, f.logPub, f.url, state, "--policy-from-log", "--full")
			if code != 0 || !rep.OK || !rep.PolicyChecked || rep.PolicyEntries != 2 || rep.PolicyHonour != 2 || rep.Stats.SigsVerified != 5 {
				t.Fatalf("audit before the injected entry: exit %d %+v", code, rep)
			}
			f.applyEntries(t, tc.inject(f))
			// A trust-file audit sees valid signatures only ...
			if code, rep := auditJSON(t, f.logPub, f.url, filepath.Join(t.TempDir(), "s2"), "--trust", f.trust); code != 0 || !rep.OK {
				t.Fatalf("--trust audit: exit %d %+v", code, rep)
			}
			// ... the policy audit, the rules of the entry's time.
			code, rep = auditJSON(t, f.logPub, f.url, state, "--policy-from-log")
			if code != 1 || rep.OK || rep.FirstBadIndex == nil || *rep.FirstBadIndex != 5 || len(rep.Problems) != 1 || rep.Problems[0].Kind != kindPolicy {
				t.Fatalf("audit after the injected entry: exit %d %+v", code, rep)
			}
			for _, w := range tc.want {
				if !strings.Contains(rep.Problems[0].Detail, w) {
					t.Errorf("problem %q does not mention %q", rep.Problems[0].Detail, w)
				}
			}
		})
	}
}
