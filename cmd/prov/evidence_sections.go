package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/queryservice/answerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/tlogproof"
	"github.com/provledger/provledger/query/answer"
)

// packCost asks the node for the subject's proven cost answer as of the
// pack's size, verifies it and writes cost.json. A node that cannot
// answer leaves a note in the report instead.
func (a *app) packCost(ctx context.Context, c provledgerpb.QueryClient, n *provledgerpb.NodeRef, dir string, idx *packIndex, v note.Verifier) (*answer.Answer, error) {
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	pa, err := c.Cost(rctx, &provledgerpb.CostQuery{Node: n, Options: &provledgerpb.QueryOptions{Prove: true, AsOfSize: idx.TreeSize}})
	if err != nil {
		idx.CostNote = "No cost answer: the node said: " + grpcMessage(err)
		return nil, nil
	}
	ans, err := answerpb.FromProto(pa)
	if err != nil {
		return nil, a.failed("cost answer", err)
	}
	if _, err := answer.Verify(ans, v, answer.VerifyOptions{}); err != nil {
		return nil, a.failed("cost answer", err)
	}
	var b bytes.Buffer
	if err := render(&b, ans, "json"); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, "cost.json"), b.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	idx.Cost = "cost.json"
	if ans.Cost == nil || len(ans.Cost.Rows) == 0 {
		idx.CostNote = "No cost rows are recorded for this dataset's upstream runs."
	}
	return ans, nil
}

// packFindings adds the scanner findings about the pack's entries: each
// finding is itself an entry (signed by the node), proven against the
// pack's checkpoint like the others. It returns the findings' payloads.
func (a *app) packFindings(ctx context.Context, dir string, idx *packIndex, v note.Verifier, cpNote []byte) (map[uint64][]byte, error) {
	payloads := map[uint64][]byte{}
	conn, closeConn, err := a.serviceConn()
	if err != nil {
		return nil, err
	}
	defer closeConn()
	in := map[uint64]bool{}
	for _, e := range idx.Entries {
		in[e.Index] = true
	}
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	resp, err := provledgerpb.NewScannerClient(conn).ListFindings(rctx, &provledgerpb.ListFindingsRequest{Limit: 10000})
	if err != nil {
		idx.FindingsNote = "No scanner findings: the node's scanner did not answer: " + grpcMessage(err)
		return payloads, nil
	}
	lc := provledgerpb.NewLedgerClient(conn)
	for _, f := range resp.GetFindings() {
		if f.GetIndex() >= idx.TreeSize || in[f.GetIndex()] || !slices.ContainsFunc(f.GetEntries(), func(i uint64) bool { return in[i] }) {
			continue
		}
		what := fmt.Sprintf("finding entry %d", f.GetIndex())
		e, err := lc.GetEntry(rctx, &provledgerpb.GetEntryRequest{Index: f.GetIndex()})
		if err != nil {
			return nil, a.failed(what, err)
		}
		ip, err := lc.GetInclusionProof(rctx, &provledgerpb.GetInclusionProofRequest{Leaf: &provledgerpb.GetInclusionProofRequest_Index{Index: f.GetIndex()}, TreeSize: idx.TreeSize})
		if err != nil {
			return nil, a.failed(what, err)
		}
		p := &tlogproof.Proof{Extra: e.GetRecord(), Index: f.GetIndex(), Hashes: ip.GetHashes(), Checkpoint: cpNote}
		rec, _, err := client.VerifyProof(p, v)
		if err != nil {
			return nil, a.failed(what, err)
		}
		env := e.GetEnvelopeJson()
		if err := client.CheckEnvelope(rec, env); err != nil {
			return nil, a.failed(what, err)
		}
		pe := packEntry{Index: f.GetIndex(), Role: roleFinding, Namespace: rec.Namespace, PayloadType: rec.PayloadType, IntegratedTime: rec.IntegratedTime.UTC(),
			Bundle: fmt.Sprintf("entries/%d.tlog-proof", f.GetIndex()), Envelope: fmt.Sprintf("entries/%d%s", f.GetIndex(), envelopeSuffix)}
		for _, s := range rec.Signers {
			pe.Signers = append(pe.Signers, hex.EncodeToString(s[:]))
		}
		if err := writeFileAtomic(filepath.Join(dir, pe.Bundle), p.Marshal(), 0o644); err != nil {
			return nil, fmt.Errorf("evidence: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(dir, pe.Envelope), env, 0o644); err != nil {
			return nil, fmt.Errorf("evidence: %w", err)
		}
		pl, err := envelope.Parse(env)
		if err != nil {
			return nil, a.failed(what, err)
		}
		payloads[pe.Index] = pl.Payload
		in[pe.Index] = true
		idx.Entries = append(idx.Entries, pe)
	}
	if len(payloads) == 0 {
		idx.FindingsNote = "The scanner recorded no findings about these entries."
	}
	return payloads, nil
}

// readPackAnswer reads a proven answer file of a pack.
func readPackAnswer(dir, name string) (*answer.Answer, error) {
	if name == "" || filepath.IsAbs(name) || filepath.Base(name) != name {
		return nil, fmt.Errorf("answer file %q must be a file name inside the pack", name)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ans answer.Answer
	if err := dec.Decode(&ans); err != nil {
		return nil, fmt.Errorf("%s is not a proven answer: %w", name, err)
	}
	return &ans, nil
}

// verifyPackReports verifies the pack's answers (lineage, and cost if
// any) offline and checks that report.md and report.html are exactly what
// the verified pack gives: a report that says more, less or otherwise
// than the proofs fails.
func (a *app) verifyPackReports(dir string, idx *packIndex, pub ed25519.PublicKey, v note.Verifier, payloads map[uint64][]byte) error {
	ans, err := readPackAnswer(dir, idx.Answer)
	if err != nil {
		return a.failed("evidence pack", err)
	}
	if ans.Proof == nil || ans.Proof.Checkpoint != idx.Checkpoint {
		return a.failed("evidence pack", fmt.Errorf("%s is not proven against the pack's checkpoint", idx.Answer))
	}
	if _, err := answer.Verify(ans, v, answer.VerifyOptions{}); err != nil {
		return a.failed("evidence pack "+idx.Answer, err)
	}
	var costAns *answer.Answer
	if idx.Cost != "" {
		if costAns, err = readPackAnswer(dir, idx.Cost); err != nil {
			return a.failed("evidence pack", err)
		}
		if costAns.Proof == nil {
			return a.failed("evidence pack", fmt.Errorf("%s has no proof", idx.Cost))
		}
		cv, err := client.VerifierForCheckpoint(pub, a.origin, []byte(costAns.Proof.Checkpoint))
		if err != nil {
			return a.failed("evidence pack "+idx.Cost, err)
		}
		if _, err := answer.Verify(costAns, cv, answer.VerifyOptions{}); err != nil {
			return a.failed("evidence pack "+idx.Cost, err)
		}
	}
	var tree bytes.Buffer
	if err := render(&tree, ans, "tree"); err != nil {
		return err
	}
	md, htm, err := renderReports(buildReport(idx, ans, costAns, tree.String(), payloads))
	if err != nil {
		return err
	}
	for name, want := range map[string][]byte{"report.md": md, "report.html": htm} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return a.failed("evidence pack", err)
		}
		if !bytes.Equal(got, want) {
			return a.failed("evidence pack", fmt.Errorf("%s does not say what the verified pack proves (it was edited, or written by another version of prov)", name))
		}
	}
	return nil
}
