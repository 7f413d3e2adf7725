package policy

import (
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/provledger/provledger/crypto/envelope"
)

// Sign returns the DSSE envelope of a policy entry: the canonical JSON
// payload of p under PayloadType, signed by signers (admin keys).
func Sign(p *Policy, signers ...signature.Signer) (*envelope.Envelope, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b, err := p.Marshal()
	if err != nil {
		return nil, err
	}
	env, err := envelope.Sign(PayloadType, b, signers...)
	if err != nil {
		return nil, fmt.Errorf("policy: sign: %w", err)
	}
	return env, nil
}
