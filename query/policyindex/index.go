// Package policyindex keeps the policy in force at every index of a log:
// it finds the policy entries (crypto/policy.PayloadType) as the log
// integrates them, decides which are honoured, and folds those into
// crypto/policy States. It implements ledger.Indexer, so what it writes
// commits in the same Pebble batch as the entries: a node restarts with the
// policy in force, and anyone can ask for the policy at any index (At).
//
// A policy entry is honoured when its payload parses and it is signed by
// an admin key of the policy in force before it; the first one, when no
// policy is in force yet, must be signed by one of Options.Bootstrap (the
// log key: provd writes the bootstrap policy, provd --policy, signed with
// it). Other policy entries are recorded as ignored, with the reason. The
// decision uses only the log's content and Options.Bootstrap, so every
// replica, and every auditor, folds the same States.
package policyindex

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
)

// ErrNotAttached: the index was used before Attach.
var ErrNotAttached = errors.New("policyindex: not attached to a log (call Attach after ledger.Open)")

// Options configure an Index.
type Options struct {
	// Bootstrap are the keys that may sign the first policy entry (the
	// log key). Empty: no policy entry is ever honoured.
	Bootstrap []keys.KeyID
	// Next, if set, is the log's other indexer (the lineage graph): it
	// indexes every batch first, in the same Pebble batch.
	Next ledger.Indexer
	// Keyring, if set, gets every key an honoured policy entry grants (at
	// Attach and as entries are indexed), so the append path can verify
	// signatures by keys that only the policy lists. A keyring never
	// forgets a key; whether the key may sign is the policy's decision
	// (policy.State.Allows).
	Keyring *keys.Keyring
	// Logger receives the index's logs. Default slog.Default().
	Logger *slog.Logger
}

// Entry is one policy entry of the log as the index judged it.
type Entry struct {
	// Index is the entry's log index.
	Index uint64 `json:"index"`
	// Namespace is the entry's namespace.
	Namespace string `json:"namespace"`
	// Signers are the hex key ids of the entry's signers.
	Signers []string `json:"signers"`
	// Honoured reports whether the entry changed the policy; Reason says
	// why not.
	Honoured bool   `json:"honoured"`
	Reason   string `json:"reason,omitempty"`
	// Payload is the entry's payload (canonical policy JSON when
	// honoured).
	Payload []byte `json:"payload,omitempty"`
}

// version is the policy in force from index+1 on.
type version struct {
	index uint64
	state *policy.State
}

// Index is the policy index of one log. It is safe for concurrent use:
// readers never block the log.
type Index struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex // serializes IndexBatch and Attach
	l  *ledger.Log
	// attached is l, for Current without the lock.
	attached atomic.Pointer[ledger.Log]

	// next is the index of the next entry the in-memory state expects;
	// a log that moved past it without IndexBatch (a Raft snapshot
	// restored into it) makes the index reload from Pebble.
	next     atomic.Uint64
	versions atomic.Pointer[[]version] // honoured entries, by index; copy on write
	entries  atomic.Pointer[[]Entry]   // every policy entry, by index
	changed  atomic.Pointer[chan struct{}]
}

// New returns an Index; pass it (it chains Options.Next) as
// ledger.Options.Indexer, then call Attach with the opened log.
func New(o Options) *Index {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	x := &Index{opts: o, log: o.Logger.With("component", "policy-index")}
	x.versions.Store(&[]version{})
	x.entries.Store(&[]Entry{})
	ch := make(chan struct{})
	x.changed.Store(&ch)
	return x
}

// Unwrap returns Options.Next (the lineage indexer), so code looking for
// it finds it behind the policy index.
func (x *Index) Unwrap() ledger.Indexer { return x.opts.Next }

// Attach binds the index to its log: it loads the policy entries indexed
// before and indexes the entries the index does not have yet (a log that
// predates the index). Call it after ledger.Open, before appending.
func (x *Index) Attach(l *ledger.Log) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.l = l
	x.attached.Store(l)
	db := l.DB()
	next, err := x.load()
	if err != nil {
		return err
	}
	size := l.Latest().Size
	if next < size {
		x.log.Info("indexing policy entries the index does not have", "from", next, "to", size)
	}
	for next < size {
		end := min(next+4096, size)
		b := db.NewBatch()
		err := x.catchUp(b, next, end)
		if err == nil {
			err = b.Commit(pebble.Sync)
		}
		b.Close()
		if err != nil {
			return fmt.Errorf("policyindex: catch up at entry %d: %w", next, err)
		}
		next = end
	}
	return nil
}

