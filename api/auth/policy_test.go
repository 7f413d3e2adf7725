package auth

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/ledger/redaction"
)

// testPolicy returns the State of a policy document with identities.
func testPolicy(t *testing.T, index uint64, doc string) *policy.State {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return (*policy.State)(nil).Apply(index, p)
}

// TestPolicyRoles: through real gRPC, the identities of the policy in
// force decide what the callers they name may do (the tokens file only
// authenticates them); callers the policy does not name keep their tokens
// file grant; a policy change applies to the next request; an appender
// cannot append a policy or a redaction entry, however the envelope
// spells its type.
func TestPolicyRoles(t *testing.T) {
	e, a := startAuthed(t, false)
	otherKey := apitest.KeyID(apitest.OtherKey).String()
	var cur atomic.Pointer[policy.State]
	a.SetPolicy(func() *policy.State { return cur.Load() })
	cur.Store(testPolicy(t, 4, `policyVersion: 1
identities:
  - {name: team-a, roles: [appender], namespaces: ["team-c", "team-c/*"]}
  - {name: reader}
  - {name: keyed, roles: [appender], namespaces: [team-a], keys: ["`+otherKey+`"]}
  - {name: typed, roles: [appender, reader], namespaces: [team-a], payloadTypes: ["application/vnd.provledger.cost+json"]}
`))
	lc := e.Client
	i := 100
	next := func() int { i++; return i }
	appendTo := func(ns string) func(ctx context.Context) error {
		return func(ctx context.Context) error { _, err := lc.Append(ctx, nsRequest(next(), ns)); return err }
	}
	// adminEntry appends an entry of an admin-only payload type (policy,
	// redaction) to team-c as DSSE JSON, its type escaped if asked.
	adminEntry := func(ptype string, escape bool) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			env := apitest.Sign(ptype, []byte(`{"policyVersion":1}`), apitest.TrustedKey)
			de := &envelope.Envelope{PayloadType: env.PayloadType, Payload: env.Payload, Signatures: []envelope.Signature{{KeyID: env.Signatures[0].Keyid, Sig: env.Signatures[0].Sig}}}
			b := de.Marshal()
			if escape {
				b = bytes.Replace(b, []byte(ptype), []byte(strings.Replace(ptype, "+", `\u002b`, 1)), 1)
				if bytes.Contains(b, []byte(ptype)) {
					t.Fatalf("the escaped envelope still spells %s: %s", ptype, b)
				}
			}
			_, err := lc.Append(ctx, &provledgerpb.AppendRequest{Namespace: "team-c", Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: b}})
			return err
		}
	}
	// envelopeEntry appends an entry of payload type ptype to ns as a
	// protobuf envelope.
	envelopeEntry := func(ns, ptype string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			env := apitest.Sign(ptype, []byte(`{"policyVersion":1}`), apitest.TrustedKey)
			_, err := lc.Append(ctx, &provledgerpb.AppendRequest{Namespace: ns, Body: &provledgerpb.AppendRequest_Envelope{Envelope: env}})
			return err
		}
	}
	read := func(ctx context.Context) error {
		_, err := lc.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: 0})
		return err
	}
	steps := []struct {
		name, token string
		call        func(ctx context.Context) error
		want        codes.Code
		wantMsg     string
	}{
		{"admin seeds an entry", "admin", appendTo("seed"), codes.OK, ""},
		{"team-a: the policy grants team-c", "team-a", appendTo("team-c"), codes.OK, ""},
		{"team-a: patterns as in the policy", "team-a", appendTo("team-c/etl"), codes.OK, ""},
		{"team-a: its tokens file namespace no longer", "team-a", appendTo("team-a"), codes.PermissionDenied, `may not append to namespace "team-a" (it may append to team-c, team-c/*)`},
		{"team-b: not named, tokens file grant", "team-b", appendTo("team-b/x"), codes.OK, ""},
		{"team-b: not named, still only its namespaces", "team-b", appendTo("team-c"), codes.PermissionDenied, "team-b"},
		{"reader: no roles in the policy", "reader", read, codes.PermissionDenied, "lacks the reader role"},
		{"typed: reader by policy", "typed", read, codes.OK, ""},
		{"typed: type not granted", "typed", appendTo("team-a"), codes.PermissionDenied, "may not append payload type"},
		{"keyed: key not granted by the policy", "keyed", appendTo("team-a"), codes.PermissionDenied, "identities[].keys of the policy in force (policy entry 4)"},
		{"appender: policy entry", "team-a", adminEntry(policy.PayloadType, false), codes.PermissionDenied, "may not append a policy entry: that needs the admin role"},
		{"appender: policy entry with an escaped type", "team-a", adminEntry(policy.PayloadType, true), codes.PermissionDenied, "may not append a policy entry: that needs the admin role"},
		{"appender: redaction entry", "team-a", adminEntry(redaction.PayloadType, false), codes.PermissionDenied, "may not append a redaction entry: that needs the admin role"},
		{"appender: redaction entry with an escaped type", "team-a", adminEntry(redaction.PayloadType, true), codes.PermissionDenied, "may not append a redaction entry: that needs the admin role"},
		{"team-b: policy entry without a policy grant", "team-b", envelopeEntry("team-b", policy.PayloadType), codes.PermissionDenied, "may not append a policy entry: that needs the admin role"},
		{"team-b: redaction entry without a policy grant", "team-b", envelopeEntry("team-b", redaction.PayloadType), codes.PermissionDenied, "may not append a redaction entry: that needs the admin role"},
	}
	for _, st := range steps {
		err := st.call(withToken(st.token))
		if got := status.Code(err); got != st.want || !strings.Contains(status.Convert(err).Message(), st.wantMsg) {
			t.Errorf("%s: %v (%v); want %v mentioning %q", st.name, got, err, st.want, st.wantMsg)
		}
	}

	// The next policy entry gives reader its role back and team-a its
	// namespace: effective for the next request, no reload.
	cur.Store(testPolicy(t, 9, `policyVersion: 1
identities:
  - {name: team-a, roles: [appender], namespaces: [team-a]}
  - {name: reader, roles: [reader]}
`))
	if err := read(withToken("reader")); err != nil {
		t.Errorf("reader after the policy change: %v", err)
	}
	if err := appendTo("team-a")(withToken("team-a")); err != nil {
		t.Errorf("team-a to team-a after the policy change: %v", err)
	}
	if err := appendTo("team-c")(withToken("team-a")); status.Code(err) != codes.PermissionDenied {
		t.Errorf("team-a to team-c after the policy change: %v", err)
	}
	// A policy without identities gives the tokens file back its say.
	cur.Store(testPolicy(t, 12, "policyVersion: 1\nreplace: true\n"))
	if err := appendTo("team-c")(withToken("team-a")); status.Code(err) != codes.PermissionDenied {
		t.Errorf("team-a to team-c under the tokens file: %v", err)
	}
	if err := appendTo("team-a")(withToken("team-a")); err != nil {
		t.Errorf("team-a to team-a under the tokens file: %v", err)
	}
}

