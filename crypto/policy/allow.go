package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/provledger/provledger/crypto/keys"
)

// Sentinel errors of Allows and CheckAdmin; a *DeniedError wraps one.
var (
	// ErrUnknownKey: the policy in force grants no such key.
	ErrUnknownKey = errors.New("key not granted by the policy in force")
	// ErrRevokedKey: a policy entry revoked the key.
	ErrRevokedKey = errors.New("key revoked by policy")
	// ErrNamespace: the key is not granted the namespace.
	ErrNamespace = errors.New("namespace not granted to the key")
	// ErrPayloadType: the key is not granted the payload type.
	ErrPayloadType = errors.New("payload type not granted to the key")
	// ErrNotAdmin: a policy entry is not signed by an admin key of the
	// policy in force.
	ErrNotAdmin = errors.New("policy entry not signed by an admin key")
	// ErrNoPolicy: no policy is in force, so there is no admin key to
	// sign a policy entry.
	ErrNoPolicy = errors.New("no policy in force")
)

// DeniedError says why the policy in force refused a key.
type DeniedError struct {
	// Key is the refused key (zero for ErrNotAdmin with no signer).
	Key keys.KeyID
	// Namespace and PayloadType are what the key signed.
	Namespace, PayloadType string
	// PolicyIndex is the index of the last policy entry in force.
	PolicyIndex uint64
	// At is the index of the policy entry that granted (ErrNamespace,
	// ErrPayloadType) or revoked (ErrRevokedKey) the key.
	At uint64
	// Allowed lists the namespaces or payload types the key is granted
	// (ErrNamespace, ErrPayloadType).
	Allowed []string
	// Reason is one of the sentinel errors.
	Reason error
}

// Error names the key, the namespace, the type and the policy entry.
func (e *DeniedError) Error() string {
	var why string
	switch e.Reason {
	case ErrRevokedKey:
		why = fmt.Sprintf("it was revoked by policy entry %d", e.At)
	case ErrUnknownKey:
		why = "no policy entry grants it"
	case ErrNamespace:
		why = fmt.Sprintf("it is granted namespaces %s only (policy entry %d)", strings.Join(e.Allowed, ", "), e.At)
	case ErrPayloadType:
		why = fmt.Sprintf("it is granted payload types %s only (policy entry %d)", strings.Join(e.Allowed, ", "), e.At)
	case ErrNotAdmin:
		return fmt.Sprintf("policy entry in namespace %q is not signed by an admin key of the policy in force (policy entry %d): sign it with a key the policy lists with admin: true", e.Namespace, e.PolicyIndex)
	default:
		why = e.Reason.Error()
	}
	return fmt.Sprintf("key %s may not sign %s in namespace %q under the policy in force (policy entry %d): %s", e.Key, e.PayloadType, e.Namespace, e.PolicyIndex, why)
}

// Unwrap returns the sentinel reason.
func (e *DeniedError) Unwrap() error { return e.Reason }

// Allows reports whether key id may sign an entry of payloadType in
// namespace under the policy in force: nil, or a *DeniedError wrapping
// ErrUnknownKey, ErrRevokedKey, ErrNamespace or ErrPayloadType. With no
// policy in force (InForce false) every key is allowed.
func (s *State) Allows(id keys.KeyID, namespace, payloadType string) error {
	if !s.InForce() {
		return nil
	}
	deny := func(reason error, at uint64, allowed []string) error {
		return &DeniedError{Key: id, Namespace: namespace, PayloadType: payloadType, PolicyIndex: s.index, At: at, Allowed: allowed, Reason: reason}
	}
	if at, ok := s.revoked[id]; ok {
		return deny(ErrRevokedKey, at, nil)
	}
	g, ok := s.grants[id]
	if !ok {
		return deny(ErrUnknownKey, 0, nil)
	}
	if !match(g.Namespaces, namespace) {
		return deny(ErrNamespace, g.GrantedAt, g.Namespaces)
	}
	if !match(g.PayloadTypes, payloadType) {
		return deny(ErrPayloadType, g.GrantedAt, g.PayloadTypes)
	}
	return nil
}

// CheckAdmin reports whether a policy entry in namespace signed by signers
// may change the policy in force: at least one signer must be an admin
// key that is granted and not revoked. It returns ErrNoPolicy (wrapped)
// when no policy is in force, else nil or a *DeniedError wrapping
// ErrNotAdmin.
func (s *State) CheckAdmin(namespace string, signers []keys.KeyID) error {
	if !s.InForce() {
		return fmt.Errorf("policy: %w: the first policy comes from the node's bootstrap file (provd --policy)", ErrNoPolicy)
	}
	for _, id := range signers {
		if g, ok := s.grants[id]; ok && g.Admin {
			return nil
		}
	}
	e := &DeniedError{Namespace: namespace, PayloadType: PayloadType, PolicyIndex: s.index, Reason: ErrNotAdmin}
	if len(signers) > 0 {
		e.Key = signers[0]
	}
	return e
}

// CheckEntry is the rule the policy in force s sets for one entry of the
// log: the node applies it at append (api/service) and prov audit
// --policy-from-log at every index, so both judge alike.
//
//   - A policy entry must be signed by an admin key of the policy in force
//     (CheckAdmin). While none is in force, by one of bootstrap (the log
//     key, which signs provd --policy), unless it is a chain-of-logs
//     statement (isChain reports it; called only then), which changes no
//     rule and which any trusted key may append.
//   - Any other entry: every signer must be allowed its namespace and
//     payload type (Allows).
//
// The error is nil, a *DeniedError, or wraps ErrNoPolicy.
func (s *State) CheckEntry(namespace, payloadType string, signers [][32]byte, bootstrap []keys.KeyID, isChain func() bool) error {
	if payloadType != PayloadType {
		for _, id := range signers {
			if err := s.Allows(id, namespace, payloadType); err != nil {
				return err
			}
		}
		return nil
	}
	ids := make([]keys.KeyID, len(signers))
	for i, id := range signers {
		ids[i] = id
	}
	err := s.CheckAdmin(namespace, ids)
	if err == nil || !errors.Is(err, ErrNoPolicy) {
		return err
	}
	for _, id := range ids {
		if slices.Contains(bootstrap, id) {
			return nil
		}
	}
	if isChain != nil && isChain() {
		return nil
	}
	return fmt.Errorf("%w: a policy entry must then be signed by the log key (the bootstrap policy, provd --policy FILE at cluster creation)", ErrNoPolicy)
}
