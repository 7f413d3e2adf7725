package ledger

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/transparency-dev/merkle/compact"

	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger/redaction"
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
	p, err := l.stage(b, o, false)
	if err != nil {
		return nil, err
	}
	return l.finish(p)
}

// staged is a batch that stage integrated and handed to Pebble; finish
// makes it durable (if it was committed without waiting for the sync) and
// publishes its checkpoint.
type staged struct {
	applied *Applied
	// pb awaits its WAL sync (pipelined commits only); finish closes it.
	pb *pebble.Batch
	// for Options.Observer
	stats              BatchStats
	start, commitStart time.Time
}

// stage integrates b and commits it. With pipelined set (the local
// sequencer, o.Sync must be set too), the commit is handed to the WAL and
// stage returns without waiting for the sync, so the next batch can be
// integrated while this one syncs; finish must then be called for every
// staged batch, in order. Otherwise the commit completes (synced if o.Sync)
// before stage returns.
//
// A pipelined batch is in the memtable before it is durable, but nothing of
// it is served until finish publishes its checkpoint: reads stop at the
// latest published checkpoint's size. If a pipelined batch fails (its
// commit or sync, or the commit of a later batch staged on top of it) the
// log closes itself rather than roll back a tree that later batches built
// on; reopening recovers the last durable checkpoint.
func (l *Log) stage(b Batch, o ApplyOptions, pipelined bool) (*staged, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	if l.closed.Load() {
		return nil, ErrClosed
	}
	if o.RaftIndex != 0 && o.RaftIndex <= l.applied.Load() {
		return &staged{applied: &Applied{Checkpoint: l.staged, Skipped: true}}, nil
	}
	start := time.Now()
	fail := func(err error) (*staged, error) {
		if l.pending.Load() > 0 {
			l.breakLog(err)
		} else {
			l.rollback()
		}
		return nil, err
	}
	t := max(b.Time.UnixMilli(), l.lastTime)
	pb := l.db.NewBatchWithSize(batchSizeHint(b.Entries))
	keep := false // pb outlives stage (pipelined commit awaiting its sync)
	defer func() {
		if !keep {
			pb.Close()
		}
	}()

	var reds redactionBatch
	results, indexed, err := l.integrate(pb, b.Entries, t, &reds)
	if err != nil {
		return fail(err)
	}
	cp := l.staged
	if len(indexed) > 0 {
		root, err := l.tree.GetRootHash(nil)
		if err != nil {
			return fail(fmt.Errorf("apply batch: root: %w", err))
		}
		if cp, err = l.sign(l.tree.End(), [32]byte(root)); err != nil {
			return fail(err)
		}
		if err := pb.Set(u64Key(prefixCheckpoint, cp.Size), cp.Note, nil); err != nil {
			return fail(err)
		}
		if l.opts.Indexer != nil {
			if err := l.opts.Indexer.IndexBatch(pb, indexed); err != nil {
				return fail(fmt.Errorf("apply batch: indexer: %w", err))
			}
		}
		if err := l.applyRedactions(pb, &reds, indexed); err != nil {
			return fail(fmt.Errorf("apply batch: %w", err))
		}
	}
	if o.RaftIndex != 0 {
		if err := pb.Set(keyAppliedIndex, u64Value(o.RaftIndex), nil); err != nil {
			return fail(err)
		}
	}
	p := &staged{applied: &Applied{Results: results, Checkpoint: cp},
		stats: BatchStats{Entries: len(b.Entries), Added: len(indexed), Size: cp.Size, Sync: o.Sync}, start: start, commitStart: time.Now()}
	if !pb.Empty() {
		var err error
		switch {
		case pipelined && o.Sync:
			if err = l.db.ApplyNoSyncWait(pb, pebble.Sync); err == nil {
				keep = true
				p.pb = pb
				l.pending.Add(1)
			}
		case o.Sync:
			err = pb.Commit(pebble.Sync)
		default:
			err = pb.Commit(pebble.NoSync)
		}
		if err != nil {
			return fail(fmt.Errorf("apply batch of %d entries: commit: %w", len(b.Entries), err))
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
	l.staged = cp
	return p, nil
}

// finish waits for a pipelined batch's sync and publishes the batch's
// checkpoint. Batches are finished in the order they were staged.
func (l *Log) finish(p *staged) (*Applied, error) {
	if p.pb != nil {
		defer l.pending.Add(-1) // after publishing: stage rolls back only when nothing is pending
		err := p.pb.SyncWait()
		p.pb.Close()
		if err != nil {
			err = fmt.Errorf("apply batch: sync: %w", err)
			l.breakLog(err)
			return nil, err
		}
	}
	if err := l.broken.Load(); err != nil {
		// An earlier batch this one may depend on (its duplicates, its
		// tree) never became durable.
		return nil, fmt.Errorf("apply batch: %w (an earlier batch failed: %v)", ErrClosed, *err)
	}
	if !p.applied.Skipped {
		l.publish(p.applied.Checkpoint)
		if obs := l.opts.Observer; obs != nil {
			now := time.Now()
			p.stats.Apply, p.stats.Commit = now.Sub(p.start), now.Sub(p.commitStart)
			obs.BatchApplied(p.stats)
		}
	}
	return p.applied, nil
}

// publish makes cp the latest checkpoint unless a larger one already is.
func (l *Log) publish(cp *Checkpoint) {
	for {
		cur := l.latest.Load()
		if cur != nil && cur.Size > cp.Size {
			return
		}
		if l.latest.CompareAndSwap(cur, cp) {
			return
		}
	}
}

// breakLog closes the log for writes after a failed pipelined batch.
func (l *Log) breakLog(err error) {
	l.broken.CompareAndSwap(nil, &err)
	if !l.closed.Swap(true) {
		l.log.Error("a pipelined batch failed; the log refuses further writes (reopen it to recover the last durable checkpoint)", "err", err)
	}
}

// integrate adds the batch's entries to pb and to the in-memory tree.
func (l *Log) integrate(pb *pebble.Batch, entries []Entry, t int64, reds *redactionBatch) ([]Result, []IndexedEntry, error) {
	results := make([]Result, len(entries))
	var indexed []IndexedEntry
	var seen map[[32]byte]int
	digests := make([]hashedIndex, 0, len(entries))
	leaves := make([]hashedIndex, 0, len(entries))
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
	batchStart := l.tree.End()
	for i := range entries {
		e := &entries[i]
		if err := e.Validate(l.opts.MaxEnvelopeSize); err != nil {
			results[i].Err = err
			continue
		}
		// A redaction is checked before dedup: redacting twice is an
		// error, not the first redaction's index.
		var red *redaction.Payload
		if e.PayloadType == redaction.PayloadType {
			p, err := l.checkRedaction(e, l.tree.End(), batchStart, reds)
			if err != nil {
				results[i].Err = err
				continue
			}
			red = &p
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
		digests = append(digests, hashedIndex{d, idx})
		leaves = append(leaves, hashedIndex{leaf, idx})
		results[i] = Result{Index: idx, LeafHash: leaf, Record: raw}
		if seen == nil {
			seen = map[[32]byte]int{}
		}
		seen[d] = i
		l.filter.add(d)
		if red != nil {
			reds.add(idx, *red)
		}
		indexed = append(indexed, IndexedEntry{Index: idx, LeafHash: leaf, Record: rec, RawRecord: raw, Envelope: e.Envelope, Prepared: e.Prepared})
	}
	if err := writeEntries(pb, indexed, digests, leaves, touched); err != nil {
		return nil, nil, err
	}
	return results, indexed, nil
}

// hashedIndex is one `e` or `h` key of a batch: a hash and the index it
// names.
type hashedIndex struct {
	hash  [32]byte
	index uint64
}

// writeEntries adds the keys of a batch's new entries to pb grouped by
// prefix and in key order: the envelopes, the records, the digest and
// leaf-hash keys (sorted), then the touched tiles (sorted). Pebble inserts
// a batch into the memtable's skiplist in the order it was written,
// starting each search from the previous insert's position; in key order,
// consecutive `v` and `r` keys are neighbours and the search is short,
// where one entry's four keys in turn sent every insert back to the top of
// the skiplist (docs/ledger.md, "Batch key order").
func writeEntries(pb *pebble.Batch, indexed []IndexedEntry, digests, leaves []hashedIndex, touched map[tileID]*tileNodes) error {
	var kb [33]byte
	var vb [8]byte
	for i := range indexed {
		if err := pb.Set(u64KeyTo(kb[:0], prefixEnvelopeAt, indexed[i].Index), indexed[i].Envelope, nil); err != nil {
			return err
		}
	}
	for i := range indexed {
		if err := pb.Set(u64KeyTo(kb[:0], prefixRecord, indexed[i].Index), indexed[i].RawRecord, nil); err != nil {
			return err
		}
	}
	for _, g := range [...]struct {
		prefix byte
		keys   []hashedIndex
	}{{prefixEnvelope, digests}, {prefixLeaf, leaves}} {
		slices.SortFunc(g.keys, func(a, b hashedIndex) int { return bytes.Compare(a.hash[:], b.hash[:]) })
		for _, h := range g.keys {
			kb[0] = g.prefix
			copy(kb[1:], h.hash[:])
			binary.BigEndian.PutUint64(vb[:], h.index)
			if err := pb.Set(kb[:33], vb[:], nil); err != nil {
				return err
			}
		}
	}
	ids := make([]tileID, 0, len(touched))
	for id := range touched {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b tileID) int {
		if c := cmp.Compare(a.level, b.level); c != 0 {
			return c
		}
		return cmp.Compare(a.index, b.index)
	})
	for _, id := range ids {
		if err := pb.Set(tileKey(id.level, id.index), touched[id].encode(), nil); err != nil {
			return err
		}
	}
	return nil
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
	cp := l.staged // the last batch committed (and, as nothing is pending, synced)
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
