package cosignature

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/formats/witness"
	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/crypto/checkpoint"
)

func testKeys(t *testing.T) (ed25519.PrivateKey, note.Signer, note.Verifier, []byte) {
	t.Helper()
	seed := sha256.Sum256([]byte("witness"))
	wpriv := ed25519.NewKeyFromSeed(seed[:])
	lseed := sha256.Sum256([]byte("log"))
	lpriv := ed25519.NewKeyFromSeed(lseed[:])
	ls, err := checkpoint.NewSigner("example.test/log", lpriv)
	if err != nil {
		t.Fatal(err)
	}
	lv, _ := checkpoint.NewVerifier("example.test/log", lpriv.Public().(ed25519.PublicKey))
	signed, err := checkpoint.Sign(ls, checkpoint.Checkpoint{Origin: "example.test/log", Size: 42, Hash: sha256.Sum256([]byte("root"))})
	if err != nil {
		t.Fatal(err)
	}
	return wpriv, ls, lv, signed
}

func fixedClock() time.Time { return time.Unix(1_800_000_000, 0) }

// TestVector pins the cosignature of a fixed checkpoint at a fixed time.
func TestVector(t *testing.T) {
	wpriv, _, _, signed := testKeys(t)
	s, err := NewSigner("witness.example/w1", wpriv, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Sign(&note.Note{Text: "example.test/log\n42\n" + "+WZc6b/kPqpLZSo+xA7F65wiS1k0C8Ek/gthZlOHcmo=\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	_ = signed
	// keyID a7e12144 || time 1800000000 (0x6b49d200) || Ed25519 signature.
	const want = "\n\n— witness.example/w1 p+EhRAAAAABrSdIAsTObZjit9lg4U6qif5IrgFpgNOwY4bWFzOWiZaVauN4J5N0oDcyxYREawwmN8xuIZUdEj5LOtoj5N2Py8J+vCA==\n"
	if !strings.Contains(string(n), want) {
		t.Fatalf("signed note: %s", n)
	}
	vkey := s.VerifierKey()
	if !strings.HasPrefix(vkey, "witness.example/w1+") {
		t.Fatalf("vkey %s", vkey)
	}
	v, err := ParseVerifierKey(vkey)
	if err != nil || v.Key() != vkey {
		t.Fatalf("ParseVerifierKey: %v", err)
	}
	m := string(Message(1_800_000_000, []byte("a\n")))
	if m != "cosignature/v1\ntime 1800000000\na\n" {
		t.Fatalf("message %q", m)
	}
}

// TestInterop: cosignatures verify with transparency-dev/formats' verifier
// (through x/mod's note.Open) and formats' signer's verify with ours.
func TestInterop(t *testing.T) {
	wpriv, _, lv, signed := testKeys(t)
	s, _ := NewSigner("witness.example/w1", wpriv, fixedClock)
	body := signed[:strings.Index(string(signed), "\n\n")+1]
	cosigned := append([]byte(string(signed)), s.Line(s.SignAt(1_800_000_000, body))...)

	// formats' verifier, fed our verifier key.
	fv, err := fnote.NewVerifierForCosignatureV1(s.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if fv.KeyHash() != s.KeyHash() {
		t.Fatalf("key id: formats %08x, ours %08x", fv.KeyHash(), s.KeyHash())
	}
	n, err := note.Open(cosigned, note.VerifierList(lv, fv))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("note.Open with formats' cosignature verifier: %v", err)
	}
	ts, err := fnote.CoSigV1Timestamp(n.Sigs[1])
	if err != nil || !ts.Equal(fixedClock()) {
		t.Fatalf("timestamp %v %v", ts, err)
	}
	// formats/witness policy: one witness, satisfied.
	w, err := witness.ParsePolicy([]byte("witness w1 " + s.VerifierKey() + " https://w1.example\nquorum w1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !w.Satisfied(cosigned) {
		t.Fatal("formats/witness policy not satisfied by our cosignature")
	}
	if w.Satisfied(signed) {
		t.Fatal("policy satisfied without a cosignature")
	}

	// formats' signer, our verifier.
	skey := "PRIVATE+KEY+witness.example/w2+" + "00000000+" + b64(append([]byte{0x04}, wpriv.Seed()...))
	fs, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := note.Sign(&note.Note{Text: string(body)}, fs)
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := NewVerifier("witness.example/w2", wpriv.Public().(ed25519.PublicKey))
	if v2.KeyHash() != fs.KeyHash() {
		t.Fatalf("key id of formats' signer %08x, ours %08x", fs.KeyHash(), v2.KeyHash())
	}
	got, err := Verify(theirs, []*Verifier{v2})
	if err != nil || len(got) != 1 || got[0].Witness != "witness.example/w2" {
		t.Fatalf("Verify of formats' cosignature: %v %v", got, err)
	}
	// Our verifier through x/mod note.Open as well.
	if _, err := note.Open(theirs, note.VerifierList(v2)); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	wpriv, _, _, signed := testKeys(t)
	s, _ := NewSigner("witness.example/w1", wpriv, fixedClock)
	other := ed25519.NewKeyFromSeed(make([]byte, 32))
	s2, _ := NewSigner("witness.example/w2", other, fixedClock)
	body := signed[:strings.Index(string(signed), "\n\n")+1]
	good := s.Line(s.SignAt(1, body))
	bad := s.Line(s.SignAt(1, []byte("other\n")))
	v1, _ := NewVerifier("witness.example/w1", wpriv.Public().(ed25519.PublicKey))
	v2, _ := NewVerifier("witness.example/w2", other.Public().(ed25519.PublicKey))
	for _, tc := range []struct {
		name    string
		note    string
		want    int
		wantErr bool
	}{
		{"log only", string(signed), 0, false},
		{"one witness", string(signed) + good, 1, false},
		{"two witnesses", string(signed) + good + s2.Line(s2.SignAt(2, body)), 2, false},
		{"bad cosignature", string(signed) + bad, 0, true},
		{"not a note", "hello", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Verify([]byte(tc.note), []*Verifier{v1, v2})
			if (err != nil) != tc.wantErr || len(got) != tc.want {
				t.Fatalf("Verify: %v %v", got, err)
			}
		})
	}
}

func TestParseVerifierKeyErrors(t *testing.T) {
	wpriv, _, _, _ := testKeys(t)
	s, _ := NewSigner("w", wpriv, nil)
	good := s.VerifierKey()
	logKey, _ := checkpoint.VerifierKey("w", wpriv.Public().(ed25519.PublicKey))
	for _, k := range []string{"", "w", "w+1+2", good[:len(good)-4], strings.Replace(good, "w+", "x+", 1), logKey, "a b+00000000+" + good[strings.LastIndex(good, "+")+1:]} {
		if _, err := ParseVerifierKey(k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParseVerifierKey(%q): %v", k, err)
		}
	}
}

func TestParseLines(t *testing.T) {
	wpriv, _, _, _ := testKeys(t)
	s, _ := NewSigner("w", wpriv, nil)
	line := s.Line(s.SignAt(7, []byte("x\n")))
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{line, true},
		{line + line, true},
		{"", false},
		{strings.TrimSuffix(line, "\n"), false},
		{"- w AAAA\n", false},
		{"— w AAAA\n", false},
		{"— w AAAAAAAA\n", true},
		{"— w AAAAAAB=\n", false},
		{"— a+b AAAAAAAA\n", false},
		{"— w AAAAAAAA \n", false},
		{line + "\n", false},
	} {
		_, err := ParseLines([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("ParseLines(%q): %v", tc.in, err)
		}
	}
	ls, _ := ParseLines([]byte(line))
	if ls[0].String() != line {
		t.Fatal("round trip")
	}
	ts, err := Timestamp(ls[0].Sig)
	if err != nil || ts.Unix() != 7 {
		t.Fatalf("timestamp %v %v", ts, err)
	}
}
