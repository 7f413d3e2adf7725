package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/crypto/tlogproof"
)

// A chain of logs (key rotation, sharding; docs/audit.md): the old log
// holds a successor statement naming the new log's origin and verifier
// key, and the new log's entry 0 holds a predecessor statement carrying
// the offline bundle (C2SP tlog-proof) that proves the successor
// statement in the old log.

// kindChain names a broken chain of logs.
const kindChain = "chain-broken"

// maxChainHops bounds prov audit --follow.
const maxChainHops = 32

// successorStatement is the payload of the old log's link entry.
type successorStatement struct {
	Successor *struct {
		Origin string `json:"origin"`
		VKey   string `json:"vkey"`
		URL    string `json:"url,omitempty"`
	} `json:"provledger_log_successor"`
}

// predecessorStatement is the payload of the new log's entry 0.
type predecessorStatement struct {
	Predecessor *struct {
		Origin        string `json:"origin"`
		VKey          string `json:"vkey"`
		HandoffBundle string `json:"handoff_bundle"`
	} `json:"provledger_log_predecessor"`
}

// chainLink is a successor statement found in an audited log, as kept in
// STATE.link so that an incremental audit still knows it.
type chainLink struct {
	Index  uint64 `json:"index"`
	Leaf   string `json:"leaf_hash"` // base64 leaf hash of the statement's record
	Origin string `json:"origin"`
	VKey   string `json:"vkey"`
	URL    string `json:"url,omitempty"`
}

// seenRecord is a record the audit matched to the tree's leaf.
type seenRecord struct {
	leaf [32]byte
	rec  record.Record
}

// chainHop is one log of the chain in the --json summary.
type chainHop struct {
	Origin         string  `json:"origin"`
	TreeSize       uint64  `json:"tree_size"`
	URL            string  `json:"url"`
	SuccessorIndex *uint64 `json:"successor_index,omitempty"`
	EntriesAfter   uint64  `json:"entries_after_successor_statement,omitempty"`
	Next           string  `json:"next_origin,omitempty"`
}

// parseFollowURLs parses --follow-url ORIGIN=URL values.
func parseFollowURLs(vs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, v := range vs {
		o, u, ok := strings.Cut(v, "=")
		if !ok || o == "" || u == "" {
			return nil, usagef("--follow-url %q: want ORIGIN=URL", v)
		}
		m[o] = u
	}
	return m, nil
}

// chainStatePath is the audit state file of a successor log.
func chainStatePath(first, origin string) string {
	h := sha256.Sum256([]byte(origin))
	return fmt.Sprintf("%s-%x", first, h[:6])
}

