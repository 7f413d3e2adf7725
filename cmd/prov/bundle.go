package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/transparency-dev/merkle/compact"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/witness"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/cosignature"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/tlogproof"
)

// envelopeSuffix names a bundle's envelope file.
const envelopeSuffix = ".envelope.json"

// parseWitnessKeys parses --witness-key values.
func parseWitnessKeys(vkeys []string) ([]*cosignature.Verifier, error) {
	var out []*cosignature.Verifier
	for _, k := range vkeys {
		v, err := cosignature.ParseVerifierKey(k)
		if err != nil {
			return nil, usagef("--witness-key %q: %v", k, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// proveBundle writes entry n's offline bundle.
func (a *app) proveBundle(ctx context.Context, n, size uint64, path string, witnessURLs, witnessKeys []string) error {
	wvs, err := parseWitnessKeys(witnessKeys)
	if err != nil {
		return err
	}
	if len(wvs) > 0 && len(wvs) != len(witnessURLs) {
		return usagef("prove: give one --witness-key per --witness (or none)")
	}
	pub, err := a.loadLogKey(true)
	if err != nil {
		return err
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	e, err := c.GetEntry(rctx, &provledgerpb.GetEntryRequest{Index: n})
	if err != nil {
		return fmt.Errorf("get entry %d: %w", n, err)
	}
	ip, err := c.GetInclusionProof(rctx, &provledgerpb.GetInclusionProofRequest{
		Leaf: &provledgerpb.GetInclusionProofRequest_Index{Index: n}, TreeSize: size,
	})
	if err != nil {
		return fmt.Errorf("get inclusion proof of entry %d: %w", n, err)
	}
	p := &tlogproof.Proof{Extra: e.GetRecord(), Index: n, Hashes: ip.GetHashes(), Checkpoint: ip.GetCheckpoint()}
	v, err := client.VerifierForCheckpoint(pub, a.origin, p.Checkpoint)
	if err != nil {
		return a.failed("bundle", err)
	}
	rec, cp, err := client.VerifyProof(p, v)
	if err != nil {
		return a.failed(fmt.Sprintf("entry %d", n), err)
	}
	env := e.GetEnvelopeJson()
	if len(env) > 0 {
		if err := client.CheckEnvelope(rec, env); err != nil {
			return a.failed(fmt.Sprintf("entry %d", n), err)
		}
	}
	// Cosignatures.
	proofs := func(ctx context.Context, old, new uint64) ([][]byte, error) {
		rctx, cancel := a.rpcCtx(ctx)
		defer cancel()
		cp, err := c.GetConsistencyProof(rctx, &provledgerpb.GetConsistencyProofRequest{OldSize: old, NewSize: new})
		if err != nil {
			return nil, err
		}
		return cp.GetHashes(), nil // the witness checks it
	}
	cosigned := p.Checkpoint
	for i, u := range witnessURLs {
		wc := &witness.Client{URL: u}
		lines, err := wc.Cosign(ctx, p.Checkpoint, cp.Size, 0, proofs)
		if err != nil {
			return a.failed("witness "+u, err)
		}
		if len(wvs) > 0 {
			got, err := cosignature.Verify(cosignature.AddLines(p.Checkpoint, lines), wvs[i:i+1])
			if err != nil || len(got) != 1 {
				return a.failed("witness "+u, fmt.Errorf("its answer carries no valid cosignature by %s: %v", wvs[i].Name(), err))
			}
		}
		cosigned = cosignature.AddLines(cosigned, lines)
	}
	p.Checkpoint = cosigned
	if err := writeFileAtomic(path, p.Marshal(), 0o644); err != nil {
		return fmt.Errorf("prove: %w", err)
	}
	if len(env) > 0 {
		if err := writeFileAtomic(path+envelopeSuffix, env, 0o644); err != nil {
			return fmt.Errorf("prove: %w", err)
		}
	}
	leaf := proof.LeafHash(p.Extra)
	if a.json {
		return a.printJSON(map[string]any{"index": n, "tree_size": cp.Size, "leaf_hash": hex.EncodeToString(leaf[:]), "bundle": path,
			"envelope_file": map[bool]string{true: path + envelopeSuffix, false: ""}[len(env) > 0], "cosignatures": len(witnessURLs)})
	}
	fmt.Fprintf(a.stdout, "wrote the offline bundle of entry %d in the tree of size %d to %s (%d witness cosignature(s))", n, cp.Size, path, len(witnessURLs))
	if len(env) > 0 {
		fmt.Fprintf(a.stdout, " and its envelope to %s", path+envelopeSuffix)
	}
	fmt.Fprintln(a.stdout)
	return nil
}

// verifyBundle checks a bundle offline: the tlog-proof against the log
// key, the cosignatures against the witness keys (every --witness-key
// must have cosigned, or at least minWitnesses of them), and, if present,
// the envelope file against the record (and its DSSE signatures against
// --trust).
func (a *app) verifyBundle(path string, witnessKeys []string, minWitnesses int, trustFile string) error {
	pub, err := a.loadLogKey(true)
	if err != nil {
		return err
	}
	wvs, err := parseWitnessKeys(witnessKeys)
	if err != nil {
		return err
	}
	if minWitnesses < 0 || minWitnesses > len(wvs) {
		return usagef("--min-witnesses %d: between 0 and the number of --witness-key (%d)", minWitnesses, len(wvs))
	}
	if minWitnesses == 0 {
		minWitnesses = len(wvs)
	}
	kr, err := loadTrust(trustFile)
	if err != nil {
		return err
	}
	p, rec, cp, err := a.verifyProofFile("--bundle", "bundle", path, pub)
	if err != nil {
		return err
	}
	cos, err := cosignature.Verify(p.Checkpoint, wvs)
	if err != nil {
		return a.failed("bundle "+path, err)
	}
	if len(cos) < minWitnesses {
		var names []string
		for _, c := range cos {
			names = append(names, c.Witness)
		}
		return a.failed("bundle "+path, fmt.Errorf("%w: %d of the %d witness(es) cosigned the checkpoint (%s), %d required",
			client.ErrVerify, len(cos), len(wvs), strings.Join(names, ", "), minWitnesses))
	}
	envState := "no envelope file"
	env, err := os.ReadFile(path + envelopeSuffix)
	switch {
	case err == nil:
		if err := client.CheckEnvelope(rec, env); err != nil {
			return a.failed("bundle envelope "+path+envelopeSuffix, err)
		}
		envState = "envelope matches the record"
		if kr != nil {
			e, err := envelope.Parse(env)
			if err != nil {
				return a.failed("bundle envelope", err)
			}
			rep, err := checkSignatures(e, rec, kr)
			if err != nil {
				return a.failed("bundle envelope", err)
			}
			if len(rep.Unverifiable) > 0 {
				return a.failed("bundle envelope", fmt.Errorf("signature(s) by %s: not in the trust file", strings.Join(rep.Unverifiable, ", ")))
			}
			envState += fmt.Sprintf(", %d DSSE signature(s) verified", len(rep.Verified))
		}
	case errors.Is(err, fs.ErrNotExist):
		if kr != nil {
			return a.failed("bundle", fmt.Errorf("--trust given but there is no envelope file %s", path+envelopeSuffix))
		}
	default:
		return usagef("bundle envelope: %v", err)
	}
	leaf := proof.LeafHash(p.Extra)
	var names []string
	for _, c := range cos {
		names = append(names, fmt.Sprintf("%s (%s)", c.Witness, c.Time.Format("2006-01-02T15:04:05Z")))
	}
	if a.json {
		return a.printJSON(map[string]any{"verified": true, "index": p.Index, "leaf_hash": hex.EncodeToString(leaf[:]), "origin": cp.Origin,
			"tree_size": cp.Size, "root_hash": base64.StdEncoding.EncodeToString(cp.Hash[:]), "cosigned_by": names, "envelope": envState})
	}
	fmt.Fprintf(a.stdout, "verified: bundle %s: entry %d (%s, namespace %s) is in log %s at tree size %d, checkpoint signed by the log key and cosigned by %d witness(es)%s; %s\n",
		path, p.Index, rec.PayloadType, rec.Namespace, cp.Origin, cp.Size, len(cos), listSuffix(names), envState)
	return nil
}

func listSuffix(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return ": " + strings.Join(names, ", ")
}

// verifyEvidence re-checks a monitor's evidence file with the log key
// alone. Exit 0 means the misbehaviour it claims is proven.
func (a *app) verifyEvidence(path string) error {
	pub, err := a.loadLogKey(true)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return usagef("--evidence-file: %v", err)
	}
	ev, verdict, err := checkEvidence(pub, a.origin, b)
	if err != nil {
		return a.failed("evidence "+path, err)
	}
	origin := ev.Origin
	if a.json {
		return a.printJSON(map[string]any{"proven": true, "kind": ev.Kind, "origin": origin, "verdict": verdict})
	}
	fmt.Fprintf(a.stdout, "%s (log %s, evidence %s)\n", verdict, origin, path)
	return nil
}

// checkEvidence re-checks an evidence file with the log key pub (and
// origin, if not empty). It returns the verdict when the file proves what
// it claims, an error otherwise.
func checkEvidence(pub ed25519.PublicKey, origin string, b []byte) (*Evidence, string, error) {
	ev := &Evidence{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ev); err != nil || ev.Format != EvidenceFormat {
		return nil, "", fmt.Errorf("not a %s file: %v", EvidenceFormat, err)
	}
	open := func(which, n string) (checkpoint.Checkpoint, error) {
		v, err := client.VerifierForCheckpoint(pub, origin, []byte(n))
		if err != nil {
			return checkpoint.Checkpoint{}, fmt.Errorf("%s checkpoint: %w", which, err)
		}
		cp, err := client.OpenCheckpoint([]byte(n), v)
		if err != nil {
			return checkpoint.Checkpoint{}, fmt.Errorf("%s checkpoint: %w", which, err)
		}
		return cp, nil
	}
	oldCP, err := open("old", ev.OldCheckpoint)
	if err != nil {
		return nil, "", err
	}
	newCP, err := open("new", ev.NewCheckpoint)
	if err != nil {
		return nil, "", err
	}
	if oldCP.Origin != newCP.Origin {
		return nil, "", fmt.Errorf("the checkpoints are of two logs, %q and %q", oldCP.Origin, newCP.Origin)
	}
	var verdict string
	switch {
	case oldCP.Size == newCP.Size && oldCP.Hash != newCP.Hash:
		verdict = fmt.Sprintf("PROVEN fork: the log key signed two different roots for size %d (%s and %s)", oldCP.Size, b64(oldCP.Hash[:]), b64(newCP.Hash[:]))
	case oldCP.Size > newCP.Size:
		verdict = fmt.Sprintf("PROVEN stale view: the log served its size-%d checkpoint after its size-%d one (both signed by the log key); this alone does not prove a fork", newCP.Size, oldCP.Size)
	case oldCP.Size < newCP.Size:
		if proof.VerifyConsistency(oldCP.Size, newCP.Size, ev.ConsistencyProof, oldCP.Hash, newCP.Hash) == nil {
			return nil, "", fmt.Errorf("the consistency proof %d -> %d verifies: these checkpoints are consistent", oldCP.Size, newCP.Size)
		}
		if len(ev.OldRange) == 0 {
			return nil, "", fmt.Errorf("the consistency proof fails, but without the tree's ranges that shows nothing about the log (anyone can send a bad proof)")
		}
		l, err := rangeFactory.NewRange(0, oldCP.Size, ev.OldRange)
		if err != nil {
			return nil, "", fmt.Errorf("old_range: %w", err)
		}
		var r *compact.Range
		if r, err = rangeFactory.NewRange(oldCP.Size, newCP.Size, ev.NewRange); err != nil {
			return nil, "", fmt.Errorf("new_range: %w", err)
		}
		prefix := rootOf(l)
		if err := l.AppendRange(r, nil); err != nil {
			return nil, "", err
		}
		if rootOf(l) != newCP.Hash {
			return nil, "", fmt.Errorf("the ranges do not hash to the new checkpoint's root")
		}
		if prefix == oldCP.Hash {
			return nil, "", fmt.Errorf("the new tree's root at size %d equals the old checkpoint's: no inconsistency", oldCP.Size)
		}
		verdict = fmt.Sprintf("PROVEN inconsistency: the log's signed tree of size %d has root %s at size %d, but the log signed %s for size %d",
			newCP.Size, b64(prefix[:]), oldCP.Size, b64(oldCP.Hash[:]), oldCP.Size)
	default:
		return nil, "", fmt.Errorf("the two checkpoints are the same (size %d): nothing is proven; entry-level findings (%s) need the log's data to re-check", oldCP.Size, ev.Kind)
	}
	ev.Origin = oldCP.Origin
	return ev, verdict, nil
}
