package checkpoint

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

const origin = "ledger.example/prod"

// logKey is the fixed key of the docs/crypto.md example.
var logKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x01}, ed25519.SeedSize))

var exampleCP = Checkpoint{Origin: origin, Size: 42, Hash: sha256.Sum256([]byte("example root"))}

const (
	exampleVKey   = "ledger.example/prod+532c94f9+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c"
	exampleSigned = "ledger.example/prod\n42\ntWfAy7LoXCleat6TDluzSaS5vulInKp9a2ed1G6CpxE=\n\n— ledger.example/prod UyyU+RkOeDqzeYeCiipn7JC31rLSW/r9auZi0h2D5wSe9+nrQsGhYgTrRXDtW154t5KmWu6Qn0q3H22REhvpa2EK1Ac=\n"
)

func mustSigner(t testing.TB, name string, k ed25519.PrivateKey) note.Signer {
	t.Helper()
	s, err := NewSigner(name, k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustVerifier(t testing.TB, name string, k ed25519.PrivateKey) note.Verifier {
	t.Helper()
	v, err := NewVerifier(name, k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestExample(t *testing.T) {
	vkey, err := VerifierKey(origin, logKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if vkey != exampleVKey {
		t.Errorf("VerifierKey = %s, want %s", vkey, exampleVKey)
	}
	signed, err := Sign(mustSigner(t, origin, logKey), exampleCP)
	if err != nil {
		t.Fatal(err)
	}
	if string(signed) != exampleSigned {
		t.Errorf("Sign =\n%s\nwant\n%s", signed, exampleSigned)
	}
}

func TestBodyRoundTrip(t *testing.T) {
	for _, c := range []Checkpoint{
		{Origin: "o", Size: 0, Hash: [32]byte{}},
		exampleCP,
		{Origin: "example.com/log with spaces", Size: 1<<64 - 1, Hash: [32]byte{0xff, 0xfe}},
	} {
		b := c.Body()
		got, err := ParseBody(b)
		if err != nil {
			t.Fatalf("ParseBody(%q): %v", b, err)
		}
		if got != c {
			t.Fatalf("round trip: %+v != %+v", got, c)
		}
		// formats/log writes the same body.
		if want := (log.Checkpoint{Origin: c.Origin, Size: c.Size, Hash: c.Hash[:]}).Marshal(); !bytes.Equal(b, want) {
			t.Fatalf("Body %q, formats/log %q", b, want)
		}
	}
}

func TestParseBody(t *testing.T) {
	const h = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" // SHA-256("")
	tests := []struct {
		name, in string
		want     *Checkpoint
		mention  string
	}{
		{"minimal", "o\n0\n" + h + "\n", &Checkpoint{Origin: "o", Hash: sha256.Sum256(nil)}, ""},
		{"extensions", "o\n12\n" + h + "\next one\next two\n", &Checkpoint{Origin: "o", Size: 12, Hash: sha256.Sum256(nil)}, ""},
		{"max size", "o\n18446744073709551615\n" + h + "\n", &Checkpoint{Origin: "o", Size: 1<<64 - 1, Hash: sha256.Sum256(nil)}, ""},
		{"empty", "", nil, "newline"},
		{"no final newline", "o\n0\n" + h, nil, "newline"},
		{"two lines", "o\n0\n", nil, "3"},
		{"empty origin", "\n0\n" + h + "\n", nil, "origin"},
		{"leading zero", "o\n012\n" + h + "\n", nil, "leading zeros"},
		{"double zero", "o\n00\n" + h + "\n", nil, "leading zeros"},
		{"plus sign", "o\n+1\n" + h + "\n", nil, "line 2"},
		{"minus", "o\n-1\n" + h + "\n", nil, "line 2"},
		{"empty size", "o\n\n" + h + "\n", nil, "line 2"},
		{"size spaces", "o\n 1\n" + h + "\n", nil, "line 2"},
		{"size overflow", "o\n18446744073709551616\n" + h + "\n", nil, "range"},
		{"hex size", "o\n0x10\n" + h + "\n", nil, "line 2"},
		{"underscore size", "o\n1_0\n" + h + "\n", nil, "line 2"},
		{"short hash", "o\n1\nAAAA\n", nil, "32"},
		{"long hash", "o\n1\n" + strings.Repeat("A", 44) + "AAAA\n", nil, "line 3"},
		{"unpadded hash", "o\n1\n" + strings.TrimSuffix(h, "=") + "\n", nil, "line 3"},
		{"url-safe hash", "o\n1\n47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=\n", nil, "line 3"},
		{"non-canonical hash", "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n", nil, "canonical"},
		{"cr in hash", "o\n1\n" + h + "\r\n", nil, "control"},
		{"tab in origin", "o\tx\n1\n" + h + "\n", nil, "control"},
		{"empty extension", "o\n1\n" + h + "\n\next\n", nil, "empty"},
		{"invalid utf-8", "o\xff\n1\n" + h + "\n", nil, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBody([]byte(tt.in))
			if tt.want != nil {
				if err != nil || got != *tt.want {
					t.Fatalf("ParseBody = %+v, %v; want %+v", got, err, *tt.want)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseBody = %+v, %v; want ErrMalformed", got, err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func TestInterop(t *testing.T) {
	signed, err := Sign(mustSigner(t, origin, logKey), exampleCP)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := VerifierKey(origin, logKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	nv, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(nv))
	if err != nil {
		t.Fatalf("note.Open: %v", err)
	}
	if n.Text != string(exampleCP.Body()) {
		t.Fatalf("note text %q", n.Text)
	}
	cp, _, _, err := log.ParseCheckpoint(signed, origin, nv)
	if err != nil {
		t.Fatalf("formats/log.ParseCheckpoint: %v", err)
	}
	if cp.Origin != origin || cp.Size != exampleCP.Size || !bytes.Equal(cp.Hash, exampleCP.Hash[:]) {
		t.Fatalf("formats parsed %+v", cp)
	}
	// A signer built by x/mod's own GenerateKey/NewSigner is accepted by Open.
	skey, vkey2, err := note.GenerateKey(nil, origin)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	signed2, err := Sign(ns, exampleCP)
	if err != nil {
		t.Fatal(err)
	}
	nv2, err := note.NewVerifier(vkey2)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(signed2, nv2); err != nil || got != exampleCP {
		t.Fatalf("Open(x/mod-signed) = %+v, %v", got, err)
	}
	// Our verifier and x/mod's agree on the key id.
	ours := mustVerifier(t, origin, logKey)
	if ours.KeyHash() != nv.KeyHash() || ours.Name() != nv.Name() {
		t.Fatal("NewVerifier and note.NewVerifier(VerifierKey) differ")
	}
	if s := mustSigner(t, origin, logKey); s.KeyHash() != nv.KeyHash() {
		t.Fatal("NewSigner key id differs from the verifier's")
	}
}

func TestOpen(t *testing.T) {
	logS, logV := mustSigner(t, origin, logKey), mustVerifier(t, origin, logKey)
	witKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	witS, witV := mustSigner(t, "witness.example/w1", witKey), mustVerifier(t, "witness.example/w1", witKey)
	otherKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	impostorS := mustSigner(t, origin, otherKey) // log's name, wrong key

	body := exampleCP.Body()
	sign := func(text string, signers ...note.Signer) []byte {
		b, err := note.Sign(&note.Note{Text: text}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cosigned := sign(string(body), logS, witS)
	flipLastSig := func(b []byte) []byte {
		b = bytes.Clone(b)
		i := bytes.LastIndex(b, []byte(" "))
		if b[i+10] == 'A' {
			b[i+10] = 'B'
		} else {
			b[i+10] = 'A'
		}
		return b
	}
	tests := []struct {
		name   string
		signed []byte
		others []note.Verifier
		want   error
	}{
		{"log only", sign(string(body), logS), nil, nil},
		{"cosigned, witness unknown", cosigned, nil, nil},
		{"cosigned, witness known", cosigned, []note.Verifier{witV}, nil},
		{"repeated verifiers", cosigned, []note.Verifier{logV, witV, witV, nil}, nil},
		{"witness only", sign(string(body), witS), []note.Verifier{witV}, ErrBadSignature},
		{"impostor only", sign(string(body), impostorS), nil, ErrBadSignature},
		{"impostor and log", sign(string(body), impostorS, logS), nil, nil},
		{"bad log sig", flipLastSig(sign(string(body), logS)), nil, ErrBadSignature},
		{"bad known witness sig", flipLastSig(cosigned), []note.Verifier{witV}, ErrBadSignature},
		{"bad unknown witness sig", flipLastSig(cosigned), nil, nil},
		{"tampered body", bytes.Replace(sign(string(body), logS), []byte("\n42\n"), []byte("\n43\n"), 1), nil, ErrBadSignature},
		{"no signature block", body, nil, ErrMalformed},
		{"garbage", []byte("hello"), nil, ErrMalformed},
		{"leading zero size, signed", sign(origin+"\n042\n"+strings.Split(string(body), "\n")[2]+"\n", logS), nil, ErrMalformed},
		{"other origin, signed by log key", sign("other.example/log\n42\n"+strings.Split(string(body), "\n")[2]+"\n", logS), nil, ErrWrongOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Open(tt.signed, logV, tt.others...)
			if tt.want == nil {
				if err != nil || got != exampleCP {
					t.Fatalf("Open = %+v, %v", got, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestKeyErrors(t *testing.T) {
	pub := logKey.Public().(ed25519.PublicKey)
	for _, name := range []string{"", "has space", "a+b", "tab\there", "nl\n"} {
		if _, err := NewSigner(name, logKey); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("NewSigner(%q) = %v", name, err)
		}
		if _, err := NewVerifier(name, pub); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("NewVerifier(%q) = %v", name, err)
		}
		if _, err := VerifierKey(name, pub); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("VerifierKey(%q) = %v", name, err)
		}
	}
	if _, err := NewSigner(origin, logKey[:10]); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("short private key: %v", err)
	}
	if _, err := NewVerifier(origin, pub[:31]); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("short public key: %v", err)
	}
	if _, err := Sign(mustSigner(t, origin, logKey), Checkpoint{Origin: "other"}); !errors.Is(err, ErrWrongOrigin) {
		t.Errorf("Sign with another origin: %v", err)
	}
}