// followChain audits the log at base, then each successor it names.
func (a *app) followChain(ctx context.Context, o auditOptions, pub ed25519.PublicKey, base string) error {
	origin := a.origin
	state := o.statePath
	var hops []chainHop
	type prevLog struct {
		log  *auditedLog
		pub  ed25519.PublicKey
		link chainLink
	}
	var prev *prevLog
	for hop := 0; ; hop++ {
		if hop == maxChainHops {
			return a.chainFailed(hops, -1, fmt.Sprintf("more than %d logs in the chain", maxChainHops))
		}
		var (
			mu       sync.Mutex
			policies []uint64
			recs     = map[uint64]seenRecord{}
		)
		onRecord := func(i uint64, leaf [32]byte, rec record.Record) {
			if rec.PayloadType == policy.PayloadType {
				mu.Lock()
				policies = append(policies, i)
				recs[i] = seenRecord{leaf, rec}
				mu.Unlock()
			}
		}
		lo := o
		lo.statePath = state
		al, err := a.auditOne(ctx, lo, pub, origin, base, onRecord)
		if err != nil {
			return err
		}
		h := chainHop{Origin: al.cp.Origin, TreeSize: al.cp.Size, URL: base}
		if prev != nil {
			// The new log's entry 0 must carry the handoff of the old one.
			if err := a.checkPredecessor(ctx, al, prev.log, prev.pub, prev.link); err != nil {
				hops = append(hops, h)
				return a.chainFailed(hops, 0, err.Error())
			}
		}
		link, found, err := a.findSuccessor(ctx, al, state, policies, recs)
		if err != nil {
			hops = append(hops, h)
			var ce chainError
			if errors.As(err, &ce) {
				return a.chainFailed(hops, ce.index, ce.msg)
			}
			return exitError{code: exitUnreachable, err: fmt.Errorf("could not reach or read the log %s: %v", al.cp.Origin, err)}
		}
		if !found {
			hops = append(hops, h)
			break
		}
		idx := link.Index
		h.SuccessorIndex, h.EntriesAfter, h.Next = &idx, al.cp.Size-link.Index-1, link.Origin
		hops = append(hops, h)
		for _, seen := range hops {
			if seen.Origin == link.Origin {
				return a.chainFailed(hops, int64(link.Index), fmt.Sprintf("the successor %s is already in the chain (a cycle)", link.Origin))
			}
		}
		npub, err := pubFromVKey(link.VKey, link.Origin)
		if err != nil {
			return a.chainFailed(hops, int64(link.Index), fmt.Sprintf("the successor statement's verifier key: %v", err))
		}
		next := o.followURLs[link.Origin]
		if next == "" {
			next = link.URL
		}
		if next == "" {
			return usagef("the log %s names the successor %s but no URL for it: give --follow-url %s=URL", al.cp.Origin, link.Origin, link.Origin)
		}
		if !a.json {
			fmt.Fprintf(a.stdout, "chain: %s names its successor %s at index %d (%d entries after it); following %s\n",
				al.cp.Origin, link.Origin, link.Index, h.EntriesAfter, next)
		}
		prev = &prevLog{log: al, pub: pub, link: link}
		pub, origin, base, state = npub, link.Origin, next, chainStatePath(o.statePath, link.Origin)
	}
	if a.json {
		return a.printJSON(map[string]any{"ok": true, "chain": hops})
	}
	fmt.Fprintf(a.stdout, "chain OK: %d log(s), every link verified; the chain ends at %s (size %d)\n", len(hops), hops[len(hops)-1].Origin, hops[len(hops)-1].TreeSize)
	return nil
}

// chainError is a broken link found while walking the chain.
type chainError struct {
	index int64
	msg   string
}

func (e chainError) Error() string { return e.msg }

func (a *app) chainFailed(hops []chainHop, index int64, msg string) error {
	p := problem{Index: index, Kind: kindChain, Detail: msg}
	origin := ""
	if len(hops) > 0 {
		origin = hops[len(hops)-1].Origin
	}
	if a.json {
		a.printJSON(map[string]any{"ok": false, "chain": hops, "problems": []problem{p}})
	}
	return exitError{code: exitFailed, err: fmt.Errorf("FAILED: chain of logs at %s: %s", origin, p)}
}

