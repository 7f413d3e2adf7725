package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
)

type policyTestKey struct {
	priv ed25519.PrivateKey
	id   keys.KeyID
	pem  string
}

func newPolicyTestKey(t *testing.T, name string) policyTestKey {
	t.Helper()
	s := sha256.Sum256([]byte("provd policy test " + name))
	priv := ed25519.NewKeyFromSeed(s[:])
	id, err := keys.IDOf(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pem, err := keys.MarshalPublicPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return policyTestKey{priv: priv, id: id, pem: string(pem)}
}

// indent indents a PEM block for a YAML literal.
func indent(s string) string {
	return "      " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n      ")
}

func policyRequest(t *testing.T, ns, typ, body string, k policyTestKey) *provledgerpb.AppendRequest {
	t.Helper()
	sg, err := keys.NewSigner(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.Sign(typ, []byte(body), sg)
	if err != nil {
		t.Fatal(err)
	}
	return &provledgerpb.AppendRequest{Namespace: ns, Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: env.Marshal()}}
}

// TestPolicyBootstrapAndRestart: provd --policy writes the bootstrap
// policy as entry 0 (no trust file needed), enforces it, honours an
// admin's revocation, and a restart keeps the policy in force (--policy
// is then ignored).
func TestPolicyBootstrapAndRestart(t *testing.T) {
	admin, teamA, teamB := newPolicyTestKey(t, "admin"), newPolicyTestKey(t, "team-a"), newPolicyTestKey(t, "team-b")
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	doc := fmt.Sprintf(`policyVersion: 1
replace: true
keys:
  - name: admin
    admin: true
    namespaces: [provledger.policy]
    publicKey: |
%s
  - name: team-a
    namespaces: [team-a]
    publicKey: |
%s
  - name: team-b
    namespaces: [team-b]
    publicKey: |
%s
`, indent(admin.pem), indent(teamA.pem), indent(teamB.pem))
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	args := []string{"--origin", "test.provledger/policy", "--policy", file, "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn"}
	const typ = "application/vnd.in-toto+json"
	revoke := fmt.Sprintf(`{"policyVersion": 1, "revokedKeys": [%q]}`, teamA.id)

	type step struct {
		name string
		req  *provledgerpb.AppendRequest
		code codes.Code
		want string
	}
	run := func(t *testing.T, steps []step) (provledgerpb.LedgerClient, func()) {
		n := startRun(t, args...)
		conn, err := grpc.NewClient(n.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		lc := provledgerpb.NewLedgerClient(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, st := range steps {
			_, err := lc.Append(ctx, st.req)
			if status.Code(err) != st.code || !strings.Contains(status.Convert(err).Message(), st.want) {
				t.Fatalf("%s: %v, want %v mentioning %q", st.name, err, st.code, st.want)
			}
		}
		return lc, func() { conn.Close(); n.stop(t) }
	}

	lc, stop := run(t, []step{
		{"team-a in team-a", policyRequest(t, "team-a", typ, `{"n":1}`, teamA), codes.OK, ""},
		{"team-a in team-b", policyRequest(t, "team-b", typ, `{"n":2}`, teamA), codes.PermissionDenied, `namespace "team-b"`},
		{"policy by team-b", policyRequest(t, "provledger.policy", policy.PayloadType, revoke, teamB), codes.PermissionDenied, "admin key"},
		{"revocation by admin", policyRequest(t, "provledger.policy", policy.PayloadType, revoke, admin), codes.OK, ""},
		{"team-a revoked", policyRequest(t, "team-a", typ, `{"n":3}`, teamA), codes.PermissionDenied, "revoked by policy entry 2"},
	})
	e, err := lc.GetEntry(context.Background(), &provledgerpb.GetEntryRequest{Index: 0})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(e.GetEnvelopeJson()), policy.PayloadType) {
		t.Fatalf("entry 0 is not the bootstrap policy: %s", e.GetEnvelopeJson())
	}
	stop()

	lc, stop = run(t, []step{
		{"team-a still revoked", policyRequest(t, "team-a", typ, `{"n":4}`, teamA), codes.PermissionDenied, "revoked by policy entry 2"},
		{"team-b in team-b", policyRequest(t, "team-b", typ, `{"n":5}`, teamB), codes.OK, ""},
	})
	defer stop()
	cp, err := lc.GetCheckpoint(context.Background(), &provledgerpb.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if cp.GetSize() != 4 {
		t.Fatalf("log size after restart is %d, want 4 (bootstrap, team-a, revocation, team-b)", cp.GetSize())
	}
}
