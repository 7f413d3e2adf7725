package envelope

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"fmt"
	"strconv"

	"github.com/provledger/provledger/crypto/keys"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Sign builds an envelope signed by each signer, keyid = keys.IDOf(signer public key).String().
//
// Signatures are over PAE(payloadType, payload) and appear in signer order.
// payloadType must be non-empty, there must be 1 to MaxSignatures signers,
// and no two may share a key (errors wrap ErrMalformed); signer failures are
// returned with the signer's position. The payload is copied.
func Sign(payloadType string, payload []byte, signers ...signature.Signer) (*Envelope, error) {
	switch {
	case payloadType == "":
		return nil, fmt.Errorf("%w: empty payloadType", ErrMalformed)
	case len(signers) == 0:
		return nil, fmt.Errorf("envelope: sign: %w", ErrNoSignatures)
	case len(signers) > MaxSignatures:
		return nil, fmt.Errorf("%w: %d signers, at most %d allowed", ErrMalformed, len(signers), MaxSignatures)
	}
	pae := PAE(payloadType, payload)
	e := &Envelope{
		PayloadType: payloadType,
		Payload:     bytes.Clone(payload),
		Signatures:  make([]Signature, 0, len(signers)),
	}
	if e.Payload == nil {
		e.Payload = []byte{}
	}
	seen := make(map[keys.KeyID]int, len(signers))
	for i, s := range signers {
		if s == nil {
			return nil, fmt.Errorf("envelope: sign: signer %d is nil", i)
		}
		pub, err := s.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("envelope: sign: signer %d: public key: %w", i, err)
		}
		id, err := keys.IDOf(pub)
		if err != nil {
			return nil, fmt.Errorf("envelope: sign: signer %d: %w", i, err)
		}
		if j, dup := seen[id]; dup {
			return nil, fmt.Errorf("%w: signers %d and %d are the same key %s", ErrMalformed, j, i, id)
		}
		seen[id] = i
		sig, err := s.SignMessage(bytes.NewReader(pae))
		if err != nil {
			return nil, fmt.Errorf("envelope: sign: signer %d (key %s): %w", i, id, err)
		}
		e.Signatures = append(e.Signatures, Signature{KeyID: id.String(), Sig: sig})
	}
	return e, nil
}

// Verifier checks envelopes against a Keyring.
//
// A Verifier holds no state of its own and is safe for concurrent use (the
// Keyring is). A nil Keyring trusts no key.
type Verifier struct {
	Keyring         *keys.Keyring
	TrustOnFirstUse bool
}

// Verify checks every signature: its keyid must name a key in Keyring (or, when TrustOnFirstUse, one of extra, whose IDs are computed with keys.IDOf; such keys are not added to the keyring) and the signature must verify over PAE. It returns the signers' KeyIDs in signature order. Errors: ErrNoSignatures, ErrUnknownKey (message names the keyid and says to add the public key to the trust file), ErrBadSignature (names the keyid), each wrapped with the signature's position.
//
// All signatures must verify (there is no threshold): one bad or unknown
// signature fails the whole envelope. Two signatures with the same keyid,
// more than MaxSignatures signatures, or an empty payloadType give
// ErrMalformed. Keys in extra are ignored unless TrustOnFirstUse is set, and
// extra keys outside the keys package's algorithm policy give an error
// wrapping keys.ErrUnsupportedKey. Verification uses the Keyring's cached
// sigstore verifiers directly over PAE; nothing is re-encoded or re-parsed.
func (v *Verifier) Verify(e *Envelope, extra ...crypto.PublicKey) ([]keys.KeyID, error) {
	if e == nil || len(e.Signatures) == 0 {
		return nil, ErrNoSignatures
	}
	if e.PayloadType == "" {
		return nil, fmt.Errorf("%w: empty payloadType", ErrMalformed)
	}
	if len(e.Signatures) > MaxSignatures {
		return nil, fmt.Errorf("%w: %d signatures, at most %d allowed", ErrMalformed, len(e.Signatures), MaxSignatures)
	}
	var ring *keys.Keyring
	if v != nil {
		ring = v.Keyring
	}
	var tofu map[keys.KeyID][]signature.Verifier
	if v != nil && v.TrustOnFirstUse && len(extra) > 0 {
		tofu = make(map[keys.KeyID][]signature.Verifier, len(extra))
		for i, pub := range extra {
			id, err := keys.IDOf(pub)
			if err != nil {
				return nil, fmt.Errorf("envelope: extra key %d: %w", i, err)
			}
			vs, err := keys.NewVerifiers(pub)
			if err != nil {
				return nil, fmt.Errorf("envelope: extra key %d (%s): %w", i, id, err)
			}
			tofu[id] = vs
		}
	}
	pae := appendPAE(make([]byte, 0, 32+len(e.PayloadType)+len(e.Payload)), e.PayloadType, e.Payload)
	ids := make([]keys.KeyID, len(e.Signatures))
	for i, s := range e.Signatures {
		id, err := keys.ParseKeyID(s.KeyID)
		if err != nil {
			return nil, fmt.Errorf("signature %d: %w: keyid %q is not a key id (64 lowercase hex digits: SHA-256 of the signer's DER public key); add the signer's public key to the trust file and sign with its key id", i, ErrUnknownKey, truncate(s.KeyID))
		}
		for j := 0; j < i; j++ {
			if ids[j] == id {
				return nil, fmt.Errorf("signature %d: %w: keyid %s already signed at position %d", i, ErrMalformed, id, j)
			}
		}
		if ev, ok := ring.Ed25519Verifier(id); ok {
			// A trusted Ed25519 key: its expanded form, built once.
			if !ev.Verify(pae, s.Sig) {
				return nil, fmt.Errorf("signature %d: %w: keyid %s: signature does not verify over the payload", i, ErrBadSignature, id)
			}
			ids[i] = id
			continue
		}
		vs, ok := ring.Verifiers(id)
		if !ok {
			vs, ok = tofu[id]
		}
		if !ok {
			return nil, fmt.Errorf("signature %d: %w: keyid %s is not trusted; add its public key to the trust file", i, ErrUnknownKey, id)
		}
		if !VerifyAny(vs, s.Sig, pae) {
			return nil, fmt.Errorf("signature %d: %w: keyid %s: signature does not verify over the payload", i, ErrBadSignature, id)
		}
		ids[i] = id
	}
	return ids, nil
}

// VerifyAny reports whether any of vs accepts sig over msg (a PAE): what
// sigstore's verifiers answer, with Ed25519 keys checked by
// keys.VerifyEd25519 directly (the same verdict, without sigstore's copies
// of the message and signature through readers).
func VerifyAny(vs []signature.Verifier, sig, msg []byte) bool {
	for _, sv := range vs {
		// sigstore's ED25519Verifier.VerifySignature is exactly
		// ed25519.Verify(its key, message, sig) after copying both
		// readers; keys.VerifyEd25519 gives the same verdict, faster and
		// with no copies.
		if ev, ok := sv.(*signature.ED25519Verifier); ok {
			if pub, err := ev.PublicKey(); err == nil {
				if pk, ok := pub.(ed25519.PublicKey); ok {
					if keys.VerifyEd25519(pk, msg, sig) {
						return true
					}
					continue
				}
			}
		}
		if sv.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)) == nil {
			return true
		}
	}
	return false
}

// appendPAE appends PAE(payloadType, payload) to b: the same bytes as
// dsse.PAE, without its formatting and copies.
func appendPAE(b []byte, payloadType string, payload []byte) []byte {
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}
