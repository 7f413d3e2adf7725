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
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/ledger/redaction"
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

// TestPolicyRolesAndRedaction: with --policy and --auth-tokens, the
// policy's identities decide what the tokens file's callers may do (a
// token for namespace A cannot append to B although its tokens line
// allows it; an appender cannot change policy; a policy entry needs both
// the admin role and an admin key), and the policy's admin keys may
// redact (no --admin-keys) when granted the redaction payload type; an
// admin key without that grant is refused, naming the type.
func TestPolicyRolesAndRedaction(t *testing.T) {
	admin, admin2, teamA := newPolicyTestKey(t, "admin"), newPolicyTestKey(t, "admin2"), newPolicyTestKey(t, "team-a")
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	doc := fmt.Sprintf(`policyVersion: 1
replace: true
keys:
  - name: admin
    admin: true
    payloadTypes: [%s, %s]
    publicKey: |
%s
  - name: policy-only-admin
    admin: true
    payloadTypes: [%s]
    publicKey: |
%s
  - name: team-a
    namespaces: [team-a, team-b]
    publicKey: |
%s
identities:
  - {name: team-a, roles: [appender], namespaces: [team-a]}
  - {name: ops, roles: [admin]}
`, policy.PayloadType, redaction.PayloadType, indent(admin.pem), policy.PayloadType, indent(admin2.pem), indent(teamA.pem))
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens")
	lines := "team-a " + auth.HashToken("tok-a") + " roles=appender ns=team-a,team-b\nops " + auth.HashToken("tok-ops") + " roles=appender ns=ops\n"
	if err := os.WriteFile(tokens, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startRun(t, "--origin", "test.provledger/policy-roles", "--policy", file, "--auth-tokens", tokens, "--data", filepath.Join(dir, "data"),
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "", "--log-level", "warn")
	lc := n.dial(t)
	const typ = "application/vnd.in-toto+json"
	addJob := `{"policyVersion": 1, "jobs": [{"namespace": "team-a", "name": "etl", "approvedVersions": ["abc1234"]}]}`
	var redactBody []byte
	redact := func(k policyTestKey) *provledgerpb.AppendRequest {
		return policyRequest(t, "admin", redaction.PayloadType, string(redactBody), k)
	}
	steps := []struct {
		name, token string
		req         func() *provledgerpb.AppendRequest
		code        codes.Code
		want        string
	}{
		{"team-a in team-a", "tok-a", func() *provledgerpb.AppendRequest { return policyRequest(t, "team-a", typ, `{"n":1}`, teamA) }, codes.OK, ""},
		{"team-a in team-b (tokens file allows, policy does not)", "tok-a", func() *provledgerpb.AppendRequest { return policyRequest(t, "team-b", typ, `{"n":2}`, teamA) }, codes.PermissionDenied, `"team-a" may not append to namespace "team-b"`},
		{"appender applies policy (in its namespace, signed by an admin key)", "tok-a", func() *provledgerpb.AppendRequest {
			return policyRequest(t, "team-a", policy.PayloadType, addJob, admin)
		}, codes.PermissionDenied, "needs the admin role"},
		{"admin role, no admin key", "tok-ops", func() *provledgerpb.AppendRequest {
			return policyRequest(t, "provledger.policy", policy.PayloadType, addJob, teamA)
		}, codes.PermissionDenied, "admin key"},
		{"admin role and admin key", "tok-ops", func() *provledgerpb.AppendRequest {
			return policyRequest(t, "provledger.policy", policy.PayloadType, addJob, admin)
		}, codes.OK, ""},
		{"redaction by an admin key not granted it", "tok-ops", func() *provledgerpb.AppendRequest { return redact(admin2) }, codes.PermissionDenied, "granted payload types " + policy.PayloadType + " only"},
		{"redaction by an admin key granted it", "tok-ops", func() *provledgerpb.AppendRequest { return redact(admin) }, codes.OK, ""},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, st := range steps {
		if strings.HasPrefix(st.name, "redaction") && redactBody == nil {
			e, err := lc.GetEntry(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer tok-ops"), &provledgerpb.GetEntryRequest{Index: 1})
			if err != nil {
				t.Fatal(err)
			}
			redactBody, err = redaction.Encode(redaction.Payload{Reason: "erasure request", Targets: []redaction.Target{{Index: 1, EnvelopeDigest: sha256.Sum256(e.GetEnvelopeJson())}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		_, err := lc.Append(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+st.token), st.req())
		if status.Code(err) != st.code || !strings.Contains(status.Convert(err).Message(), st.want) {
			t.Errorf("%s: %v, want %v mentioning %q", st.name, err, st.code, st.want)
		}
	}
	e, err := lc.GetEntry(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer tok-ops"), &provledgerpb.GetEntryRequest{Index: 1})
	if err != nil {
		t.Fatal(err)
	}
	if e.RedactedBy == nil || e.GetRedactedBy() != 3 || len(e.GetEnvelopeJson()) != 0 {
		t.Errorf("entry 1 after the redaction: redacted by %v, envelope %d bytes; want redacted by entry 3", e.RedactedBy, len(e.GetEnvelopeJson()))
	}
}
