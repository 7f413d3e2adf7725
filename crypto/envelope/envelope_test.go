package envelope

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/provledger/provledger/crypto/keys"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
)

// testKey is the fixed Ed25519 key of the docs/crypto.md test vector.
var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x2a}, ed25519.SeedSize))

const (
	vectorType    = "application/vnd.in-toto+json"
	vectorPayload = `{"_type":"https://in-toto.io/Statement/v1"}`
	// vectorKeyID = SHA-256 of testKey's PKIX public key.
	vectorKeyID = "5e3dc044c49e00e0a435a277126d8a4e1fced3d0b1f781686df24139ac528a4b"
	// vectorJSON is Marshal() of the envelope Sign(vectorType, vectorPayload, testKey).
	vectorJSON   = `{"payloadType":"application/vnd.in-toto+json","payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==","signatures":[{"keyid":"5e3dc044c49e00e0a435a277126d8a4e1fced3d0b1f781686df24139ac528a4b","sig":"HIhgPgqYU5jrnl7klFsy9GQw9h+P7XzwKaQFLs26leNo7OGEdyhi0Z+IF1pP5KEiO+1+9KLxEwJG3LpQiig+DQ=="}]}`
	vectorDigest = "6a438d630c409a0b4f7b9f513f014d23109696120a273ceb44f04f6792a67aa1"
)

