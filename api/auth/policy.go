package auth

import (
	"bytes"
	"sync"

	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/ledger/redaction"
)

// Roles in the policy (docs/security.md, "Roles in the policy"): when the
// policy in force (crypto/policy) names identities, its grant is
// authoritative for every caller it names: a tokens file principal by its
// name, or a client certificate by one of its identities (then even
// without a line in the tokens file: the client CA authenticated it).
// The tokens file keeps the secrets (hashed) and authenticates; what the
// caller may do is the policy's. Callers the policy does not name keep
// their tokens file grant, so nodes' and operators' lines keep working.

// PolicySource returns the policy in force for the next entry of the log
// (query/policyindex.Index.Current); nil or a State without identities
// leaves the tokens file's grants alone.
type PolicySource func() *policy.State

// SetPolicy makes the identities of the policy in force authoritative for
// the callers they name (see the package documentation). It may be
// called once the node's policy index exists, before or while serving.
func (a *Authenticator) SetPolicy(src PolicySource) {
	a.policy.Store(&src)
}

// grants caches the principals derived from one State's identities.
type grants struct {
	st *policy.State
	mu sync.Mutex
	m  map[grantKey]*Principal
}

type grantKey struct {
	name, cert string
	file       *Principal // the tokens file principal (nil: certificate only)
}

// policyState returns the policy in force, nil when none names
// identities.
func (a *Authenticator) policyState() *policy.State {
	src := a.policy.Load()
	if src == nil {
		return nil
	}
	if st := (*src)(); st.HasIdentities() {
		return st
	}
	return nil
}

// withPolicy returns the principal the caller p of the tokens file is
// under the policy in force: p itself when the policy does not name it.
func (a *Authenticator) withPolicy(p *Principal) *Principal {
	st := a.policyState()
	if st == nil {
		return p
	}
	g, ok := st.Identity(p.Name)
	if !ok && p.CertIdentity != "" {
		g, ok = st.IdentityByCertificate([]string{p.CertIdentity})
	}
	if !ok {
		return p
	}
	return a.derived(st, g, p)
}

// byCertificate returns the principal a client certificate proves under
// the policy in force, when the tokens file does not name it.
func (a *Authenticator) byCertificate(certIDs []string) (*Principal, bool) {
	st := a.policyState()
	if st == nil {
		return nil, false
	}
	g, ok := st.IdentityByCertificate(certIDs)
	if !ok {
		return nil, false
	}
	return a.derived(st, g, nil), true
}

// derived returns (cached per State) the principal with g's grant: the
// name and credential of file (if any), the roles, namespaces, payload
// types and keys of the policy.
func (a *Authenticator) derived(st *policy.State, g *policy.IdentityGrant, file *Principal) *Principal {
	c := a.grants.Load()
	if c == nil || c.st != st {
		// A new policy State: a new cache (c stays the one of st, even
		// if another request stores the cache of another State).
		c = &grants{st: st, m: map[grantKey]*Principal{}}
		a.grants.Store(c)
	}
	k := grantKey{name: g.Name, cert: g.Certificate, file: file}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.m[k]; ok {
		return p
	}
	p := &Principal{Name: g.Name, CertIdentity: g.Certificate, Namespaces: g.Namespaces, PayloadTypes: g.PayloadTypes, Keys: g.Keys, grant: g}
	if file != nil {
		p.Name, p.TokenHash, p.CertIdentity = file.Name, file.TokenHash, file.CertIdentity
	}
	for _, r := range g.Roles {
		p.Roles = append(p.Roles, Role(r))
	}
	if len(c.m) < MaxPrincipals {
		c.m[k] = p
	}
	return p
}

// adminEntries are the payload types only a caller with the admin role
// may append, whatever its namespace grant, because the entry changes
// what the log enforces (a policy entry) or deletes what it holds (a
// redaction entry); the service and the ledger then check that an admin
// key signed it. One rule for both (AuthorizeAppend): an appender cannot
// change policy nor erase entries. kind names the entry, ask says whom to
// ask.
var adminEntries = []struct{ ptype, kind, ask string }{
	{policy.PayloadType, "policy", "ask a policy admin (prov policy apply)"},
	{redaction.PayloadType, "redaction", "ask an admin to redact it (prov redact)"},
}

// adminEntryKind returns the kind and whom to ask of payload type ptype
// if it is one of adminEntries.
func adminEntryKind(ptype string) (kind, ask string, ok bool) {
	for _, e := range adminEntries {
		if e.ptype == ptype {
			return e.kind, e.ask, true
		}
	}
	return "", "", false
}

// jsonSuffix ends every adminEntries type (TestMayBeAdminEntry checks
// it): mayBeAdminEntry finds each occurrence and looks at what precedes.
var jsonSuffix = []byte("+json")

// mayBeAdminEntry reports whether a DSSE envelope in JSON could have one
// of the adminEntries payload types: false only when it cannot (no such
// type ends where a "+json" of the body does, and no escape could spell
// one), so appends need not be parsed here to find out. One memchr for
// the escape and one scan for "+json" (a DSSE body holds it about once).
func mayBeAdminEntry(dsse []byte) bool {
	if bytes.IndexByte(dsse, '\\') >= 0 {
		return true
	}
	for end := 0; ; {
		i := bytes.Index(dsse[end:], jsonSuffix)
		if i < 0 {
			return false
		}
		end += i + len(jsonSuffix)
		for _, e := range adminEntries {
			if n := len(e.ptype); end >= n && string(dsse[end-n:end]) == e.ptype {
				return true
			}
		}
	}
}
