// Package graph is the lineage graph index: a ledger.Indexer that turns
// OpenLineage run events, in-toto SLSA provenance and FOCUS cost records
// into nodes and edges in Pebble (key prefix 'q'), written in the same
// batch as the entries, and a Reader that walks them as of any log size.
//
// Every node and edge is stored once, with the index of the entry that
// first asserted it; a reader at log size N ignores everything asserted at
// N or above, so it sees exactly the graph of the entries below N. Keys
// are laid out so that a node's edges of one relation, forwards or
// backwards, are one contiguous key range (docs/query.md).
package graph

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/payload"
)

// Options configure an Indexer.
type Options struct {
	// Limits bound what one payload may carry; a payload over them is
	// recorded as skipped (see Reader.Skipped), never indexed in part.
	Limits payload.Limits
	// Logger receives the indexer's logs. Default slog.Default().
	Logger *slog.Logger
	// AdjacencyCacheSize bounds the memory, in bytes, of the decoded
	// adjacency lists kept for queries (Indexer.NewReader). Default
	// DefaultAdjacencyCacheSize; negative turns the cache off.
	AdjacencyCacheSize int64
}

// Indexer maintains the lineage graph. It implements ledger.Indexer: pass
// it in ledger.Options.Indexer, then call Attach with the opened log
// before the first append.
type Indexer struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex // serializes IndexBatch and Attach
	l  *ledger.Log
	db *pebble.DB
	// filter says which keys the index may hold (nil: rebuild it).
	filter *keyFilter
	// adj caches decoded adjacency lists for readers (nil: off).
	adj *adjCache
}

// New returns an Indexer; it must be attached to its log (Attach) before
// the log applies a batch.
func New(opts Options) *Indexer {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ix := &Indexer{opts: opts, log: opts.Logger.With("component", "query-index")}
	switch {
	case opts.AdjacencyCacheSize == 0:
		ix.adj = newAdjCache(DefaultAdjacencyCacheSize)
	case opts.AdjacencyCacheSize > 0:
		ix.adj = newAdjCache(opts.AdjacencyCacheSize)
	}
	return ix
}

// Attach binds the indexer to the log it indexes (the one opened with it
// as its Indexer) and indexes every entry the log holds that the index
// does not (the index was added to an existing log, or it was built with
// another version). Call it after ledger.Open and before the sequencer
// starts; until then IndexBatch fails.
func (ix *Indexer) Attach(l *ledger.Log) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.l, ix.db = l, l.DB()
	next, err := ix.next()
	if err != nil {
		return err
	}
	if next > 0 {
		f, err := ix.format()
		if err != nil {
			return err
		}
		if f == 2 {
			// Format 3 indexes static lineage too; a format-2 index of a
			// log without any is already the format-3 index.
			if f, err = ix.upgradeFrom2(next); err != nil {
				return err
			}
		}
		if f != FormatVersion {
			ix.log.Warn("the lineage index was built in another format; rebuilding it from the log", "format", f, "want", FormatVersion, "entries", next)
			b := ix.db.NewBatch()
			err := b.DeleteRange([]byte{prefix}, []byte{prefix + 1}, nil)
			if err == nil {
				err = b.Commit(pebble.Sync)
			}
			b.Close()
			if err != nil {
				return fmt.Errorf("query index: drop the old index: %w", err)
			}
			next = 0
		}
	}
	size := l.Latest().Size
	if next < size {
		ix.log.Info("indexing entries the lineage index does not have", "from", next, "to", size)
	}
	for next < size {
		end := min(next+1024, size)
		entries, err := ix.load(next, end)
		if err != nil {
			return err
		}
		b := ix.db.NewBatch()
		err = ix.index(b, entries)
		if err == nil {
			err = b.Commit(pebble.Sync)
		}
		b.Close()
		if err != nil {
			return fmt.Errorf("query index: catch up at entry %d: %w", next, err)
		}
		next = end
	}
	return nil
}

// IndexBatch implements ledger.Indexer.
func (ix *Indexer) IndexBatch(b *pebble.Batch, entries []ledger.IndexedEntry) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.db == nil {
		return errors.New("query index: not attached to its log; call Attach after ledger.Open")
	}
	if len(entries) == 0 {
		return nil
	}
	next, err := ix.next()
	if err != nil {
		return err
	}
	first := entries[0].Index
	switch {
	case first > next:
		// Entries the index never saw (appended without the indexer):
		// they are committed and readable; index them in this batch.
		gap, err := ix.load(next, first)
		if err != nil {
			return err
		}
		entries = append(gap, entries...)
	case first < next:
		// Already indexed (a replay): keep only the new ones.
		i := 0
		for i < len(entries) && entries[i].Index < next {
			i++
		}
		entries = entries[i:]
		if len(entries) == 0 {
			return nil
		}
	}
	return ix.index(b, entries)
}

