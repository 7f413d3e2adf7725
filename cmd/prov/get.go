package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
)

func (a *app) getCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov get", flag.ContinueOnError)
	trust := fs.String("trust", "", "file of PEM public keys: re-verify every DSSE signature of the envelope with them (each signer must be in the file)")
	return &ffcli.Command{
		Name:       "get",
		ShortUsage: "prov get [--trust FILE] N",
		ShortHelp:  "read entry N, verified",
		LongHelp: strings.TrimSpace(`
Reads entry N with its inclusion proof and checks it: the record hashes to
the leaf, the envelope has the record's digest, size and payload type, and
the proof leads to the root of the latest checkpoint, whose signature is
checked with --log-key (without a log key prov warns that the signature was
not checked). With --trust, every DSSE signature of the envelope is
verified with the keys in the file. Prints the record, the envelope and its
payload (pretty JSON when the payload is JSON); --json prints one JSON
object.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			n, err := indexArg("get", args)
			if err != nil {
				return err
			}
			return a.get(ctx, n, *trust)
		},
	}
}

// indexArg parses the single entry index argument of cmd.
func indexArg(cmd string, args []string) (uint64, error) {
	if len(args) != 1 {
		return 0, usagef("%s takes one argument, the entry index", cmd)
	}
	n, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil {
		return 0, usagef("%s: %q is not an entry index (a number from 0)", cmd, args[0])
	}
	return n, nil
}

type recordJSON struct {
	Version        int       `json:"version"`
	IntegratedTime time.Time `json:"integrated_time"`
	Namespace      string    `json:"namespace"`
	PayloadType    string    `json:"payload_type"`
	EnvelopeDigest string    `json:"envelope_digest"`
	EnvelopeSize   uint32    `json:"envelope_size"`
	Signers        []string  `json:"signers"`
}

type getResult struct {
	Index                       uint64          `json:"index"`
	LeafHash                    string          `json:"leaf_hash"`
	Record                      recordJSON      `json:"record"`
	RecordBase64                string          `json:"record_base64"`
	Redacted                    bool            `json:"redacted"`
	RedactedBy                  *uint64         `json:"redacted_by,omitempty"`
	Envelope                    json.RawMessage `json:"envelope,omitempty"`
	Payload                     json.RawMessage `json:"payload,omitempty"`
	PayloadBase64               string          `json:"payload_base64,omitempty"`
	Origin                      string          `json:"origin"`
	TreeSize                    uint64          `json:"tree_size"`
	RootHash                    string          `json:"root_hash"`
	CheckpointSignatureVerified bool            `json:"checkpoint_signature_verified"`
	Signatures                  *sigReport      `json:"signatures,omitempty"`
}

func (a *app) get(ctx context.Context, n uint64, trustFile string) error {
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
		return fmt.Errorf("get entry %d: %w", n, err)
	}
	if e.GetIndex() != n {
		return fmt.Errorf("get entry %d: %w: the server returned entry %d", n, client.ErrVerify, e.GetIndex())
	}
	v, err := a.verifierFor(e.GetCheckpoint(), false)
	if err != nil {
		return err
	}
	ve, err := client.VerifyEntry(e, v)
	if err != nil {
		return err
	}
	if v == nil {
		a.warnUnverified(fmt.Sprintf("entry %d", n))
	}
	res := getResult{
		Index: n, LeafHash: hex.EncodeToString(ve.LeafHash[:]), Record: toRecordJSON(ve),
		RecordBase64: base64.StdEncoding.EncodeToString(e.GetRecord()),
		Redacted:     len(ve.Envelope) == 0, RedactedBy: e.RedactedBy,
		Origin: ve.Checkpoint.Origin, TreeSize: ve.Checkpoint.Size, RootHash: base64.StdEncoding.EncodeToString(ve.Checkpoint.Hash[:]),
		CheckpointSignatureVerified: ve.SignatureChecked,
	}
	var env *envelope.Envelope
	if len(ve.Envelope) > 0 {
		env, err = envelope.Parse(ve.Envelope)
		if err != nil {
			return fmt.Errorf("entry %d: %w: envelope: %v", n, client.ErrVerify, err)
		}
		res.Envelope = json.RawMessage(ve.Envelope)
		if json.Valid(env.Payload) {
			res.Payload = json.RawMessage(env.Payload)
		} else {
			res.PayloadBase64 = base64.StdEncoding.EncodeToString(env.Payload)
		}
	}
	if kr != nil {
		if env == nil {
			return fmt.Errorf("entry %d: its envelope was redacted (by entry %d); there are no signatures to check", n, e.GetRedactedBy())
		}
		rep, err := checkSignatures(env, ve.Record, kr)
		if err != nil {
			return fmt.Errorf("entry %d: %w: %v", n, client.ErrVerify, err)
		}
		if len(rep.Unverifiable) > 0 {
			return fmt.Errorf("entry %d: signature(s) by %s: not in the trust file %s, so they cannot be verified", n, strings.Join(rep.Unverifiable, ", "), trustFile)
		}
		res.Signatures = &rep
	}
	if a.json {
		return a.printJSON(res)
	}
	w := a.stdout
	fmt.Fprintf(w, "entry %d of %s (verified against checkpoint of size %d", n, res.Origin, res.TreeSize)
	if !ve.SignatureChecked {
		fmt.Fprint(w, "; checkpoint signature NOT checked")
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, "  leaf hash:       %s\n", res.LeafHash)
	fmt.Fprintf(w, "  integrated time: %s\n", res.Record.IntegratedTime.Format(time.RFC3339Nano))
	fmt.Fprintf(w, "  namespace:       %s\n", res.Record.Namespace)
	fmt.Fprintf(w, "  payload type:    %s\n", res.Record.PayloadType)
	fmt.Fprintf(w, "  envelope:        sha256:%s, %d bytes\n", res.Record.EnvelopeDigest, res.Record.EnvelopeSize)
	for i, s := range res.Record.Signers {
		fmt.Fprintf(w, "  signer %d:        %s\n", i, s)
	}
	if res.Signatures != nil {
		fmt.Fprintf(w, "  signatures:      %d verified with %s\n", len(res.Signatures.Verified), trustFile)
	}
	if res.Redacted {
		fmt.Fprintf(w, "  REDACTED %s: the envelope was deleted; the record and every proof remain\n", a.redactionNote(ctx, c, e.GetRedactedBy()))
		return nil
	}
	fmt.Fprintln(w, "\nenvelope:")
	fmt.Fprintln(w, indentJSON(ve.Envelope, "  "))
	fmt.Fprintln(w, "\npayload:")
	if res.Payload != nil {
		fmt.Fprintln(w, indentJSON(env.Payload, "  "))
	} else {
		fmt.Fprintf(w, "  (%d bytes, not JSON; base64) %s\n", len(env.Payload), res.PayloadBase64)
	}
	return nil
}

func toRecordJSON(ve *client.VerifiedEntry) recordJSON {
	r := ve.Record
	out := recordJSON{
		Version: 1, IntegratedTime: r.IntegratedTime.UTC(), Namespace: r.Namespace, PayloadType: r.PayloadType,
		EnvelopeDigest: hex.EncodeToString(r.EnvelopeDigest[:]), EnvelopeSize: r.EnvelopeSize,
	}
	for _, s := range r.Signers {
		out.Signers = append(out.Signers, hex.EncodeToString(s[:]))
	}
	return out
}

func indentJSON(b []byte, prefix string) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, prefix, "  "); err != nil {
		return prefix + string(b)
	}
	return prefix + out.String()
}
