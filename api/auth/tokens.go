package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
)

// Limits of a tokens file.
const (
	// MaxNameLen is the longest principal name, in bytes.
	MaxNameLen = 64
	// MaxPrincipals caps the lines of one file.
	MaxPrincipals = 10000
	// MaxLineLen caps one line, in bytes.
	MaxLineLen = 64 << 10
)

// Sentinel errors of ParseFile, wrapped with the line number.
var (
	ErrSyntax    = errors.New("tokens file: syntax")
	ErrDuplicate = errors.New("tokens file: duplicate")
	ErrEmpty     = errors.New("tokens file: no principals")
)

// Role is what a principal may do.
type Role string

// The roles. Admin implies every other role; reader implies auditor.
const (
	// RoleAppender appends, within its namespaces, payload types and
	// signing keys.
	RoleAppender Role = "appender"
	// RoleReader reads entries, envelopes and lineage queries.
	RoleReader Role = "reader"
	// RoleAuditor reads checkpoints, tiles and proofs (public unless the
	// node is configured otherwise).
	RoleAuditor Role = "auditor"
	// RoleAdmin may do everything, including cluster membership and policy.
	RoleAdmin Role = "admin"
)

var allRoles = []Role{RoleAppender, RoleReader, RoleAuditor, RoleAdmin}

// Principal is one line of a tokens file: who, how they prove it, and what
// they may do.
type Principal struct {
	// Name identifies the principal in logs, metrics and rate limits.
	Name string
	// TokenHash is the SHA-256 of its bearer token (zero for a certificate
	// principal).
	TokenHash [32]byte
	// CertIdentity, for a certificate principal, is the client certificate
	// identity it matches: "uri:<URI SAN>", "dns:<DNS SAN>",
	// "email:<email SAN>" or "cn:<subject common name>".
	CertIdentity string
	// Roles are its roles.
	Roles []Role
	// Namespaces an appender may append to: exact names, or prefixes
	// ending in '*' ("team-a/*"; "*" is any namespace).
	Namespaces []string
	// PayloadTypes an appender may append; empty is any type the node
	// accepts.
	PayloadTypes []string
	// Keys are the signing key ids an appender's envelopes may be signed
	// with (every signature); empty is any key the node trusts.
	Keys []keys.KeyID

	// grant, when the policy in force names the principal, is its grant
	// (policy.go): Roles, Namespaces, PayloadTypes and Keys are the
	// policy's, and its patterns are matched as the policy's are.
	grant *policy.IdentityGrant
}

// PolicyEntry returns the index of the policy entry that granted the
// principal what it may do, and whether a policy did (else its tokens
// file line did).
func (p *Principal) PolicyEntry() (uint64, bool) {
	if p.grant == nil {
		return 0, false
	}
	return p.grant.GrantedAt, true
}

// Has reports whether p holds role r (admin holds every role, reader holds
// auditor).
func (p *Principal) Has(r Role) bool {
	for _, x := range p.Roles {
		if x == r || x == RoleAdmin || (x == RoleReader && r == RoleAuditor) {
			return true
		}
	}
	return false
}

// MayAppendTo reports whether p may append to namespace ns.
func (p *Principal) MayAppendTo(ns string) bool {
	if slices.Contains(p.Roles, RoleAdmin) {
		return true
	}
	if !p.Has(RoleAppender) {
		return false
	}
	if p.grant != nil {
		return p.grant.AllowsNamespace(ns)
	}
	for _, pat := range p.Namespaces {
		if prefix, ok := strings.CutSuffix(pat, "*"); ok {
			if strings.HasPrefix(ns, prefix) {
				return true
			}
		} else if pat == ns {
			return true
		}
	}
	return false
}

// mayAppendType reports whether p may append payload type t.
func (p *Principal) mayAppendType(t string) bool {
	if p.grant != nil {
		return p.grant.AllowsPayloadType(t)
	}
	return len(p.PayloadTypes) == 0 || slices.Contains(p.PayloadTypes, t)
}

// grantList spells a namespace or payload type grant for a message.
func grantList(vals []string, fromPolicy bool) string {
	switch {
	case len(vals) > 0:
		return strings.Join(vals, ", ")
	case fromPolicy:
		return "any"
	}
	return "none"
}

// keysSource names where p's signing keys are listed.
func keysSource(p *Principal) string {
	if at, ok := p.PolicyEntry(); ok {
		return fmt.Sprintf("identities[].keys of the policy in force (policy entry %d)", at)
	}
	return "keys= of the tokens file"
}

// HashToken returns a token's hash as a tokens file spells it: "sha256:"
// and 64 lowercase hex digits (`printf %s "$TOKEN" | sha256sum`). It is
// the same spelling as api/olingest's.
func HashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(h[:])
}

// ParseFile reads a tokens file. Each non-blank line that does not start
// with '#' is
//
//	<name> <credential> [roles=<role>,...] [ns=<namespace>,...] [types=<payload type>,...] [keys=<key id>,...]
//
// where credential is "sha256:<64 lowercase hex digits>" (the SHA-256 of a
// bearer token; see HashToken) or "mtls:<identity>" (a client certificate
// identity: uri:…, dns:…, email:… or cn:…). Without roles=, the principal
// is an appender to the namespace <name> — so a tokens file of
// api/olingest ("<name> sha256:<hex>" lines) is a valid tokens file here
// with the same meaning. An appender without ns= may append to <name>
// only. Names, token hashes and certificate identities are unique. Errors
// wrap ErrSyntax, ErrDuplicate or ErrEmpty and name the line.
func ParseFile(b []byte) ([]Principal, error) {
	var out []Principal
	names := map[string]int{}
	creds := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), MaxLineLen)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		p, err := parseLine(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if prev, dup := names[p.Name]; dup {
			return nil, fmt.Errorf("line %d: %w name %q (first on line %d)", line, ErrDuplicate, p.Name, prev)
		}
		cred := p.CertIdentity
		if cred == "" {
			cred = string(p.TokenHash[:])
		}
		if prev, dup := creds[cred]; dup {
			return nil, fmt.Errorf("line %d: %w credential: %q has the same token or certificate identity as line %d; give each principal its own", line, ErrDuplicate, p.Name, prev)
		}
		if len(out) >= MaxPrincipals {
			return nil, fmt.Errorf("line %d: %w: more than %d principals", line, ErrSyntax, MaxPrincipals)
		}
		names[p.Name], creds[cred] = line, line
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w: %v", line+1, ErrSyntax, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: add lines \"<name> sha256:<hex of SHA-256 of the token> roles=…\" (see docs/security.md)", ErrEmpty)
	}
	return out, nil
}

