package graph

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/payload"
)

// Redact implements ledger.Redactor: in the redaction's Pebble batch, the
// index forgets what it derived from the redacted entries, so that it is
// the index of the log with their envelopes absent (as Attach would
// rebuild it).
//
//   - Per-entry facts (run facts, dataset version history, latest
//     versions, cost rows) are keyed by the entry's index: deleted.
//   - Nodes and edges are stored once, with the first entry that asserted
//     them. One first asserted by a redacted entry is kept only if a later
//     entry asserts it too, restamped with that entry's index and value
//     (edge attributes included); otherwise it is deleted.
//   - The entry is recorded as skipped (SkipRedacted), as a rebuild would.
//
// What a target asserted is recomputed by indexing it again, dry, into a
// scratch batch. Later asserters are searched for, in log order, among
// the entries that can name the key: for a run and the edges leaving it,
// the events of that run and of its child runs; for a dataset version,
// the events of the runs that read or wrote it and the DatasetEvents of
// its dataset; for a job (unless it has more than maxJobRuns runs) or a
// job version, the events of its runs and the job's JobEvents;
// for anything else (datasets, columns, tags) every lineage entry after
// the target, until each such key is found again. docs/query.md, "Redaction", has the cost.
//
// One thing is not undone: a later entry that read a dataset without
// naming a version had it resolved to the latest completed version below
// it, possibly one a redacted entry wrote; that edge is the later entry's
// own assertion and stays.
func (ix *Indexer) Redact(b *pebble.Batch, r *ledger.Redactions) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.db == nil {
		return errors.New("query index: not attached to its log; call Attach after ledger.Open")
	}
	if len(r.Targets) == 0 {
		return nil
	}
	// Whatever happens, the in-memory views of the store are now stale:
	// the key filter rebuilds on the next batch, and cached adjacency
	// lists go (lists read before the commit cannot come back: the cache
	// refuses lists older than its start).
	ix.filter = nil
	if ix.adj != nil {
		ix.adj.reset(r.End())
	}
	d := newDryRunner(ix)
	pending := map[string]struct{}{} // node and edge keys first asserted by a target
	for i := range r.Targets {
		t := &r.Targets[i].IndexedEntry
		kv, err := d.assertions(t)
		if err != nil {
			return fmt.Errorf("query index: redact entry %d: %w", t.Index, err)
		}
		for k := range kv {
			key := []byte(k)
			switch key[1] {
			case tagNode, tagOut, tagIn:
				first, ok, err := ix.firstAsserter(key)
				if err != nil {
					return fmt.Errorf("query index: redact entry %d: %w", t.Index, err)
				}
				if ok && r.IsTarget(first) {
					pending[k] = struct{}{}
				}
			default:
				// Keyed by the target's own index.
				if err := b.Delete(key, nil); err != nil {
					return err
				}
			}
		}
		if indexed(t.Record.PayloadType) {
			if err := b.Set(skipKey(t.Index), append([]byte{SkipRedacted}, "the envelope was redacted"...), nil); err != nil {
				return err
			}
		}
	}
	found, err := ix.laterAsserters(d, r, pending)
	if err != nil {
		return fmt.Errorf("query index: redact: %w", err)
	}
	for k := range pending {
		if v, ok := found[k]; ok {
			if err := b.Set([]byte(k), v, nil); err != nil {
				return err
			}
			continue
		}
		if err := b.Delete([]byte(k), nil); err != nil {
			return err
		}
	}
	ix.log.Info("lineage index: forgot redacted entries", "entries", len(r.Targets), "nodes_and_edges_deleted", len(pending)-len(found), "restamped", len(found))
	return nil
}

