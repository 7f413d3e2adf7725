package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// PEM block types.
const (
	pemPublic     = "PUBLIC KEY"
	pemPKCS8      = "PRIVATE KEY"
	pemPKCS1      = "RSA PRIVATE KEY"
	pemSEC1       = "EC PRIVATE KEY"
	pemECParams   = "EC PARAMETERS"
	pemEncrypted8 = "ENCRYPTED PRIVATE KEY"
)

var pemBegin = []byte("-----BEGIN")

// MarshalPrivatePEM encodes priv as a PKCS#8 "PRIVATE KEY" PEM block.
// priv must be within the algorithm policy (error wrapping ErrUnsupportedKey otherwise).
// ParsePrivatePEM(MarshalPrivatePEM(k)) returns a key equal to k.
func MarshalPrivatePEM(priv crypto.Signer) ([]byte, error) {
	if _, err := publicOf(priv); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: marshal PKCS#8: %v", ErrUnsupportedKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
}

// MarshalPublicPEM encodes pub as a PKIX "PUBLIC KEY" PEM block.
// pub must be within the algorithm policy (error wrapping ErrUnsupportedKey otherwise).
// The block's bytes are exactly what IDOf hashes.
func MarshalPublicPEM(pub crypto.PublicKey) ([]byte, error) {
	if err := CheckPublicKey(pub); err != nil {
		return nil, err
	}
	der, err := publicDER(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der}), nil
}

// pemBlocks decodes every PEM block in b. A "-----BEGIN" that pem.Decode
// could not turn into a block is reported instead of skipped.
func pemBlocks(b []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		blocks = append(blocks, blk)
	}
	if n := bytes.Count(b, pemBegin); n != len(blocks) {
		return nil, fmt.Errorf("%w: %d PEM headers but only %d well-formed PEM blocks (truncated or corrupted block?)", ErrBadPEM, n, len(blocks))
	}
	return blocks, nil
}

func checkUnencrypted(blk *pem.Block, n int) error {
	if blk.Type == pemEncrypted8 || blk.Headers["Proc-Type"] != "" || blk.Headers["DEK-Info"] != "" {
		return fmt.Errorf("%w: PEM block %d (%q) is encrypted; decrypt it first (e.g. openssl pkey -in key.pem -out plain.pem)", ErrUnsupportedKey, n, blk.Type)
	}
	return nil
}

// ParsePrivatePEM reads PKCS#8, PKCS#1 ("RSA PRIVATE KEY") and SEC1 ("EC PRIVATE KEY") PEM as openssl writes them (also when an "EC PARAMETERS" block precedes the key, as `openssl ecparam -genkey` writes). Only Ed25519, ECDSA P-256/P-384 and RSA ≥ 2048 bits are accepted (ErrUnsupportedKey otherwise).
//
// The input must hold exactly one private key block; "EC PARAMETERS" blocks
// and text outside blocks are ignored. No key block gives ErrNoPEM; other
// block types, several key blocks, or undecodable DER give ErrBadPEM;
// encrypted keys give ErrUnsupportedKey. The result is an
// ed25519.PrivateKey, *ecdsa.PrivateKey or *rsa.PrivateKey.
func ParsePrivatePEM(b []byte) (crypto.Signer, error) {
	blocks, err := pemBlocks(b)
	if err != nil {
		return nil, err
	}
	var key crypto.Signer
	for i, blk := range blocks {
		n := i + 1
		if blk.Type == pemECParams {
			continue
		}
		if err := checkUnencrypted(blk, n); err != nil {
			return nil, err
		}
		if key != nil {
			return nil, fmt.Errorf("%w: PEM block %d (%q): more than one private key in input", ErrBadPEM, n, blk.Type)
		}
		var k any
		switch blk.Type {
		case pemPKCS8:
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case pemPKCS1:
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case pemSEC1:
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		default:
			return nil, fmt.Errorf("%w: PEM block %d is %q, want %q, %q or %q", ErrBadPEM, n, blk.Type, pemPKCS8, pemPKCS1, pemSEC1)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: PEM block %d (%q): %v", derError(err), n, blk.Type, err)
		}
		switch p := k.(type) {
		case ed25519.PrivateKey:
			key = p
		case *ecdsa.PrivateKey:
			key = p
		case *rsa.PrivateKey:
			key = p
		default:
			return nil, fmt.Errorf("%w: PEM block %d holds a %T", ErrUnsupportedKey, n, k)
		}
		if _, err := publicOf(key); err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
	}
	if key == nil {
		return nil, fmt.Errorf("%w: want a %q, %q or %q block", ErrNoPEM, pemPKCS8, pemPKCS1, pemSEC1)
	}
	return key, nil
}

// ParsePublicPEM reads exactly one PKIX "PUBLIC KEY" block (text around it is
// ignored); same algorithm rules as ParsePrivatePEM. No block gives ErrNoPEM,
// several blocks or another block type give ErrBadPEM.
func ParsePublicPEM(b []byte) (crypto.PublicKey, error) {
	pubs, err := ParsePublicPEMs(b)
	if err != nil {
		return nil, err
	}
	switch len(pubs) {
	case 0:
		return nil, fmt.Errorf("%w: want one %q block", ErrNoPEM, pemPublic)
	case 1:
		return pubs[0], nil
	default:
		return nil, fmt.Errorf("%w: %d %q blocks, want exactly one", ErrBadPEM, len(pubs), pemPublic)
	}
}

// ParsePublicPEMs reads zero or more concatenated PKIX "PUBLIC KEY" blocks
// (a trust file), in file order. Text between blocks (comments) is ignored;
// empty input gives an empty result and no error. Any block that is not a
// well-formed "PUBLIC KEY" gives ErrBadPEM, any key outside the algorithm
// policy ErrUnsupportedKey; errors name the block's position (from 1).
func ParsePublicPEMs(b []byte) ([]crypto.PublicKey, error) {
	blocks, err := pemBlocks(b)
	if err != nil {
		return nil, err
	}
	pubs := make([]crypto.PublicKey, 0, len(blocks))
	for i, blk := range blocks {
		n := i + 1
		if blk.Type != pemPublic {
			return nil, fmt.Errorf("%w: PEM block %d is %q, want %q", ErrBadPEM, n, blk.Type, pemPublic)
		}
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PEM block %d: %v", derError(err), n, err)
		}
		if err := CheckPublicKey(pub); err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		pubs = append(pubs, pub)
	}
	return pubs, nil
}

// derError classifies a crypto/x509 parse error: x509 reports algorithms and
// curves it does not know as "unsupported", which is a policy matter for the
// caller, not corruption.
func derError(err error) error {
	if strings.Contains(err.Error(), "unsupported") || strings.Contains(err.Error(), "unknown") {
		return ErrUnsupportedKey
	}
	return ErrBadPEM
}
