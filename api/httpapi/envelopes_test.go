package httpapi_test

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/api/httpapi"
	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/crypto/record"
)

// splitEnvelopes decodes an envelope bundle: 4-byte big-endian length,
// then that many bytes; length 0 is a redacted envelope (nil).
func splitEnvelopes(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("truncated length after %d envelopes", len(out))
		}
		n := int(binary.BigEndian.Uint32(b))
		if len(b) < 4+n {
			t.Fatalf("envelope %d cut short", len(out))
		}
		var e []byte
		if n > 0 {
			e = b[4 : 4+n]
		}
		out = append(out, e)
		b = b[4+n:]
	}
	return out
}

func TestEnvelopeBundle(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	env.Fill(t, 0, 300, 100)
	digest := func(i uint64) [32]byte {
		raw, err := env.Log.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		r, err := record.Unmarshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		return r.EnvelopeDigest
	}
	// Redact entry 260's envelope the way the ledger stores a redaction:
	// the envelope (v<index>) is gone, its digest key stays.
	if err := env.Log.DB().Delete(binary.BigEndian.AppendUint64([]byte{'v'}, 260), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path        string
		code        int
		first, want int    // with 200: first index and count
		redacted    int    // index expected empty, or -1
		body        string // with an error: substring
	}{
		{path: "/envelopes/000", code: 200, first: 0, want: 256, redacted: -1},
		{path: "/envelopes/001.p/44", code: 200, first: 256, want: 44, redacted: 260},
		{path: "/envelopes/001.p/3", code: 200, first: 256, want: 3, redacted: -1},
		{path: "/envelopes/001.p/45", code: 404, body: "fetch /checkpoint"},
		{path: "/envelopes/001", code: 404, body: "not available"},
		{path: "/envelopes/x001/000", code: 404, body: "not available"},
		{path: "/envelopes/1", code: 400, body: "want envelopes/<N>[.p/<W>]"},
		{path: "/envelopes/000.p/256", code: 400, body: "want envelopes/<N>"},
		{path: "/envelopes/000.p/0", code: 400, body: "want envelopes/<N>"},
		{path: "/envelopes/", code: 400, body: "want envelopes/<N>"},
		{path: "/envelopes/x000/001", code: 400, body: "want envelopes/<N>"},
	} {
		code, h, body := get(t, "GET", env.HTTPURL+tc.path)
		if code != tc.code {
			t.Errorf("GET %s: %d %s, want %d", tc.path, code, body, tc.code)
			continue
		}
		if code != 200 {
			if !strings.Contains(string(body), tc.body) || h.Get("Cache-Control") != "no-store" {
				t.Errorf("GET %s: %q (Cache-Control %q), want it to contain %q", tc.path, body, h.Get("Cache-Control"), tc.body)
			}
			continue
		}
		if h.Get("Content-Type") != httpapi.EnvelopesContentType || h.Get("Cache-Control") != httpapi.CacheEnvelopes {
			t.Errorf("GET %s: Content-Type %q, Cache-Control %q", tc.path, h.Get("Content-Type"), h.Get("Cache-Control"))
		}
		envs := splitEnvelopes(t, body)
		if len(envs) != tc.want {
			t.Fatalf("GET %s: %d envelopes, want %d", tc.path, len(envs), tc.want)
		}
		for k, e := range envs {
			i := tc.first + k
			if i == tc.redacted {
				if e != nil {
					t.Errorf("GET %s: redacted entry %d served %d bytes", tc.path, i, len(e))
				}
				continue
			}
			if sha256.Sum256(e) != digest(uint64(i)) {
				t.Errorf("GET %s: envelope of entry %d does not hash to its record's digest", tc.path, i)
			}
		}
	}
	// HEAD answers with the length and no body.
	code, h, body := get(t, "HEAD", env.HTTPURL+"/envelopes/000")
	if code != 200 || len(body) != 0 || h.Get("Content-Length") == "0" {
		t.Fatalf("HEAD: %d, %d bytes, Content-Length %s", code, len(body), h.Get("Content-Length"))
	}
}