func mustSigner(t testing.TB, priv crypto.Signer) signature.Signer {
	t.Helper()
	s, err := keys.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustKeyring(t testing.TB, pubs ...crypto.PublicKey) *keys.Keyring {
	t.Helper()
	k, err := keys.NewKeyring(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVector(t *testing.T) {
	e, err := Sign(vectorType, []byte(vectorPayload), mustSigner(t, testKey))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Signatures[0].KeyID; got != vectorKeyID {
		t.Errorf("keyid = %s, want %s", got, vectorKeyID)
	}
	if got := string(e.Marshal()); got != vectorJSON {
		t.Errorf("Marshal =\n%s\nwant\n%s", got, vectorJSON)
	}
	d := e.Digest()
	if got := hex.EncodeToString(d[:]); got != vectorDigest {
		t.Errorf("Digest = %s, want %s", got, vectorDigest)
	}
	if d != sha256.Sum256(e.Marshal()) {
		t.Error("Digest is not SHA-256 of Marshal")
	}
	if got := string(PAE(vectorType, []byte(vectorPayload))); got != "DSSEv1 28 application/vnd.in-toto+json 43 "+vectorPayload {
		t.Errorf("PAE = %q", got)
	}
}

// reference is the envelope as encoding/json would write it.
type reference struct {
	PayloadType string `json:"payloadType"`
	Payload     []byte `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   []byte `json:"sig"`
	} `json:"signatures"`
}

func referenceJSON(t testing.TB, e *Envelope) []byte {
	t.Helper()
	r := reference{PayloadType: e.PayloadType, Payload: e.Payload}
	if r.Payload == nil {
		r.Payload = []byte{}
	}
	for _, s := range e.Signatures {
		r.Signatures = append(r.Signatures, struct {
			KeyID string `json:"keyid"`
			Sig   []byte `json:"sig"`
		}{s.KeyID, s.Sig})
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMarshalMatchesEncodingJSON(t *testing.T) {
	tests := []*Envelope{
		{PayloadType: "a", Payload: []byte{}, Signatures: []Signature{{KeyID: "", Sig: []byte{1}}}},
		{PayloadType: "application/vnd.openlineage.run-event+json", Payload: []byte(`{"x":"<&>"}`), Signatures: []Signature{{KeyID: "k1", Sig: []byte{0, 1, 2, 3, 255}}, {KeyID: "k2", Sig: bytes.Repeat([]byte{7}, 64)}}},
		{PayloadType: "type with \"quotes\" \\ <html> & \u2028 \x01 é 😀", Payload: []byte{0xff}, Signatures: []Signature{{KeyID: "\t\n<>", Sig: []byte("x")}}},
		{PayloadType: "bad utf8 \xff\xfe", Payload: nil, Signatures: []Signature{{KeyID: "\xc3", Sig: []byte("x")}}},
	}
	for i, e := range tests {
		if got, want := e.Marshal(), referenceJSON(t, e); !bytes.Equal(got, want) {
			t.Errorf("%d: Marshal =\n%s\nencoding/json =\n%s", i, got, want)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	want := &Envelope{PayloadType: "t", Payload: []byte("hello?>"), Signatures: []Signature{{KeyID: "k", Sig: []byte{0xfb, 0xff}}}}
	tests := []struct{ name, in string }{
		{"canonical", `{"payloadType":"t","payload":"aGVsbG8/Pg==","signatures":[{"keyid":"k","sig":"+/8="}]}`},
		{"url-safe", `{"payloadType":"t","payload":"aGVsbG8_Pg==","signatures":[{"keyid":"k","sig":"-_8="}]}`},
		{"unpadded", `{"payloadType":"t","payload":"aGVsbG8/Pg","signatures":[{"keyid":"k","sig":"+/8"}]}`},
		{"url unpadded", `{"payloadType":"t","payload":"aGVsbG8_Pg","signatures":[{"keyid":"k","sig":"-_8"}]}`},
		{"whitespace and order", " {\n \"signatures\" : [ { \"sig\" : \"+/8=\" , \"keyid\" : \"k\" } ] ,\"payload\":\"aGVsbG8/Pg==\", \"payloadType\":\"t\"}\n"},
		{"escaped strings", `{"payloadType":"\u0074","payload":"aGVsbG8\/Pg==","signatures":[{"keyid":"\u006b","sig":"+\/8="}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !e.Equal(want) {
				t.Fatalf("got %+v", e)
			}
			if got := string(e.Marshal()); got != tests[0].in {
				t.Fatalf("Marshal = %s, want canonical", got)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	many := `{"keyid":"k","sig":"AA=="}` + strings.Repeat(`,{"keyid":"k","sig":"AA=="}`, MaxSignatures)
	tests := []struct{ name, in, mention string }{
		{"empty", ``, "envelope"},
		{"not an object", `[]`, "envelope"},
		{"null", `null`, "envelope"},
		{"trailing data", `{"payloadType":"t","payload":"","signatures":[{"keyid":"k","sig":"AA=="}]} {}`, "after"},
		{"truncated", `{"payloadType":"t","payload":"","signatures":[{"keyid":"k","sig":"AA=="}]`, "envelope"},
		{"unknown field", `{"payloadType":"t","payload":"","signatures":[{"keyid":"k","sig":"AA=="}],"extra":1}`, `"extra"`},
		{"case-folded field", `{"PayloadType":"t","payload":"","signatures":[{"keyid":"k","sig":"AA=="}]}`, `"PayloadType"`},
		{"duplicate payload", `{"payloadType":"t","payload":"","payload":"AA==","signatures":[{"keyid":"k","sig":"AA=="}]}`, `duplicate "payload"`},
		{"duplicate keyid", `{"payloadType":"t","payload":"","signatures":[{"keyid":"k","keyid":"j","sig":"AA=="}]}`, `duplicate "keyid"`},
		{"missing payloadType", `{"payload":"","signatures":[{"keyid":"k","sig":"AA=="}]}`, "payloadType"},
		{"empty payloadType", `{"payloadType":"","payload":"","signatures":[{"keyid":"k","sig":"AA=="}]}`, "payloadType"},
		{"payloadType number", `{"payloadType":1,"payload":"","signatures":[{"keyid":"k","sig":"AA=="}]}`, "payloadType"},
		{"missing payload", `{"payloadType":"t","signatures":[{"keyid":"k","sig":"AA=="}]}`, "payload"},
		{"null payload", `{"payloadType":"t","payload":null,"signatures":[{"keyid":"k","sig":"AA=="}]}`, "payload"},
		{"bad base64 payload", `{"payloadType":"t","payload":"a!==","signatures":[{"keyid":"k","sig":"AA=="}]}`, "payload"},
		{"mixed alphabets", `{"payloadType":"t","payload":"+-==","signatures":[{"keyid":"k","sig":"AA=="}]}`, "payload"},
		{"newline in base64", `{"payloadType":"t","payload":"AA\n==","signatures":[{"keyid":"k","sig":"AA=="}]}`, "payload"},
		{"bad padding", `{"payloadType":"t","payload":"A===","signatures":[{"keyid":"k","sig":"AA=="}]}`, "payload"},
		{"missing signatures", `{"payloadType":"t","payload":""}`, "signatures"},
		{"null signatures", `{"payloadType":"t","payload":"","signatures":null}`, "signatures"},
		{"no signatures", `{"payloadType":"t","payload":"","signatures":[]}`, "signatures"},
		{"too many signatures", `{"payloadType":"t","payload":"","signatures":[` + many + `]}`, "more than 16"},
		{"signature not object", `{"payloadType":"t","payload":"","signatures":["x"]}`, "signatures[0]"},
		{"missing sig", `{"payloadType":"t","payload":"","signatures":[{"keyid":"k"}]}`, `signatures[0]: missing "sig"`},
		{"missing keyid", `{"payloadType":"t","payload":"","signatures":[{"keyid":"k","sig":"AA=="},{"sig":"AA=="}]}`, `signatures[1]: missing "keyid"`},
		{"empty sig", `{"payloadType":"t","payload":"","signatures":[{"keyid":"k","sig":""}]}`, "signatures[0].sig"},
		{"bad sig", `{"payloadType":"t","payload":"","signatures":[{"keyid":"k","sig":"%%"}]}`, "signatures[0].sig"},
		{"unknown signature field", `{"payloadType":"t","payload":"","signatures":[{"keyid":"k","sig":"AA==","cert":""}]}`, `"cert"`},
		{"invalid utf-8", "{\"payloadType\":\"t\xff\",\"payload\":\"\",\"signatures\":[{\"keyid\":\"k\",\"sig\":\"AA==\"}]}", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse([]byte(tt.in))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", e, err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	var privs []crypto.Signer
	for _, alg := range []string{"ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048"} {
		k, err := keys.Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		privs = append(privs, k)
	}
	var signers []signature.Signer
	var pubs []crypto.PublicKey
	var wantIDs []keys.KeyID
	for _, k := range privs {
		signers = append(signers, mustSigner(t, k))
		pubs = append(pubs, k.Public())
		id, _ := keys.IDOf(k.Public())
		wantIDs = append(wantIDs, id)
	}
	payload := []byte(`{"cost":1}`)
	e, err := Sign("application/vnd.provledger.cost+json", payload, signers...)
	if err != nil {
		t.Fatal(err)
	}
	// Through the wire and back.
	e2, err := Parse(e.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !e2.Equal(e) || e2.Digest() != e.Digest() {
		t.Fatal("Parse(Marshal(e)) != e")
	}
	v := &Verifier{Keyring: mustKeyring(t, pubs...)}
	ids, err := v.Verify(e2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(wantIDs) {
		t.Fatalf("ids = %v", ids)
	}
	for i := range ids {
		if ids[i] != wantIDs[i] {
			t.Fatalf("ids[%d] = %s, want %s", i, ids[i], wantIDs[i])
		}
	}

	// Failure cases, each a modification of e.
	tests := []struct {
		name    string
		mod     func(*Envelope)
		v       *Verifier
		extra   []crypto.PublicKey
		want    error
		mention string
	}{
		{"payload changed", func(e *Envelope) { e.Payload = append(e.Payload, ' ') }, v, nil, ErrBadSignature, "signature 0: "},
		{"type changed", func(e *Envelope) { e.PayloadType += "x" }, v, nil, ErrBadSignature, wantIDs[0].String()},
		{"third sig flipped", func(e *Envelope) { e.Signatures[2].Sig[5] ^= 1 }, v, nil, ErrBadSignature, "signature 2: "},
		{"sigs swapped", func(e *Envelope) { e.Signatures[0].Sig, e.Signatures[1].Sig = e.Signatures[1].Sig, e.Signatures[0].Sig }, v, nil, ErrBadSignature, "signature 0: "},
		{"unknown key", nil, &Verifier{Keyring: mustKeyring(t, pubs[0], pubs[2], pubs[3])}, nil, ErrUnknownKey, "signature 1: "},
		{"nil keyring", nil, &Verifier{}, nil, ErrUnknownKey, "trust file"},
		{"extra without tofu", nil, &Verifier{Keyring: mustKeyring(t, pubs[1:]...)}, pubs[:1], ErrUnknownKey, wantIDs[0].String()},
		{"keyid not hex", func(e *Envelope) { e.Signatures[3].KeyID = "SHA256:abc" }, v, nil, ErrUnknownKey, "signature 3: "},
		{"keyid upper case", func(e *Envelope) { e.Signatures[0].KeyID = strings.ToUpper(e.Signatures[0].KeyID) }, v, nil, ErrUnknownKey, "signature 0: "},
		{"duplicate keyid", func(e *Envelope) { e.Signatures[1] = e.Signatures[0] }, v, nil, ErrMalformed, "signature 1: "},
		{"no signatures", func(e *Envelope) { e.Signatures = nil }, v, nil, ErrNoSignatures, ""},
		{"too many", func(e *Envelope) {
			for len(e.Signatures) <= MaxSignatures {
				e.Signatures = append(e.Signatures, e.Signatures[0])
			}
		}, v, nil, ErrMalformed, "16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clone(e)
			if tt.mod != nil {
				tt.mod(c)
			}
			_, err := tt.v.Verify(c, tt.extra...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
	if _, err := (&Verifier{}).Verify(nil); !errors.Is(err, ErrNoSignatures) {
		t.Fatalf("Verify(nil) = %v", err)
	}
}

func clone(e *Envelope) *Envelope {
	c := &Envelope{PayloadType: e.PayloadType, Payload: bytes.Clone(e.Payload)}
	for _, s := range e.Signatures {
		c.Signatures = append(c.Signatures, Signature{KeyID: s.KeyID, Sig: bytes.Clone(s.Sig)})
	}
	return c
}

func TestTrustOnFirstUse(t *testing.T) {
	a, _ := keys.Generate("ed25519")
	b, _ := keys.Generate("ecdsa-p256")
	e, err := Sign("t", []byte("p"), mustSigner(t, a), mustSigner(t, b))
	if err != nil {
		t.Fatal(err)
	}
	ring := mustKeyring(t, a.Public())
	v := &Verifier{Keyring: ring, TrustOnFirstUse: true}
	ids, err := v.Verify(e, b.Public())
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[1].String() != e.Signatures[1].KeyID {
		t.Fatalf("ids = %v", ids)
	}
	if ring.Len() != 1 {
		t.Fatal("TOFU key was added to the keyring")
	}
	if _, err := v.Verify(e); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("without extra: %v", err)
	}
	// A nil keyring with TOFU works from extra alone.
	if _, err := (&Verifier{TrustOnFirstUse: true}).Verify(e, a.Public(), b.Public()); err != nil {
		t.Fatal(err)
	}
	// Unsupported extra keys are reported.
	if _, err := v.Verify(e, ed25519.PublicKey{1, 2}); !errors.Is(err, keys.ErrUnsupportedKey) {
		t.Fatalf("bad extra key: %v", err)
	}
}

func TestSignErrors(t *testing.T) {
	s := mustSigner(t, testKey)
	if _, err := Sign("", []byte("x"), s); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty type: %v", err)
	}
	if _, err := Sign("t", []byte("x")); !errors.Is(err, ErrNoSignatures) {
		t.Errorf("no signers: %v", err)
	}
	if _, err := Sign("t", []byte("x"), s, s); !errors.Is(err, ErrMalformed) {
		t.Errorf("same signer twice: %v", err)
	}
	many := make([]signature.Signer, MaxSignatures+1)
	for i := range many {
		many[i] = s
	}
	if _, err := Sign("t", nil, many...); !errors.Is(err, ErrMalformed) {
		t.Errorf("too many signers: %v", err)
	}
	e, err := Sign("t", nil, s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(e.Marshal()), `"payload":""`) {
		t.Errorf("empty payload marshals as %s", e.Marshal())
	}
	if _, err := (&Verifier{Keyring: mustKeyring(t, testKey.Public())}).Verify(e); err != nil {
		t.Errorf("empty payload does not verify: %v", err)
	}
}

// dsseAdapter lets go-securesystemslib's reference DSSE code sign and
// verify with an Ed25519 key under provledger's key id.
type dsseAdapter struct{ priv ed25519.PrivateKey }

func (a dsseAdapter) Sign(_ context.Context, data []byte) ([]byte, error) {
	return ed25519.Sign(a.priv, data), nil
}
func (a dsseAdapter) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(a.priv.Public().(ed25519.PublicKey), data, sig) {
		return errors.New("bad signature")
	}
	return nil
}
func (a dsseAdapter) KeyID() (string, error) {
	id, err := keys.IDOf(a.priv.Public())
	return id.String(), err
}
func (a dsseAdapter) Public() crypto.PublicKey { return a.priv.Public() }

func TestInteropSecureSystemsLib(t *testing.T) {
	ad := dsseAdapter{testKey}
	ctx := context.Background()
	// Theirs → ours.
	es, err := dsse.NewEnvelopeSigner(ad)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := es.SignPayload(ctx, vectorType, []byte(vectorPayload))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(theirs)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Verifier{Keyring: mustKeyring(t, testKey.Public())}).Verify(e); err != nil {
		t.Fatal(err)
	}
	if string(e.Marshal()) != vectorJSON {
		t.Errorf("secure-systems-lib envelope canonicalizes to\n%s", e.Marshal())
	}
	// Ours → theirs.
	ours, err := Sign(vectorType, []byte(vectorPayload), mustSigner(t, testKey))
	if err != nil {
		t.Fatal(err)
	}
	var their dsse.Envelope
	if err := json.Unmarshal(ours.Marshal(), &their); err != nil {
		t.Fatal(err)
	}
	ev, err := dsse.NewEnvelopeVerifier(ad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.Verify(ctx, &their); err != nil {
		t.Fatal(err)
	}
	if got := base64.StdEncoding.EncodeToString(PAE("a", []byte("b"))); got != base64.StdEncoding.EncodeToString(dsse.PAE("a", []byte("b"))) {
		t.Fatal("PAE differs from dsse.PAE")
	}
}

// TestVerifyFastPath: appendPAE gives dsse.PAE's bytes, and VerifyAny (which
// calls ed25519.Verify directly for Ed25519 keys) accepts exactly the
// signatures sigstore's verifier accepts: good ones, and none that are
// flipped, truncated, lengthened, over another message or by another key.
func TestVerifyFastPath(t *testing.T) {
	for _, tc := range []struct {
		typ     string
		payload []byte
	}{{"", nil}, {"a", []byte("b")}, {"application/vnd.in-toto+json", bytes.Repeat([]byte("x{}é"), 1000)}, {"t y\x00pe", []byte{0, 1, 2}}} {
		if got, want := appendPAE([]byte("prefix"), tc.typ, tc.payload), append([]byte("prefix"), dsse.PAE(tc.typ, tc.payload)...); !bytes.Equal(got, want) {
			t.Fatalf("appendPAE(%q, %d bytes) = %q, want %q", tc.typ, len(tc.payload), got, want)
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := keys.NewVerifiers(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	msg := dsse.PAE("application/vnd.in-toto+json", []byte(`{"a":1}`))
	good := ed25519.Sign(priv, msg)
	cases := map[string]struct {
		sig, msg []byte
	}{
		"good":          {good, msg},
		"other message": {good, append(bytes.Clone(msg), '.')},
		"other key":     {ed25519.Sign(other, msg), msg},
		"truncated":     {good[:63], msg},
		"lengthened":    {append(bytes.Clone(good), 0), msg},
		"empty":         {nil, msg},
	}
	for i := range 64 {
		s := bytes.Clone(good)
		s[i] ^= 1 << (i % 8)
		cases[fmt.Sprintf("bit %d flipped", i*8+i%8)] = struct{ sig, msg []byte }{s, msg}
	}
	for name, c := range cases {
		want := vs[0].VerifySignature(bytes.NewReader(c.sig), bytes.NewReader(c.msg)) == nil
		if got := VerifyAny(vs, c.sig, c.msg); got != want {
			t.Errorf("%s: VerifyAny = %v, sigstore's verifier says %v", name, got, want)
		}
		if name == "good" && !want {
			t.Error("the good signature does not verify")
		}
	}
}
