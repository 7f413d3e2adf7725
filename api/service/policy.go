package service

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/ledger"
)

// PolicySource gives the policy in force for the next entry of the log;
// query/policyindex.Index implements it.
type PolicySource interface {
	Current() *policy.State
}

// PolicySequencer enforces the policy in force (crypto/policy) at append
// and keeps "the policy in force at each index" exact. Wrap the node's
// sequencer in it and pass it as Config.Sequencer:
//
//   - An entry whose signers the policy does not allow for its namespace
//     and payload type is refused with PermissionDenied naming the key, the
//     namespace, the type and the policy entry (Check, called by the
//     service's check of every append, so a refused entry costs no
//     sequencing).
//   - A policy entry must be signed by an admin key of the policy in force;
//     while none is in force, policy entries are refused (the first policy
//     is the node's bootstrap file, provd --policy).
//   - Race: an entry checked under policy P could otherwise be sequenced
//     after a policy entry Q that revokes its key. Submit therefore
//     sequences every policy entry alone, holding a write lock while it
//     commits, and other entries under a read lock, re-checked against
//     the policy in force once the lock is held. So no entry is sequenced
//     while a policy entry is in flight, and every entry is checked
//     against exactly the policy in force at its index.
//
// In a cluster every node's service runs this; appends reach the leader's
// service (forwarded appends go through the leader's AppendBatch), whose
// check is the one that counts. docs/security.md has the details.
type PolicySequencer struct {
	next      ledger.Sequencer
	src       PolicySource
	bootstrap []keys.KeyID
	mu        sync.RWMutex
}

// NewPolicySequencer returns next with the policy of src enforced.
// bootstrap are the keys that may sign the first policy entry while no
// policy is in force (the log key: the node writes the bootstrap policy,
// provd --policy, and in a cluster a follower forwards it to the leader).
func NewPolicySequencer(next ledger.Sequencer, src PolicySource, bootstrap ...keys.KeyID) *PolicySequencer {
	return &PolicySequencer{next: next, src: src, bootstrap: slices.Clone(bootstrap)}
}

// Unwrap returns the wrapped sequencer.
func (p *PolicySequencer) Unwrap() ledger.Sequencer { return p.next }

// ReadFence implements ReadFencer by the wrapped sequencer's fence (none on
// a single node, which is always linearizable).
func (p *PolicySequencer) ReadFence(ctx context.Context) error {
	if f, ok := p.next.(ReadFencer); ok {
		return f.ReadFence(ctx)
	}
	return nil
}

// Check reports whether the policy in force allows e: nil, or a
// PermissionDenied status that says what the policy refuses and why.
func (p *PolicySequencer) Check(e *ledger.Entry) error {
	return p.checkPolicy(p.src.Current(), e)
}

func (p *PolicySequencer) checkPolicy(st *policy.State, e *ledger.Entry) error {
	err := st.CheckEntry(e.Namespace, e.PayloadType, e.Signers, p.bootstrap, func() bool { return policy.IsChainEnvelope(e.Envelope) })
	switch {
	case err == nil:
		return nil
	case e.PayloadType == policy.PayloadType:
		return status.Errorf(codes.PermissionDenied, "%v", err)
	}
	return status.Errorf(codes.PermissionDenied, "%v; ask a policy admin to grant it (prov policy apply)", err)
}

// Submit implements ledger.Sequencer: runs of ordinary entries are
// re-checked and sequenced together under the read lock, each policy
// entry alone under the write lock. A refused entry gets a receipt whose
// Err is a PermissionDenied status; the others are sequenced.
func (p *PolicySequencer) Submit(ctx context.Context, entries []ledger.Entry) ([]ledger.Receipt, error) {
	if len(entries) > 0 && !slices.ContainsFunc(entries, func(e ledger.Entry) bool { return e.PayloadType == policy.PayloadType }) {
		return p.submitRun(ctx, entries) // no policy entry: one run
	}
	out := make([]ledger.Receipt, 0, len(entries))
	for start := 0; start < len(entries); {
		end := start
		if entries[start].PayloadType == policy.PayloadType {
			end = start + 1
		} else {
			for end < len(entries) && entries[end].PayloadType != policy.PayloadType {
				end++
			}
		}
		rs, err := p.submitRun(ctx, entries[start:end])
		if err != nil {
			if start == 0 {
				return nil, err
			}
			// Earlier runs are committed: report the failure per entry.
			for range entries[start:] {
				out = append(out, ledger.Receipt{Result: ledger.Result{Err: err}})
			}
			return out, nil
		}
		out = append(out, rs...)
		start = end
	}
	return out, nil
}

// submitRun sequences one policy entry, or a run of ordinary entries.
func (p *PolicySequencer) submitRun(ctx context.Context, run []ledger.Entry) ([]ledger.Receipt, error) {
	if run[0].PayloadType == policy.PayloadType {
		p.mu.Lock()
		defer p.mu.Unlock()
	} else {
		p.mu.RLock()
		defer p.mu.RUnlock()
	}
	st := p.src.Current()
	refused := -1 // the first refused entry
	var firstErr error
	for i := range run {
		if err := p.checkPolicy(st, &run[i]); err != nil {
			refused, firstErr = i, err
			break
		}
	}
	if refused < 0 { // the common case: all allowed, nothing to copy
		return p.next.Submit(ctx, run)
	}
	rs := make([]ledger.Receipt, len(run))
	ok := make([]ledger.Entry, 0, len(run))
	pos := make([]int, 0, len(run))
	for i := range run {
		err := firstErr
		if i != refused {
			err = nil
			if i > refused {
				err = p.checkPolicy(st, &run[i])
			}
		}
		if err != nil {
			rs[i].Err = err
			continue
		}
		ok = append(ok, run[i])
		pos = append(pos, i)
	}
	if len(ok) == 0 {
		return rs, nil
	}
	got, err := p.next.Submit(ctx, ok)
	if err != nil {
		return nil, err
	}
	if len(got) != len(ok) {
		return nil, fmt.Errorf("policy sequencer: %d receipts for %d entries", len(got), len(ok))
	}
	for j, i := range pos {
		rs[i] = got[j]
	}
	return rs, nil
}

// checkPolicyHook is the policy check of one append (check() calls it):
// with a PolicySequencer as the service's sequencer, the policy in force
// must allow the entry.
func (s *Service) checkPolicyHook(e *ledger.Entry) error {
	if p, ok := s.seq.(*PolicySequencer); ok {
		return p.Check(e)
	}
	return nil
}