// load reads the policy entries and the cursor from Pebble into memory
// (x.mu held) and returns the cursor.
func (x *Index) load() (uint64, error) {
	db := x.l.DB()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix, tag, tagEntry}, UpperBound: []byte{prefix, tag, tagEntry + 1}})
	if err != nil {
		return 0, fmt.Errorf("policyindex: load: %w", err)
	}
	var loaded []Entry
	for ok := it.First(); ok; ok = it.Next() {
		e, err := decodeEntry(it.Key(), it.Value())
		if err != nil {
			it.Close()
			return 0, err
		}
		loaded = append(loaded, e)
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("policyindex: load: %w", err)
	}
	next, err := readCursor(db)
	if err != nil {
		return 0, err
	}
	// Entries at or past the cursor belong to a batch that did not
	// commit with its cursor; they are indexed again below.
	loaded = slices.DeleteFunc(loaded, func(e Entry) bool { return e.Index >= next })
	var vs []version
	var st *policy.State
	for _, e := range loaded {
		if !e.Honoured {
			continue
		}
		p, err := policy.ParseJSON(e.Payload)
		if err != nil {
			return 0, fmt.Errorf("policyindex: stored policy entry %d no longer parses (%v); rebuild the index", e.Index, err)
		}
		st = st.Apply(e.Index, p)
		vs = append(vs, version{e.Index, st})
		x.trust(p)
	}
	x.entries.Store(&loaded)
	x.versions.Store(&vs)
	x.next.Store(next)
	return next, nil
}

// reload reloads the in-memory state if the log moved past it without
// IndexBatch (a restored Raft snapshot replaced the store). x.mu held.
func (x *Index) reload() error {
	if x.l == nil || x.l.Latest().Size <= x.next.Load() {
		return nil
	}
	x.log.Info("the log moved past the policy index's memory (snapshot restored); reloading it", "from", x.next.Load(), "size", x.l.Latest().Size)
	_, err := x.load()
	return err
}

// catchUp indexes the log's entries [start, end) into b.
func (x *Index) catchUp(b *pebble.Batch, start, end uint64) error {
	var batch []ledger.IndexedEntry
	err := x.l.Records(start, end, func(i uint64, raw []byte) error {
		rec, err := record.Unmarshal(raw)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		e := ledger.IndexedEntry{Index: i, LeafHash: proof.LeafHash(raw), Record: rec}
		if rec.PayloadType == policy.PayloadType {
			env, err := x.l.Envelope(rec.EnvelopeDigest)
			if err != nil && !errors.Is(err, ledger.ErrRedacted) {
				return fmt.Errorf("envelope of entry %d: %w", i, err)
			}
			e.Envelope = env
		}
		batch = append(batch, e)
		return nil
	})
	if err != nil {
		return err
	}
	return x.index(b, batch, end)
}

