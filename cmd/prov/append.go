package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/tlogproof"
	"github.com/provledger/provledger/query/payload"
)

// payloadTypes maps the --type shorthands to DSSE payload types.
var payloadTypes = map[string]string{
	"openlineage":         "application/vnd.openlineage.run-event+json",
	"openlineage-dataset": "application/vnd.openlineage.dataset-event+json",
	"openlineage-job":     "application/vnd.openlineage.job-event+json",
	"in-toto":             "application/vnd.in-toto+json",
	"cost":                "application/vnd.provledger.cost+json",
	"finding":             "application/vnd.provledger.finding+json",
	"policy":              "application/vnd.provledger.policy+json",
}

// resolvePayloadType expands a shorthand; anything containing a '/' is
// taken as a full payload type.
func resolvePayloadType(t string) (string, error) {
	if full, ok := payloadTypes[t]; ok {
		return full, nil
	}
	if strings.Contains(t, "/") {
		return t, nil
	}
	return "", usagef("--type %q: not a payload type (type/subtype) nor one of the shorthands openlineage, openlineage-dataset, openlineage-job, in-toto, cost, finding, policy", t)
}

func (a *app) appendCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov append", flag.ContinueOnError)
	key := fs.String("key", "", "PEM private key to sign with (from prov keygen, or openssl: PKCS#8, SEC1 EC, PKCS#1 RSA; required)")
	typ := fs.String("type", "", "payload type, or a shorthand: openlineage, openlineage-dataset, openlineage-job, in-toto, cost, finding, policy (required)")
	ns := fs.String("namespace", "default", "namespace that owns the entry (e.g. the OpenLineage job namespace)")
	receipts := fs.String("receipts", "./receipts", "directory to save receipts in, as <dir>/<origin>/<index>.tlog-proof")
	return &ffcli.Command{
		Name:       "append",
		ShortUsage: "prov append --key FILE --type TYPE [--namespace NS] [--receipts DIR] FILE|-",
		ShortHelp:  "sign a payload and append it to the log",
		LongHelp: strings.TrimSpace(`
Signs FILE (or standard input, with -) into a DSSE envelope with --key,
appends it under --namespace, and checks the receipt the node returns: the
entry record names this envelope, hashes to the leaf, and the inclusion
proof leads to the root of the returned checkpoint, signed by the log
(checked with --log-key; without a log key prov says loudly that it could
not check the signature). Then it saves the receipt as a C2SP tlog-proof
file, whose extra line is the entry record, and prints the index, the leaf
hash and the receipt's path. Appending an envelope already in the log
returns the original index and says duplicate. A receipt file of another
entry at the same path (another log with the same origin) is kept, and
this receipt is saved next to it as <index>-<leaf hash prefix>.tlog-proof.

Payload type shorthands:
  openlineage          application/vnd.openlineage.run-event+json
  openlineage-dataset  application/vnd.openlineage.dataset-event+json
  openlineage-job      application/vnd.openlineage.job-event+json
  in-toto              application/vnd.in-toto+json
  cost                 application/vnd.provledger.cost+json
  finding              application/vnd.provledger.finding+json
  policy               application/vnd.provledger.policy+json`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return usagef("append takes one argument, the payload file (or - for standard input)")
			}
			if *key == "" {
				return usagef("append: --key FILE is required")
			}
			if *typ == "" {
				return usagef("append: --type is required (e.g. --type openlineage)")
			}
			pt, err := resolvePayloadType(*typ)
			if err != nil {
				return err
			}
			return a.appendEntry(ctx, *key, pt, *ns, *receipts, args[0])
		},
	}
}

type appendResult struct {
	Index             uint64 `json:"index"`
	LeafHash          string `json:"leaf_hash"`
	Duplicate         bool   `json:"duplicate"`
	Receipt           string `json:"receipt"`
	Origin            string `json:"origin"`
	TreeSize          uint64 `json:"tree_size"`
	EnvelopeDigest    string `json:"envelope_digest"`
	KeyID             string `json:"key_id"`
	SignatureVerified bool   `json:"checkpoint_signature_verified"`
}

