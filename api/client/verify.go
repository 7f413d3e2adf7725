package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/crypto/tlogproof"
)

// ErrVerify is wrapped by every error that means the server's answer did
// not check out (as opposed to a transport or input error).
var ErrVerify = errors.New("verification failed")

func verifyErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrVerify, fmt.Sprintf(format, args...))
}

// ReceiptFromResponse turns an Append response into a C2SP tlog-proof whose
// extra data is the entry record: the form receipts are saved in.
func ReceiptFromResponse(resp *provledgerpb.AppendResponse) *tlogproof.Proof {
	return &tlogproof.Proof{
		Extra:      bytes.Clone(resp.GetRecord()),
		Index:      resp.GetIndex(),
		Hashes:     resp.GetInclusionProof(),
		Checkpoint: bytes.Clone(resp.GetCheckpoint()),
	}
}

// VerifyReceipt checks an Append response against the envelope that was
// sent (its canonical JSON, crypto/envelope.Envelope.Marshal): the record
// decodes, names that envelope (SHA-256 digest, size and payload type),
// hashes to leaf_hash, and the inclusion proof leads from that leaf to the
// root of the checkpoint, whose signature is checked with v. If v is nil
// the signature is NOT checked (the caller has no log key) and the proof
// only shows consistency with whatever checkpoint the server sent.
func VerifyReceipt(resp *provledgerpb.AppendResponse, canonicalEnvelope []byte, v note.Verifier) error {
	if resp == nil {
		return verifyErr("no response")
	}
	if e := resp.GetError(); e != nil {
		return fmt.Errorf("append failed (code %d): %s", e.GetCode(), e.GetMessage())
	}
	rec, err := checkRecord(resp.GetRecord(), resp.GetLeafHash())
	if err != nil {
		return err
	}
	if err := CheckEnvelope(rec, canonicalEnvelope); err != nil {
		return err
	}
	if _, err := checkInclusion(resp.GetIndex(), leafOf(resp.GetRecord()), resp.GetInclusionProof(), resp.GetCheckpoint(), v); err != nil {
		return err
	}
	return nil
}

// VerifiedEntry is an entry whose proof checked out.
type VerifiedEntry struct {
	Index    uint64
	Record   record.Record
	LeafHash [32]byte
	// Envelope is the canonical envelope JSON; nil when redacted.
	Envelope []byte
	// Checkpoint is the checkpoint the inclusion proof led to.
	Checkpoint checkpoint.Checkpoint
	// SignatureChecked reports whether the checkpoint's signature was
	// checked (false only when no log key was given).
	SignatureChecked bool
}

// VerifyEntry checks an entry read with GetEntry(with_proof): the record
// decodes and hashes to leaf_hash, the envelope (unless redacted) has the
// record's digest, size and payload type, and the inclusion proof leads to
// the checkpoint's root, whose signature is checked with v (skipped if v is
// nil). The proof is required.
func VerifyEntry(e *provledgerpb.Entry, v note.Verifier) (*VerifiedEntry, error) {
	if e == nil {
		return nil, verifyErr("no entry")
	}
	rec, err := checkRecord(e.GetRecord(), e.GetLeafHash())
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", e.GetIndex(), err)
	}
	if len(e.GetEnvelopeJson()) > 0 {
		if err := CheckEnvelope(rec, e.GetEnvelopeJson()); err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.GetIndex(), err)
		}
	} else if e.RedactedBy == nil {
		return nil, verifyErr("entry %d: the server sent no envelope and does not say it was redacted", e.GetIndex())
	}
	if len(e.GetCheckpoint()) == 0 {
		return nil, verifyErr("entry %d: the server sent no checkpoint and inclusion proof", e.GetIndex())
	}
	leaf := leafOf(e.GetRecord())
	cp, err := checkInclusion(e.GetIndex(), leaf, e.GetInclusionProof(), e.GetCheckpoint(), v)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", e.GetIndex(), err)
	}
	return &VerifiedEntry{
		Index: e.GetIndex(), Record: rec, LeafHash: leaf, Envelope: e.GetEnvelopeJson(),
		Checkpoint: cp, SignatureChecked: v != nil,
	}, nil
}

