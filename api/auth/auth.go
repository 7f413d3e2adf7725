// Package auth authenticates callers of a provledger node and authorizes
// what they call.
//
// Callers prove who they are with a bearer token ("authorization: Bearer
// <token>" in gRPC metadata or the HTTP header) or a verified TLS client
// certificate; a tokens file (see ParseFile) lists the principals, their
// credentials (token hashes, certificate identities) and roles. Tokens are
// stored as SHA-256 hashes and compared in constant time.
//
// Every gRPC method and HTTP path has a class: public (health), audit
// (checkpoints, tiles, proofs: public unless Config.PrivateAudit), read
// (entries, envelopes, lineage queries), append (checked per request:
// namespace, payload type, signing keys) or admin (everything else,
// including cluster membership and policy). Methods not known to this
// package are admin: a new RPC is closed until it is classified.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
)

// Sentinel errors of Authorize and Authenticate (the interceptors turn
// them into Unauthenticated and PermissionDenied statuses).
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
)

// Class is what a method or path needs.
type Class int

// The classes.
const (
	ClassPublic  Class = iota // anyone, always
	ClassAudit                // auditor (anyone unless PrivateAudit)
	ClassRead                 // reader
	ClassAppend               // appender, per request
	ClassAdmin                // admin
	ClassOwnAuth              // authenticated by its handler (OpenLineage ingest)
)

func (c Class) String() string {
	return [...]string{"public", "audit", "read", "append", "admin", "own-auth"}[c]
}

func (c Class) role() Role {
	switch c {
	case ClassAudit:
		return RoleAuditor
	case ClassRead:
		return RoleReader
	case ClassAppend:
		return RoleAppender
	}
	return RoleAdmin
}

// Config configures an Authenticator.
type Config struct {
	// Principals are the known callers (LoadFile). Required.
	Principals []Principal
	// PrivateAudit requires the auditor role for checkpoints, tiles and
	// proofs, which are otherwise public (anyone may audit the log).
	PrivateAudit bool
	// Methods adds or overrides gRPC method classes (full method name →
	// class), e.g. for services registered by other packages.
	Methods map[string]Class
	// Logger receives denials (at info level). Default slog.Default().
	Logger *slog.Logger
	// OnHTTPRefusal, if set, is called with metrics.ReasonUnauthenticated
	// or metrics.ReasonForbidden for each refused HTTP request (gRPC
	// refusals reach metrics through metrics.SetReason).
	OnHTTPRefusal func(reason string)
}

// Authenticator authenticates and authorizes requests. It is safe for
// concurrent use; Reload swaps the principals atomically.
type Authenticator struct {
	cfg     Config
	log     *slog.Logger
	set     atomic.Pointer[principalSet]
	methods map[string]Class
	policy  atomic.Pointer[PolicySource] // SetPolicy (policy.go)
	grants  atomic.Pointer[grants]       // principals derived from the policy in force
}

// principalSet indexes principals by credential.
type principalSet struct {
	byHash map[[32]byte]*Principal
	byCert map[string]*Principal
}

func newPrincipalSet(ps []Principal) (*principalSet, error) {
	if len(ps) == 0 {
		return nil, fmt.Errorf("auth config: %w", ErrEmpty)
	}
	s := &principalSet{byHash: map[[32]byte]*Principal{}, byCert: map[string]*Principal{}}
	for i := range ps {
		p := &ps[i]
		if p.CertIdentity != "" {
			s.byCert[p.CertIdentity] = p
		} else {
			s.byHash[p.TokenHash] = p
		}
	}
	return s, nil
}

// Reload replaces the principals (e.g. a tokens file edited to add or
// revoke a token): requests authenticated from then on use the new set.
func (a *Authenticator) Reload(ps []Principal) error {
	set, err := newPrincipalSet(slices.Clone(ps))
	if err != nil {
		return err
	}
	a.set.Store(set)
	return nil
}

// New returns an Authenticator for cfg.
func New(cfg Config) (*Authenticator, error) {
	set, err := newPrincipalSet(slices.Clone(cfg.Principals))
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Authenticator{cfg: cfg, log: cfg.Logger.With("component", "auth"), methods: defaultMethods()}
	a.set.Store(set)
	for m, c := range cfg.Methods {
		a.methods[m] = c
	}
	return a, nil
}

