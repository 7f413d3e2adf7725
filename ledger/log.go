package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
)

// Checkpoint is a signed checkpoint the log published.
type Checkpoint struct {
	checkpoint.Checkpoint
	// Note is the signed note text (C2SP signed-note).
	Note []byte
}

// Log is an open ledger. Its methods are safe for concurrent use; Apply calls
// are serialized.
type Log struct {
	db   *pebble.DB
	opts Options
	log  *slog.Logger

	// applyMu serializes Apply; it guards tree and lastTime.
	applyMu  sync.Mutex
	tree     *compact.Range
	lastTime int64 // integration time of the last entry, Unix ms

	// cacheMu guards cache (appends write tiles, proofs read them).
	cacheMu sync.Mutex
	cache   *tileCache

	// filter answers "is this envelope maybe in the log?"; guarded by applyMu.
	filter *digestFilter

	latest  atomic.Pointer[Checkpoint]
	applied atomic.Uint64 // raft index of the last applied batch
	closed  atomic.Bool

	// staged is the checkpoint of the last staged batch (equal to latest
	// unless pipelined batches await their sync); guarded by applyMu.
	staged *Checkpoint
	// pending counts pipelined batches committed but not yet finished.
	pending atomic.Int32
	// snaps counts open Snapshots (Raft snapshots, backups): Close waits
	// for them, since Pebble panics when a closed store is read.
	snaps sync.WaitGroup
	// broken holds the error of a failed pipelined batch.
	broken atomic.Pointer[error]
}

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// Open opens (creating if needed) the log stored in dir. On a new log it
// signs and stores the checkpoint of the empty tree. On an existing one it
// rebuilds the tree's right edge from the stored tiles and checks that the
// recomputed root matches the latest signed checkpoint (ErrCorrupt if not).
func Open(dir string, opts Options) (*Log, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	cache := pebble.NewCache(opts.PebbleCacheSize)
	defer cache.Unref()
	popts := &pebble.Options{
		Cache:              cache,
		Logger:             pebbleLogger{opts.Logger},
		MemTableSize:       randomMemTableSize(), // memtable.go
		FormatMajorVersion: pebble.FormatValueSeparation,
	}
	// Envelopes are large and never rewritten: keep them in blob files so
	// compactions move references, not envelopes.
	popts.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{Enabled: true, MinimumSize: 256, MaxBlobReferenceDepth: 10, RewriteMinimumAge: time.Hour, TargetGarbageRatio: 0.5}
	}
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// The `e` and `h` keys are hashes: every flush overlaps all of Lbase, so
	// each L0→Lbase compaction rewrites Lbase. Letting L0 gather 8 files
	// instead of 4 halves how often that happens (docs/ledger.md, "Compactions").
	popts.L0CompactionThreshold = 8
	popts.L0StopWritesThreshold = 32
	// A Raft FSM commits without syncing (the Raft log is the durable
	// copy), so without background syncs Pebble would sync a whole 32 MiB
	// WAL when it rotates it, holding its commit pipeline for 100–200 ms
	// on every node at about the same log position. Syncing every MiB in
	// the background spreads that out (docs/raft.md, "Batch 4 under 64
	// clients"). Synced commits (the single-node sequencer) are unaffected.
	popts.WALBytesPerSync = 1 << 20
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	l := &Log{db: db, opts: opts, log: opts.Logger.With("origin", opts.Origin)}
	l.cache, err = newTileCache(opts.TileCacheSize, l.loadTile)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	if err := l.recover(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	cp := l.latest.Load()
	if l.filter, err = buildDigestFilter(db, cp.Size); err != nil {
		db.Close()
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	l.log.Info("log open", "dir", dir, "size", cp.Size, "applied_index", l.applied.Load(), "memtable_mib", popts.MemTableSize>>20)
	return l, nil
}

// recover brings the store to the current key layout, loads the latest
// checkpoint and rebuilds the in-memory tree state.
func (l *Log) recover() error {
	if err := l.migrateLayout(); err != nil {
		return err
	}
	if v, err := l.get(keyAppliedIndex); err == nil {
		if len(v) != 8 {
			return fmt.Errorf("%w: applied index has %d bytes", ErrCorrupt, len(v))
		}
		l.applied.Store(beUint64(v))
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	cp, err := l.lastStoredCheckpoint()
	if errors.Is(err, ErrNotFound) {
		return l.initEmpty()
	}
	if err != nil {
		return err
	}
	if cp.Origin != l.opts.Origin {
		return fmt.Errorf("this log's origin is %q, not %q (check --origin)", cp.Origin, l.opts.Origin)
	}
	if err := l.rebuildTree(cp); err != nil {
		return err
	}
	if cp.Size > 0 {
		raw, err := l.get(u64Key(prefixRecord, cp.Size-1))
		if err != nil {
			return fmt.Errorf("read last record %d: %w", cp.Size-1, err)
		}
		r, err := record.Unmarshal(raw)
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrCorrupt, cp.Size-1, err)
		}
		l.lastTime = r.IntegratedTime.UnixMilli()
	}
	l.latest.Store(cp)
	l.staged = cp
	return nil
}