// LoadFile reads and parses a tokens file (see ParseFile).
func LoadFile(path string) ([]Principal, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	ps, err := ParseFile(b)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return ps, nil
}

func parseLine(s string) (Principal, error) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return Principal{}, fmt.Errorf("%w: want \"<name> <credential> [roles=…] [ns=…] [types=…] [keys=…]\", got %d field(s)", ErrSyntax, len(f))
	}
	p := Principal{Name: f[0]}
	if err := checkName(p.Name); err != nil {
		return Principal{}, err
	}
	switch cred := f[1]; {
	case strings.HasPrefix(cred, "sha256:"):
		hx := cred[len("sha256:"):]
		raw, err := hex.DecodeString(hx)
		if err != nil || len(raw) != 32 || hx != strings.ToLower(hx) {
			return Principal{}, fmt.Errorf("%w: %q: the hash must be \"sha256:\" and 64 lowercase hex digits (prov token hash, or printf %%s \"$TOKEN\" | sha256sum)", ErrSyntax, p.Name)
		}
		copy(p.TokenHash[:], raw)
	case strings.HasPrefix(cred, "mtls:"):
		id := cred[len("mtls:"):]
		kind, val, ok := strings.Cut(id, ":")
		if !ok || val == "" || !slices.Contains([]string{"uri", "dns", "email", "cn"}, kind) || !utf8.ValidString(val) {
			return Principal{}, fmt.Errorf("%w: %q: a certificate credential is mtls:uri:<URI SAN>, mtls:dns:<DNS SAN>, mtls:email:<email SAN> or mtls:cn:<subject CN>", ErrSyntax, p.Name)
		}
		p.CertIdentity = id
	default:
		return Principal{}, fmt.Errorf("%w: %q: the credential must be sha256:<hex> (a hashed bearer token, never the token itself) or mtls:<identity>", ErrSyntax, p.Name)
	}
	seen := map[string]bool{}
	for _, kv := range f[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return Principal{}, fmt.Errorf("%w: %q: %q is not key=value (roles=, ns=, types= or keys=)", ErrSyntax, p.Name, kv)
		}
		if seen[k] {
			return Principal{}, fmt.Errorf("%w: %q: %s= given twice; list the values comma-separated", ErrSyntax, p.Name, k)
		}
		seen[k] = true
		vals := strings.Split(v, ",")
		for _, x := range vals {
			if x == "" || len(x) > 255 || !utf8.ValidString(x) {
				return Principal{}, fmt.Errorf("%w: %q: %s= has an empty or invalid value", ErrSyntax, p.Name, k)
			}
		}
		switch k {
		case "roles":
			for _, x := range vals {
				r := Role(x)
				if !slices.Contains(allRoles, r) {
					return Principal{}, fmt.Errorf("%w: %q: unknown role %q (appender, reader, auditor, admin)", ErrSyntax, p.Name, x)
				}
				if !slices.Contains(p.Roles, r) {
					p.Roles = append(p.Roles, r)
				}
			}
		case "ns":
			for _, x := range vals {
				if i := strings.IndexByte(x, '*'); i >= 0 && i != len(x)-1 {
					return Principal{}, fmt.Errorf("%w: %q: namespace pattern %q: '*' may only end a pattern", ErrSyntax, p.Name, x)
				}
			}
			p.Namespaces = vals
		case "types":
			p.PayloadTypes = vals
		case "keys":
			for _, x := range vals {
				id, err := keys.ParseKeyID(x)
				if err != nil {
					return Principal{}, fmt.Errorf("%w: %q: keys=: %v", ErrSyntax, p.Name, err)
				}
				p.Keys = append(p.Keys, id)
			}
		default:
			return Principal{}, fmt.Errorf("%w: %q: unknown field %q (roles=, ns=, types=, keys=)", ErrSyntax, p.Name, k)
		}
	}
	if len(p.Roles) == 0 {
		p.Roles = []Role{RoleAppender}
	}
	if p.Has(RoleAppender) && len(p.Namespaces) == 0 {
		p.Namespaces = []string{p.Name}
	}
	if !slices.Contains(p.Roles, RoleAppender) && (len(p.Namespaces) > 0 || len(p.PayloadTypes) > 0 || len(p.Keys) > 0) && !slices.Contains(p.Roles, RoleAdmin) {
		return Principal{}, fmt.Errorf("%w: %q: ns=, types= and keys= restrict appends; give the principal roles=appender", ErrSyntax, p.Name)
	}
	return p, nil
}

func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: name %q must be 1..%d bytes", ErrSyntax, name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-') {
			return fmt.Errorf("%w: name %q: byte %d (%q) is not one of A-Z a-z 0-9 . _ / -", ErrSyntax, name, i, c)
		}
	}
	return nil
}