func defaultMethods() map[string]Class {
	l := "/" + provledgerpb.Ledger_ServiceDesc.ServiceName + "/"
	m := map[string]Class{
		l + "Append": ClassAppend, l + "AppendStream": ClassAppend, l + "AppendBatch": ClassAppend,
		l + "GetEntry": ClassRead, l + "GetEntries": ClassRead,
		l + "GetCheckpoint": ClassAudit, l + "GetInclusionProof": ClassAudit, l + "GetConsistencyProof": ClassAudit,
		"/grpc.health.v1.Health/Check": ClassPublic, "/grpc.health.v1.Health/Watch": ClassPublic, "/grpc.health.v1.Health/List": ClassPublic,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      ClassRead,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": ClassRead,
		// Who leads and at which address; Join, Remove and
		// TransferLeadership stay admin.
		provledgerpb.Cluster_Status_FullMethodName: ClassRead,
		// Findings and forecasts are reads; Scan (it appends findings)
		// stays admin.
		provledgerpb.Scanner_ListFindings_FullMethodName: ClassRead,
		provledgerpb.Scanner_ForecastCost_FullMethodName: ClassRead,
	}
	for _, md := range provledgerpb.Query_ServiceDesc.Methods {
		m["/"+provledgerpb.Query_ServiceDesc.ServiceName+"/"+md.MethodName] = ClassRead
	}
	for _, sd := range provledgerpb.Query_ServiceDesc.Streams {
		m["/"+provledgerpb.Query_ServiceDesc.ServiceName+"/"+sd.StreamName] = ClassRead
	}
	return m
}

// MethodClass returns the class of a full gRPC method name.
func (a *Authenticator) MethodClass(method string) Class {
	if c, ok := a.methods[method]; ok {
		return c
	}
	return ClassAdmin
}

// PathClass returns the class of an HTTP request path (the tlog-tiles
// API under any prefix, and OpenLineage ingest).
func PathClass(path string) Class {
	switch {
	case strings.HasPrefix(path, "/api/v1/lineage"):
		return ClassOwnAuth
	case strings.HasSuffix(path, "/checkpoint") || path == "checkpoint" || strings.Contains(path, "/tile/") && !strings.Contains(path, "/tile/entries/"):
		return ClassAudit
	}
	// Entry bundles hold the records (namespaces, signers); envelopes the
	// payloads.
	return ClassRead
}

// Credentials are what a request presented.
type Credentials struct {
	// Bearer is the token after "Bearer " ("" if none).
	Bearer string
	// HasBearer is set when an authorization header was present at all
	// (a malformed one is refused rather than ignored).
	HasBearer bool
	// Cert is the verified client certificate (nil if none).
	Cert *x509.Certificate
}

