package envelope

import (
	"strings"
	"testing"
)

// envelopeCases are stored-envelope forms: canonical ones the fast path
// must take, and others it must leave to envelope.Parse.
func envelopeCases() (canonical []*Envelope, other []string) {
	sigs := func(n int) []Signature {
		var out []Signature
		for i := range n {
			out = append(out, Signature{KeyID: strings.Repeat("ab", 32), Sig: []byte{byte(i), 1, 2, 3, 4}})
		}
		return out
	}
	canonical = []*Envelope{
		{PayloadType: "application/vnd.openlineage.run-event+json", Payload: []byte(`{"eventType":"START"}`), Signatures: sigs(1)},
		{PayloadType: "t", Payload: nil, Signatures: sigs(MaxSignatures)},
		{PayloadType: "t", Payload: []byte("ü\x00\xff"), Signatures: []Signature{{KeyID: "", Sig: []byte{1}}}},
		{PayloadType: "t", Payload: []byte("ab"), Signatures: sigs(2)},
	}
	other = []string{
		`{"payloadType":"t","payload":"YWI=","signatures":[{"keyid":"k","sig":"AQ=="}]} `,
		` {"payloadType":"t","payload":"YWI=","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"t","payload":"YWI","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"t","payload":"YWJ=","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"t","payload":"Y\nWI=","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"t","payload":"YW\r\nI=","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"t","payload":"-_-_","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"t","payload":"YW\/I","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"t\u0041","payload":"YWI=","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"ü","payload":"YWI=","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"","payload":"YWI=","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"t","payload":"YWI=","signatures":[{"keyid":"k","sig":""}]}`,
		`{"payloadType":"t","payload":"YWI=","signatures":[]}`,
		`{"payloadType":"t","payload":"YWI=","signatures":[{"sig":"AQ==","keyid":"k"}]}`,
		`{"payload":"YWI=","payloadType":"t","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"t","payload":"YWI=","signatures":[{"keyid":"k","sig":"AQ=="},]}`,
		`{"payloadType":"t","payload":"YWI=","signatures":[{"keyid":"k","sig":"AQ=="}]}x`,
		`{"payloadType":"t","payload":"YWI=","signatures":[{"keyid":"k","sig":"AQ=="}],"x":1}`,
		`{"payloadType":"t","payload":"YWI=","signatures":[{"keyid":"k","sig":"AQ=="}]`,
		`{"payloadType":"t","payload":"YWI=","signatures":[{"keyid":"k","sig":"AQ==`,
		`{"payloadType":"t","payload":"YWI=","payload":"YWI=","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"t","payload":"====","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
		`{"payloadType":"t","payload":"YQ==","signatures":[{"keyid":"k","sig":"AQ=="}]}`,
	}
	return canonical, other
}

// TestParseCanonical: the fast path takes the canonical form (Marshal)
// with the full parser's result, and leaves every other form to it, so
// Parse's result and error are the full parser's.
func TestParseCanonical(t *testing.T) {
	canonical, other := envelopeCases()
	for i, e := range canonical {
		b := e.Marshal()
		got, ok := parseCanonical(b)
		want, err := parse(b)
		if !ok || err != nil || !got.Equal(want) {
			t.Fatalf("canonical %d %s: fast ok=%v, full parser err %v", i, b, ok, err)
		}
	}
	for _, s := range other {
		if got, ok := parseCanonical([]byte(s)); ok {
			want, err := parse([]byte(s))
			if err != nil || !got.Equal(want) {
				t.Fatalf("%q: the fast path accepts what the full parser gives as %v, %v", s, want, err)
			}
		}
		got, err := Parse([]byte(s))
		want, werr := parse([]byte(s))
		if (err == nil) != (werr == nil) || (err == nil && !got.Equal(want)) {
			t.Fatalf("%q: Parse %v %v, full parser %v %v", s, got, err, want, werr)
		}
	}
}

// FuzzCanonical: whatever the fast path accepts, the full parser accepts
// with the same envelope.
func FuzzCanonical(f *testing.F) {
	canonical, other := envelopeCases()
	for _, e := range canonical {
		f.Add(e.Marshal())
	}
	for _, s := range other {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := parseCanonical(b)
		if !ok {
			return
		}
		want, err := parse(b)
		if err != nil {
			t.Fatalf("fast path accepts what the full parser refuses: %v", err)
		}
		if !got.Equal(want) {
			t.Fatalf("fast path %+v, full parser %+v", got, want)
		}
	})
}
