package olingest_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/olingest"
	"github.com/provledger/provledger/crypto/keys"
)

const fuzzToken = "fuzz-token-0123456789"

// FuzzHandlerHTTP drives the real OpenLineage endpoint (olingest.Handler
// appending through the real Ledger service) with arbitrary methods,
// paths, tokens, content types and bodies. Whatever the request: no panic,
// a defined status (never 5xx), a message with every 4xx, and the log
// grows only when the endpoint answered 2xx.
func FuzzHandlerHTTP(f *testing.F) {
	e := apitest.Start(f, apitest.Options{})
	ps, err := auth.ParseFile([]byte("fuzzer " + auth.HashToken(fuzzToken) + "\n"))
	if err != nil {
		f.Fatal(err)
	}
	toks, err := olingest.NewTokens(ps)
	if err != nil {
		f.Fatal(err)
	}
	ingest, err := keys.NewSigner(apitest.TrustedKey) // trusted by the env's keyring
	if err != nil {
		f.Fatal(err)
	}
	h, err := olingest.New(olingest.Config{Appender: e.Server.Service(), Signer: ingest, Tokens: toks, MaxBatch: 10, AppendChunk: 3})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	methods := []string{http.MethodPost, http.MethodGet, http.MethodPut, http.MethodDelete}
	paths := []string{olingest.PathEvent, olingest.PathBatch, olingest.PathEvent + "/x", olingest.PathBatch + "?a=b"}
	ctypes := []string{"application/json", "text/plain", "", "application/json; charset=utf-8"}
	ev := event(nil)
	f.Add(uint8(0), uint8(0), true, uint8(0), ev)
	f.Add(uint8(0), uint8(1), true, uint8(0), append(append([]byte("["), ev...), ']'))
	f.Add(uint8(0), uint8(1), true, uint8(0), []byte(`[{"eventType":"START"},{}]`))
	f.Add(uint8(0), uint8(0), false, uint8(0), ev)
	f.Add(uint8(1), uint8(0), true, uint8(1), []byte(`{`))
	f.Add(uint8(0), uint8(2), true, uint8(2), []byte(`null`))
	f.Fuzz(func(t *testing.T, m, p uint8, withToken bool, ct uint8, body []byte) {
		req := httptest.NewRequest(methods[int(m)%len(methods)], paths[int(p)%len(paths)], bytes.NewReader(body))
		if withToken {
			req.Header.Set("Authorization", "Bearer "+fuzzToken)
		}
		if c := ctypes[int(ct)%len(ctypes)]; c != "" {
			req.Header.Set("Content-Type", c)
		}
		before := e.Log.Latest().Size
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		code := rec.Code
		switch {
		case code >= 500:
			t.Fatalf("%s %s: %d %s", req.Method, req.URL, code, rec.Body)
		case code >= 400 && rec.Body.Len() == 0:
			t.Fatalf("%s %s: %d without a message", req.Method, req.URL, code)
		case code < 200:
			t.Fatalf("%s %s: status %d", req.Method, req.URL, code)
		}
		if after := e.Log.Latest().Size; after != before && code >= 300 {
			t.Fatalf("%s %s answered %d, but the log grew from %d to %d", req.Method, req.URL, code, before, after)
		}
	})
}