// firstAsserter returns the index stored with a node or edge key.
func (ix *Indexer) firstAsserter(key []byte) (uint64, bool, error) {
	v, closer, err := ix.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %x: %w", key, err)
	}
	defer closer.Close()
	if len(v) < 8 {
		return 0, false, fmt.Errorf("key %x: value has %d bytes", key, len(v))
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// laterAsserters finds, for each pending key, the first entry that is
// not a target and asserts it; it returns that entry's value for the key.
// Keys whose possible asserters the stored graph names (runs, dataset
// versions) are looked for among those; the others by a scan of the
// lineage entries after the first target, which stops once each is found.
func (ix *Indexer) laterAsserters(d *dryRunner, r *ledger.Redactions, pending map[string]struct{}) (map[string][]byte, error) {
	found := map[string][]byte{}
	exact, scan := map[string]struct{}{}, map[string]struct{}{}
	for k := range pending {
		subject, ok := subjectOf([]byte(k))
		if ok && subject.Kind() == Job {
			// A job with very many runs is found again sooner by the scan.
			n, err := ix.countAdjacent(tagIn, subject, RunOf, maxJobRuns+1)
			if err != nil {
				return nil, err
			}
			ok = n <= maxJobRuns
		}
		if ok {
			exact[k] = struct{}{}
		} else {
			scan[k] = struct{}{}
		}
	}
	// check dry-runs e and resolves the keys of left it asserts; it
	// reports whether keys are left.
	check := func(left map[string]struct{}) func(ledger.IndexedEntry) (bool, error) {
		return func(e ledger.IndexedEntry) (bool, error) {
			if r.IsTarget(e.Index) || e.Envelope == nil {
				return len(left) > 0, nil
			}
			kv, err := d.assertions(&e)
			if err != nil {
				return false, fmt.Errorf("entry %d: %w", e.Index, err)
			}
			for k := range left {
				if v, ok := kv[k]; ok {
					found[k] = v
					delete(left, k)
				}
			}
			return len(left) > 0, nil
		}
	}
	from := r.Targets[0].Index
	for _, t := range r.Targets {
		from = min(from, t.Index)
	}
	lineage := func(rec record.Record) bool { return indexed(rec.PayloadType) }
	if len(exact) > 0 {
		cands, err := ix.candidates(exact, from)
		if err != nil {
			return nil, err
		}
		// The stored candidates are all below the batch; the batch's own
		// entries are not in the stored index yet, so each is a
		// candidate too (they come last in log order).
		more, fn := true, check(exact)
		for _, i := range cands {
			if i >= r.BatchStart() || !more {
				break
			}
			e, err := r.Entry(i)
			if err != nil {
				return nil, err
			}
			if more, err = fn(e); err != nil {
				return nil, err
			}
		}
		if more {
			if err := r.EntriesAfter(r.BatchStart()-1, lineage, fn); err != nil {
				return nil, err
			}
		}
	}
	if len(scan) > 0 {
		if err := r.EntriesAfter(from, lineage, check(scan)); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// maxJobRuns bounds the runs of a job whose events are searched for the
// job's keys; a job with more is left to the scan.
const maxJobRuns = 4096

// subjectOf returns the node a node or edge key is about (an edge's
// source), when the stored graph names the entries that can assert it:
// a run, a dataset version, a job or a job version.
func subjectOf(key []byte) (ID, bool) {
	var subject ID
	switch key[1] {
	case tagNode, tagOut:
		copy(subject[:], key[2:2+IDSize])
	case tagIn: // qr <dst> <rel> <src>: the assertion's subject is src
		copy(subject[:], key[2+IDSize+1:])
	default:
		return subject, false
	}
	k := subject.Kind()
	return subject, k == Run || k == DatasetVersion || k == Job || k == JobVersion
}

// countAdjacent counts id's edges of relation rel in direction tag, up to
// limit.
func (ix *Indexer) countAdjacent(tag byte, id ID, rel Rel, limit int) (int, error) {
	p := adjPrefix(tag, id, rel)
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok && n < limit; ok = it.Next() {
		n++
	}
	return n, it.Error()
}

// candidates returns, in index order, the stored entries above from that
// can assert the pending keys (each about a run, a dataset version, a job
// or a job version, see subjectOf).
func (ix *Indexer) candidates(pending map[string]struct{}, from uint64) ([]uint64, error) {
	runs := map[ID]struct{}{}
	// statics holds the jobs and datasets whose static events (JobEvent,
	// DatasetEvent) can assert a pending key.
	statics := map[ID]struct{}{}
	for k := range pending {
		subject, _ := subjectOf([]byte(k))
		switch subject.Kind() {
		case Run:
			// Named by its own events and by its children's (as parent).
			runs[subject] = struct{}{}
			if err := ix.neighbours(tagIn, subject, ParentRun, runs); err != nil {
				return nil, err
			}
		case DatasetVersion:
			// Named by the events of the runs that read or wrote it,
			// and by DatasetEvents of its dataset.
			for _, rel := range []Rel{Read, Wrote} {
				if err := ix.neighbours(tagIn, subject, rel, runs); err != nil {
					return nil, err
				}
			}
			if err := ix.neighbours(tagOut, subject, VersionOf, statics); err != nil {
				return nil, err
			}
		case JobVersion:
			// Named by the events of the runs that ran it, and by
			// JobEvents of its job.
			if err := ix.neighbours(tagIn, subject, RanCode, runs); err != nil {
				return nil, err
			}
			if err := ix.neighbours(tagOut, subject, VersionOf, statics); err != nil {
				return nil, err
			}
		case Job:
			// Named by the events of its runs, and by their children's
			// (as the parent's job), and by its JobEvents.
			own := map[ID]struct{}{}
			if err := ix.neighbours(tagIn, subject, RunOf, own); err != nil {
				return nil, err
			}
			for r := range own {
				runs[r] = struct{}{}
				if err := ix.neighbours(tagIn, r, ParentRun, runs); err != nil {
					return nil, err
				}
			}
			statics[subject] = struct{}{}
		}
	}
	var out []uint64
	var err error
	for run := range runs {
		if out, err = ix.appendIndexes(out, tagRun, run, from); err != nil {
			return nil, fmt.Errorf("read events of run %x: %w", run, err)
		}
	}
	for n := range statics {
		if out, err = ix.appendIndexes(out, tagStatic, n, from); err != nil {
			return nil, fmt.Errorf("read static events of %x: %w", n, err)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// appendIndexes appends the entry indexes above from of id's keys
// <tag> <id> <idx> (the events of a run, the static events of a job or
// dataset).
func (ix *Indexer) appendIndexes(out []uint64, tag byte, id ID, from uint64) ([]uint64, error) {
	p := idPrefix(tag, id)
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: idxKey(tag, id, from+1), UpperBound: prefixEnd(p)})
	if err != nil {
		return out, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, binary.BigEndian.Uint64(it.Key()[len(p):]))
	}
	return out, it.Error()
}

// neighbours adds to set the far ends of id's edges of relation rel in
// direction tag.
func (ix *Indexer) neighbours(tag byte, id ID, rel Rel, set map[ID]struct{}) error {
	p := adjPrefix(tag, id, rel)
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		var other ID
		copy(other[:], it.Key()[len(p):])
		set[other] = struct{}{}
	}
	return it.Error()
}

// dryRunner indexes single entries into a scratch batch to learn which
// keys (and values) indexing them writes.
type dryRunner struct {
	ix     *Indexer
	filter *keyFilter
}

func newDryRunner(ix *Indexer) *dryRunner {
	return &dryRunner{ix: ix, filter: newKeyFilter(0)}
}

// assertions returns every key indexing e writes, with its value, as it
// was when e was indexed: version-less reads resolve to the latest
// completed version below e.
func (d *dryRunner) assertions(e *ledger.IndexedEntry) (map[string][]byte, error) {
	// An empty filter: every node and edge counts as new, so each is
	// written.
	clear(d.filter.bits)
	clear(d.filter.known)
	clear(d.filter.latest)
	d.filter.n = 0
	if err := d.resolveReads(e); err != nil {
		return nil, err
	}
	sb := d.ix.db.NewBatch()
	defer sb.Close()
	w := &writer{db: d.ix.db, b: sb, seen: map[string]struct{}{}, latest: map[ID]string{}, names: map[ID][]byte{}, filter: d.filter}
	err := w.entry(e, d.ix.opts.Limits)
	w.close()
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	rd := sb.Reader()
	for {
		_, k, v, ok, err := rd.Next()
		if err != nil {
			return nil, fmt.Errorf("read scratch batch: %w", err)
		}
		if !ok {
			break
		}
		out[string(k)] = bytes.Clone(v)
	}
	return out, nil
}

// resolveReads fills the filter's latest versions of the datasets e reads
// without a version with the latest completed version below e.
func (d *dryRunner) resolveReads(e *ledger.IndexedEntry) error {
	t := e.Record.PayloadType
	if e.Envelope == nil || (t != payload.TypeOpenLineage && t != payload.TypeInToto) {
		return nil
	}
	env, err := envelope.Parse(e.Envelope)
	if err != nil {
		return nil // indexed as skipped: nothing to resolve
	}
	p, err := payload.Parse(t, env.Payload, d.ix.opts.Limits)
	if err != nil || p.Event == nil {
		return nil
	}
	for _, in := range p.Event.Inputs {
		if in.Version != "" {
			continue
		}
		ds := NodeID(Dataset, in.Namespace, in.Name)
		v, err := d.ix.latestBelow(ds, e.Index)
		if err != nil {
			return err
		}
		d.filter.latest[ds] = v
	}
	return nil
}

// latestBelow is dataset ds's latest completed version written below
// index i, or "".
func (ix *Indexer) latestBelow(ds ID, i uint64) (string, error) {
	p := idPrefix(tagLatest, ds)
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: idxKey(tagLatest, ds, i)})
	if err != nil {
		return "", err
	}
	defer it.Close()
	if !it.Last() {
		return "", it.Error()
	}
	return string(it.Value()), nil
}
