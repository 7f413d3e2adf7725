package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/record"
)

// sigCache re-verifies DSSE signatures for the audit with the same
// verdicts as checkSignatures, but with each trusted key parsed once:
// keyrings are indexed by the key id as envelopes spell it (lowercase
// hex), Ed25519 keys are checked with a keys.Ed25519Verifier (the key's
// point and tables precomputed once; verdicts of keys.VerifyEd25519; no copies
// of the message through io.Readers), and the PAE is built into the
// caller's buffer. A key id the index lacks falls back to the keyring
// itself, so a keyring that grows later is still honoured.
type sigCache struct {
	rings sync.Map // *keys.Keyring → fastRing
}

// fastRing is a keyring's keys by key id string.
type fastRing map[string]fastKey

// fastKey is one trusted key: ed for Ed25519, vs for the other algorithms.
type fastKey struct {
	ed *keys.Ed25519Verifier
	vs []signature.Verifier
}

func (k fastKey) verify(sig, pae []byte) bool {
	if k.ed != nil {
		return k.ed.Verify(pae, sig)
	}
	return envelope.VerifyAny(k.vs, sig, pae)
}

// ring returns the index of kr, building it on first use.
func (c *sigCache) ring(kr *keys.Keyring) fastRing {
	if r, ok := c.rings.Load(kr); ok {
		return r.(fastRing)
	}
	r := fastRing{}
	for _, id := range kr.IDs() {
		pub, _ := kr.Lookup(id)
		if ed, ok := pub.(ed25519.PublicKey); ok && len(ed) == ed25519.PublicKeySize {
			r[id.String()] = fastKey{ed: keys.NewEd25519Verifier(ed)}
			continue
		}
		if vs, ok := kr.Verifiers(id); ok {
			r[id.String()] = fastKey{vs: vs}
		}
	}
	c.rings.Store(kr, r)
	return r
}

// sigCount is what check found: signatures verified and signatures by
// keys the keyring does not hold.
type sigCount struct{ verified, unverifiable int }

// check re-verifies every signature of env with the keys of kr, exactly as
// checkSignatures does (same failures, same messages), and counts them.
// buf is scratch space for the PAE, reused across calls by one goroutine.
func (c *sigCache) check(env *envelope.Envelope, rec record.Record, kr *keys.Keyring, buf *[]byte) (sigCount, error) {
	var n sigCount
	if len(env.Signatures) == 0 {
		return n, fmt.Errorf("envelope has no signatures")
	}
	ring := c.ring(kr)
	pae := appendPAE((*buf)[:0], env.PayloadType, env.Payload)
	*buf = pae
	for i, s := range env.Signatures {
		k, ok := ring[s.KeyID]
		if !ok {
			id, err := keys.ParseKeyID(s.KeyID)
			if err != nil {
				return n, fmt.Errorf("signature %d: key id %q: %w", i, s.KeyID, err)
			}
			vs, ok := kr.Verifiers(id)
			if !ok {
				n.unverifiable++
				continue
			}
			k = fastKey{vs: vs}
		}
		if !k.verify(s.Sig, pae) {
			return n, fmt.Errorf("signature %d by trusted key %s does NOT verify", i, s.KeyID)
		}
		n.verified++
	}
	var hx [64]byte
	for _, id := range rec.Signers {
		hex.Encode(hx[:], id[:])
		found := false
		for _, s := range env.Signatures {
			if s.KeyID == string(hx[:]) {
				found = true
				break
			}
		}
		if !found {
			return n, fmt.Errorf("the entry record names signer %x, which has no signature in the envelope", id[:])
		}
	}
	return n, nil
}

// appendPAE appends the DSSE v1 pre-authentication encoding of
// (payloadType, payload) to b: the bytes envelope.PAE returns, without
// its intermediate copies.
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
