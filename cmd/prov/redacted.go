package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger/redaction"
)

// What prov get, verify and audit say about redacted entries.

// redactionNote reads redaction entry by and says why it redacted: "by
// entry N (reason: …; ticket …)". If entry by cannot be read or is not a
// redaction, the note says so instead of a reason.
func (a *app) redactionNote(ctx context.Context, c *client.Client, by uint64) string {
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	e, err := c.GetEntry(rctx, &provledgerpb.GetEntryRequest{Index: by})
	if err != nil {
		return fmt.Sprintf("by entry %d (its reason could not be read: %s)", by, grpcMessage(err))
	}
	p, err := redactionPayload(e.GetEnvelopeJson())
	if err != nil {
		return fmt.Sprintf("by entry %d (which is not a valid redaction: %v)", by, err)
	}
	if p.Ticket != "" {
		return fmt.Sprintf("by entry %d (reason: %s; ticket %s)", by, p.Reason, p.Ticket)
	}
	return fmt.Sprintf("by entry %d (reason: %s)", by, p.Reason)
}

// redactionPayload decodes the redaction payload of an envelope.
func redactionPayload(env []byte) (redaction.Payload, error) {
	e, err := envelope.Parse(env)
	if err != nil {
		return redaction.Payload{}, err
	}
	if e.PayloadType != redaction.PayloadType {
		return redaction.Payload{}, fmt.Errorf("payload type %s", e.PayloadType)
	}
	return redaction.Decode(e.Payload)
}

// Audit problem kinds of redactions (docs/audit.md).
const (
	kindUnprovenRedaction = "redaction-unproven" // an envelope withheld as redacted with no valid admin redaction covering it
)

// redactionAudit checks, during an audit with --trust or
// --policy-from-log, that the log withholds an envelope as redacted only
// when a redaction entry at a later index names that entry (index and
// envelope digest) and carries a valid signature by an admin key
// (--admin-keys, or an admin key of the log's policy at its index). Its methods are safe for
// concurrent use, and a nil *redactionAudit does nothing.
type redactionAudit struct {
	admins *keys.Keyring // nil: no --admin-keys
	// policy, with --policy-from-log: the admin keys of the policy in
	// force at a redaction's index may sign it too.
	policy *logPolicy

	mu      sync.Mutex
	missing map[uint64][32]byte  // entry → digest of the envelope the log withholds
	covers  map[uint64][]coverBy // entry → redactions naming it
}

type coverBy struct {
	by     uint64
	digest [32]byte
	admin  bool   // signed (verifiably) by an admin key
	why    string // why not, when !admin
}

// newRedactionAudit loads the admin keys (path "" is none).
func newRedactionAudit(path string) (*redactionAudit, error) {
	ra := &redactionAudit{missing: map[uint64][32]byte{}, covers: map[uint64][]coverBy{}}
	if path == "" {
		return ra, nil
	}
	kr, err := keys.LoadKeyringFile(path)
	if err != nil {
		return nil, usagef("--admin-keys: %v", err)
	}
	ra.admins = kr
	return ra, nil
}

// observe is told about every envelope the audit reads (env) or that the
// log withholds as redacted (err is errRedacted) for entry i.
func (ra *redactionAudit) observe(i uint64, rec record.Record, env []byte, err error) {
	if ra == nil {
		return
	}
	if errors.Is(err, errRedacted) {
		ra.mu.Lock()
		ra.missing[i] = rec.EnvelopeDigest
		ra.mu.Unlock()
		return
	}
	if err != nil || rec.PayloadType != redaction.PayloadType || sha256.Sum256(env) != rec.EnvelopeDigest {
		return // not a redaction, or one the envelope checks reject anyway
	}
	e, perr := envelope.Parse(env)
	if perr != nil {
		return
	}
	p, perr := redaction.Decode(e.Payload)
	if perr != nil {
		return
	}
	c := coverBy{by: i}
	c.admin, c.why = ra.adminSigned(e, rec, i)
	ra.mu.Lock()
	defer ra.mu.Unlock()
	for _, t := range p.Targets {
		if t.Index < i {
			c.digest = t.EnvelopeDigest
			ra.covers[t.Index] = append(ra.covers[t.Index], c)
		}
	}
}

// adminSigned reports whether redaction entry i (envelope e) carries a
// valid signature by an admin key: one of --admin-keys, or with
// --policy-from-log an admin key of the policy in force at i (as the
// node's ledger asks); else why not.
func (ra *redactionAudit) adminSigned(e *envelope.Envelope, rec record.Record, i uint64) (bool, string) {
	if ra.admins == nil && ra.policy == nil {
		return false, "no --admin-keys was given to check its signer"
	}
	if ra.admins != nil {
		rep, err := checkSignatures(e, rec, ra.admins)
		if err != nil {
			return false, fmt.Sprintf("its signature does not verify: %v", err)
		}
		if len(rep.Verified) > 0 {
			return true, ""
		}
	}
	if ra.policy == nil {
		return false, "it is not signed by any key in --admin-keys"
	}
	rep, err := checkSignatures(e, rec, ra.policy.keyring)
	if err != nil {
		return false, fmt.Sprintf("its signature does not verify: %v", err)
	}
	for _, v := range rep.Verified {
		if id, err := keys.ParseKeyID(v); err == nil && ra.policy.isAdmin(id, i) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("it is not signed by an admin key of the policy in force at entry %d (nor of --admin-keys)", i)
}

// problems returns one problem for each withheld envelope no valid
// redaction covers, in index order.
func (ra *redactionAudit) problems() []problem {
	if ra == nil {
		return nil
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	idx := make([]uint64, 0, len(ra.missing))
	for i := range ra.missing {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	var out []problem
	for _, i := range idx {
		d := ra.missing[i]
		why := "no redaction entry after it names it"
		ok := false
		for _, c := range ra.covers[i] {
			switch {
			case c.digest != d:
				why = fmt.Sprintf("redaction entry %d names it with another envelope digest", c.by)
			case !c.admin:
				why = fmt.Sprintf("redaction entry %d names it, but %s", c.by, c.why)
			default:
				ok = true
			}
			if ok {
				break
			}
		}
		if !ok {
			out = append(out, problem{Index: int64(i), Kind: kindUnprovenRedaction, Detail: "the log withholds the envelope as redacted; " + why})
		}
	}
	return out
}
