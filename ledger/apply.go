package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/transparency-dev/merkle/compact"

	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
)

// ApplyOptions control one Apply.
type ApplyOptions struct {
	// Sync makes the batch durable before Apply returns. The local sequencer
	// syncs; a Raft FSM need not, since the Raft log is the durable copy and
	// a replay is idempotent (see RaftIndex).
	Sync bool
	// RaftIndex, when non-zero, is stored with the batch. A batch whose
	// RaftIndex is not above the stored one was already applied and is
	// skipped, so replaying the Raft log after a crash is harmless.
	RaftIndex uint64
}

// Applied is the outcome of Apply.
type Applied struct {
	// Results has one element per entry of the batch, in order.
	Results []Result
	// Checkpoint is the signed checkpoint covering the batch (the previous
	// one when the batch added nothing).
	Checkpoint *Checkpoint
	// Skipped is set when the batch was not applied because its RaftIndex
	// was already applied; Results is then empty.
	Skipped bool
}

// Apply integrates a batch: it assigns indexes to the new entries in order,
// resolves duplicates to their first index, extends the tree, signs the
// checkpoint of the new size and commits all of it, together with the
// Indexer's writes, in one Pebble batch. An entry that fails validation gets
// Result.Err and no index; the rest of the batch proceeds. Apply is
// deterministic: the same sequence of batches yields the same records,
// leaves, tiles and checkpoints on every node.
//
// The integration time of the batch is b.Time, raised if needed so that it
// never goes below the previous entry's (times are monotonic in the log).
//
// If the commit fails, the log's in-memory state is rebuilt from storage and
// the error returned; nothing of the batch is visible.
func (l *Log) Apply(b Batch, o ApplyOptions) (*Applied, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	start := time.Now()
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	if l.closed.Load() {
		return nil, ErrClosed
	}
	if o.RaftIndex != 0 && o.RaftIndex <= l.applied.Load() {
		return &Applied{Checkpoint: l.latest.Load(), Skipped: true}, nil
	}
	t := max(b.Time.UnixMilli(), l.lastTime)
	pb := l.db.NewBatchWithSize(batchSizeHint(b.Entries))
	defer pb.Close()

	results, indexed, err := l.integrate(pb, b.Entries, t)
	if err != nil {
		l.rollback()
		return nil, err
	}
	cp := l.latest.Load()
	if len(indexed) > 0 {
		root, err := l.tree.GetRootHash(nil)
		if err != nil {
			l.rollback()
			return nil, fmt.Errorf("apply batch: root: %w", err)
		}
		if cp, err = l.sign(l.tree.End(), [32]byte(root)); err != nil {
			l.rollback()
			return nil, err
		}
		if err := pb.Set(u64Key(prefixCheckpoint, cp.Size), cp.Note, nil); err != nil {
			l.rollback()
			return nil, err
		}
		if l.opts.Indexer != nil {
			if err := l.opts.Indexer.IndexBatch(pb, indexed); err != nil {
				l.rollback()
				return nil, fmt.Errorf("apply batch: indexer: %w", err)
			}
		}
	}
	if o.RaftIndex != 0 {
		if err := pb.Set(keyAppliedIndex, u64Value(o.RaftIndex), nil); err != nil {
			l.rollback()
			return nil, err
		}
	}
	wo := pebble.NoSync
	if o.Sync {
		wo = pebble.Sync
	}
	commitStart := time.Now()
	if !pb.Empty() {
		if err := pb.Commit(wo); err != nil {
			l.rollback()
			return nil, fmt.Errorf("apply batch of %d entries: commit: %w", len(b.Entries), err)
		}
	}
	if len(indexed) > 0 {
		l.lastTime = t
	}
	if l.filter.full() {
		l.rebuildFilter()
	}
	if o.RaftIndex != 0 {
		l.applied.Store(o.RaftIndex)
	}
	l.latest.Store(cp)
	if obs := l.opts.Observer; obs != nil {
		now := time.Now()
		obs.BatchApplied(BatchStats{Entries: len(b.Entries), Added: len(indexed), Size: cp.Size, Apply: now.Sub(start), Commit: now.Sub(commitStart), Sync: o.Sync})
	}
	return &Applied{Results: results, Checkpoint: cp}, nil
}