func (a *app) appendEntry(ctx context.Context, keyPath, payloadType, namespace, receiptDir, file string) error {
	var body []byte
	var err error
	if file == "-" {
		body, err = io.ReadAll(a.stdin)
	} else {
		body, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("append: read payload: %w", err)
	}
	if strings.HasSuffix(payloadType, "+json") && !json.Valid(body) {
		return fmt.Errorf("append: %s is not valid JSON, and payload type %s wants JSON", displayName(file), payloadType)
	}
	if _, err := payload.Parse(payloadType, body, payload.Limits{}); err != nil && !errors.Is(err, payload.ErrNotLineage) {
		// The node stores any validly signed payload of an accepted type;
		// its lineage index skips one it cannot read (docs/query.md). Say so
		// now rather than leave the user to wonder why queries miss it.
		fmt.Fprintf(a.stderr, "prov: warning: %s will be appended and provable, but the lineage index skips it: %v\n", displayName(file), err)
	}
	key, err := loadSigningKey(keyPath)
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	keyID := key.id
	env, err := envelope.Sign(payloadType, body, key.signer)
	if err != nil {
		return fmt.Errorf("append: sign: %w", err)
	}

	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	resp, v, err := a.appendSigned(ctx, c, "append", namespace, env, key.pubPEM)
	if err != nil {
		return err
	}
	cp, err := client.OpenCheckpoint(resp.GetCheckpoint(), v)
	if err != nil {
		return err
	}
	receipt := client.ReceiptFromResponse(resp)
	dir := filepath.Join(receiptDir, sanitizeOrigin(cp.Origin))
	path := receiptPath(dir, resp.GetIndex(), resp.GetRecord(), resp.GetLeafHash())
	if other := filepath.Join(dir, strconv.FormatUint(resp.GetIndex(), 10)+".tlog-proof"); path != other {
		fmt.Fprintf(a.stderr, "prov: %s holds the receipt of another entry %d (another log named %s, e.g. a --dev node and a --dev cluster): kept; this receipt is saved as %s\n",
			other, resp.GetIndex(), cp.Origin, path)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("append: entry %d was appended, but saving its receipt failed: %w", resp.GetIndex(), err)
	}
	if err := writeFileAtomic(path, receipt.Marshal(), 0o644); err != nil {
		return fmt.Errorf("append: entry %d was appended, but saving its receipt failed: %w", resp.GetIndex(), err)
	}
	digest := env.Digest()
	res := appendResult{
		Index: resp.GetIndex(), LeafHash: hex.EncodeToString(resp.GetLeafHash()), Duplicate: resp.GetDuplicate(),
		Receipt: path, Origin: cp.Origin, TreeSize: cp.Size, EnvelopeDigest: hex.EncodeToString(digest[:]),
		KeyID: keyID.String(), SignatureVerified: v != nil,
	}
	if a.json {
		return a.printJSON(res)
	}
	dup := "no"
	if res.Duplicate {
		dup = "yes (this envelope was already in the log; this is its original index)"
	}
	verified := "verified (inclusion proof and log signature)"
	if v == nil {
		verified = "inclusion proof verified; log signature NOT checked (no --log-key)"
	}
	fmt.Fprintf(a.stdout, "index:     %d\nleaf hash: %s\nduplicate: %s\nreceipt:   %s (%s)\nlog:       %s, tree size %d\n",
		res.Index, res.LeafHash, dup, res.Receipt, verified, res.Origin, res.TreeSize)
	return nil
}

// receiptPath is where append saves the receipt of entry index, whose
// record is record: DIR/<index>.tlog-proof, unless that file holds the
// receipt of another record (another log with the same origin), which is
// kept: then DIR/<index>-<first 8 hex digits of the leaf hash>.tlog-proof.
func receiptPath(dir string, index uint64, record, leaf []byte) string {
	path := filepath.Join(dir, strconv.FormatUint(index, 10)+".tlog-proof")
	b, err := os.ReadFile(path)
	if err != nil {
		return path // none yet (or unreadable: writing reports why)
	}
	if old, err := tlogproof.Parse(b); err == nil && bytes.Equal(old.Extra, record) {
		return path // the same entry: a fresher receipt replaces it
	}
	return filepath.Join(dir, fmt.Sprintf("%d-%x.tlog-proof", index, leaf[:min(4, len(leaf))]))
}

func toProtoEnvelope(e *envelope.Envelope) *provledgerpb.Envelope {
	pe := &provledgerpb.Envelope{PayloadType: e.PayloadType, Payload: e.Payload}
	for _, s := range e.Signatures {
		pe.Signatures = append(pe.Signatures, &provledgerpb.Signature{Keyid: s.KeyID, Sig: s.Sig})
	}
	return pe
}

// sanitizeOrigin turns a log origin into one safe path element: letters,
// digits, '.', '-' and '_' are kept, everything else becomes '_'.
func sanitizeOrigin(origin string) string {
	var b strings.Builder
	for _, r := range origin {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || strings.Trim(s, ".") == "" {
		s = "_" + s
	}
	return s
}

func displayName(file string) string {
	if file == "-" {
		return "standard input"
	}
	return file
}
