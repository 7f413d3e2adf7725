package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"testing"
)

// TestVerifyEd25519MatchesStdlib holds VerifyEd25519 to crypto/ed25519's
// verdict on valid signatures, every single-bit corruption of one, and the
// edge cases where Ed25519 implementations are known to disagree
// (non-canonical S, small-order keys and R, wrong lengths).
func TestVerifyEd25519MatchesStdlib(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("DSSEv1 28 application/vnd.in-toto+json 2 {}")
	sig := ed25519.Sign(priv, msg)
	if !VerifyEd25519(pub, msg, sig) {
		t.Fatal("a valid signature does not verify")
	}
	check := func(name string, pub, msg, sig []byte) {
		t.Helper()
		want := len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
		if got := VerifyEd25519(pub, msg, sig); got != want {
			t.Errorf("%s: VerifyEd25519 = %v, crypto/ed25519 = %v", name, got, want)
		}
	}
	for i := 0; i < len(sig)*8; i++ {
		bad := append([]byte(nil), sig...)
		bad[i/8] ^= 1 << (i % 8)
		check("sig bit "+itoa(i), pub, msg, bad)
	}
	for i := 0; i < len(pub)*8; i += 7 {
		bad := append([]byte(nil), pub...)
		bad[i/8] ^= 1 << (i % 8)
		check("key bit "+itoa(i), bad, msg, sig)
	}
	check("short sig", pub, msg, sig[:63])
	check("long sig", pub, msg, append(append([]byte(nil), sig...), 0))
	check("short key", pub[:31], msg, sig)
	check("other message", pub, []byte("x"), sig)
	// S + L (non-canonical scalar): stdlib rejects it.
	check("non-canonical S", pub, msg, addL(sig))
	// Known cross-implementation edge cases (from "Taming the many EdDSAs",
	// Chalkias et al., vectors 0-5): small-order A and/or R, mixed-order A.
	for i, v := range edgeVectors {
		k, _ := hex.DecodeString(v.pub)
		s, _ := hex.DecodeString(v.sig)
		m, _ := hex.DecodeString(v.msg)
		check("edge vector "+itoa(i), k, m, s)
	}
}

func itoa(i int) string {
	const d = "0123456789"
	if i < 10 {
		return d[i : i+1]
	}
	return itoa(i/10) + d[i%10:i%10+1]
}

// addL returns sig with L, the group order, added to its S half.
func addL(sig []byte) []byte {
	l := [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	out := append([]byte(nil), sig...)
	var carry int
	for i := 0; i < 32; i++ {
		v := int(out[32+i]) + int(l[i]) + carry
		out[32+i] = byte(v)
		carry = v >> 8
	}
	return out
}

var edgeVectors = []struct{ msg, pub, sig string }{
	{"8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000"},
	{"9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04"},
	{"aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e"},
	{"9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009"},
	{"e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09"},
	{"e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405"},
}

// FuzzVerifyEd25519 checks VerifyEd25519 against crypto/ed25519 on
// arbitrary keys, messages and signatures.
func FuzzVerifyEd25519(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte("hello")
	f.Add([]byte(pub), msg, ed25519.Sign(priv, msg))
	for _, v := range edgeVectors {
		k, _ := hex.DecodeString(v.pub)
		s, _ := hex.DecodeString(v.sig)
		m, _ := hex.DecodeString(v.msg)
		f.Add(k, m, s)
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		want := len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
		if got := VerifyEd25519(pub, msg, sig); got != want {
			t.Fatalf("VerifyEd25519 = %v, crypto/ed25519 = %v", got, want)
		}
	})
}

func BenchmarkVerifyEd25519(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 1100)
	sig := ed25519.Sign(priv, msg)
	b.Run("stdlib", func(b *testing.B) {
		for b.Loop() {
			ed25519.Verify(pub, msg, sig)
		}
	})
	b.Run("VerifyEd25519", func(b *testing.B) {
		for b.Loop() {
			VerifyEd25519(pub, msg, sig)
		}
	})
}
