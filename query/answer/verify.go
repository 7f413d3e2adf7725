package answer

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/query/payload"
)

// ErrVerify is wrapped by every error that means the answer did not check
// out (as opposed to a missing input).
var ErrVerify = errors.New("answer verification failed")

func fail(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrVerify, fmt.Sprintf(format, args...))
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Keyring, when set, re-verifies every envelope's DSSE signatures:
	// each must be by a key in it, and the signers must be the record's.
	Keyring *keys.Keyring
	// Limits are the payload limits to parse with; use the ledger's if it
	// raised them (default payload defaults).
	Limits payload.Limits
}

// Report says what Verify checked.
type Report struct {
	// Checkpoint is the verified checkpoint the proofs lead to.
	Checkpoint checkpoint.Checkpoint `json:"checkpoint"`
	// Entries is the number of entries proven included.
	Entries int `json:"entries"`
	// ContentChecked is the number of entries whose envelope was checked
	// against its record and whose payload was checked against the facts
	// the answer attributes to it.
	ContentChecked int `json:"contentChecked"`
	// SignaturesChecked is the number of envelopes whose signatures were
	// re-verified with the keyring.
	SignaturesChecked int `json:"signaturesChecked"`
	// Facts is the number of nodes, edges, versions and cost rows checked
	// against the payloads.
	Facts int `json:"facts"`
	// Unchecked lists facts whose entry's content is not in the proof
	// (envelopes left out or redacted): their entries are proven
	// included, their content is not checked.
	Unchecked []string `json:"unchecked,omitempty"`
}

