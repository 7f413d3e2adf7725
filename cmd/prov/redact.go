package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/ledger/redaction"
)

func (a *app) redactCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov redact", flag.ContinueOnError)
	key := fs.String("key", "", "PEM private key of an admin (one of provd --admin-keys) to sign the redaction with (required)")
	var indexes multiFlag
	fs.Var(&indexes, "index", "entry whose envelope is to be deleted (required; repeat for more, at most 64)")
	reason := fs.String("reason", "", "why, e.g. \"GDPR erasure request\" (required; readers see it; do not repeat the erased data)")
	ticket := fs.String("ticket", "", "optional reference of the erasure request (e.g. a ticket id)")
	ns := fs.String("namespace", "admin", "namespace of the redaction entry")
	return &ffcli.Command{
		Name:       "redact",
		ShortUsage: "prov redact --key ADMIN.key --index N [--index M]... --reason TEXT [--ticket ID]",
		ShortHelp:  "delete entries' payloads for an erasure request (admin key)",
		LongHelp: strings.TrimSpace(`
Appends a redaction entry (application/vnd.provledger.redaction+json)
signed with --key, which must be an admin key of the node (provd
--admin-keys). It names each --index with the envelope digest read from
that entry's record (checked against the log like prov get), so it can hit
no other entry. When the redaction commits, the node deletes those
envelopes from its storage and from the lineage index, in the same batch;
the entry records, leaf hashes and every proof stay, so prov verify and
prov audit still pass, and prov get N says "redacted by entry M". A
redaction cannot be undone, and redactions themselves cannot be redacted.

The node refuses with PermissionDenied a redaction not signed by an admin
key, and with a message naming the entry one of an unknown index or of an
entry already redacted; nothing is changed then.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("redact takes no arguments (use --index N)")
			}
			if *key == "" {
				return usagef("redact: --key FILE (an admin's private key) is required")
			}
			if len(indexes) == 0 {
				return usagef("redact: --index N is required")
			}
			if len(indexes) > redaction.MaxTargets {
				return usagef("redact: %d --index flags; at most %d per redaction", len(indexes), redaction.MaxTargets)
			}
			if *reason == "" {
				return usagef("redact: --reason is required (say why, without repeating the erased data)")
			}
			idx := make([]uint64, len(indexes))
			for i, s := range indexes {
				n, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					return usagef("redact: --index %q is not an entry index (a number from 0)", s)
				}
				idx[i] = n
			}
			return a.redact(ctx, *key, idx, *reason, *ticket, *ns)
		},
	}
}

type redactResult struct {
	Index     uint64   `json:"index"`
	Redacted  []uint64 `json:"redacted"`
	Reason    string   `json:"reason"`
	Ticket    string   `json:"ticket,omitempty"`
	KeyID     string   `json:"key_id"`
	Origin    string   `json:"origin"`
	TreeSize  uint64   `json:"tree_size"`
	Duplicate bool     `json:"duplicate"`
}

func (a *app) redact(ctx context.Context, keyPath string, idx []uint64, reason, ticket, namespace string) error {
	key, err := loadSigningKey(keyPath)
	if err != nil {
		return usagef("redact: %v", err)
	}
	keyID := key.id
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	p := redaction.Payload{Reason: reason, Ticket: ticket}
	for _, n := range idx {
		d, err := a.envelopeDigestOf(ctx, c, n)
		if err != nil {
			return err
		}
		p.Targets = append(p.Targets, redaction.Target{Index: n, EnvelopeDigest: d})
	}
	body, err := redaction.Encode(p)
	if err != nil {
		return usagef("redact: %v", err)
	}
	env, err := envelope.Sign(redaction.PayloadType, body, key.signer)
	if err != nil {
		return fmt.Errorf("redact: sign: %w", err)
	}
	resp, v, err := a.appendSigned(ctx, c, "redact", namespace, env, key.pubPEM)
	if err != nil {
		return err
	}
	cp, err := client.OpenCheckpoint(resp.GetCheckpoint(), v)
	if err != nil {
		return err
	}
	res := redactResult{Index: resp.GetIndex(), Redacted: idx, Reason: reason, Ticket: ticket, KeyID: keyID.String(),
		Origin: cp.Origin, TreeSize: cp.Size, Duplicate: resp.GetDuplicate()}
	if a.json {
		return a.printJSON(res)
	}
	list := make([]string, len(idx))
	for i, n := range idx {
		list[i] = strconv.FormatUint(n, 10)
	}
	fmt.Fprintf(a.stdout, "redacted: entry %s by entry %d (reason: %s); the records and proofs stay, the envelopes are deleted\nlog:      %s, tree size %d\n",
		strings.Join(list, ", "), res.Index, reason, res.Origin, res.TreeSize)
	return nil
}

// envelopeDigestOf reads entry n, checks it (record, proof, checkpoint
// signature when a log key is known) and returns its envelope digest.
func (a *app) envelopeDigestOf(ctx context.Context, c *client.Client, n uint64) ([32]byte, error) {
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	e, err := c.GetEntry(rctx, &provledgerpb.GetEntryRequest{Index: n, WithProof: true})
	if err != nil {
		return [32]byte{}, fmt.Errorf("redact: entry %d: %w", n, err)
	}
	if e.GetIndex() != n {
		return [32]byte{}, fmt.Errorf("redact: entry %d: %w: the server returned entry %d", n, client.ErrVerify, e.GetIndex())
	}
	if e.RedactedBy != nil {
		return [32]byte{}, fmt.Errorf("redact: entry %d is already redacted by entry %d", n, e.GetRedactedBy())
	}
	v, err := a.verifierFor(e.GetCheckpoint(), false)
	if err != nil {
		return [32]byte{}, err
	}
	ve, err := client.VerifyEntry(e, v)
	if err != nil {
		return [32]byte{}, fmt.Errorf("redact: entry %d: %w", n, err)
	}
	return ve.Record.EnvelopeDigest, nil
}
