package olingest

import (
	"fmt"
	"strings"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/crypto/policy"
)

// Roles in the policy (docs/security.md, "Roles in the policy"): when the
// policy in force (Config.Policy) names an ingest token — an identity
// whose name is the token's name — the policy's grant is authoritative
// for it, as it is for the callers of the gRPC API (api/auth): the
// identity must hold the appender role (admin holds every role), its
// namespaces must cover the namespace of the token's entries (the token's
// name), and its payloadTypes the event's type (run, dataset or job
// event), whatever the token's line in the tokens file says (types=,
// narrower or wider). An admin identity may send any event. The
// identity's keys do not apply: the node's ingest key signs every event,
// and the policy's key grants judge that key like any signer. Tokens the
// policy does not name keep their tokens file grant. The tokens file still
// decides which tokens the endpoint accepts at all (NewTokens): the policy
// holds no secret.

// PolicySource returns the policy in force for the next entry of the log
// (query/policyindex.Index.Current); nil, or a State that names no
// identity, leaves the tokens file's grants alone.
type PolicySource = auth.PolicySource

// sender is an authenticated token and what it may send: the grant of
// the policy identity that names it, or else its tokens file line.
type sender struct {
	token
	id *policy.IdentityGrant // nil: the policy in force does not name the token
}

// sender returns what tok may send under the policy in force (read once
// per request, so every event of a batch is judged by the same policy),
// or an error saying what to fix when the policy names the token but lets
// it send nothing: it lacks the appender role, or is not granted the
// namespace of its entries.
func (h *Handler) sender(tok token) (sender, error) {
	s := sender{token: tok}
	if h.cfg.Policy == nil {
		return s, nil
	}
	g, ok := h.cfg.Policy().Identity(tok.name)
	if !ok {
		return s, nil
	}
	s.id = g
	switch {
	case !g.HasRole(policy.RoleAppender):
		roles := "no role"
		if len(g.Roles) > 0 {
			roles = "the roles " + strings.Join(g.Roles, ", ")
		}
		return s, fmt.Errorf("token %q may not send events: the policy in force (policy entry %d) gives identity %q %s, not appender; ask a policy admin to grant it (prov policy apply)", tok.name, g.GrantedAt, g.Name, roles)
	case !g.HasRole(policy.RoleAdmin) && !g.AllowsNamespace(tok.name):
		return s, fmt.Errorf("token %q may not send events: they go to namespace %q (the token's name), and the policy in force (policy entry %d) grants identity %q namespaces %s only; ask a policy admin to grant it (prov policy apply)", tok.name, tok.name, g.GrantedAt, g.Name, strings.Join(g.Namespaces, ", "))
	}
	return s, nil
}

// allows returns nil if the sender may send an event of payload type pt,
// else an error saying which grant refuses it and whom to ask.
func (s sender) allows(pt string) error {
	switch {
	case s.id == nil && s.mayAppend(pt):
		return nil
	case s.id == nil:
		return fmt.Errorf("token %q may not send %s events (its types= in the tokens file); ask the operator to add the type", s.name, pt)
	case s.id.HasRole(policy.RoleAdmin) || s.id.AllowsPayloadType(pt):
		return nil
	}
	return fmt.Errorf("token %q may not send %s events: the policy in force (policy entry %d) grants identity %q payload types %s only; ask a policy admin to grant it (prov policy apply)", s.name, pt, s.id.GrantedAt, s.id.Name, strings.Join(s.id.PayloadTypes, ", "))
}
