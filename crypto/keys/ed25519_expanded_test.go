package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"testing"
)

// TestEd25519VerifierMatchesStdlib holds the expanded-key verifier to
// crypto/ed25519's verdict on the cases TestVerifyEd25519MatchesStdlib
// uses: valid signatures, every single-bit corruption of the signature,
// corrupted keys, wrong lengths, non-canonical S and the known
// cross-implementation edge vectors.
func TestEd25519VerifierMatchesStdlib(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("DSSEv1 28 application/vnd.in-toto+json 2 {}")
	sig := ed25519.Sign(priv, msg)
	check := func(name string, pub, msg, sig []byte) {
		t.Helper()
		want := len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
		v := NewEd25519Verifier(pub)
		for range 2 { // the precomputed tables are not consumed by a check
			if got := v.Verify(msg, sig); got != want {
				t.Errorf("%s: Ed25519Verifier = %v, crypto/ed25519 = %v", name, got, want)
			}
		}
	}
	check("valid", pub, msg, sig)
	for i := 0; i < len(sig)*8; i++ {
		bad := append([]byte(nil), sig...)
		bad[i/8] ^= 1 << (i % 8)
		check("sig bit "+itoa(i), pub, msg, bad)
	}
	for i := 0; i < len(pub)*8; i += 3 {
		bad := append([]byte(nil), pub...)
		bad[i/8] ^= 1 << (i % 8)
		check("key bit "+itoa(i), bad, msg, sig)
	}
	check("short sig", pub, msg, sig[:63])
	check("short key", pub[:31], msg, sig)
	check("other message", pub, []byte("x"), sig)
	check("non-canonical S", pub, msg, addL(sig))
	for i, v := range edgeVectors {
		k, _ := hex.DecodeString(v.pub)
		s, _ := hex.DecodeString(v.sig)
		m, _ := hex.DecodeString(v.msg)
		check("edge vector "+itoa(i), k, m, s)
	}
	// The verifier keeps its own copy of the key.
	k := append([]byte(nil), pub...)
	v := NewEd25519Verifier(k)
	k[0] ^= 1
	if !v.Verify(msg, sig) {
		t.Error("changing the caller's key slice changed the verifier")
	}
}
