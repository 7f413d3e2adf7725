package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package that is caused by
// its input wraps one of these, so callers can branch with errors.Is.
var (
	// ErrBadKeyID: a string is not a key id (64 lowercase hex digits).
	ErrBadKeyID = errors.New("keys: malformed key id")
	// ErrUnsupportedKey: the key's algorithm, curve or size is outside the
	// package's algorithm policy, or the key is encrypted.
	ErrUnsupportedKey = errors.New("keys: unsupported key")
	// ErrNoPEM: the input holds no PEM block of the expected kind.
	ErrNoPEM = errors.New("keys: no PEM key block found")
	// ErrBadPEM: a PEM block is of the wrong type, cannot be decoded, or
	// holds DER that does not parse.
	ErrBadPEM = errors.New("keys: malformed PEM key")
)

// Limits on RSA modulus size, in bits.
const (
	MinRSABits = 2048
	MaxRSABits = 8192
)

// KeyID identifies a public key: SHA-256 of its DER (PKIX SubjectPublicKeyInfo) encoding.
// The zero KeyID names no key.
type KeyID [32]byte

// String returns the key id as 64 lowercase hex digits; ParseKeyID inverts it.
func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// IsZero reports whether k is the zero KeyID.
func (k KeyID) IsZero() bool { return k == KeyID{} }

// ParseKeyID accepts exactly the String() form: 64 lowercase hex digits.
// Anything else (upper case, prefixes, other lengths) gives an error wrapping ErrBadKeyID.
func ParseKeyID(s string) (KeyID, error) {
	var id KeyID
	if len(s) != 2*len(id) {
		return KeyID{}, fmt.Errorf("%w: %q has %d characters, want %d lowercase hex digits", ErrBadKeyID, truncate(s), len(s), 2*len(id))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return KeyID{}, fmt.Errorf("%w: %q: character %d is not a lowercase hex digit", ErrBadKeyID, truncate(s), i)
		}
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return KeyID{}, fmt.Errorf("%w: %q: %v", ErrBadKeyID, truncate(s), err)
	}
	return id, nil
}

// truncate shortens attacker-controlled strings before they go into error messages.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// IDOf returns the KeyID of pub: the SHA-256 of its PKIX DER encoding.
// It works for any key that x509.MarshalPKIXPublicKey can encode, including
// keys outside the algorithm policy (so such keys can be named in errors);
// keys it cannot encode give an error wrapping ErrUnsupportedKey.
func IDOf(pub crypto.PublicKey) (KeyID, error) {
	der, err := publicDER(pub)
	if err != nil {
		return KeyID{}, err
	}
	return sha256.Sum256(der), nil
}

func publicDER(pub crypto.PublicKey) ([]byte, error) {
	if p, ok := pub.(ed25519.PublicKey); ok && len(p) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: Ed25519 public key has %d bytes, want %d", ErrUnsupportedKey, len(p), ed25519.PublicKeySize)
	}
	if pub == nil {
		return nil, fmt.Errorf("%w: nil public key", ErrUnsupportedKey)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %T: %v", ErrUnsupportedKey, pub, err)
	}
	return der, nil
}

// Algorithm names accepted by Generate.
const (
	AlgEd25519   = "ed25519"
	AlgECDSAP256 = "ecdsa-p256"
	AlgECDSAP384 = "ecdsa-p384"
	AlgRSA2048   = "rsa-2048"
	AlgRSA3072   = "rsa-3072"
	AlgRSA4096   = "rsa-4096"
)

// Algorithms lists the names Generate accepts, default first.
var Algorithms = []string{AlgEd25519, AlgECDSAP256, AlgECDSAP384, AlgRSA2048, AlgRSA3072, AlgRSA4096}

// Generate returns a new private key from crypto/rand.
// Algorithms accepted by Generate: "ed25519" (default), "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096".
// The empty string means "ed25519". The result is an ed25519.PrivateKey,
// *ecdsa.PrivateKey or *rsa.PrivateKey; any other name gives an error
// wrapping ErrUnsupportedKey.
func Generate(alg string) (crypto.Signer, error) {
	switch alg {
	case "", AlgEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("keys: generate ed25519: %w", err)
		}
		return priv, nil
	case AlgECDSAP256, AlgECDSAP384:
		curve := elliptic.P256()
		if alg == AlgECDSAP384 {
			curve = elliptic.P384()
		}
		priv, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("keys: generate %s: %w", alg, err)
		}
		return priv, nil
	case AlgRSA2048, AlgRSA3072, AlgRSA4096:
		bits := map[string]int{AlgRSA2048: 2048, AlgRSA3072: 3072, AlgRSA4096: 4096}[alg]
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, fmt.Errorf("keys: generate %s: %w", alg, err)
		}
		return priv, nil
	default:
		return nil, fmt.Errorf("%w: algorithm %q (want one of %v)", ErrUnsupportedKey, alg, Algorithms)
	}
}

// CheckPublicKey returns nil if pub is within the algorithm policy
// (Ed25519, ECDSA P-256/P-384, RSA 2048–8192 bits), and otherwise an error
// wrapping ErrUnsupportedKey that says why.
func CheckPublicKey(pub crypto.PublicKey) error {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key has %d bytes, want %d", ErrUnsupportedKey, len(p), ed25519.PublicKeySize)
		}
		return nil
	case *ecdsa.PublicKey:
		if p == nil || p.Curve == nil {
			return fmt.Errorf("%w: nil ECDSA key", ErrUnsupportedKey)
		}
		if p.Curve != elliptic.P256() && p.Curve != elliptic.P384() {
			return fmt.Errorf("%w: ECDSA curve %s (want P-256 or P-384)", ErrUnsupportedKey, p.Curve.Params().Name)
		}
		return nil
	case *rsa.PublicKey:
		if p == nil || p.N == nil {
			return fmt.Errorf("%w: nil RSA key", ErrUnsupportedKey)
		}
		if n := p.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return fmt.Errorf("%w: RSA key of %d bits (want %d to %d)", ErrUnsupportedKey, n, MinRSABits, MaxRSABits)
		}
		return nil
	case nil:
		return fmt.Errorf("%w: nil public key", ErrUnsupportedKey)
	default:
		return fmt.Errorf("%w: key type %T (want Ed25519, ECDSA P-256/P-384 or RSA)", ErrUnsupportedKey, pub)
	}
}

// publicOf returns the public half of a private key, checked against the policy.
func publicOf(priv crypto.Signer) (crypto.PublicKey, error) {
	if priv == nil {
		return nil, fmt.Errorf("%w: nil private key", ErrUnsupportedKey)
	}
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		if len(p) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("%w: Ed25519 private key has %d bytes, want %d", ErrUnsupportedKey, len(p), ed25519.PrivateKeySize)
		}
	case *ecdsa.PrivateKey:
		if p == nil {
			return nil, fmt.Errorf("%w: nil ECDSA key", ErrUnsupportedKey)
		}
	case *rsa.PrivateKey:
		if p == nil {
			return nil, fmt.Errorf("%w: nil RSA key", ErrUnsupportedKey)
		}
	}
	pub := priv.Public()
	if err := CheckPublicKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}
