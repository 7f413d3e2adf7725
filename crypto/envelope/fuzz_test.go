package envelope

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse: Parse never panics, every error wraps ErrMalformed, and every
// accepted envelope round-trips through the canonical form, which is
// byte-identical to encoding/json's and is a fixed point of Parse∘Marshal.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if e.PayloadType == "" || len(e.Signatures) == 0 || len(e.Signatures) > MaxSignatures {
			t.Fatalf("accepted invalid envelope %+v", e)
		}
		m := e.Marshal()
		if want := referenceJSON(t, e); !bytes.Equal(m, want) {
			t.Fatalf("Marshal =\n%s\nencoding/json =\n%s", m, want)
		}
		e2, err := Parse(m)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, m)
		}
		if !e2.Equal(e) {
			t.Fatalf("round trip changed the envelope")
		}
		if !bytes.Equal(e2.Marshal(), m) {
			t.Fatal("Marshal is not deterministic")
		}
	})
}

// FuzzVerify: Verify on arbitrary parsed envelopes never panics and never
// accepts anything but the one validly signed envelope.
func FuzzVerify(f *testing.F) {
	good, err := Sign(vectorType, []byte(vectorPayload), mustSigner(f, testKey))
	if err != nil {
		f.Fatal(err)
	}
	v := &Verifier{Keyring: mustKeyring(f, testKey.Public())}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			return
		}
		ids, err := v.Verify(e)
		if err != nil {
			if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if len(ids) != 1 || e.PayloadType != good.PayloadType || !bytes.Equal(e.Payload, good.Payload) {
			t.Fatalf("accepted a forged envelope: %+v", e)
		}
	})
}

// rawStringReference is the byte-at-a-time scan rawString replaced.
func rawStringReference(b []byte, start int) (end int, ok bool) {
	i := start + 1
	for i < len(b) {
		switch b[i] {
		case '"':
			return i + 1, true
		case '\\':
			i += 2
		default:
			i++
		}
	}
	return 0, false
}

// FuzzRawString holds rawString's IndexByte scan to the byte-at-a-time
// scan: the same end of string, or unterminated for both.
func FuzzRawString(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"`, `"a\\"`, `"\\\""x"`, `"\`, `"abc`, `"a\\\\\"`, `""`, `"\"`, `"x\\"yz"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || b[0] != '"' {
			b = append([]byte{'"'}, b...)
		}
		wantEnd, wantOK := rawStringReference(b, 0)
		sc := &scanner{b: b}
		raw, err := sc.rawString("test")
		if (err == nil) != wantOK {
			t.Fatalf("%q: rawString err %v, reference ok %v", b, err, wantOK)
		}
		if wantOK && (sc.i != wantEnd || len(raw) != wantEnd) {
			t.Fatalf("%q: rawString ends at %d (%q), reference at %d", b, sc.i, raw, wantEnd)
		}
	})
}