// Verify checks a proven answer offline with the log's key v:
//
//  1. the checkpoint is signed by v and names v's origin, and its size is
//     at least the answer's;
//  2. the proof lists exactly the answer's entries, each below the
//     answer's size, and each record's inclusion proof leads to the
//     checkpoint's root;
//  3. every node, edge, version and cost row of the answer cites an entry
//     the proof covers;
//  4. for each entry whose envelope the proof carries: the envelope's
//     digest, size and payload type are the record's (with a keyring, its
//     signatures verify and are the record's signers), and its payload
//     asserts every fact the answer attributes to that entry.
//
// What Verify cannot show is that the answer is complete: an index could
// leave facts out. Every fact it lists, though, is in a signed payload in
// the log below the answer's size.
func Verify(a *Answer, v note.Verifier, opts VerifyOptions) (*Report, error) {
	if a == nil {
		return nil, errors.New("verify answer: nil answer")
	}
	if v == nil {
		return nil, errors.New("verify answer: no log key to check the checkpoint with")
	}
	if a.Format != Version {
		return nil, fail("answer format %d; this build reads format %d", a.Format, Version)
	}
	if a.Proof == nil {
		return nil, fail("the answer carries no proof (ask for it with --prove)")
	}
	cp, err := checkpoint.Open([]byte(a.Proof.Checkpoint), v)
	if err != nil {
		return nil, fail("checkpoint: %v", err)
	}
	if cp.Origin != v.Name() {
		return nil, fail("the checkpoint is for log %q, the key is for %q", cp.Origin, v.Name())
	}
	if a.Size > cp.Size {
		return nil, fail("the answer is as of size %d, beyond the checkpoint's %d", a.Size, cp.Size)
	}
	rep := &Report{Checkpoint: cp}
	if len(a.Proof.Entries) != len(a.Entries) {
		return nil, fail("the answer rests on %d entries, the proof covers %d", len(a.Entries), len(a.Proof.Entries))
	}
	byIndex := make(map[uint64]*claims, len(a.Entries))
	contentOf := map[uint64]bool{}
	for i, pe := range a.Proof.Entries {
		idx := a.Entries[i]
		if pe.Index != idx {
			return nil, fail("proof entry %d is for index %d, the answer lists %d", i, pe.Index, idx)
		}
		if i > 0 && idx <= a.Entries[i-1] {
			return nil, fail("entries are not strictly ascending at %d", idx)
		}
		if idx >= a.Size {
			return nil, fail("entry %d is not below the answer's size %d", idx, a.Size)
		}
		rec, err := record.Unmarshal(pe.Record)
		if err != nil {
			return nil, fail("entry %d: record: %v", idx, err)
		}
		if err := proof.VerifyInclusion(idx, cp.Size, proof.LeafHash(pe.Record), pe.Hashes, cp.Hash); err != nil {
			return nil, fail("entry %d: inclusion in the tree of size %d: %v", idx, cp.Size, err)
		}
		rep.Entries++
		if pe.Envelope == nil {
			continue
		}
		c, sigs, err := checkContent(idx, rec, pe.Envelope, opts)
		if err != nil {
			return nil, err
		}
		rep.SignaturesChecked += sigs
		rep.ContentChecked++
		contentOf[idx] = true
		byIndex[idx] = c
	}
	if err := checkFacts(a, byIndex, contentOf, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// checkContent checks an envelope against its record and derives what its
// payload asserts.
func checkContent(idx uint64, rec record.Record, env []byte, opts VerifyOptions) (*claims, int, error) {
	if sha256.Sum256(env) != rec.EnvelopeDigest {
		return nil, 0, fail("entry %d: the envelope's SHA-256 is not the record's envelope digest", idx)
	}
	if uint32(len(env)) != rec.EnvelopeSize {
		return nil, 0, fail("entry %d: the envelope is %d bytes, the record says %d", idx, len(env), rec.EnvelopeSize)
	}
	e, err := envelope.Parse(env)
	if err != nil {
		return nil, 0, fail("entry %d: envelope: %v", idx, err)
	}
	if !bytes.Equal(e.Marshal(), env) {
		return nil, 0, fail("entry %d: the envelope is not in canonical form", idx)
	}
	if e.PayloadType != rec.PayloadType {
		return nil, 0, fail("entry %d: the envelope's payload type %q is not the record's %q", idx, e.PayloadType, rec.PayloadType)
	}
	sigs := 0
	if opts.Keyring != nil {
		ids, err := (&envelope.Verifier{Keyring: opts.Keyring}).Verify(e)
		if err != nil {
			return nil, 0, fail("entry %d: %v", idx, err)
		}
		if len(ids) != len(rec.Signers) {
			return nil, 0, fail("entry %d: %d signatures, the record names %d signers", idx, len(ids), len(rec.Signers))
		}
		for i := range ids {
			if [32]byte(ids[i]) != rec.Signers[i] {
				return nil, 0, fail("entry %d: signature %d is by %s, the record names %x", idx, i, ids[i], rec.Signers[i])
			}
		}
		sigs = 1
	}
	p, err := payload.Parse(e.PayloadType, e.Payload, opts.Limits)
	if err != nil {
		// Not a payload the graph indexes: it asserts no facts.
		return &claims{nodes: map[string]bool{}, edges: map[string]bool{}, readAny: map[string]bool{}, outputs: map[string]bool{}, wrote: map[string]bool{}}, sigs, nil
	}
	return deriveClaims(p), sigs, nil
}

func checkFacts(a *Answer, byIndex map[uint64]*claims, contentOf map[uint64]bool, rep *Report) error {
	proven := map[uint64]bool{}
	for _, i := range a.Entries {
		proven[i] = true
	}
	refs := map[string]Ref{}
	check := func(what string, idx uint64, ok func(*claims) bool) error {
		if !proven[idx] {
			return fail("%s cites entry %d, which the proof does not cover", what, idx)
		}
		if !contentOf[idx] {
			rep.Unchecked = append(rep.Unchecked, fmt.Sprintf("%s (entry %d: no envelope in the proof)", what, idx))
			return nil
		}
		if !ok(byIndex[idx]) {
			return fail("%s: entry %d does not assert it", what, idx)
		}
		rep.Facts++
		return nil
	}
	for _, n := range a.Nodes {
		if refs[n.Key].Kind != "" {
			return fail("two nodes have the key %q", n.Key)
		}
		refs[n.Key] = n.Ref
		if err := check("node "+n.Key, n.Index, func(c *claims) bool { return c.hasNode(n.Ref) }); err != nil {
			return err
		}
	}
	for i := range a.Edges {
		e := &a.Edges[i]
		from, ok1 := refs[e.From]
		to, ok2 := refs[e.To]
		if !ok1 || !ok2 {
			return fail("edge %s → %s names a node the answer does not list", e.From, e.To)
		}
		what := fmt.Sprintf("edge %s -%s-> %s", e.From, e.Rel, e.To)
		if err := check(what, e.Index, func(c *claims) bool { return c.hasEdge(from, to, e) }); err != nil {
			return err
		}
	}
	for _, p := range a.Paths {
		for j, k := range p {
			if _, ok := refs[k]; !ok {
				return fail("a path names node %q, which the answer does not list", k)
			}
			if j > 0 && !hasEdgeBetween(a, p[j-1], k) {
				return fail("a path steps from %q to %q with no edge between them", p[j-1], k)
			}
		}
	}
	if len(a.Versions) > 0 {
		if a.Query.Node == nil || a.Query.Node.Kind != "dataset" || len(a.Query.Node.Parts) != 2 {
			return fail("a history answer must name its dataset")
		}
		ns, name := a.Query.Node.Parts[0], a.Query.Node.Parts[1]
		for _, v := range a.Versions {
			for _, idx := range v.Indexes {
				what := fmt.Sprintf("version %s of %s", v.Version, name)
				if err := check(what, idx, func(c *claims) bool {
					return c.assertsVersion(ns, name, v.Version, v.RunID)
				}); err != nil {
					return err
				}
			}
		}
	}
	if a.Cost != nil {
		for _, r := range a.Cost.Rows {
			what := fmt.Sprintf("cost row %d of entry %d", r.Row, r.Index)
			if err := check(what, r.Index, func(c *claims) bool {
				row, ok := c.costs[r.Row]
				return ok && row.Amount() == r.Amount && row.BillingCurrency == r.Currency && row.ServiceName == r.Service
			}); err != nil {
				return err
			}
		}
		if err := checkTotals(a.Cost); err != nil {
			return err
		}
	}
	sort.Strings(rep.Unchecked)
	return nil
}

func hasEdgeBetween(a *Answer, from, to string) bool {
	for _, e := range a.Edges {
		if e.From == from && e.To == to {
			return true
		}
	}
	return false
}

// checkTotals recomputes the total per currency from the rows.
func checkTotals(c *Cost) error {
	sums := map[string]payload.Decimal{}
	scale := map[string]int{}
	acc := map[string]*bigSum{}
	for _, r := range c.Rows {
		s := acc[r.Currency]
		if s == nil {
			s = newBigSum()
			acc[r.Currency] = s
		}
		s.add(r.Amount)
		scale[r.Currency] = max(scale[r.Currency], r.Amount.Scale())
	}
	for cur, s := range acc {
		sums[cur] = s.format(scale[cur])
	}
	if len(sums) != len(c.Total) {
		return fail("the total lists %d currencies, the rows %d", len(c.Total), len(sums))
	}
	for _, t := range c.Total {
		if sums[t.Currency] != t.Amount {
			return fail("the total in %s is %s, the rows add up to %s", t.Currency, t.Amount, sums[t.Currency])
		}
	}
	return nil
}