// rebuildTree restores the compact range of the tree of cp's size from the
// stored tiles, and checks it against the checkpoint's root.
func (l *Log) rebuildTree(cp *Checkpoint) error {
	ids := compact.RangeNodes(0, cp.Size, nil)
	hashes := make([][]byte, len(ids))
	l.cacheMu.Lock()
	for i, id := range ids {
		h, err := l.cache.node(id.Level, id.Index)
		if err != nil {
			l.cacheMu.Unlock()
			return fmt.Errorf("rebuild tree of size %d: %w", cp.Size, err)
		}
		hashes[i] = h[:]
	}
	l.cacheMu.Unlock()
	tree, err := rangeFactory.NewRange(0, cp.Size, hashes)
	if err != nil {
		return fmt.Errorf("rebuild tree of size %d: %w", cp.Size, err)
	}
	root := proof.EmptyRoot()
	if cp.Size > 0 {
		r, err := tree.GetRootHash(nil)
		if err != nil {
			return fmt.Errorf("rebuild tree of size %d: %w", cp.Size, err)
		}
		copy(root[:], r)
	}
	if root != cp.Hash {
		return fmt.Errorf("%w: recomputed root %x of size %d does not match the signed checkpoint's %x", ErrCorrupt, root, cp.Size, cp.Hash)
	}
	l.tree = tree
	return nil
}

func (l *Log) initEmpty() error {
	l.tree = rangeFactory.NewEmptyRange(0)
	cp, err := l.sign(0, proof.EmptyRoot())
	if err != nil {
		return err
	}
	b := l.db.NewBatch()
	defer b.Close()
	if err := b.Set(u64Key(prefixCheckpoint, 0), cp.Note, nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store empty checkpoint: %w", err)
	}
	l.latest.Store(cp)
	l.staged = cp
	return nil
}

func (l *Log) sign(size uint64, root [32]byte) (*Checkpoint, error) {
	c := checkpoint.Checkpoint{Origin: l.opts.Origin, Size: size, Hash: root}
	n, err := checkpoint.Sign(l.opts.Signer, c)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint of size %d: %w", size, err)
	}
	return &Checkpoint{Checkpoint: c, Note: n}, nil
}

func (l *Log) lastStoredCheckpoint() (*Checkpoint, error) {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixCheckpoint}, UpperBound: []byte{prefixCheckpoint + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	if !it.Last() {
		if err := it.Error(); err != nil {
			return nil, err
		}
		return nil, ErrNotFound
	}
	return l.parseStoredCheckpoint(it.Value())
}

func (l *Log) parseStoredCheckpoint(n []byte) (*Checkpoint, error) {
	// The note was signed by this log; parse its body without re-verifying.
	body, _, ok := bytes.Cut(n, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("%w: stored checkpoint has no signature block", ErrCorrupt)
	}
	c, err := checkpoint.ParseBody(append(body, '\n'))
	if err != nil {
		return nil, fmt.Errorf("%w: stored checkpoint: %v", ErrCorrupt, err)
	}
	return &Checkpoint{Checkpoint: c, Note: bytes.Clone(n)}, nil
}

// loadTile reads a tile from storage and rebuilds its interior nodes.
func (l *Log) loadTile(id tileID) (*tileNodes, error) {
	v, err := l.get(tileKey(id.level, id.index))
	if err != nil {
		return nil, fmt.Errorf("tile %d/%d: %w", id.level, id.index, err)
	}
	return decodeTile(v)
}

// get returns a copy of the value at key, or ErrNotFound.
func (l *Log) get(key []byte) ([]byte, error) {
	v, closer, err := l.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// Origin returns the log's origin string.
func (l *Log) Origin() string { return l.opts.Origin }

// Options returns the options the log was opened with, defaults filled in.
func (l *Log) Options() Options { return l.opts }

// Latest returns the latest signed checkpoint. It never returns nil.
func (l *Log) Latest() *Checkpoint { return l.latest.Load() }

// AppliedIndex returns the Raft index stored with the last applied batch
// (0 for a log that never applied a replicated batch).
func (l *Log) AppliedIndex() uint64 { return l.applied.Load() }

// DB exposes the underlying Pebble database to indexers and readers in this
// module (query, raft snapshots). Callers must not write ledger-owned keys.
func (l *Log) DB() *pebble.DB { return l.db }

// Sync flushes every applied batch to stable storage (used before a Raft
// snapshot lets the Raft log be truncated).
func (l *Log) Sync() error {
	return l.db.LogData(nil, pebble.Sync)
}

// Close closes the log. Further calls fail with ErrClosed.
func (l *Log) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	// Pipelined batches still syncing are finished by their sequencer
	// (which should be closed first); wait for them.
	for l.pending.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	l.waitSnapshots()
	return l.db.Close()
}

// waitSnapshots waits until every open Snapshot is closed (a backup or a
// Raft snapshot still streaming ends when its reader goes away), saying
// so every 10 s.
func (l *Log) waitSnapshots() {
	done := make(chan struct{})
	go func() { l.snaps.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return
		case <-time.After(10 * time.Second):
			l.log.Warn("closing the log: waiting for open snapshots (a backup or a Raft snapshot still being read) to be closed")
		}
	}
}

func beUint64(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n
}

// pebbleLogger sends Pebble's logs to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	os.Exit(1)
}

var _ io.Closer = (*Log)(nil)