// Authenticate returns the principal the credentials name, nil for an
// anonymous request, or an error wrapping ErrUnauthenticated when a
// credential was presented but is unknown (a bad token is never treated
// as anonymous).
func (a *Authenticator) Authenticate(c Credentials) (*Principal, error) {
	if c.HasBearer {
		if c.Bearer == "" {
			return nil, fmt.Errorf("%w: the authorization header must be \"Bearer <token>\"", ErrUnauthenticated)
		}
		h := sha256.Sum256([]byte(c.Bearer))
		// The lookup is keyed by the hash, which says nothing usable
		// about any secret; the comparison itself is constant-time.
		if p, ok := a.set.Load().byHash[h]; ok && subtle.ConstantTimeCompare(h[:], p.TokenHash[:]) == 1 {
			return a.withPolicy(p), nil
		}
		return nil, fmt.Errorf("%w: unknown bearer token; ask the operator for a token (provd --auth-tokens)", ErrUnauthenticated)
	}
	if c.Cert != nil {
		set := a.set.Load()
		ids := CertIdentities(c.Cert)
		for _, id := range ids {
			if p, ok := set.byCert[id]; ok {
				return a.withPolicy(p), nil
			}
		}
		if p, ok := a.byCertificate(ids); ok {
			return p, nil
		}
		return nil, fmt.Errorf("%w: client certificate %q names no principal in the tokens file nor identity in the policy in force (add a line \"<name> mtls:%s roles=…\")", ErrUnauthenticated, c.Cert.Subject.CommonName, firstOr(CertIdentities(c.Cert), "cn:…"))
	}
	return nil, nil
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// CertIdentities lists the identities a client certificate proves, in the
// order they are matched: URI SANs, DNS SANs, email SANs, subject CN.
func CertIdentities(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.URIs {
		out = append(out, "uri:"+u.String())
	}
	for _, d := range c.DNSNames {
		out = append(out, "dns:"+d)
	}
	for _, e := range c.EmailAddresses {
		out = append(out, "email:"+e)
	}
	if c.Subject.CommonName != "" {
		out = append(out, "cn:"+c.Subject.CommonName)
	}
	return out
}

// Allow reports whether p (nil: anonymous) may use something of class c;
// for ClassAppend it checks the role only (see AuthorizeAppend).
func (a *Authenticator) Allow(p *Principal, c Class) error {
	switch {
	case c == ClassPublic || c == ClassOwnAuth:
		return nil
	case c == ClassAudit && !a.cfg.PrivateAudit:
		return nil
	case p == nil:
		return fmt.Errorf("%w: this needs the %s role: send \"authorization: Bearer <token>\" or a client certificate", ErrUnauthenticated, c.role())
	case p.Has(c.role()):
		return nil
	}
	return fmt.Errorf("%w: %q (roles %s) lacks the %s role this needs", ErrForbidden, p.Name, rolesString(p), c.role())
}

func rolesString(p *Principal) string {
	s := make([]string, len(p.Roles))
	for i, r := range p.Roles {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

// AuthorizeAppend checks one append request against p's grant: namespace,
// payload type and every signature's key id. (Every signature must verify
// with the key its key id names, which the Ledger service checks next, so
// the key ids checked here are the real signers of an accepted append.)
// A policy or redaction entry needs the admin role (and, checked by the
// service and the ledger, an admin key's signature): an appender cannot
// change policy nor erase entries (adminEntries, policy.go).
func (a *Authenticator) AuthorizeAppend(p *Principal, req *provledgerpb.AppendRequest) error {
	if err := a.Allow(p, ClassAppend); err != nil {
		return err
	}
	if slices.Contains(p.Roles, RoleAdmin) {
		return nil
	}
	ns := req.GetNamespace()
	if !p.MayAppendTo(ns) {
		return fmt.Errorf("%w: %q may not append to namespace %q (it may append to %s)", ErrForbidden, p.Name, ns, grantList(p.Namespaces, p.grant != nil))
	}
	var ptype string
	var keyIDs []string
	switch b := req.GetBody().(type) {
	case *provledgerpb.AppendRequest_Envelope:
		ptype = b.Envelope.GetPayloadType()
		for _, s := range b.Envelope.GetSignatures() {
			keyIDs = append(keyIDs, s.GetKeyid())
		}
	case *provledgerpb.AppendRequest_DsseJson:
		if len(p.PayloadTypes) == 0 && len(p.Keys) == 0 && !mayBeAdminEntry(b.DsseJson) {
			return nil // not an admin entry, and nothing else to check
		}
		env, err := envelope.Parse(b.DsseJson)
		if err != nil {
			return nil // the service rejects it with a precise message
		}
		ptype = env.PayloadType
		for _, s := range env.Signatures {
			keyIDs = append(keyIDs, s.KeyID)
		}
	default:
		return nil // no envelope: the service rejects it
	}
	if kind, ask, ok := adminEntryKind(ptype); ok {
		return fmt.Errorf("%w: %q (roles %s) may not append a %s entry: that needs the admin role (and an admin key's signature); %s", ErrForbidden, p.Name, rolesString(p), kind, ask)
	}
	if !p.mayAppendType(ptype) {
		return fmt.Errorf("%w: %q may not append payload type %q (it may append %s)", ErrForbidden, p.Name, ptype, strings.Join(p.PayloadTypes, ", "))
	}
	if len(p.Keys) > 0 {
		for i, s := range keyIDs {
			id, err := keys.ParseKeyID(s)
			if err != nil || !slices.Contains(p.Keys, id) {
				return fmt.Errorf("%w: %q may not append envelopes signed by key %q (signature %d); its signing keys are listed in %s", ErrForbidden, p.Name, s, i, keysSource(p))
			}
		}
	}
	return nil
}

type principalKey struct{}

// NewContext returns ctx carrying the authenticated principal.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of the request (nil if anonymous or
// authentication is off).
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
