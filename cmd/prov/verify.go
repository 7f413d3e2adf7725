package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/crypto/tlogproof"
)

func (a *app) verifyCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov verify", flag.ContinueOnError)
	receipt := fs.String("receipt", "", "verify this saved receipt (tlog-proof file) offline instead of fetching an entry")
	trust := fs.String("trust", "", "with N or --bundle: also re-verify every DSSE signature with the PEM public keys in this file")
	bundle := fs.String("bundle", "", "verify this offline bundle (prov prove --bundle) with no network")
	var witnessKeys multiFlag
	fs.Var(&witnessKeys, "witness-key", "with --bundle: a witness verifier key (name+keyid+base64) whose cosignature is required (repeat)")
	minWitnesses := fs.Int("min-witnesses", 0, "with --bundle: how many of the --witness-key witnesses must have cosigned (default: all)")
	pack := fs.String("evidence", "", "re-check an evidence pack directory (prov evidence --out DIR) with no network")
	evidence := fs.String("evidence-file", "", "re-check a monitor's evidence file (prov monitor --evidence) with the log key alone")
	return &ffcli.Command{
		Name:       "verify",
		ShortUsage: "prov verify --log-key FILE N | --receipt FILE | --bundle FILE [--witness-key VKEY]... | --evidence-file FILE",
		ShortHelp:  "verify an entry (or a saved receipt) with the log's key",
		LongHelp: strings.TrimSpace(`
verify N fetches entry N, its inclusion proof and the latest checkpoint and
verifies all of it locally: the checkpoint's signature with --log-key
(required), the record's leaf hash, the envelope's digest, size and payload
type, and the inclusion proof against the checkpoint's root. With --trust
it also re-verifies every DSSE signature.

verify --receipt FILE checks a receipt saved by prov append or prov prove
(a C2SP tlog-proof file whose extra line is the entry record) with no
server at all: the record decodes and the inclusion proof leads from its
leaf hash to the root of the checkpoint signed by the log key.

verify --bundle FILE checks an offline bundle (prov prove --bundle) with
no network: the tlog-proof as --receipt does, the cosignatures of every
--witness-key (or --min-witnesses of them) on the checkpoint (C2SP
tlog-cosignature v1), and FILE.envelope.json against the record (with
--trust, its DSSE signatures too).

verify --evidence-file FILE re-checks what prov monitor found: both
checkpoints must be signed by the log key, and the file must prove a fork
(two roots for one size), an inconsistency (the new tree's compact ranges
hash to its signed root but give another root at the old size) or a stale
view. Exit 0 means the evidence holds.

Exit codes: 0 verified; 1 verification failed (the message says what);
2 the server could not be reached; 64 bad flags or arguments.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if *pack != "" {
				if len(args) > 0 || *receipt != "" || *bundle != "" || *evidence != "" {
					return usagef("verify: give one of an entry index, --receipt, --bundle, --evidence or --evidence-file")
				}
				return a.verifyPack(*pack, *trust)
			}
			if *bundle != "" || *evidence != "" {
				if len(args) > 0 || *receipt != "" || (*bundle != "" && *evidence != "") {
					return usagef("verify: give one of an entry index, --receipt, --bundle or --evidence-file")
				}
				if *evidence != "" {
					return a.verifyEvidence(*evidence)
				}
				return a.verifyBundle(*bundle, witnessKeys, *minWitnesses, *trust)
			}
			if *receipt != "" {
				if len(args) > 0 {
					return usagef("verify: give either an entry index or --receipt FILE, not both")
				}
				return a.verifyReceipt(*receipt)
			}
			n, err := indexArg("verify", args)
			if err != nil {
				return err
			}
			return a.verifyEntry(ctx, n, *trust)
		},
	}
}

// failed turns a verification error into exit code 1 with a FAILED line;
// transport errors pass through (exit 2).
func (a *app) failed(what string, err error) error {
	if err == nil {
		return nil
	}
	var ue usageError
	if unreachable(err) || errors.As(err, &ue) {
		return err
	}
	return exitError{code: exitFailed, err: fmt.Errorf("FAILED: %s: %s", what, grpcMessage(err))}
}

func (a *app) verifyEntry(ctx context.Context, n uint64, trustFile string) error {
	if _, err := a.loadLogKey(true); err != nil {
		return err
	}
	kr, err := loadTrust(trustFile)
	if err != nil {
		return err
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	e, err := c.GetEntry(rctx, &provledgerpb.GetEntryRequest{Index: n, WithProof: true})
	if err != nil {
		return a.failed(fmt.Sprintf("entry %d", n), err)
	}
	if e.GetIndex() != n {
		return a.failed(fmt.Sprintf("entry %d", n), fmt.Errorf("the server returned entry %d", e.GetIndex()))
	}
	v, err := a.verifierFor(e.GetCheckpoint(), true)
	if err != nil {
		return a.failed(fmt.Sprintf("entry %d", n), err)
	}
	ve, err := client.VerifyEntry(e, v)
	if err != nil {
		return a.failed(fmt.Sprintf("entry %d", n), err)
	}
	sigs := ""
	if kr != nil && len(ve.Envelope) == 0 {
		sigs = ", signatures not checked (nothing to check: the payload was redacted)"
	} else if kr != nil {
		env, err := envelope.Parse(ve.Envelope)
		if err != nil {
			return a.failed(fmt.Sprintf("entry %d", n), fmt.Errorf("envelope: %w", err))
		}
		rep, err := checkSignatures(env, ve.Record, kr)
		if err != nil {
			return a.failed(fmt.Sprintf("entry %d", n), err)
		}
		if len(rep.Unverifiable) > 0 {
			return a.failed(fmt.Sprintf("entry %d", n), fmt.Errorf("signature(s) by %s: not in the trust file", strings.Join(rep.Unverifiable, ", ")))
		}
		sigs = fmt.Sprintf(", %d DSSE signature(s) verified", len(rep.Verified))
	}
	if a.json {
		return a.printJSON(map[string]any{
			"verified": true, "index": n, "leaf_hash": hex.EncodeToString(ve.LeafHash[:]), "origin": ve.Checkpoint.Origin,
			"tree_size": ve.Checkpoint.Size, "root_hash": base64.StdEncoding.EncodeToString(ve.Checkpoint.Hash[:]),
			"redacted": len(ve.Envelope) == 0, "redacted_by": e.RedactedBy,
		})
	}
	redacted := ""
	if len(ve.Envelope) == 0 {
		redacted = fmt.Sprintf("; the payload was REDACTED %s, the record and its inclusion verified", a.redactionNote(ctx, c, e.GetRedactedBy()))
	}
	fmt.Fprintf(a.stdout, "verified: entry %d (leaf %s) is in log %s at tree size %d, root %s, checkpoint signed by the log key%s%s\n",
		n, hex.EncodeToString(ve.LeafHash[:]), ve.Checkpoint.Origin, ve.Checkpoint.Size,
		base64.StdEncoding.EncodeToString(ve.Checkpoint.Hash[:]), sigs, redacted)
	return nil
}

func (a *app) verifyReceipt(path string) error {
	pub, err := a.loadLogKey(true)
	if err != nil {
		return err
	}
	p, rec, cp, err := a.verifyProofFile("--receipt", "receipt", path, pub)
	if err != nil {
		return err
	}
	leaf := proof.LeafHash(p.Extra)
	if a.json {
		return a.printJSON(map[string]any{
			"verified": true, "index": p.Index, "leaf_hash": hex.EncodeToString(leaf[:]), "origin": cp.Origin,
			"tree_size": cp.Size, "root_hash": base64.StdEncoding.EncodeToString(cp.Hash[:]),
			"namespace": rec.Namespace, "payload_type": rec.PayloadType,
			"envelope_digest": hex.EncodeToString(rec.EnvelopeDigest[:]),
		})
	}
	fmt.Fprintf(a.stdout, "verified: receipt %s: entry %d (leaf %s, %s, namespace %s, envelope sha256:%s) is in log %s at tree size %d, checkpoint signed by the log key\n",
		path, p.Index, hex.EncodeToString(leaf[:]), rec.PayloadType, rec.Namespace, hex.EncodeToString(rec.EnvelopeDigest[:]), cp.Origin, cp.Size)
	return nil
}

// verifyProofFile reads the C2SP tlog-proof file at path (a receipt or a
// bundle, named by flag and what in errors) and verifies its inclusion
// proof and its checkpoint's signature by the log key pub.
func (a *app) verifyProofFile(flag, what, path string, pub ed25519.PublicKey) (*tlogproof.Proof, record.Record, checkpoint.Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, record.Record{}, checkpoint.Checkpoint{}, usagef("%s: %v", flag, err)
	}
	p, err := tlogproof.Parse(b)
	if err != nil {
		return nil, record.Record{}, checkpoint.Checkpoint{}, a.failed(what+" "+path, err)
	}
	v, err := client.VerifierForCheckpoint(pub, a.origin, p.Checkpoint)
	if err != nil {
		return nil, record.Record{}, checkpoint.Checkpoint{}, a.failed(what+" "+path, err)
	}
	rec, cp, err := client.VerifyProof(p, v)
	if err != nil {
		return nil, record.Record{}, checkpoint.Checkpoint{}, a.failed(what+" "+path, err)
	}
	return p, rec, cp, nil
}
