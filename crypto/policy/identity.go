package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/provledger/provledger/crypto/keys"
)

// The roles an identity may hold (the roles of the node's tokens file,
// docs/security.md): admin holds every role, reader holds auditor.
const (
	RoleAppender = "appender"
	RoleReader   = "reader"
	RoleAuditor  = "auditor"
	RoleAdmin    = "admin"
)

var roles = []string{RoleAppender, RoleReader, RoleAuditor, RoleAdmin}

// Identity grants roles to a caller of the node: a principal of the
// node's tokens file (by its name), or a client certificate identity. The
// policy holds no secret: tokens stay (hashed) in the tokens file, which
// authenticates; an identity the policy in force names gets its grant from
// the policy, whatever the tokens file says for it.
type Identity struct {
	// Name is the principal's name in the tokens file (1..64 bytes, no
	// white space); also its name in logs and rate limits.
	Name string `json:"name"`
	// Certificate, if set, is a client certificate identity ("uri:<URI
	// SAN>", "dns:<DNS SAN>", "email:<email SAN>" or "cn:<subject CN>"):
	// a caller whose certificate (verified by the node's client CA) proves
	// it is this identity, with or without a line in the tokens file.
	Certificate string `json:"certificate,omitempty"`
	// Roles are appender, reader, auditor and admin; none means the
	// identity may do nothing (how an amendment takes a token's rights
	// away without replacing the policy).
	Roles []string `json:"roles,omitempty"`
	// Namespaces an appender may append to: exact names or path.Match
	// patterns, as for keys; empty means every namespace.
	Namespaces []string `json:"namespaces,omitempty"`
	// PayloadTypes an appender may append: exact types or patterns; empty
	// means every type the node accepts.
	PayloadTypes []string `json:"payloadTypes,omitempty"`
	// Keys are the key ids (64 hex digits) that may sign an appender's
	// envelopes (every signature); empty means any key the policy allows.
	Keys []string `json:"keys,omitempty"`

	keyIDs []keys.KeyID
}

// IdentityGrant is an identity granted by the policy in force.
type IdentityGrant struct {
	// Name, Certificate, Roles, Namespaces and PayloadTypes are as the
	// policy listed them.
	Name, Certificate        string
	Roles                    []string
	Namespaces, PayloadTypes []string
	// Keys are the key ids that may sign its envelopes (empty: any).
	Keys []keys.KeyID
	// GrantedAt is the index of the policy entry that granted it last.
	GrantedAt uint64
}

// HasRole reports whether the identity holds role r (admin holds every
// role, reader holds auditor).
func (g *IdentityGrant) HasRole(r string) bool {
	for _, x := range g.Roles {
		if x == r || x == RoleAdmin || (x == RoleReader && r == RoleAuditor) {
			return true
		}
	}
	return false
}

// AllowsNamespace reports whether the identity's grant covers namespace
// ns (patterns as for keys; none: every namespace).
func (g *IdentityGrant) AllowsNamespace(ns string) bool { return match(g.Namespaces, ns) }

// AllowsPayloadType reports whether the identity's grant covers payload
// type t (none: every type).
func (g *IdentityGrant) AllowsPayloadType(t string) bool { return match(g.PayloadTypes, t) }

// AllowsKey reports whether the identity's envelopes may be signed by key
// id (no keys listed: any).
func (g *IdentityGrant) AllowsKey(id keys.KeyID) bool {
	return len(g.Keys) == 0 || slices.Contains(g.Keys, id)
}