// IndexBatch implements ledger.Indexer: Options.Next first, then the
// policy entries of the batch.
func (x *Index) IndexBatch(b *pebble.Batch, entries []ledger.IndexedEntry) error {
	if x.opts.Next != nil {
		if err := x.opts.Next.IndexBatch(b, entries); err != nil {
			return err
		}
	}
	if len(entries) == 0 {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.l == nil {
		return ErrNotAttached
	}
	if first := entries[0].Index; first > x.next.Load() {
		// The store was replaced under us (a Raft snapshot): reload, and
		// index what the stored index lacks below this batch.
		next, err := x.load()
		if err != nil {
			return err
		}
		if next < first {
			if err := x.catchUp(b, next, first); err != nil {
				return err
			}
		}
	}
	return x.index(b, entries, entries[len(entries)-1].Index+1)
}

// index judges the policy entries among entries (consecutive, in order),
// writes them and the cursor next into b, and publishes the new States.
func (x *Index) index(b *pebble.Batch, entries []ledger.IndexedEntry, next uint64) error {
	if err := b.Set(cursorKey, u64(next), nil); err != nil {
		return err
	}
	defer x.next.Store(next)
	first := next
	if len(entries) > 0 {
		first = entries[0].Index
	}
	// The common batch: no policy entry, nothing to drop. Only the cursor.
	if !slices.ContainsFunc(entries, func(e ledger.IndexedEntry) bool { return e.Record.PayloadType == policy.PayloadType }) {
		vs, es := *x.versions.Load(), *x.entries.Load()
		if (len(vs) == 0 || vs[len(vs)-1].index < first) && (len(es) == 0 || es[len(es)-1].Index < first) {
			return nil
		}
	}
	// A batch that failed to commit may have left States for indexes that
	// are being indexed again: drop them.
	vs := slices.Clone(*x.versions.Load())
	vs = slices.DeleteFunc(vs, func(v version) bool { return v.index >= first })
	es := slices.Clone(*x.entries.Load())
	es = slices.DeleteFunc(es, func(e Entry) bool { return e.Index >= first })
	added := false
	for i := range entries {
		ie := &entries[i]
		if ie.Record.PayloadType != policy.PayloadType {
			continue
		}
		var cur *policy.State
		if len(vs) > 0 {
			cur = vs[len(vs)-1].state
		}
		e, p := x.judge(cur, ie)
		val, err := encodeEntry(e)
		if err != nil {
			return err
		}
		if err := b.Set(entryKey(e.Index), val, nil); err != nil {
			return err
		}
		es = append(es, e)
		if p != nil {
			vs = append(vs, version{e.Index, cur.Apply(e.Index, p)})
			x.trust(p)
			x.log.Info("policy entry honoured", "index", e.Index, "namespace", e.Namespace)
		} else {
			x.log.Warn("policy entry ignored", "index", e.Index, "reason", e.Reason)
		}
		added = true
	}
	if added || len(vs) != len(*x.versions.Load()) {
		x.entries.Store(&es)
		x.versions.Store(&vs)
		ch := make(chan struct{})
		close(*x.changed.Swap(&ch))
	}
	return nil
}

// trust adds the keys p grants to Options.Keyring.
func (x *Index) trust(p *policy.Policy) {
	if x.opts.Keyring == nil {
		return
	}
	for i := range p.Keys {
		if _, err := x.opts.Keyring.Add(p.Keys[i].Public()); err != nil {
			x.log.Warn("a key the policy grants cannot verify signatures", "key_id", p.Keys[i].ID().String(), "err", err)
		}
	}
}

// judge decides whether a policy entry is honoured under cur (the rule
// is policy.State.Accept), returning its parsed policy when it is.
func (x *Index) judge(cur *policy.State, ie *ledger.IndexedEntry) (Entry, *policy.Policy) {
	e := Entry{Index: ie.Index, Namespace: ie.Record.Namespace}
	signers := make([]keys.KeyID, len(ie.Record.Signers))
	for i, s := range ie.Record.Signers {
		signers[i] = s
		e.Signers = append(e.Signers, keys.KeyID(s).String())
	}
	p, err := cur.Accept(ie.Envelope, e.Namespace, signers, x.opts.Bootstrap)
	if err != nil {
		e.Reason = err.Error()
		return e, nil
	}
	canon, err := p.Marshal()
	if err != nil {
		e.Reason = err.Error()
		return e, nil
	}
	e.Payload = canon
	e.Honoured = true
	return e, p
}

// At returns the policy in force for the entry at index: the fold of the
// honoured policy entries below index (nil State: no policy in force).
func (x *Index) At(index uint64) *policy.State {
	vs := *x.versions.Load()
	i := sort.Search(len(vs), func(i int) bool { return vs[i].index >= index })
	if i == 0 {
		return nil
	}
	return vs[i-1].state
}

// Current returns the policy in force for the next entry of the log: the
// fold of the honoured policy entries below the latest checkpoint's size.
func (x *Index) Current() *policy.State {
	l := x.attached.Load()
	if l == nil {
		return nil
	}
	size := l.Latest().Size
	if size > x.next.Load() {
		x.mu.Lock()
		err := x.reload()
		x.mu.Unlock()
		if err != nil {
			x.log.Error("policy index: reload", "err", err)
		}
	}
	if len(*x.versions.Load()) == 0 {
		return nil // no policy entry honoured: nothing to look up
	}
	return x.At(size)
}

// Changed returns a channel closed at the next change of the policy
// entries the index holds.
func (x *Index) Changed() <-chan struct{} { return *x.changed.Load() }

// Entries returns the policy entries with index in [from, to), honoured or
// not, in index order.
func (x *Index) Entries(from, to uint64) []Entry {
	es := *x.entries.Load()
	var out []Entry
	for _, e := range es {
		if e.Index >= from && e.Index < to {
			e.Payload = bytes.Clone(e.Payload)
			out = append(out, e)
		}
	}
	return out
}

// IsAdmin implements ledger.AdminKeys: whether the policy in force at
// index grants key id with admin: true (and has not revoked it). Every
// replica answers the same, from the log's content.
func (x *Index) IsAdmin(id [32]byte, index uint64) bool {
	g, ok := x.At(index).Grant(id)
	return ok && g.Admin
}