// VerifyProof checks a saved receipt (a tlog-proof whose extra data is the
// entry record) offline: the record decodes, and the inclusion proof leads
// from its leaf hash to the root of the checkpoint signed by v (required).
// To also tie the receipt to an envelope, call CheckEnvelope on the
// returned record.
func VerifyProof(p *tlogproof.Proof, v note.Verifier) (record.Record, checkpoint.Checkpoint, error) {
	if v == nil {
		return record.Record{}, checkpoint.Checkpoint{}, errors.New("verify receipt: the log's public key is required (--log-key)")
	}
	var rec record.Record
	cp, err := tlogproof.Verify(p, v, func(extra []byte) ([32]byte, error) {
		if len(extra) == 0 {
			return [32]byte{}, errors.New("no entry record in the receipt's extra line")
		}
		r, err := record.Unmarshal(extra)
		if err != nil {
			return [32]byte{}, err
		}
		rec = r
		return proof.LeafHash(extra), nil
	})
	if err != nil {
		return record.Record{}, checkpoint.Checkpoint{}, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	return rec, cp, nil
}

// CheckEnvelope checks that canonicalEnvelope is the envelope rec names:
// same SHA-256 digest, size and payload type.
func CheckEnvelope(rec record.Record, canonicalEnvelope []byte) error {
	if d := sha256.Sum256(canonicalEnvelope); d != rec.EnvelopeDigest {
		return verifyErr("envelope digest is %s, the record says %s", hex.EncodeToString(d[:]), hex.EncodeToString(rec.EnvelopeDigest[:]))
	}
	if uint64(len(canonicalEnvelope)) != uint64(rec.EnvelopeSize) {
		return verifyErr("envelope is %d bytes, the record says %d", len(canonicalEnvelope), rec.EnvelopeSize)
	}
	env, err := envelope.Parse(canonicalEnvelope)
	if err != nil {
		return verifyErr("envelope does not parse: %v", err)
	}
	if env.PayloadType != rec.PayloadType {
		return verifyErr("envelope payload type is %q, the record says %q", env.PayloadType, rec.PayloadType)
	}
	return nil
}

func checkRecord(raw, leafHash []byte) (record.Record, error) {
	rec, err := record.Unmarshal(raw)
	if err != nil {
		return record.Record{}, fmt.Errorf("%w: entry record: %w", ErrVerify, err)
	}
	if lh := leafOf(raw); !bytes.Equal(lh[:], leafHash) {
		return record.Record{}, verifyErr("leaf hash is %x, but the record hashes to %x", leafHash, lh[:])
	}
	return rec, nil
}

func leafOf(raw []byte) [32]byte { return proof.LeafHash(raw) }

// checkInclusion opens the checkpoint (checking its signature when v is not
// nil) and verifies the inclusion proof against its root.
func checkInclusion(index uint64, leaf [32]byte, hashes [][]byte, cpNote []byte, v note.Verifier) (checkpoint.Checkpoint, error) {
	cp, err := OpenCheckpoint(cpNote, v)
	if err != nil {
		return checkpoint.Checkpoint{}, err
	}
	if index >= cp.Size {
		return checkpoint.Checkpoint{}, verifyErr("index %d is not below the checkpoint's tree size %d", index, cp.Size)
	}
	if err := proof.VerifyInclusion(index, cp.Size, leaf, hashes, cp.Hash); err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("%w: inclusion proof of entry %d in the tree of size %d: %w", ErrVerify, index, cp.Size, err)
	}
	return cp, nil
}

// OpenCheckpoint parses a signed checkpoint note. With a verifier it checks
// the log's signature (and that the origin is the verifier's name); with v
// nil it only parses the body, which proves nothing about who signed it.
func OpenCheckpoint(cpNote []byte, v note.Verifier) (checkpoint.Checkpoint, error) {
	if v == nil {
		split := bytes.LastIndex(cpNote, []byte("\n\n"))
		if split < 0 {
			return checkpoint.Checkpoint{}, verifyErr("checkpoint is not a signed note")
		}
		cp, err := checkpoint.ParseBody(cpNote[:split+1])
		if err != nil {
			return checkpoint.Checkpoint{}, fmt.Errorf("%w: checkpoint: %w", ErrVerify, err)
		}
		return cp, nil
	}
	cp, err := checkpoint.Open(cpNote, v)
	if err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("%w: checkpoint signature: %w", ErrVerify, err)
	}
	if cp.Origin != v.Name() {
		return checkpoint.Checkpoint{}, verifyErr("checkpoint is for log %q, the log key is for %q", cp.Origin, v.Name())
	}
	return cp, nil
}

// LoadLogKey reads the log's Ed25519 public key from a PEM file (a
// "PUBLIC KEY" block holding a DER SubjectPublicKeyInfo, as provd writes
// DATA/log.pub).
func LoadLogKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	return ParseLogKey(b)
}

// ParseLogKey parses a PEM Ed25519 public key.
func ParseLogKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("log key: want a PEM \"PUBLIC KEY\" block (the node's DATA/log.pub)")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	ed, ok := pub.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("log key: the log signs with Ed25519, this is a %T key", pub)
	}
	return ed, nil
}

// LoadLogVerifier reads the log's public key (see LoadLogKey) and returns
// the note verifier of the log named origin. origin is required here; use
// Client.LogVerifier or VerifierForCheckpoint to learn it from a
// checkpoint instead.
func LoadLogVerifier(path, origin string) (note.Verifier, error) {
	if origin == "" {
		return nil, errors.New("log key: the log's origin is required to build its verifier")
	}
	pub, err := LoadLogKey(path)
	if err != nil {
		return nil, err
	}
	return checkpoint.NewVerifier(origin, pub)
}

// VerifierForCheckpoint returns the verifier of the log key pub under
// origin, or, when origin is empty, under the origin named on the first
// line of cpNote. Taking the origin from a checkpoint trusts its sender for
// the log's name only: the signature is still checked with pub, so a
// server without the log's private key cannot forge anything; but if the
// same key signed checkpoints of two logs, the server could pass one log
// off as the other. Give the origin explicitly when that matters.
func VerifierForCheckpoint(pub ed25519.PublicKey, origin string, cpNote []byte) (note.Verifier, error) {
	if origin == "" {
		first, _, ok := strings.Cut(string(cpNote), "\n")
		if !ok || first == "" {
			return nil, verifyErr("checkpoint has no origin line")
		}
		origin = first
	}
	return checkpoint.NewVerifier(origin, pub)
}

// LogVerifier builds the verifier of the log key pub. If origin is empty it
// fetches the latest checkpoint and takes the origin from it (see
// VerifierForCheckpoint for what that trusts).
func (c *Client) LogVerifier(ctx context.Context, pub ed25519.PublicKey, origin string) (note.Verifier, error) {
	if origin != "" {
		return checkpoint.NewVerifier(origin, pub)
	}
	cp, err := c.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{})
	if err != nil {
		return nil, fmt.Errorf("get checkpoint to learn the log's origin: %w", err)
	}
	return VerifierForCheckpoint(pub, "", cp.GetNote())
}
