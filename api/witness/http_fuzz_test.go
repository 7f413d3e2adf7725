package witness

import (
	"bytes"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/provledger/provledger/crypto/checkpoint"
)

// FuzzServeHTTP drives the witness's HTTP API (routing, method, body
// limit, then Add) with arbitrary methods, paths and bodies. Whatever the
// request: a defined status, a message with every 4xx, and a cosignature
// (200) only for a well-formed request whose checkpoint the log's key
// signed.
func FuzzServeHTTP(f *testing.F) {
	l := newTestLog(f, 8, "")
	f.Add(uint8(0), uint8(0), append([]byte("old 0\n\n"), l.note(f, 8)...))
	f.Add(uint8(0), uint8(0), append([]byte("old 0\n\n"), l.note(f, 3)...))
	f.Add(uint8(1), uint8(0), []byte("old 0\n\n"))
	f.Add(uint8(0), uint8(1), []byte{})
	f.Add(uint8(0), uint8(2), []byte("x"))
	f.Add(uint8(0), uint8(0), bytes.Repeat([]byte("a"), MaxRequestSize+1))
	s := newServer(f, &MemStore{})
	lv, err := checkpoint.NewVerifier(origin, logKey().Public().(ed25519.PublicKey))
	if err != nil {
		f.Fatal(err)
	}
	methods := []string{http.MethodPost, http.MethodGet, http.MethodPut, http.MethodHead}
	paths := []string{"/add-checkpoint", "/healthz", "/", "/add-checkpoint/x"}
	f.Fuzz(func(t *testing.T, m, p uint8, body []byte) {
		req := httptest.NewRequest(methods[int(m)%len(methods)], paths[int(p)%len(paths)], bytes.NewReader(body))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 403, 404, 405, 409, 413, 422:
		default:
			t.Fatalf("%s %s: status %d %q", req.Method, req.URL.Path, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && rec.Body.Len() == 0 && req.Method != http.MethodHead {
			t.Fatalf("%s %s: %d without a message", req.Method, req.URL.Path, rec.Code)
		}
		if rec.Code != 200 || req.URL.Path != "/add-checkpoint" {
			return
		}
		if !strings.HasPrefix(rec.Body.String(), "— ") {
			t.Fatalf("200 without a cosignature line: %q", rec.Body)
		}
		r, err := ParseRequest(body)
		if err != nil {
			t.Fatalf("cosigned a request that does not parse: %v", err)
		}
		if _, err := checkpoint.Open(r.Checkpoint, lv); err != nil {
			t.Fatalf("cosigned a checkpoint the log did not sign: %v", err)
		}
	})
}
