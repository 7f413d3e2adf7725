package keys

import (
	"crypto/ed25519"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Ed25519Verifier checks signatures by one Ed25519 key with the key's
// point decompressed and its tables precomputed once (curve25519-voi's
// ExpandedPublicKey, about 1.5 KiB): for a verifier that checks many
// signatures by the same key, such as an auditor replaying a log. Its
// verdicts are VerifyEd25519's (the same library, the same stdlib
// semantics; a differential test holds it to crypto/ed25519), and it is
// safe for concurrent use.
type Ed25519Verifier struct {
	pub ed25519.PublicKey
	exp *voi.ExpandedPublicKey // nil: the key did not expand; VerifyEd25519 decides
}

// NewEd25519Verifier returns the verifier of pub. It never fails: a key
// of the wrong length, or one that is not a curve point, gives a verifier
// that rejects what VerifyEd25519 rejects for it (everything).
func NewEd25519Verifier(pub ed25519.PublicKey) *Ed25519Verifier {
	v := &Ed25519Verifier{pub: append(ed25519.PublicKey(nil), pub...)}
	if len(pub) == ed25519.PublicKeySize {
		if exp, err := voi.NewExpandedPublicKey(voi.PublicKey(pub)); err == nil {
			v.exp = exp
		}
	}
	return v
}

// Verify reports whether sig is a valid Ed25519 signature of msg by the
// verifier's key, exactly as VerifyEd25519(pub, msg, sig) does.
func (v *Ed25519Verifier) Verify(msg, sig []byte) bool {
	if v.exp == nil {
		return VerifyEd25519(v.pub, msg, sig)
	}
	return voi.VerifyExpandedWithOptions(v.exp, msg, sig, stdlibSemantics)
}
