package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/provledger/provledger/crypto/envelope"
)

// FuzzHTTPMiddleware: whatever the path and Authorization header, a
// request reaches the handler only if its class allows the principal it
// authenticated as (or needs no principal).
func FuzzHTTPMiddleware(f *testing.F) {
	for _, s := range [][2]string{
		{"/checkpoint", ""}, {"/tile/entries/000.p/1", "Bearer reader"}, {"/envelope/sha256/00", "Bearer nope"},
		{"/tile/0/000", "bearer auditor"}, {"/api/v1/lineage", "Basic x"}, {"//tile/entries/../checkpoint", "Bearer  admin "},
	} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	ps, err := ParseFile([]byte("reader " + HashToken("reader") + " roles=reader\nauditor " + HashToken("auditor") + " roles=auditor\nadmin " + HashToken("admin") + " roles=admin\nappender " + HashToken("appender") + "\n"))
	if err != nil {
		f.Fatal(err)
	}
	open, err := New(Config{Principals: ps, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	private, err := New(Config{Principals: ps, PrivateAudit: true, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path, authz string, priv bool) {
		a := open
		if priv {
			a = private
		}
		var reached bool
		var who *Principal
		h := a.HTTPMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached, who = true, FromContext(r.Context())
		}))
		req := &http.Request{Method: "GET", URL: &url.URL{Path: path}, Header: http.Header{}}
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !reached {
			if rec.Code != 401 && rec.Code != 403 {
				t.Fatalf("refused with %d", rec.Code)
			}
			return
		}
		switch c := PathClass(path); c {
		case ClassPublic, ClassOwnAuth:
		case ClassAudit:
			if priv && (who == nil || !who.Has(RoleAuditor)) {
				t.Fatalf("%q reached private audit data as %v", path, who)
			}
		default:
			if who == nil || !who.Has(c.role()) {
				t.Fatalf("%q (class %v) reached as %v", path, c, who)
			}
		}
	})
}

// FuzzMayBeAdminEntry: the pre-check never says "no" for a DSSE JSON body
// that parses (envelope.Parse, as AuthorizeAppend parses it) with a policy
// or redaction payload type, however the JSON spells it; an appender could
// otherwise slip an admin entry past the role check.
func FuzzMayBeAdminEntry(f *testing.F) {
	f.Add([]byte(`{"payloadType":"application/vnd.provledger.redaction+json","payload":"e30=","signatures":[{"keyid":"k","sig":"c2ln"}]}`))
	f.Add([]byte(`{"payloadType":"application/vnd.provledger.policy\u002bjson","payload":"e30=","signatures":[{"keyid":"k","sig":"c2ln"}]}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"k","sig":"c2ln"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := envelope.Parse(b)
		if err != nil {
			return
		}
		if _, _, admin := adminEntryKind(env.PayloadType); admin && !mayBeAdminEntry(b) {
			t.Fatalf("an envelope of type %s passed the pre-check: %s", env.PayloadType, b)
		}
	})
}
