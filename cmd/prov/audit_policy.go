package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/crypto/record"
)

// prov audit --policy-from-log: the auditor folds the log's own policy
// entries (crypto/policy, the rule the node applies) and checks every
// entry's signers against the policy in force at its index. The log key is
// the only root of trust: it signed the first policy entry; every later one
// must be signed by an admin key of the policy before it. docs/audit.md.

// kindPolicy names an entry whose signers the policy in force at its
// index does not allow (a node that did not enforce it, or a tampered log).
const kindPolicy = "policy-violation"

// logPolicy is the policy in force at every index of one log, as its
// policy entries set it.
type logPolicy struct {
	logID    keys.KeyID
	versions []policyAt // honoured policy entries, by index
	chain    map[uint64]bool
	entries  int // policy entries read, honoured or not
	// keyring verifies signatures: the log key, the --trust keys and every
	// key a policy entry granted (whether a key may sign an entry is the
	// policy's decision, checked by check).
	keyring *keys.Keyring
}

type policyAt struct {
	index uint64
	state *policy.State
}

// at returns the policy in force for the entry at index i (nil: none).
func (lp *logPolicy) at(i uint64) *policy.State {
	n := sort.Search(len(lp.versions), func(k int) bool { return lp.versions[k].index >= i })
	if n == 0 {
		return nil
	}
	return lp.versions[n-1].state
}

// check judges entry i by the policy in force at i (policy.State.CheckEntry,
// as the node does at append); nil when allowed. Safe for concurrent use.
func (lp *logPolicy) check(i uint64, rec record.Record) *problem {
	st := lp.at(i)
	err := st.CheckEntry(rec.Namespace, rec.PayloadType, rec.Signers, []keys.KeyID{lp.logID}, func() bool { return lp.chain[i] })
	if err == nil {
		return nil
	}
	where := "no policy in force"
	if st.InForce() {
		where = fmt.Sprintf("policy in force from entry %d", st.Index())
	}
	return &problem{Index: int64(i), Kind: kindPolicy, Detail: fmt.Sprintf("namespace %q, payload type %s (%s): %v", rec.Namespace, rec.PayloadType, where, err)}
}

// isAdmin reports whether key id is an admin key of the policy in force at
// index i (who may sign a redaction at i, as the node's ledger asks).
func (lp *logPolicy) isAdmin(id keys.KeyID, i uint64) bool {
	g, ok := lp.at(i).Grant(id)
	return ok && g.Admin
}

// foldLogPolicy reads every record of the log up to cp's size (the tree
// is recomputed from them and must match the signed root, so what is
// folded is what the log signed), then the envelopes of its policy
// entries, and folds them with policy.State.Accept, the node's rule. It
// returns the problems found instead when the records do not match the
// tree, and an error when the log cannot be read.
func foldLogPolicy(ctx context.Context, src tileSource, workers int, cp checkpointRoot, logPub crypto.PublicKey, trust *keys.Keyring) (*logPolicy, []problem, error) {
	logID, err := keys.IDOf(logPub)
	if err != nil {
		return nil, nil, fmt.Errorf("--policy-from-log: log key: %w", err)
	}
	type polRec struct {
		i   uint64
		rec record.Record
	}
	var (
		mu   sync.Mutex
		recs []polRec
	)
	scan := &auditor{src: src, workers: workers, onRecord: func(i uint64, _ [32]byte, rec record.Record) {
		if rec.PayloadType == policy.PayloadType {
			mu.Lock()
			recs = append(recs, polRec{i, rec})
			mu.Unlock()
		}
	}}
	res := scan.replay(ctx, rangeFactory.NewEmptyRange(0), cp.size)
	if len(res.problems) > 0 {
		return nil, res.problems, nil
	}
	if res.fetchErr != nil || res.rng == nil {
		if res.fetchErr == nil {
			res.fetchErr = errors.New("incomplete read")
		}
		return nil, nil, fmt.Errorf("records to fold the policy: %w", res.fetchErr)
	}
	if root := rootOf(res.rng); root != cp.hash {
		return nil, []problem{{Index: -1, Kind: kindRootMismatch, Detail: fmt.Sprintf(
			"the records read to fold the log's policy hash to root %s, the signed checkpoint of size %d says %s", b64(root[:]), cp.size, b64(cp.hash[:]))}}, nil
	}
	sort.Slice(recs, func(a, b int) bool { return recs[a].i < recs[b].i })
	lp := &logPolicy{logID: logID, chain: map[uint64]bool{}, entries: len(recs), keyring: trust}
	if lp.keyring == nil {
		if lp.keyring, err = keys.NewKeyring(); err != nil {
			return nil, nil, err
		}
	}
	if _, err := lp.keyring.Add(logPub); err != nil {
		return nil, nil, fmt.Errorf("--policy-from-log: log key: %w", err)
	}
	var st *policy.State
	for _, pr := range recs {
		env, err := src.Envelope(ctx, pr.rec.EnvelopeDigest)
		switch {
		case errors.Is(err, errRedacted):
			env = nil // Accept says why it is ignored
		case err != nil:
			return nil, nil, fmt.Errorf("policy entry %d: envelope: %w", pr.i, err)
		case sha256.Sum256(env) != pr.rec.EnvelopeDigest:
			return nil, []problem{{Index: int64(pr.i), Kind: kindEnvelope, Detail: fmt.Sprintf("policy entry: the envelope served does not hash to the record's digest %x", pr.rec.EnvelopeDigest)}}, nil
		}
		lp.chain[pr.i] = env != nil && policy.IsChainEnvelope(env)
		signers := make([]keys.KeyID, len(pr.rec.Signers))
		for k, s := range pr.rec.Signers {
			signers[k] = s
		}
		p, err := st.Accept(env, pr.rec.Namespace, signers, []keys.KeyID{logID})
		if err != nil {
			continue // ignored by the node too; check() judges its signer
		}
		st = st.Apply(pr.i, p)
		lp.versions = append(lp.versions, policyAt{pr.i, st})
		for k := range p.Keys {
			if _, err := lp.keyring.Add(p.Keys[k].Public()); err != nil {
				return nil, nil, fmt.Errorf("policy entry %d: keys[%d]: %w", pr.i, k, err)
			}
		}
	}
	return lp, nil, nil
}

// checkpointRoot is what foldLogPolicy needs of a verified checkpoint.
type checkpointRoot struct {
	size uint64
	hash [32]byte
}
