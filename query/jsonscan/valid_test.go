package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

var jsonSeeds = []string{
	``, ` `, `{}`, `[]`, `""`, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `+1`, `1e`, `1e+`, `1E-7`, `1e5x`,
	`-12.34e+56`, `true`, `truex`, `tru`, `false`, `null`, `nul`, `NaN`, `"\u00e9"`, `"\u00g9"`, `"\u12"`,
	`"a\"b"`, `"\x"`, `"\/"`, "\"\x1f\"", "\"\x7f\xff\xfe\"", `"unterminated`, `{"a":1,}`, `[1,]`, `[,1]`,
	`{"a" 1}`, `{a:1}`, `{"a":1 "b":2}`, `[1 2]`, " \t\r\n[ 1 , { \"k\" : [ null ] } ]\n", `[1]]`, `{}{}`,
	`{"in-toto":{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"ab"}}]}}`,
	"\ufeff{}", "[\"\x00\"]", `[-]`, `[--1]`, `[1e1.5]`, `{"":""}`, `{"a":{"b":{"c":[[[]]]}}}`,
}

func TestValid(t *testing.T) {
	for _, s := range jsonSeeds {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("Valid(%q) = %v, json.Valid says %v", s, got, want)
		}
	}
	for _, depth := range []int{maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			closeCh := "]"
			if open != "[" {
				closeCh = "}"
			}
			s := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(closeCh, depth))
			if got, want := Valid(s), json.Valid(s); got != want {
				t.Errorf("depth %d of %q: validJSON = %v, json.Valid says %v", depth, open, got, want)
			}
		}
	}
}

// TestValidStringWords puts each byte a string scan must notice at every
// offset of the 8-byte words the scan skips, in strings of every length
// around a word, and holds Valid to encoding/json on each.
func TestValidStringWords(t *testing.T) {
	for _, c := range []string{`"`, `\\`, `\"`, `\u00e9`, `\x`, "\x00", "\x1f", " ", "\x7f", "\x80", "\xff", `\`} {
		for n := 0; n <= 24; n++ {
			for at := 0; at <= n; at++ {
				s := `["` + strings.Repeat("a", at) + c + strings.Repeat("b", n-at) + `"]`
				if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
					t.Errorf("Valid(%q) = %v, json.Valid says %v", s, got, want)
				}
				if m, ok := Object([]byte(`{"k":` + s[1:len(s)-1] + `}`)); ok != json.Valid([]byte(`{"k":`+s[1:len(s)-1]+`}`)) {
					t.Errorf("Object of %q: ok %v (%d members), json.Valid disagrees", s, ok, len(m))
				}
			}
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"run-1","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}],"predicateType":"https://example/p","predicate":{"pad":"` + strings.Repeat("x", 800) + `","n":[1,2.5,-3e4,true,false,null]}}`)
	if !json.Valid(payload) || !bytes.Equal(payload, payload) {
		b.Fatal("bad payload")
	}
	b.Run("ours", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			Valid(payload)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			json.Valid(payload)
		}
	})
}
