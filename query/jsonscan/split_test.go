package jsonscan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

var splitSeeds = []string{
	`{}`, `[]`, ` {}`, `{} `, `{"a":1}`, `{"a":1,"a":2}`, `{"a" : [1, {"b":null}] , "c":"d"}`, `{"\u0061":1}`,
	"{\"\xff\":1}", `{"é":true}`, `{"a":1,}`, `{"a":}`, `{"a"}`, `{,}`, `[1,2,3]`, `[ 1 , "x" , [ ] ]`, `[1,]`,
	`[`, `{`, `{"a":1}x`, `[1]]`, `"s"`, `1`, `null`, `{"A":1,"a":2}`, `[{"name":"x","digest":{"sha256":"ab"}}]`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"ab"}}],"predicate":{"pad":"` + strings.Repeat("x", 100) + `"}}`,
}

// TestObject holds Object to json.Unmarshal into map[string]RawMessage:
// when Object answers, the maps are equal; when it declines on a valid
// object, the object has a duplicate or a name that needs decoding.
func TestObject(t *testing.T) {
	for _, s := range splitSeeds {
		checkObject(t, []byte(s))
	}
	if _, ok := Object([]byte(`{"a":1}`)); !ok {
		t.Error("Object declined a plain object")
	}
	if _, ok := Object([]byte(`{"a":1,"a":1}`)); ok {
		t.Error("Object accepted a duplicate member")
	}
}

func checkObject(t *testing.T, b []byte) {
	t.Helper()
	got, ok := Object(b)
	var want map[string]json.RawMessage
	err := json.Unmarshal(b, &want)
	isObj := len(b) > 0 && b[0] == '{' && bytes.HasSuffix(b, []byte("}"))
	switch {
	case ok && err != nil:
		t.Fatalf("Object(%q) accepted what encoding/json rejects: %v", b, err)
	case ok && !reflect.DeepEqual(got, want):
		t.Fatalf("Object(%q) = %q, encoding/json gives %q", b, got, want)
	case !ok && err == nil && isObj && want != nil:
		// A decline on a valid object must be a duplicate or a name that
		// decodes to something else.
		if countDistinctRaw(b) == len(want) && !escapedOrHigh(b) {
			t.Fatalf("Object(%q) declined a plain object without duplicates", b)
		}
	}
}

// escapedOrHigh reports whether b has a backslash or a byte ≥ 0x80 (where
// a member name may decode to other bytes).
func escapedOrHigh(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c >= 0x80 {
			return true
		}
	}
	return false
}

// countDistinctRaw counts the members of a valid object as encoding/json's
// token stream names them.
func countDistinctRaw(b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return -1
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			return -1
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return -1
		}
		n++
	}
	return n
}

func TestArray(t *testing.T) {
	for _, s := range splitSeeds {
		checkArray(t, []byte(s))
	}
}

func checkArray(t *testing.T, b []byte) {
	t.Helper()
	got, ok := Array(b)
	var want []json.RawMessage
	err := json.Unmarshal(b, &want)
	isArr := len(b) > 0 && b[0] == '[' && bytes.HasSuffix(b, []byte("]"))
	switch {
	case ok && err != nil:
		t.Fatalf("Array(%q) accepted what encoding/json rejects: %v", b, err)
	case ok && !reflect.DeepEqual(got, want):
		t.Fatalf("Array(%q) = %q, encoding/json gives %q", b, got, want)
	case !ok && err == nil && isArr:
		t.Fatalf("Array(%q) declined a valid array", b)
	}
}

func TestString(t *testing.T) {
	for _, s := range append([]string{`"a"`, `"é"`, "\"\xff\"", `"a\"b"`, `"\u0041"`, "\"\x01\"", `"`, `""`, `"a""`}, splitSeeds...) {
		checkString(t, []byte(s))
	}
}

func checkString(t *testing.T, b []byte) {
	t.Helper()
	got, ok := String(b)
	var want string
	err := json.Unmarshal(b, &want)
	if ok && (err != nil || got != want) {
		t.Fatalf("String(%q) = %q, encoding/json gives %q, %v", b, got, want, err)
	}
}

func FuzzObject(f *testing.F) {
	for _, s := range append(splitSeeds, jsonSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkObject(t, b)
		checkArray(t, b)
		checkString(t, b)
	})
}

func BenchmarkObject(b *testing.B) {
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"run-1","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}],"predicateType":"https://example/p","predicate":{"pad":"` + strings.Repeat("x", 800) + `","n":[1,2.5,-3e4,true,false,null]}}`)
	b.Run("ours", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			Object(payload)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			var m map[string]json.RawMessage
			json.Unmarshal(payload, &m)
		}
	})
}
