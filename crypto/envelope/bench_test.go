package envelope

import (
	"bytes"
	"testing"
)

func benchEnvelope(b *testing.B, size int) (*Envelope, *Verifier) {
	b.Helper()
	payload := bytes.Repeat([]byte("x"), size)
	e, err := Sign(vectorType, payload, mustSigner(b, testKey))
	if err != nil {
		b.Fatal(err)
	}
	return e, &Verifier{Keyring: mustKeyring(b, testKey.Public())}
}

func BenchmarkVerifyEd25519(b *testing.B) {
	e, v := benchEnvelope(b, 1024)
	b.SetBytes(int64(len(e.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyEd25519Parallel(b *testing.B) {
	e, v := benchEnvelope(b, 1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(e); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkMarshal(b *testing.B) {
	e, _ := benchEnvelope(b, 1024)
	b.SetBytes(int64(len(e.Marshal())))
	b.ReportAllocs()
	for b.Loop() {
		_ = e.Marshal()
	}
}

func BenchmarkParse(b *testing.B) {
	e, _ := benchEnvelope(b, 1024)
	m := e.Marshal()
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseVerify is the whole per-envelope cost of an append.
func BenchmarkParseVerify(b *testing.B) {
	e, v := benchEnvelope(b, 1024)
	m := e.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		e, err := Parse(m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(e); err != nil {
			b.Fatal(err)
		}
		_ = e.Digest()
	}
}