// integrate adds the batch's entries to pb and to the in-memory tree.
func (l *Log) integrate(pb *pebble.Batch, entries []Entry, t int64) ([]Result, []IndexedEntry, error) {
	results := make([]Result, len(entries))
	var indexed []IndexedEntry
	var seen map[[32]byte]int
	touched := map[tileID]*tileNodes{}
	var visitErr error
	visit := func(id compact.NodeID, hash []byte) {
		tid, tn, err := l.cache.set(id.Level, id.Index, [32]byte(hash))
		if err != nil && visitErr == nil {
			visitErr = err
		}
		touched[tid] = tn
	}

	l.cacheMu.Lock()
	defer l.cacheMu.Unlock()
	for i := range entries {
		e := &entries[i]
		if err := e.Validate(l.opts.MaxEnvelopeSize); err != nil {
			results[i].Err = err
			continue
		}
		d := e.Digest()
		if j, ok := seen[d]; ok {
			results[i] = results[j]
			results[i].Duplicate = true
			continue
		}
		if l.filter.mayContain(d) {
			if dup, err := l.existing(d); err == nil {
				results[i] = dup
				continue
			} else if !errors.Is(err, ErrNotFound) {
				return nil, nil, fmt.Errorf("apply batch: dedup lookup: %w", err)
			}
		}
		rec := e.record(time.UnixMilli(t), d)
		raw := rec.AppendTo(make([]byte, 0, record.MaxEncodedSize))
		leaf := proof.LeafHash(raw)
		idx := l.tree.End()
		if err := l.tree.Append(leaf[:], visit); err != nil {
			return nil, nil, fmt.Errorf("apply batch: append leaf %d: %w", idx, err)
		}
		if visitErr != nil {
			return nil, nil, fmt.Errorf("apply batch: append leaf %d: %w", idx, visitErr)
		}
		env := make([]byte, 8, 8+len(e.Envelope))
		binary.BigEndian.PutUint64(env, idx)
		env = append(env, e.Envelope...)
		for _, kv := range [...]struct{ k, v []byte }{
			{u64Key(prefixRecord, idx), raw},
			{hashKey(prefixEnvelope, d), env},
			{hashKey(prefixLeaf, leaf), u64Value(idx)},
		} {
			if err := pb.Set(kv.k, kv.v, nil); err != nil {
				return nil, nil, err
			}
		}
		results[i] = Result{Index: idx, LeafHash: leaf, Record: raw}
		if seen == nil {
			seen = map[[32]byte]int{}
		}
		seen[d] = i
		l.filter.add(d)
		indexed = append(indexed, IndexedEntry{Index: idx, LeafHash: leaf, Record: rec, RawRecord: raw, Envelope: e.Envelope})
	}
	for id, tn := range touched {
		if err := pb.Set(tileKey(id.level, id.index), tn.encode(), nil); err != nil {
			return nil, nil, err
		}
	}
	return results, indexed, nil
}

// existing returns the result of the first append of envelope digest d.
func (l *Log) existing(d [32]byte) (Result, error) {
	v, err := l.get(hashKey(prefixEnvelope, d))
	if err != nil {
		return Result{}, err
	}
	if len(v) < 8 {
		return Result{}, fmt.Errorf("%w: envelope %x value has %d bytes", ErrCorrupt, d, len(v))
	}
	idx := beUint64(v[:8])
	raw, err := l.get(u64Key(prefixRecord, idx))
	if err != nil {
		return Result{}, fmt.Errorf("%w: dedup names index %d: %v", ErrCorrupt, idx, err)
	}
	return Result{Index: idx, LeafHash: proof.LeafHash(raw), Record: raw, Duplicate: true}, nil
}

// rollback rebuilds the in-memory tree from storage after a failed batch.
func (l *Log) rollback() {
	l.cacheMu.Lock()
	l.cache.reset()
	l.cacheMu.Unlock()
	cp := l.latest.Load()
	if err := l.rebuildTree(cp); err != nil {
		// The store itself is unreadable: refuse further writes.
		l.log.Error("cannot rebuild tree after failed batch; closing log", "err", err)
		l.closed.Store(true)
	}
}

// rebuildFilter replaces the dedup filter with one of twice the capacity.
// It runs inside Apply (appends wait for it): about a second per ten million
// entries, once per doubling of the log.
func (l *Log) rebuildFilter() {
	start := time.Now()
	f, err := buildDigestFilter(l.db, l.tree.End())
	if err != nil {
		l.log.Error("rebuild dedup filter; keeping the old one (more lookups, same results)", "err", err)
		return
	}
	l.filter = f
	l.log.Info("rebuilt dedup filter", "entries", f.n, "capacity", f.capacity, "took", time.Since(start))
}

func batchSizeHint(entries []Entry) int {
	n := 0
	for i := range entries {
		n += len(entries[i].Envelope) + 400
	}
	return n
}
