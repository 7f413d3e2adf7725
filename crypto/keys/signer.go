package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"
)

// NewSigner wraps priv in a sigstore signature.Signer with the right hash: Ed25519 pure, P-256→SHA-256, P-384→SHA-384, RSA→SHA-256 PKCS#1 v1.5.
//
// priv must be an ed25519.PrivateKey, *ecdsa.PrivateKey or *rsa.PrivateKey
// within the algorithm policy; anything else gives an error wrapping
// ErrUnsupportedKey. Signatures it makes verify with NewVerifiers(priv.Public()).
func NewSigner(priv crypto.Signer) (signature.Signer, error) {
	if _, err := publicOf(priv); err != nil {
		return nil, err
	}
	var (
		s   signature.Signer
		err error
	)
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		s, err = signature.LoadED25519Signer(p)
	case *ecdsa.PrivateKey:
		s, err = signature.LoadECDSASigner(p, curveHash(p.Curve))
	case *rsa.PrivateKey:
		s, err = signature.LoadRSAPKCS1v15Signer(p, crypto.SHA256)
	default:
		return nil, fmt.Errorf("%w: private key type %T (want ed25519.PrivateKey, *ecdsa.PrivateKey or *rsa.PrivateKey)", ErrUnsupportedKey, priv)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: load %T signer: %w", priv, err)
	}
	return s, nil
}

// NewVerifiers returns the sigstore verifiers to try for pub: one for Ed25519/ECDSA; for RSA both PKCS#1 v1.5 and PSS (SHA-256).
//
// A signature is valid for pub if any of the returned verifiers accepts it.
// pub must be within the algorithm policy (error wrapping ErrUnsupportedKey otherwise).
// The verifiers hold no mutable state and are safe for concurrent use.
func NewVerifiers(pub crypto.PublicKey) ([]signature.Verifier, error) {
	if err := CheckPublicKey(pub); err != nil {
		return nil, err
	}
	var vs []signature.Verifier
	switch p := pub.(type) {
	case ed25519.PublicKey:
		v, err := signature.LoadED25519Verifier(p)
		if err != nil {
			return nil, fmt.Errorf("keys: load Ed25519 verifier: %w", err)
		}
		vs = append(vs, v)
	case *ecdsa.PublicKey:
		v, err := signature.LoadECDSAVerifier(p, curveHash(p.Curve))
		if err != nil {
			return nil, fmt.Errorf("keys: load ECDSA verifier: %w", err)
		}
		vs = append(vs, v)
	case *rsa.PublicKey:
		v1, err := signature.LoadRSAPKCS1v15Verifier(p, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("keys: load RSA PKCS#1 v1.5 verifier: %w", err)
		}
		v2, err := signature.LoadRSAPSSVerifier(p, crypto.SHA256, nil)
		if err != nil {
			return nil, fmt.Errorf("keys: load RSA PSS verifier: %w", err)
		}
		vs = append(vs, v1, v2)
	}
	return vs, nil
}

// curveHash is the hash paired with an ECDSA curve; CheckPublicKey has
// already limited curves to P-256 and P-384.
func curveHash(c elliptic.Curve) crypto.Hash {
	if c == elliptic.P384() {
		return crypto.SHA384
	}
	return crypto.SHA256
}
