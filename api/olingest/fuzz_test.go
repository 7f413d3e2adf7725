package olingest_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/provledger/provledger/api/olingest"
)

// FuzzSplitBatch: SplitBatch never panics; what it accepts is a JSON
// array whose elements it returns exactly (each is valid JSON, and they
// appear in the body in order).
func FuzzSplitBatch(f *testing.F) {
	for _, s := range []string{`[]`, `[{}]`, `[{"a":1}, {"b":[2,3]}]`, ` [ {} , {} ] `, `{}`, `[`, `[{}`, `[] x`, `[1,"x",null]`, `[{"eventType":"START","run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"}}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		elems, err := olingest.SplitBatch(body, 50)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		rest := body
		for i, e := range elems {
			if !json.Valid(e) {
				t.Fatalf("element %d is not JSON: %q", i, e)
			}
			j := bytes.Index(rest, e)
			if j < 0 {
				t.Fatalf("element %d %q is not in the body (in order)", i, e)
			}
			rest = rest[j+len(e):]
		}
		if len(elems) > 50 {
			t.Fatalf("%d elements above the limit", len(elems))
		}
	})
}