// validateIdentities checks p.Identities and fills in the key ids.
func (p *Policy) validateIdentities() error {
	names := map[string]int{}
	certs := map[string]int{}
	for i := range p.Identities {
		id := &p.Identities[i]
		field := fmt.Sprintf("identities[%d]", i)
		if id.Name == "" || len(id.Name) > 64 || !utf8.ValidString(id.Name) || strings.ContainsAny(id.Name, " \t\r\n") {
			return fmt.Errorf("%w: %s.name %q must be 1..64 bytes without white space: the principal's name in the tokens file", ErrBadPolicy, field, trunc(id.Name))
		}
		if j, dup := names[id.Name]; dup {
			return fmt.Errorf("%w: identities[%d] and %s have the same name %q; list it once", ErrBadPolicy, j, field, id.Name)
		}
		names[id.Name] = i
		if c := id.Certificate; c != "" {
			kind, val, ok := strings.Cut(c, ":")
			if !ok || val == "" || len(c) > 1024 || !utf8.ValidString(c) || !slices.Contains([]string{"uri", "dns", "email", "cn"}, kind) {
				return fmt.Errorf("%w: %s.certificate %q: want uri:<URI SAN>, dns:<DNS SAN>, email:<email SAN> or cn:<subject CN>", ErrBadPolicy, field, trunc(c))
			}
			if j, dup := certs[c]; dup {
				return fmt.Errorf("%w: identities[%d] and %s have the same certificate %q; give each identity its own", ErrBadPolicy, j, field, trunc(c))
			}
			certs[c] = i
		}
		for j, r := range id.Roles {
			if !slices.Contains(roles, r) {
				return fmt.Errorf("%w: %s.roles[%d]: unknown role %q (appender, reader, auditor, admin)", ErrBadPolicy, field, j, trunc(r))
			}
		}
		if err := checkPatterns(field, id.Namespaces, id.PayloadTypes); err != nil {
			return err
		}
		id.keyIDs = id.keyIDs[:0]
		for j, k := range id.Keys {
			kid, err := keys.ParseKeyID(k)
			if err != nil {
				return fmt.Errorf("%w: %s.keys[%d]: %v (a key id as prov keys prints it)", ErrBadPolicy, field, j, err)
			}
			id.keyIDs = append(id.keyIDs, kid)
		}
	}
	return nil
}

// checkPatterns checks the namespace and payload type patterns (exact
// names or path.Match patterns) of the member field (a key or an
// identity).
func checkPatterns(field string, namespaces, payloadTypes []string) error {
	for j, ns := range namespaces {
		if _, err := path.Match(ns, ""); ns == "" || len(ns) > 255 || err != nil {
			return fmt.Errorf("%w: %s.namespaces[%d]: %q is not a namespace or pattern (e.g. \"team-a\" or \"team-a/*\")", ErrBadPolicy, field, j, trunc(ns))
		}
	}
	for j, t := range payloadTypes {
		if _, err := path.Match(t, ""); t == "" || len(t) > 255 || err != nil {
			return fmt.Errorf("%w: %s.payloadTypes[%d]: %q is not a payload type or pattern (e.g. \"application/vnd.openlineage.*\")", ErrBadPolicy, field, j, trunc(t))
		}
	}
	return nil
}

// grant returns the IdentityGrant of a validated identity.
func (id *Identity) grant(index uint64) *IdentityGrant {
	return &IdentityGrant{
		Name: id.Name, Certificate: id.Certificate, Roles: slices.Clone(id.Roles),
		Namespaces: slices.Clone(id.Namespaces), PayloadTypes: slices.Clone(id.PayloadTypes),
		Keys: slices.Clone(id.keyIDs), GrantedAt: index,
	}
}

// identity renders a grant back as a policy member.
func (g *IdentityGrant) identity() Identity {
	ks := make([]string, len(g.Keys))
	for i, k := range g.Keys {
		ks[i] = k.String()
	}
	if len(ks) == 0 {
		ks = nil
	}
	return Identity{Name: g.Name, Certificate: g.Certificate, Roles: slices.Clone(g.Roles),
		Namespaces: slices.Clone(g.Namespaces), PayloadTypes: slices.Clone(g.PayloadTypes), Keys: ks, keyIDs: slices.Clone(g.Keys)}
}
