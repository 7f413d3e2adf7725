package cosignature

import (
	"testing"
)

// FuzzParseLines: ParseLines never panics, and what it accepts formats
// back to the same bytes.
func FuzzParseLines(f *testing.F) {
	f.Add([]byte("— w AAAAAAAA\n"))
	f.Add([]byte("— witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, err := ParseLines(b)
		if err != nil {
			return
		}
		var out string
		for _, l := range ls {
			out += l.String()
		}
		if out != string(b) {
			t.Fatalf("round trip: %q -> %q", b, out)
		}
	})
}

// FuzzParseVerifierKey: never panics; accepted keys format back.
func FuzzParseVerifierKey(f *testing.F) {
	f.Add("w+5f0bd4d4+BNrZ2y2G7oqy0YjCG5MD+SLxMXeFbh6uTYq5mU6gN2fQ")
	f.Add("a+00000000+AA==")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVerifierKey(s)
		if err != nil {
			return
		}
		if v.Key() != s {
			t.Fatalf("round trip %q -> %q", s, v.Key())
		}
	})
}
