package main

import (
	"bytes"
	"fmt"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/record"
)

// sigReport is the outcome of re-checking an envelope's DSSE signatures
// against a trust file.
type sigReport struct {
	// Verified lists the key ids whose signatures verified.
	Verified []string `json:"verified"`
	// Unverifiable lists the key ids of signatures by keys not in the
	// trust file (they cannot be checked, which is not a failure).
	Unverifiable []string `json:"unverifiable,omitempty"`
}

// checkSignatures re-verifies every signature of env with the keys of kr.
// A signature by a trusted key that does not verify, a signature with a
// malformed key id, and a record signer with no signature in the envelope
// are errors; signatures by keys kr does not hold are reported as
// unverifiable.
func checkSignatures(env *envelope.Envelope, rec record.Record, kr *keys.Keyring) (sigReport, error) {
	var rep sigReport
	if len(env.Signatures) == 0 {
		return rep, fmt.Errorf("envelope has no signatures")
	}
	pae := envelope.PAE(env.PayloadType, env.Payload)
	inEnvelope := map[keys.KeyID]bool{}
	for i, s := range env.Signatures {
		id, err := keys.ParseKeyID(s.KeyID)
		if err != nil {
			return rep, fmt.Errorf("signature %d: key id %q: %w", i, s.KeyID, err)
		}
		inEnvelope[id] = true
		vs, ok := kr.Verifiers(id)
		if !ok {
			rep.Unverifiable = append(rep.Unverifiable, id.String())
			continue
		}
		good := false
		for _, v := range vs {
			if v.VerifySignature(bytes.NewReader(s.Sig), bytes.NewReader(pae)) == nil {
				good = true
				break
			}
		}
		if !good {
			return rep, fmt.Errorf("signature %d by trusted key %s does NOT verify", i, id)
		}
		rep.Verified = append(rep.Verified, id.String())
	}
	for _, id := range rec.Signers {
		if !inEnvelope[keys.KeyID(id)] {
			return rep, fmt.Errorf("the entry record names signer %x, which has no signature in the envelope", id[:])
		}
	}
	return rep, nil
}

// loadTrust reads the optional --trust file of PEM public keys; no file
// means no keyring (signatures are then reported as not re-verified).
func loadTrust(path string) (*keys.Keyring, error) {
	if path == "" {
		return nil, nil
	}
	kr, err := keys.LoadKeyringFile(path)
	if err != nil {
		return nil, usagef("--trust: %v", err)
	}
	return kr, nil
}