// TestPolicyCertificateIdentity: a client certificate the policy names
// authenticates as that identity without a tokens file line; one the
// policy does not name still needs one.
func TestPolicyCertificateIdentity(t *testing.T) {
	a, err := New(Config{Principals: testTokens(t), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	st := testPolicy(t, 2, `policyVersion: 1
identities:
  - {name: ci, certificate: "uri:spiffe://prod.example/ci", roles: [appender], namespaces: ["ci/*"]}
`)
	a.SetPolicy(func() *policy.State { return st })
	u, _ := url.Parse("spiffe://prod.example/ci")
	p, err := a.Authenticate(Credentials{Cert: &x509.Certificate{URIs: []*url.URL{u}, Subject: pkix.Name{CommonName: "ci-runner"}}})
	if err != nil || p.Name != "ci" {
		t.Fatalf("Authenticate = %v, %v; want ci", p, err)
	}
	if at, ok := p.PolicyEntry(); !ok || at != 2 {
		t.Errorf("PolicyEntry = %d, %v", at, ok)
	}
	if !p.MayAppendTo("ci/nightly") || p.MayAppendTo("ci") || p.Has(RoleReader) {
		t.Errorf("grant of ci: %+v", p)
	}
	if _, err := a.Authenticate(Credentials{Cert: &x509.Certificate{Subject: pkix.Name{CommonName: "stranger"}}}); err == nil || !strings.Contains(err.Error(), "nor identity in the policy") {
		t.Errorf("stranger: %v", err)
	}
}

// TestMayBeAdminEntry: the pre-check of DSSE JSON bodies says "maybe" for
// every body whose payload type is an admin entry's, spelled plainly or
// escaped, and "no" for other types.
func TestMayBeAdminEntry(t *testing.T) {
	body := func(ptype string) []byte {
		env := apitest.Sign(ptype, []byte(`{"x":"application/vnd.provledger.policy"}`), apitest.TrustedKey)
		de := &envelope.Envelope{PayloadType: env.PayloadType, Payload: env.Payload, Signatures: []envelope.Signature{{KeyID: env.Signatures[0].Keyid, Sig: env.Signatures[0].Sig}}}
		return de.Marshal()
	}
	for _, e := range adminEntries {
		if !bytes.HasSuffix([]byte(e.ptype), jsonSuffix) {
			t.Errorf("admin entry type %s does not end with %s", e.ptype, jsonSuffix)
		}
	}
	for _, c := range []struct {
		name string
		dsse []byte
		want bool
	}{
		{"policy", body(policy.PayloadType), true},
		{"redaction", body(redaction.PayloadType), true},
		{"escaped redaction", bytes.Replace(body(redaction.PayloadType), []byte("+json"), []byte(`\u002bjson`), 1), true},
		{"in-toto", body("application/vnd.in-toto+json"), false},
		{"a type ending like one", body("application/vnd.example.policy+json"), false},
		{"no +json", body("application/octet-stream"), false},
		{"empty", nil, false},
		{"only the type", []byte(redaction.PayloadType), true},
	} {
		if got := mayBeAdminEntry(c.dsse); got != c.want {
			t.Errorf("%s: %v, want %v (%s)", c.name, got, c.want, c.dsse)
		}
	}
}
