package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/olingest"
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

// policyFileKey is a key of a test policy file: its name, whether it is
// an admin key, and what it may sign (nil: everything).
type policyFileKey struct {
	name               string
	key                policyTestKey
	admin              bool
	namespaces, ptypes []string
}

// writePolicyFile writes a replace: true policy granting keys, followed
// by the YAML of extra (e.g. identities), to dir/policy.yaml and returns
// its path.
func writePolicyFile(t *testing.T, dir string, keys []policyFileKey, extra string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("policyVersion: 1\nreplace: true\nkeys:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "  - name: %s\n", k.name)
		if k.admin {
			b.WriteString("    admin: true\n")
		}
		if k.namespaces != nil {
			fmt.Fprintf(&b, "    namespaces: [%s]\n", strings.Join(k.namespaces, ", "))
		}
		if k.ptypes != nil {
			fmt.Fprintf(&b, "    payloadTypes: [%s]\n", strings.Join(k.ptypes, ", "))
		}
		b.WriteString("    publicKey: |\n      " + strings.ReplaceAll(strings.TrimSpace(k.key.pem), "\n", "\n      ") + "\n")
	}
	b.WriteString(extra)
	file := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
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
	file := writePolicyFile(t, dir, []policyFileKey{
		{name: "admin", key: admin, admin: true, namespaces: []string{"provledger.policy"}},
		{name: "team-a", key: teamA, namespaces: []string{"team-a"}},
		{name: "team-b", key: teamB, namespaces: []string{"team-b"}},
	}, "")
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
// redact (no --admin-keys) when granted the redaction payload type and
// sent by a caller with the admin role; an admin key without that grant
// is refused, naming the type, and so is an appender's redaction signed
// by an admin key, naming the role.
func TestPolicyRolesAndRedaction(t *testing.T) {
	admin, admin2, teamA := newPolicyTestKey(t, "admin"), newPolicyTestKey(t, "admin2"), newPolicyTestKey(t, "team-a")
	dir := t.TempDir()
	file := writePolicyFile(t, dir, []policyFileKey{
		{name: "admin", key: admin, admin: true, ptypes: []string{policy.PayloadType, redaction.PayloadType}},
		{name: "policy-only-admin", key: admin2, admin: true, ptypes: []string{policy.PayloadType}},
		{name: "team-a", key: teamA, namespaces: []string{"team-a", "team-b"}},
	}, `identities:
  - {name: team-a, roles: [appender], namespaces: [team-a]}
  - {name: ops, roles: [admin]}
`)
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
	redact := func(ns string, k policyTestKey) func() *provledgerpb.AppendRequest {
		return func() *provledgerpb.AppendRequest {
			return policyRequest(t, ns, redaction.PayloadType, string(redactBody), k)
		}
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
		{"redaction by an appender (in its namespace, signed by an admin key granted it)", "tok-a", redact("team-a", admin), codes.PermissionDenied, `"team-a" (roles appender) may not append a redaction entry: that needs the admin role`},
		{"redaction by an admin key not granted it", "tok-ops", redact("admin", admin2), codes.PermissionDenied, "granted payload types " + policy.PayloadType + " only"},
		{"redaction by an admin key granted it", "tok-ops", redact("admin", admin), codes.OK, ""},
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

// unenforcedWarnings returns the policy entries named by the node's
// msgIdentitiesNotEnforced warnings in its JSON log, in order.
func unenforcedWarnings(t *testing.T, log string) []uint64 {
	t.Helper()
	var out []uint64
	for _, line := range strings.Split(log, "\n") {
		var rec struct {
			Level, Msg  string
			PolicyEntry *uint64 `json:"policy_entry"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != msgIdentitiesNotEnforced {
			continue
		}
		if rec.Level != "WARN" || rec.PolicyEntry == nil {
			t.Fatalf("warning without level WARN or policy_entry: %s", line)
		}
		out = append(out, *rec.PolicyEntry)
	}
	return out
}

// TestPolicyIdentitiesWithoutAuth: a node whose policy names identities
// while authentication is off (no --auth-tokens) warns at start that they
// are not enforced and how to turn authentication on, and again when a
// policy entry that names identities is applied; with --auth-tokens, or
// with a policy without identities, it does not warn.
func TestPolicyIdentitiesWithoutAuth(t *testing.T) {
	admin := newPolicyTestKey(t, "admin")
	const identities = "identities:\n  - {name: team-a, roles: [appender], namespaces: [team-a]}\n"
	for _, tc := range []struct {
		name       string
		identities string
		authTokens bool
		want       []uint64 // the policy entries warned about at start
	}{
		{"identities, auth off", identities, false, []uint64{0}},
		{"identities, --auth-tokens", identities, true, nil},
		{"no identities, auth off", "", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := writePolicyFile(t, dir, []policyFileKey{{name: "admin", key: admin, admin: true}}, tc.identities)
			args := []string{"--origin", "test.provledger/policy-warn", "--policy", file, "--data", filepath.Join(dir, "data"),
				"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "", "--log-level", "warn", "--log-format", "json"}
			if tc.authTokens {
				tokens := filepath.Join(dir, "tokens")
				if err := os.WriteFile(tokens, []byte("ops "+auth.HashToken("tok-ops")+" roles=admin\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--auth-tokens", tokens)
			}
			n := startRun(t, args...)
			// The start-time warning is logged before the node serves.
			got := unenforcedWarnings(t, n.stderr.String())
			if !slices.Equal(got, tc.want) {
				t.Fatalf("warnings at start about policy entries %v, want %v; log:\n%s", got, tc.want, &n.stderr)
			}
			if tc.want == nil {
				return
			}
			for _, hint := range []string{"--auth-tokens FILE", "PROVLEDGER_AUTH_TOKENS", "--tls-client-ca", `"identities":["team-a"]`} {
				if !strings.Contains(n.stderr.String(), hint) {
					t.Errorf("the warning does not say %s:\n%s", hint, &n.stderr)
				}
			}
			// An amendment that names another identity is applied: warned
			// about too (by the node's watcher, once the index has it).
			amend := `{"policyVersion": 1, "identities": [{"name": "ci", "roles": ["appender"], "namespaces": ["ci"]}]}`
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, err := n.dial(t).Append(ctx, policyRequest(t, "provledger.policy", policy.PayloadType, amend, admin))
			if err != nil {
				t.Fatal(err)
			}
			want := []uint64{0, r.GetIndex()}
			for !slices.Equal(unenforcedWarnings(t, n.stderr.String()), want) {
				select {
				case <-ctx.Done():
					t.Fatalf("warnings about policy entries %v, want %v; log:\n%s", unenforcedWarnings(t, n.stderr.String()), want, &n.stderr)
				case <-time.After(10 * time.Millisecond):
				}
			}
		})
	}
}

// TestPolicyIngestIdentities: with --policy and --ingest-tokens, an
// OpenLineage ingest token that the policy names gets the identity's
// grant (its namespace is its name: refused when the identity is not
// granted it, although its tokens line allows it), one the policy does
// not name keeps its line, and the next policy entry counts from the next
// request.
func TestPolicyIngestIdentities(t *testing.T) {
	admin, ingest := newPolicyTestKey(t, "admin"), newPolicyTestKey(t, "ingest")
	dir := t.TempDir()
	file := writePolicyFile(t, dir, []policyFileKey{
		{name: "admin", key: admin, admin: true},
		{name: "ingest", key: ingest, namespaces: []string{"airflow", "spark"}, ptypes: []string{"application/vnd.openlineage.*"}},
	}, "identities:\n  - {name: airflow, roles: [appender], namespaces: [team-a]}\n")
	keyPEM, err := keys.MarshalPrivatePEM(ingest.priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, tokens := filepath.Join(dir, "ingest.key"), filepath.Join(dir, "tokens")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokens, []byte("airflow "+auth.HashToken("tok-airflow")+"\nspark "+auth.HashToken("tok-spark")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startRun(t, "--origin", "test.provledger/policy-ingest", "--policy", file, "--ingest-tokens", tokens, "--ingest-key", keyFile,
		"--data", filepath.Join(dir, "data"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "", "--log-level", "error")
	amend := `{"policyVersion": 1, "identities": [{"name": "airflow", "roles": ["appender"], "namespaces": ["airflow"]}]}`
	for i, st := range []struct {
		name, token string
		code        int
		want        string
	}{
		{"named, namespace not granted", "tok-airflow", http.StatusForbidden, `the policy in force (policy entry 0) grants identity \"airflow\" namespaces team-a only`},
		{"not named", "tok-spark", http.StatusOK, `"status":"ok"`},
		{"named, after the policy grants its namespace", "tok-airflow", http.StatusOK, `"status":"ok"`},
	} {
		if strings.HasPrefix(st.name, "named, after") {
			if _, err := n.dial(t).Append(context.Background(), policyRequest(t, "provledger.policy", policy.PayloadType, amend, admin)); err != nil {
				t.Fatal(err)
			}
		}
		event := fmt.Sprintf(`{"eventType":"COMPLETE","eventTime":"2026-11-26T10:00:0%dZ","producer":"https://example.test","run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"},"job":{"namespace":"etl","name":"daily"}}`, i)
		req, err := http.NewRequest(http.MethodPost, "http://"+n.httpAddr+olingest.PathEvent, strings.NewReader(event))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+st.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != st.code || !strings.Contains(string(body), st.want) {
			t.Errorf("%s: %d %s (%v); want %d mentioning %q", st.name, resp.StatusCode, body, err, st.code, st.want)
		}
	}
}
