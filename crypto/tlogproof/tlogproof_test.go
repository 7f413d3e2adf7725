package tlogproof

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

const testCheckpoint = "example.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n\n— example.com/fancylog hI2DJwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"

func hashN(n int) [][]byte {
	var out [][]byte
	for i := range n {
		h := sha256.Sum256([]byte{byte(i)})
		out = append(out, h[:])
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Proof
	}{
		{"minimal", Proof{Index: 0, Checkpoint: []byte(testCheckpoint)}},
		{"extra", Proof{Extra: []byte("age-v1.2.1-darwin-arm64.tar.gz"), Index: 73894, Hashes: hashN(5), Checkpoint: []byte(testCheckpoint)}},
		{"binary extra", Proof{Extra: []byte{0, 1, 2, 0xff, '\n'}, Index: 1, Hashes: hashN(1), Checkpoint: []byte(testCheckpoint)}},
		{"max index", Proof{Index: ^uint64(0), Hashes: hashN(MaxHashes), Checkpoint: []byte(testCheckpoint)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.p.Marshal()
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse(%q): %v", b, err)
			}
			if !bytes.Equal(got.Extra, tc.p.Extra) || got.Index != tc.p.Index || len(got.Hashes) != len(tc.p.Hashes) || !bytes.Equal(got.Checkpoint, tc.p.Checkpoint) {
				t.Fatalf("round trip: got %+v, want %+v", got, tc.p)
			}
			for i := range got.Hashes {
				if !bytes.Equal(got.Hashes[i], tc.p.Hashes[i]) {
					t.Fatalf("hash %d differs", i)
				}
			}
			if again := got.Marshal(); !bytes.Equal(again, b) {
				t.Fatalf("re-marshal differs:\n%q\n%q", again, b)
			}
		})
	}
}

// TestSpecExample parses the example of c2sp.org/tlog-proof (with a
// syntactically complete signature line).
func TestSpecExample(t *testing.T) {
	in := "c2sp.org/tlog-proof@v1\n" +
		"extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6\n" +
		"index 73894\n" +
		"gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n" +
		"B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n" +
		"EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n" +
		"RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n" +
		"AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n" +
		"\n" + testCheckpoint
	p, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Extra) != "age-v1.2.1-darwin-arm64.tar.gz" || p.Index != 73894 || len(p.Hashes) != 5 || string(p.Checkpoint) != testCheckpoint {
		t.Fatalf("parsed %+v", p)
	}
}

func TestParseRejects(t *testing.T) {
	h := base64.StdEncoding.EncodeToString(hashN(1)[0])
	ok := "c2sp.org/tlog-proof@v1\nindex 5\n" + h + "\n\n" + testCheckpoint
	if _, err := Parse([]byte(ok)); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"header only", "c2sp.org/tlog-proof@v1"},
		{"wrong header", "c2sp.org/tlog-proof@v2\nindex 5\n\n" + testCheckpoint},
		{"header trailing space", "c2sp.org/tlog-proof@v1 \nindex 5\n\n" + testCheckpoint},
		{"crlf", "c2sp.org/tlog-proof@v1\r\nindex 5\r\n\r\n" + testCheckpoint},
		{"no index", "c2sp.org/tlog-proof@v1\n" + h + "\n\n" + testCheckpoint},
		{"index leading zero", "c2sp.org/tlog-proof@v1\nindex 05\n\n" + testCheckpoint},
		{"index 00", "c2sp.org/tlog-proof@v1\nindex 00\n\n" + testCheckpoint},
		{"index plus", "c2sp.org/tlog-proof@v1\nindex +5\n\n" + testCheckpoint},
		{"index minus", "c2sp.org/tlog-proof@v1\nindex -5\n\n" + testCheckpoint},
		{"index empty", "c2sp.org/tlog-proof@v1\nindex \n\n" + testCheckpoint},
		{"index overflow", "c2sp.org/tlog-proof@v1\nindex 18446744073709551616\n\n" + testCheckpoint},
		{"index double space", "c2sp.org/tlog-proof@v1\nindex  5\n\n" + testCheckpoint},
		{"index hex", "c2sp.org/tlog-proof@v1\nindex 0x5\n\n" + testCheckpoint},
		{"extra after index", "c2sp.org/tlog-proof@v1\nindex 5\nextra AA==\n\n" + testCheckpoint},
		{"empty extra", "c2sp.org/tlog-proof@v1\nextra \nindex 5\n\n" + testCheckpoint},
		{"extra bad base64", "c2sp.org/tlog-proof@v1\nextra !!!!\nindex 5\n\n" + testCheckpoint},
		{"extra unpadded", "c2sp.org/tlog-proof@v1\nextra AA\nindex 5\n\n" + testCheckpoint},
		{"extra non-canonical bits", "c2sp.org/tlog-proof@v1\nextra AB==\nindex 5\n\n" + testCheckpoint},
		{"two extras", "c2sp.org/tlog-proof@v1\nextra AA==\nextra AA==\nindex 5\n\n" + testCheckpoint},
		{"short hash", "c2sp.org/tlog-proof@v1\nindex 5\nAAAA\n\n" + testCheckpoint},
		{"long hash", "c2sp.org/tlog-proof@v1\nindex 5\n" + base64.StdEncoding.EncodeToString(make([]byte, 33)) + "\n\n" + testCheckpoint},
		{"hash with space", "c2sp.org/tlog-proof@v1\nindex 5\n" + h + " \n\n" + testCheckpoint},
		{"hash url base64", "c2sp.org/tlog-proof@v1\nindex 5\n" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)) + "\n\n" + testCheckpoint},
		{"too many hashes", "c2sp.org/tlog-proof@v1\nindex 5\n" + strings.Repeat(h+"\n", MaxHashes+1) + "\n" + testCheckpoint},
		{"no blank line", "c2sp.org/tlog-proof@v1\nindex 5\n" + h + "\n"},
		{"no checkpoint", "c2sp.org/tlog-proof@v1\nindex 5\n" + h + "\n\n"},
		{"two blank lines", "c2sp.org/tlog-proof@v1\nindex 5\n\n\n" + testCheckpoint},
		{"checkpoint no newline", "c2sp.org/tlog-proof@v1\nindex 5\n\n" + strings.TrimSuffix(testCheckpoint, "\n")},
		{"checkpoint NUL", "c2sp.org/tlog-proof@v1\nindex 5\n\nexample.com/log\x00\n1\n"},
		{"checkpoint too big", "c2sp.org/tlog-proof@v1\nindex 5\n\n" + strings.Repeat("a", MaxCheckpointSize) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("Parse accepted %q: %+v", tc.in, p)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// marshals back to the same bytes (one encoding per proof).
func FuzzParse(f *testing.F) {
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\n" + testCheckpoint))
	f.Add((&Proof{Extra: []byte("x"), Index: 42, Hashes: hashN(3), Checkpoint: []byte(testCheckpoint)}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			if p != nil {
				t.Fatal("non-nil proof with an error")
			}
			return
		}
		if got := p.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("Parse/Marshal not canonical:\n in %q\nout %q", b, got)
		}
	})
}
