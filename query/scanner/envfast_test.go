package scanner

import (
	"strings"
	"testing"

	"github.com/provledger/provledger/crypto/envelope"
)

// envelopeCases are stored-envelope forms: canonical ones the fast path
// must take, and others it must leave to envelope.Parse.
func envelopeCases() (canonical []*envelope.Envelope, other []string) {
	sigs := func(n int) []envelope.Signature {
		var out []envelope.Signature
		for i := range n {
			out = append(out, envelope.Signature{KeyID: strings.Repeat("ab", 32), Sig: []byte{byte(i), 1, 2, 3, 4}})
		}
		return out
	}
	canonical = []*envelope.Envelope{
		{PayloadType: "application/vnd.openlineage.run-event+json", Payload: []byte(`{"eventType":"START"}`), Signatures: sigs(1)},
		{PayloadType: "t", Payload: nil, Signatures: sigs(envelope.MaxSignatures)},
		{PayloadType: "t", Payload: []byte("ü\x00\xff"), Signatures: []envelope.Signature{{KeyID: "", Sig: []byte{1}}}},
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

// TestParseCanonicalEnvelope: the fast path takes the canonical form
// (envelope.Marshal) with envelope.Parse's result, and leaves every other
// form to envelope.Parse: parseEnvelope's result and error are Parse's.
func TestParseCanonicalEnvelope(t *testing.T) {
	canonical, other := envelopeCases()
	for i, e := range canonical {
		b := e.Marshal()
		got, ok := parseCanonical(b)
		want, err := envelope.Parse(b)
		if !ok || err != nil || !got.Equal(want) {
			t.Fatalf("canonical %d %s: fast ok=%v, Parse err %v, equal %v", i, b, ok, err, ok && err == nil && got.Equal(want))
		}
	}
	for _, s := range other {
		got, ok := parseCanonical([]byte(s))
		want, werr := envelope.Parse([]byte(s))
		if ok && (werr != nil || !got.Equal(want)) {
			t.Fatalf("%q: the fast path accepts what Parse gives %v, %v", s, want, werr)
		}
		got, err := parseEnvelope([]byte(s))
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) || (err == nil && !got.Equal(want)) {
			t.Fatalf("%q: parseEnvelope %v %v, Parse %v %v", s, got, err, want, werr)
		}
	}
}

// FuzzCanonicalEnvelope: whatever the fast path accepts, envelope.Parse
// accepts with the same envelope.
func FuzzCanonicalEnvelope(f *testing.F) {
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
		want, err := envelope.Parse(b)
		if err != nil {
			t.Fatalf("fast path accepts what Parse refuses: %v", err)
		}
		if !got.Equal(want) {
			t.Fatalf("fast path %+v, Parse %+v", got, want)
		}
	})
}