// findSuccessor returns the successor statement of the audited log: one
// found among this run's policy records (their envelopes fetched and
// checked against the records), or the one kept in STATE.link by an
// earlier run. Two different statements break the chain.
func (a *app) findSuccessor(ctx context.Context, al *auditedLog, state string, idx []uint64, recs map[uint64]seenRecord) (chainLink, bool, error) {
	var links []chainLink
	saved, err := loadLink(state + ".link")
	if err != nil {
		return chainLink{}, false, chainError{-1, err.Error()}
	}
	if saved != nil {
		if saved.Index >= al.cp.Size {
			return chainLink{}, false, chainError{-1, fmt.Sprintf("%s.link names index %d, beyond the log's size %d", state, saved.Index, al.cp.Size)}
		}
		links = append(links, *saved)
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i] < idx[j] })
	for _, i := range idx {
		rec, leaf := recs[i].rec, recs[i].leaf
		env, err := fetchEnvelope(ctx, al.src, rec)
		if errors.Is(err, errRedacted) {
			continue
		}
		if err != nil {
			return chainLink{}, false, err
		}
		var s successorStatement
		if json.Unmarshal(env.Payload, &s) != nil || s.Successor == nil {
			continue
		}
		l := chainLink{Index: i, Leaf: b64(leaf[:]), Origin: s.Successor.Origin, VKey: s.Successor.VKey, URL: s.Successor.URL}
		if saved != nil && l.Index == saved.Index && l.Leaf == saved.Leaf {
			continue
		}
		links = append(links, l)
	}
	switch {
	case len(links) == 0:
		return chainLink{}, false, nil
	case len(links) > 1:
		return chainLink{}, false, chainError{int64(links[1].Index), fmt.Sprintf(
			"the log names two successors: %s at index %d and %s at index %d (a log has at most one)", links[0].Origin, links[0].Index, links[1].Origin, links[1].Index)}
	}
	if saved == nil {
		b, _ := json.MarshalIndent(links[0], "", "  ")
		if err := writeFileAtomic(state+".link", append(b, '\n'), 0o644); err != nil {
			return chainLink{}, false, fmt.Errorf("saving %s.link: %w", state, err)
		}
	}
	return links[0], true, nil
}

func loadLink(path string) (*chainLink, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var l chainLink
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %v (delete it to find the successor statement again with --full)", path, err)
	}
	return &l, nil
}

// fetchEnvelope reads a record's envelope and checks it against the record.
func fetchEnvelope(ctx context.Context, src tileSource, rec record.Record) (*envelope.Envelope, error) {
	b, err := src.Envelope(ctx, rec.EnvelopeDigest)
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(b) != rec.EnvelopeDigest {
		return nil, chainError{-1, fmt.Sprintf("the envelope served for sha256:%x does not have that digest", rec.EnvelopeDigest)}
	}
	e, err := envelope.Parse(b)
	if err != nil {
		return nil, chainError{-1, err.Error()}
	}
	return e, nil
}