// FormatVersion is the version of the index's key layout and encodings;
// an index of another version is dropped and rebuilt by Attach. Format 3
// indexes OpenLineage DatasetEvents and JobEvents (format 2 ignored them).
const FormatVersion = 3

// upgradeFrom2 turns a format-2 index of entries [0, next) into a
// format-3 one when no entry below next is a static OpenLineage event (the
// only payloads format 3 indexes differently): it then only records the
// new format. It returns the index's format afterwards.
func (ix *Indexer) upgradeFrom2(next uint64) (uint64, error) {
	static := false
	errFound := errors.New("found")
	err := ix.l.Records(0, min(next, ix.l.Latest().Size), func(i uint64, raw []byte) error {
		rec, err := record.Unmarshal(raw)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if rec.PayloadType == payload.TypeOpenLineageDataset || rec.PayloadType == payload.TypeOpenLineageJob {
			static = true
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return 0, fmt.Errorf("query index: look for static lineage below entry %d: %w", next, err)
	}
	if static {
		return 2, nil
	}
	if err := ix.db.Set(keyFormat, u64(nil, FormatVersion), pebble.Sync); err != nil {
		return 0, fmt.Errorf("query index: record format %d: %w", FormatVersion, err)
	}
	ix.log.Info("the lineage index holds no static lineage: upgraded in place", "from", 2, "to", FormatVersion, "entries", next)
	return FormatVersion, nil
}

func (ix *Indexer) format() (uint64, error) {
	v, closer, err := ix.db.Get(keyFormat)
	if errors.Is(err, pebble.ErrNotFound) {
		return 1, nil // the first layout, which had no format key
	}
	if err != nil {
		return 0, fmt.Errorf("query index: read format: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("query index: format has %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func (ix *Indexer) next() (uint64, error) {
	v, closer, err := ix.db.Get(keyNext)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("query index: read position: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("query index: position has %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// load reads committed entries [start, end) from the log, as IndexBatch
// would have received them.
func (ix *Indexer) load(start, end uint64) ([]ledger.IndexedEntry, error) {
	var out []ledger.IndexedEntry
	err := ix.l.Records(start, end, func(i uint64, raw []byte) error {
		rec, err := record.Unmarshal(raw)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		e := ledger.IndexedEntry{Index: i, LeafHash: proof.LeafHash(raw), Record: rec, RawRecord: append([]byte(nil), raw...)}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("query index: load entries [%d, %d): %w", start, end, err)
	}
	for i := range out {
		env, err := ix.l.Envelope(out[i].Record.EnvelopeDigest)
		if err != nil && !errors.Is(err, ledger.ErrRedacted) {
			return nil, fmt.Errorf("query index: load envelope of entry %d: %w", out[i].Index, err)
		}
		out[i].Envelope = env
	}
	return out, nil
}

// index writes the graph of entries (consecutive, from the index's
// position) into b.
func (ix *Indexer) index(b *pebble.Batch, entries []ledger.IndexedEntry) error {
	first := entries[0].Index
	if ix.adj != nil && (ix.filter == nil || ix.filter.next != first) {
		// The first batch, or the store moved behind the indexer's back:
		// the touches of the entries below first are unknown.
		ix.adj.reset(first)
	}
	if ix.filter == nil || ix.filter.next != first || ix.filter.full() {
		f, err := buildKeyFilter(ix.db, first)
		if err != nil {
			return fmt.Errorf("query index: build key filter: %w", err)
		}
		ix.filter = f
	}
	w := &writer{db: ix.db, b: b, seen: map[string]struct{}{}, latest: map[ID]string{}, names: map[ID][]byte{}, filter: ix.filter, adj: ix.adj}
	defer w.close()
	for i := range entries {
		if err := w.entry(&entries[i], ix.opts.Limits); err != nil {
			ix.filter = nil
			return err
		}
	}
	// The filter now describes the store as it will be once b commits; if
	// it does not, the next batch starts elsewhere and rebuilds it.
	for d, v := range w.latest {
		ix.filter.setLatest(d, v)
	}
	ix.filter.next = entries[len(entries)-1].Index + 1
	if ix.adj != nil {
		// After the touches, before the commit: readers of sizes above
		// this batch come later.
		ix.adj.next.Store(ix.filter.next)
	}
	if err := b.Set(keyFormat, u64(nil, FormatVersion), nil); err != nil {
		return err
	}
	return b.Set(keyNext, u64(nil, entries[len(entries)-1].Index+1), nil)
}

// Skip classes.
const (
	SkipMalformed  = 'm' // the payload is invalid (the reason names the field)
	SkipNotLineage = 'n' // well-formed, but nothing to index (e.g. a vulnerability scan statement)
	SkipRedacted   = 'r' // the envelope was redacted before the index saw it
)

// writer writes one batch's index keys. The batch cannot be read, so it
// remembers what it wrote (seen, latest) and reads everything else from
// the committed store.
type writer struct {
	db     *pebble.DB
	b      *pebble.Batch
	seen   map[string]struct{}
	latest map[ID]string // dataset → version of its latest completed output in this batch
	names  map[ID][]byte // encoded names of the nodes this batch touched
	filter *keyFilter
	adj    *adjCache        // nil: no adjacency cache to tell
	latIt  *pebble.Iterator // reads latest versions (opened on first use)
	idx    uint64
}

func (w *writer) close() {
	if w.latIt != nil {
		w.latIt.Close()
	}
}

func (w *writer) entry(e *ledger.IndexedEntry, lim payload.Limits) error {
	w.idx = e.Index
	t := e.Record.PayloadType
	if !indexed(t) {
		return nil
	}
	if e.Envelope == nil {
		return w.skip(SkipRedacted, "the envelope was redacted")
	}
	p, err := parse(e, lim)
	switch {
	case errors.Is(err, payload.ErrNotLineage):
		return w.skip(SkipNotLineage, err.Error())
	case err != nil:
		return w.skip(SkipMalformed, err.Error())
	}
	switch {
	case p.Event != nil:
		return w.event(p.Event)
	case p.Static != nil:
		return w.static(p.Static)
	}
	return w.costs(p.Costs)
}

func (w *writer) skip(class byte, reason string) error {
	return w.b.Set(skipKey(w.idx), append([]byte{class}, reason...), nil)
}

// exists reports whether key was written by this batch or is committed.
func (w *writer) exists(key []byte) (bool, error) {
	if _, ok := w.seen[string(key)]; ok {
		return true, nil
	}
	if _, ok := w.filter.known[string(key)]; ok {
		return true, nil
	}
	if !w.filter.mayContain(key) {
		return false, nil
	}
	_, closer, err := w.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("query index: read: %w", err)
	}
	closer.Close()
	w.filter.remember(key)
	return true, nil
}

// once sets key to value unless it exists: the first assertion wins.
func (w *writer) once(key, value []byte) (bool, error) {
	ok, err := w.exists(key)
	if err != nil || ok {
		return false, err
	}
	w.seen[string(key)] = struct{}{}
	w.filter.add(key)
	return true, w.b.Set(key, value, nil)
}

func (w *writer) node(k Kind, parts ...string) (ID, error) {
	id := NodeID(k, parts...)
	if _, ok := w.names[id]; !ok {
		w.names[id] = encodeName(nil, k, parts)
	}
	_, err := w.once(nodeKey(id), encodeNode(w.idx, k, parts))
	return id, err
}

// edge stores src → dst (forward and reverse), unless stored before. Each
// direction's value carries the name of the node at its far end, so a
// traversal learns the names of the nodes it reaches from the edges it
// reads.
func (w *writer) edge(src ID, rel Rel, dst ID, attrs any) error {
	var j []byte
	if attrs != nil {
		var err error
		if j, err = json.Marshal(attrs); err != nil {
			return err
		}
	}
	if w.names[src] == nil || w.names[dst] == nil {
		return fmt.Errorf("query index: internal error: edge %c from a node this entry did not name", rel)
	}
	fwd := encodeEdgeValue(w.idx, w.names[dst], j)
	added, err := w.once(edgeKey(tagOut, src, rel, dst), fwd)
	if err != nil || !added {
		return err
	}
	if w.adj != nil {
		w.adj.touch(adjKey{src, tagOut, rel}, w.idx)
		w.adj.touch(adjKey{dst, tagIn, rel}, w.idx)
	}
	return w.b.Set(edgeKey(tagIn, dst, rel, src), encodeEdgeValue(w.idx, w.names[src], j), nil)
}

func (w *writer) setJSON(key []byte, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.b.Set(key, j, nil)
}

// latestVersion is the version of dataset d's latest completed output
// below the current entry, or "".
func (w *writer) latestVersion(d ID) (string, error) {
	if v, ok := w.latest[d]; ok {
		return v, nil
	}
	if v, ok := w.filter.latest[d]; ok {
		return v, nil
	}
	if w.latIt == nil {
		it, err := w.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix, tagLatest}, UpperBound: []byte{prefix, tagLatest + 1}})
		if err != nil {
			return "", err
		}
		w.latIt = it
	}
	p := idPrefix(tagLatest, d)
	if !w.latIt.SeekLT(prefixEnd(p)) || !bytes.HasPrefix(w.latIt.Key(), p) {
		if err := w.latIt.Error(); err != nil {
			return "", err
		}
		w.filter.setLatest(d, "")
		return "", nil
	}
	v := string(w.latIt.Value())
	w.filter.setLatest(d, v)
	return v, nil
}

func (w *writer) tags(src ID, tags []payload.Tag) error {
	for _, t := range tags {
		tid, err := w.node(TagNode, t.Key, t.Value)
		if err != nil {
			return err
		}
		if err := w.edge(src, Tagged, tid, nil); err != nil {
			return err
		}
	}
	return nil
}

// RunVersion is the version of a dataset written by a run whose event
// gives no version facet: the output of that run.
func RunVersion(runID string) string { return "run:" + runID }

func (w *writer) event(ev *payload.RunEvent) error {
	run, err := w.node(Run, ev.Run.ID)
	if err != nil {
		return err
	}
	job, err := w.node(Job, ev.Job.Namespace, ev.Job.Name)
	if err != nil {
		return err
	}
	if err := w.edge(run, RunOf, job, nil); err != nil {
		return err
	}
	cv := ev.Job.CodeVersion()
	if cv != "" {
		jv, err := w.node(JobVersion, ev.Job.Namespace, ev.Job.Name, cv)
		if err != nil {
			return err
		}
		if err := w.edge(jv, VersionOf, job, nil); err != nil {
			return err
		}
		if err := w.edge(run, RanCode, jv, nil); err != nil {
			return err
		}
	}
	if p := ev.Run.Parent; p != nil && p.RunID != ev.Run.ID {
		parent, err := w.node(Run, p.RunID)
		if err != nil {
			return err
		}
		pjob, err := w.node(Job, p.Job.Namespace, p.Job.Name)
		if err != nil {
			return err
		}
		if err := w.edge(parent, RunOf, pjob, nil); err != nil {
			return err
		}
		if err := w.edge(run, ParentRun, parent, nil); err != nil {
			return err
		}
	}
	if err := w.tags(run, ev.Run.Tags); err != nil {
		return err
	}
	if err := w.tags(job, ev.Job.Tags); err != nil {
		return err
	}
	facts := RunFacts{
		EventType: ev.EventType, EventTime: ev.EventTime, Source: ev.Source, Producer: ev.Producer,
		Job: ev.Job.JobRef, Code: ev.Job.Source, Parent: ev.Run.Parent, Engine: ev.Run.Engine,
		NominalStart: ev.Run.NominalStart, NominalEnd: ev.Run.NominalEnd, ErrorMessage: ev.Run.ErrorMessage,
	}
	if err := w.setJSON(idxKey(tagRun, run, w.idx), facts); err != nil {
		return err
	}
	for i := range ev.Inputs {
		d := &ev.Inputs[i]
		ds, err := w.dataset(d)
		if err != nil {
			return err
		}
		ver := d.Version
		var attrs any
		if ver == "" {
			// The version current when the run read it: the latest
			// completed output below this entry (as of this entry).
			if ver, err = w.latestVersion(ds); err != nil {
				return err
			}
			attrs = ReadAttrs{Resolved: true}
		}
		dv, err := w.node(DatasetVersion, d.Namespace, d.Name, ver)
		if err != nil {
			return err
		}
		if err := w.edge(dv, VersionOf, ds, nil); err != nil {
			return err
		}
		if err := w.edge(run, Read, dv, attrs); err != nil {
			return err
		}
		if err := w.edge(job, JobReads, ds, nil); err != nil {
			return err
		}
	}
	completed := ev.EventType == payload.Complete
	for i := range ev.Outputs {
		d := &ev.Outputs[i]
		ds, err := w.dataset(d)
		if err != nil {
			return err
		}
		ver := d.Version
		if ver == "" {
			ver = RunVersion(ev.Run.ID)
		}
		dv, err := w.node(DatasetVersion, d.Namespace, d.Name, ver)
		if err != nil {
			return err
		}
		if err := w.edge(dv, VersionOf, ds, nil); err != nil {
			return err
		}
		if err := w.edge(run, Wrote, dv, nil); err != nil {
			return err
		}
		if err := w.edge(job, JobWrites, ds, nil); err != nil {
			return err
		}
		vf := VersionFacts{
			Version: ver, Explicit: d.Version != "", RunID: ev.Run.ID, Job: ev.Job.JobRef, CodeVersion: cv,
			Source: ev.Source, EventType: ev.EventType, EventTime: ev.EventTime, Schema: d.Schema,
			RowCount: d.RowCount(), Bytes: d.Bytes(), DataSource: d.DataSource, Quality: d.Quality,
			Lifecycle: d.LifecycleStateChange,
		}
		if d.Stats != nil {
			vf.FileCount = d.Stats.FileCount
		}
		if err := w.setJSON(binary.BigEndian.AppendUint16(idxKey(tagHistory, ds, w.idx), uint16(i)), vf); err != nil {
			return err
		}
		if completed {
			if err := w.b.Set(idxKey(tagLatest, ds, w.idx), []byte(ver), nil); err != nil {
				return err
			}
			w.latest[ds] = ver
		}
		if err := w.columns(ev.Run.ID, ev.Job.JobRef, d, ds); err != nil {
			return err
		}
	}
	return nil
}

// dataset writes the dataset node and its tags.
func (w *writer) dataset(d *payload.Dataset) (ID, error) {
	ds, err := w.node(Dataset, d.Namespace, d.Name)
	if err != nil {
		return ds, err
	}
	for _, t := range d.Tags {
		src := ds
		if t.Field != "" {
			if src, err = w.column(d.Namespace, d.Name, t.Field, ds); err != nil {
				return ds, err
			}
		}
		if err := w.tags(src, []payload.Tag{{Key: t.Key, Value: t.Value}}); err != nil {
			return ds, err
		}
	}
	return ds, nil
}

// column writes a column node and its FieldOf edge (ds is its dataset's
// id, or zero to compute it).
func (w *writer) column(ns, name, field string, ds ID) (ID, error) {
	c, err := w.node(Column, ns, name, field)
	if err != nil {
		return c, err
	}
	if ds == (ID{}) {
		if ds, err = w.node(Dataset, ns, name); err != nil {
			return c, err
		}
	}
	return c, w.edge(c, FieldOf, ds, nil)
}

// columns writes an output's column lineage, as asserted by run runID
// ("" for a JobEvent) of job.
func (w *writer) columns(runID string, job payload.JobRef, d *payload.Dataset, ds ID) error {
	for _, cl := range d.ColumnLineage {
		out, err := w.column(d.Namespace, d.Name, cl.Field, ds)
		if err != nil {
			return err
		}
		for _, in := range cl.Inputs {
			src, err := w.column(in.Namespace, in.Name, in.Field, ID{})
			if err != nil {
				return err
			}
			attrs := DerivationAttrs{
				Transformations: in.Transformations, RunID: runID, Job: job,
				TransformationType: cl.TransformationType, TransformationDescription: cl.TransformationDescription,
			}
			if err := w.edge(out, DerivedFrom, src, attrs); err != nil {
				return err
			}
		}
	}
	for _, in := range d.DatasetLineage {
		src, err := w.column(in.Namespace, in.Name, in.Field, ID{})
		if err != nil {
			return err
		}
		if err := w.edge(ds, Affects, src, DerivationAttrs{Transformations: in.Transformations, RunID: runID, Job: job}); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) costs(rows []payload.CostRow) error {
	for i := range rows {
		r := &rows[i]
		if err := w.setJSON(costKey(w.idx, r.Row), r); err != nil {
			return err
		}
		var target ID
		switch l := r.Link; {
		case l.RunID != "":
			target = NodeID(Run, l.RunID)
		case l.Job != nil:
			target = NodeID(Job, l.Job.Namespace, l.Job.Name)
		case l.Tag != nil:
			target = NodeID(TagNode, l.Tag.Key, l.Tag.Value)
		default:
			continue
		}
		if err := w.b.Set(costByKey(target, w.idx, r.Row), nil, nil); err != nil {
			return err
		}
	}
	return nil
}
