package policy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
)

// ErrIgnored is wrapped by Accept's errors: the policy entry does not
// change the policy in force.
var ErrIgnored = errors.New("policy entry ignored")

// Accept decides whether the policy entry with the given canonical DSSE
// envelope, namespace and signers (the key ids of its entry record)
// changes the policy in force s, and returns its policy if so. This is
// the one rule every reader of a log applies (the node's policy index, the
// scanner, prov policy show), so they all fold the same States:
//
//   - the envelope must hold a policy payload that parses (ParseJSON)
//     and is not a chain-of-logs statement (which changes no rule);
//   - while no policy is in force, the entry must be signed by one of
//     bootstrap (the log key: the node writes the bootstrap policy);
//   - afterwards, by an admin key of the policy in force (CheckAdmin).
//
// Otherwise the error wraps ErrIgnored and says why.
func (s *State) Accept(env []byte, namespace string, signers, bootstrap []keys.KeyID) (*Policy, error) {
	if env == nil {
		return nil, fmt.Errorf("%w: its envelope is not stored (redacted)", ErrIgnored)
	}
	e, err := envelope.Parse(env)
	if err != nil {
		return nil, fmt.Errorf("%w: the envelope does not parse: %v", ErrIgnored, err)
	}
	if e.PayloadType != PayloadType {
		return nil, fmt.Errorf("%w: payload type %q is not %s", ErrIgnored, e.PayloadType, PayloadType)
	}
	p, err := ParseJSON(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIgnored, err)
	}
	if p.IsChainStatement() {
		return nil, fmt.Errorf("%w: a chain-of-logs statement (successor or predecessor link) changes no rule", ErrIgnored)
	}
	if !s.InForce() {
		for _, id := range signers {
			if slices.Contains(bootstrap, id) {
				return p, nil
			}
		}
		return nil, fmt.Errorf("%w: no policy is in force and the entry is not signed by the log key (the bootstrap policy comes from provd --policy)", ErrIgnored)
	}
	if err := s.CheckAdmin(namespace, signers); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIgnored, err)
	}
	return p, nil
}

// IsChainEnvelope reports whether the canonical DSSE envelope env holds a
// chain-of-logs statement (Policy.IsChainStatement).
func IsChainEnvelope(env []byte) bool {
	e, err := envelope.Parse(env)
	if err != nil || e.PayloadType != PayloadType {
		return false
	}
	p, err := ParseJSON(e.Payload)
	return err == nil && p.IsChainStatement()
}