// checkPredecessor checks the new log's entry 0: a predecessor statement
// naming the old log (origin and verifier key) and carrying the handoff
// bundle, which must prove, with the old log's key, the very successor
// statement the auditor found in the old log, at a checkpoint of the
// audited old tree.
func (a *app) checkPredecessor(ctx context.Context, nl, ol *auditedLog, oldPub ed25519.PublicKey, link chainLink) error {
	if nl.cp.Size == 0 {
		return errors.New("the successor log is empty: its entry 0 must be the predecessor statement")
	}
	rec, err := provenRecord(ctx, nl, 0)
	if err != nil {
		return fmt.Errorf("entry 0 of %s: %w", nl.cp.Origin, err)
	}
	if rec.PayloadType != policy.PayloadType {
		return fmt.Errorf("entry 0 of %s has payload type %s, not a policy entry carrying the predecessor statement", nl.cp.Origin, rec.PayloadType)
	}
	env, err := fetchEnvelope(ctx, nl.src, rec)
	if err != nil {
		return fmt.Errorf("entry 0 of %s: envelope: %w", nl.cp.Origin, err)
	}
	var ps predecessorStatement
	if err := json.Unmarshal(env.Payload, &ps); err != nil || ps.Predecessor == nil {
		return fmt.Errorf("entry 0 of %s is not a predecessor statement ({\"provledger_log_predecessor\": …})", nl.cp.Origin)
	}
	p := ps.Predecessor
	oldVKey, err := checkpoint.VerifierKey(ol.cp.Origin, oldPub)
	if err != nil {
		return err
	}
	if p.Origin != ol.cp.Origin || p.VKey != oldVKey {
		return fmt.Errorf("entry 0 of %s names the predecessor %s (%s), not %s (%s)", nl.cp.Origin, p.Origin, p.VKey, ol.cp.Origin, oldVKey)
	}
	hb, err := base64.StdEncoding.DecodeString(p.HandoffBundle)
	if err != nil {
		return fmt.Errorf("entry 0 of %s: handoff_bundle is not base64: %v", nl.cp.Origin, err)
	}
	tp, err := tlogproof.Parse(hb)
	if err != nil {
		return fmt.Errorf("entry 0 of %s: handoff bundle: %v", nl.cp.Origin, err)
	}
	v, err := checkpoint.NewVerifier(ol.cp.Origin, oldPub)
	if err != nil {
		return err
	}
	_, hcp, err := client.VerifyProof(tp, v)
	if err != nil {
		return fmt.Errorf("entry 0 of %s: the handoff bundle does not verify with %s's key: %v", nl.cp.Origin, ol.cp.Origin, err)
	}
	leaf := proof.LeafHash(tp.Extra) // the record VerifyProof proved
	if tp.Index != link.Index || b64(leaf[:]) != link.Leaf {
		return fmt.Errorf("entry 0 of %s: the handoff bundle proves entry %d of %s, not its successor statement (entry %d)", nl.cp.Origin, tp.Index, ol.cp.Origin, link.Index)
	}
	// The bundle's checkpoint must be of the audited old tree.
	if hcp.Size > ol.cp.Size {
		return fmt.Errorf("the handoff bundle's checkpoint of %s has size %d, beyond the audited size %d", ol.cp.Origin, hcp.Size, ol.cp.Size)
	}
	rng, _, err := frontier(ctx, ol.src, ol.cp, hcp.Size)
	if err != nil {
		return fmt.Errorf("reading %s's tree at size %d: %w", ol.cp.Origin, hcp.Size, err)
	}
	if rootOf(rng) != hcp.Hash {
		return fmt.Errorf("the handoff bundle's checkpoint of %s (size %d) is not of the audited tree: the log forked", ol.cp.Origin, hcp.Size)
	}
	return nil
}

// provenRecord reads record i of an audited log from its entry bundle and
// checks it against the tree's leaf, read from tiles authenticated
// against the audited checkpoint.
func provenRecord(ctx context.Context, al *auditedLog, i uint64) (record.Record, error) {
	k := i / 256
	width := int(min(al.cp.Size-k*256, 256))
	b, err := al.src.EntryBundle(ctx, k, width)
	if err != nil {
		return record.Record{}, err
	}
	recs, err := splitBundle(b, width)
	if err != nil {
		return record.Record{}, err
	}
	raw := recs[i-k*256]
	hr := tlog.TileHashReader(tlog.Tree{N: int64(al.cp.Size), Hash: tlog.Hash(al.cp.Hash)}, tlogReader{ctx: ctx, src: al.src})
	hs, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, int64(i))})
	if err != nil {
		return record.Record{}, err
	}
	if leaf := proof.LeafHash(raw); !bytes.Equal(leaf[:], hs[0][:]) {
		return record.Record{}, fmt.Errorf("the record served is not the tree's entry %d", i)
	}
	return record.Unmarshal(raw)
}

// pubFromVKey returns the Ed25519 key of a C2SP note verifier key
// (name+keyid+base64(0x01 ‖ key)) named origin.
func pubFromVKey(vkey, origin string) (ed25519.PublicKey, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	if v.Name() != origin {
		return nil, fmt.Errorf("it names %q, not the successor's origin %q", v.Name(), origin)
	}
	// name+keyid+key: the name (checked above) has no '+'; the key may.
	_, rest, _ := strings.Cut(vkey, "+")
	_, key, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 1 {
		return nil, fmt.Errorf("not an Ed25519 note key")
	}
	pub := ed25519.PublicKey(raw[1:])
	if want, err := checkpoint.VerifierKey(origin, pub); err != nil || want != vkey {
		return nil, fmt.Errorf("not the canonical verifier key of %s", origin)
	}
	return pub, nil
}
