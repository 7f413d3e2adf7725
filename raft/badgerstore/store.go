// Package badgerstore is a Raft log store and stable store on Badger v4.
//
// It implements raft.LogStore, raft.StableStore, raft.MonotonicLogStore and
// raft.CommitTrackingLogStore. Every write is one Badger transaction
// committed with SyncWrites, so StoreLogs is atomic and durable: either all
// the logs of a call survive a crash or none does. A batch that does not fit
// in one transaction is refused with ErrBatchTooLarge before anything is
// written; it is never split into several commits. MaxLogsPerBatch tells the
// Raft configuration how many logs of the largest size fit, so that raft's
// MaxAppendEntries can be chosen to never hit the limit.
//
// Key layout (one byte of prefix, integers big-endian so keys sort
// numerically):
//
//	'l' + index u64  → encoded raft.Log (see encodeLog)
//	's' + key        → StableStore value (uint64 values as 8 bytes big-endian)
//	'c'              → commit index staged with StageCommitIndex (u64)
package badgerstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/hashicorp/raft"
)

// ErrKeyNotFound is returned by Get and GetUint64 for a missing key. Its
// text is exactly "not found": hashicorp/raft compares StableStore misses by
// their error text.
var ErrKeyNotFound = errors.New("not found")

// ErrBatchTooLarge is returned by StoreLogs when the logs do not fit in one
// Badger transaction. Nothing is written.
var ErrBatchTooLarge = errors.New("raft log batch too large for one atomic write")

// ErrFailed wraps the error that made the store refuse further use: after a
// failed durable write (for example an fsync error) Badger's in-memory state
// may hold writes that are not on disk, so the store stops rather than serve
// them.
var ErrFailed = errors.New("raft log store failed")

const (
	prefixLog    = 'l'
	prefixStable = 's'
)

var keyCommitIndex = []byte{'c'}

// Defaults for Options fields left zero.
const (
	DefaultValueThreshold = 64 << 10
	DefaultMemTableSize   = 64 << 20
	DefaultGCInterval     = time.Minute
	// deleteChunk caps the keys deleted per transaction in DeleteRange.
	deleteChunk = 4096
)

// Options configure a Store.
type Options struct {
	// ValueThreshold: log values of at least this many bytes are written to
	// Badger's value log (written once, garbage collected by GCInterval)
	// instead of the LSM tree. Default DefaultValueThreshold (64 KiB).
	ValueThreshold int64
	// MemTableSize is Badger's memtable size; one transaction may hold about
	// 15% of it in inline values. Default DefaultMemTableSize (64 MiB).
	MemTableSize int64
	// GCInterval is how often the value log is garbage collected (needed
	// once Raft truncates logs after snapshots). Negative disables it.
	// Default DefaultGCInterval.
	GCInterval time.Duration
	// Logger receives Badger's logs (its Info lines at Debug level).
	// Default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.ValueThreshold == 0 {
		o.ValueThreshold = DefaultValueThreshold
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Store is a Raft log store and stable store. It is safe for concurrent use.
type Store struct {
	db   *badger.DB
	opts Options
	log  *slog.Logger

	// wmu serializes writes, so that first and last follow them exactly.
	wmu sync.Mutex
	// dir is the store's directory as /proc/self/maps names it; written
	// counts the bytes stored since its mappings were last advised
	// (readahead.go); adviseWarned: a failed advice was logged. All under
	// wmu.
	dir          string
	written      int64
	adviseWarned bool
	// idxMu guards first, last, staged and failed.
	idxMu  sync.RWMutex
	first  uint64
	last   uint64
	has    bool   // some log is stored (first and last are meaningful)
	staged uint64 // commit index to write with the next StoreLogs (0: none)
	failed error

	stop   chan struct{}
	gcDone chan struct{}
	once   sync.Once
}

var (
	_ raft.LogStore               = (*Store)(nil)
	_ raft.StableStore            = (*Store)(nil)
	_ raft.MonotonicLogStore      = (*Store)(nil)
	_ raft.CommitTrackingLogStore = (*Store)(nil)
)

// Open opens (creating if needed) the store in dir.
func Open(dir string, o Options) (*Store, error) {
	o = o.withDefaults()
	if o.ValueThreshold < 1 || o.MemTableSize < 1<<20 {
		return nil, fmt.Errorf("badgerstore: ValueThreshold %d must be positive and MemTableSize %d at least 1 MiB", o.ValueThreshold, o.MemTableSize)
	}
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithValueThreshold(o.ValueThreshold).
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(3).
		WithCompression(options.None).
		WithBlockCacheSize(16 << 20).
		WithDetectConflicts(false).
		WithMetricsEnabled(false).
		WithLogger(nil)
	s := &Store{opts: o, log: o.Logger, stop: make(chan struct{}), gcDone: make(chan struct{})}
	bo.Logger = &badgerLogger{l: o.Logger.With("component", "badger"), s: s}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open raft log store %s: %w", dir, err)
	}
	s.db = db
	if abs, err := filepath.Abs(dir); err == nil {
		s.dir = abs
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			s.dir = real
		}
	}
	s.advise()
	if s.first, s.last, s.has, err = s.bounds(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open raft log store %s: %w", dir, err)
	}
	if o.GCInterval > 0 {
		go s.gcLoop()
	} else {
		close(s.gcDone)
	}
	return s, nil
}

// Close stops the value log GC and closes Badger.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		<-s.gcDone
		s.wmu.Lock()
		defer s.wmu.Unlock()
		err = s.db.Close()
	})
	return err
}

// advise turns read-around off on Badger's value log and memtable
// mappings (readahead.go). It only changes how much disk a commit writes,
// so a failure is logged, not returned. Called under wmu, or before the
// store is shared.
func (s *Store) advise() {
	s.written = 0
	if s.dir == "" {
		return
	}
	n, err := adviseRandom(s.dir)
	if err != nil {
		if !s.adviseWarned {
			s.adviseWarned = true
			s.log.Warn("raft log store: advising Badger's mappings failed; synced commits may write back more than they wrote (logged once)", "dir", s.dir, "err", err)
		}
		return
	}
	s.log.Debug("raft log store: advised Badger's mappings", "dir", s.dir, "mappings", n)
}

func (s *Store) gcLoop() {
	defer close(s.gcDone)
	t := time.NewTicker(s.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		for i := 0; i < 16; i++ { // each call rewrites at most one file
			if err := s.db.RunValueLogGC(0.5); err != nil {
				if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
					s.log.Warn("raft log store: value log GC", "err", err)
				}
				break
			}
			select {
			case <-s.stop:
				return
			default:
			}
		}
	}
}

// MaxLogsPerBatch returns how many logs of up to maxLogBytes bytes of Data
// (plus Extensions), of any mix of sizes, one StoreLogs call is guaranteed
// to accept. Size Raft's MaxAppendEntries at or below it.
func (s *Store) MaxLogsPerBatch(maxLogBytes int64) int {
	// The largest inline log: just below the value threshold, or the
	// largest log if that is smaller. Inline values count in full against
	// the transaction size; value-log values count as a pointer.
	inline := min(s.opts.ValueThreshold-1, maxLogBytes+maxLogOverhead)
	n := (s.db.MaxBatchSize() - commitEntrySize - 1) / (logKeySize + 2 + max(inline, valuePointerSize))
	n = min(n, s.db.MaxBatchCount()-2)
	// Badger writes one transaction to one value log file, whose offsets are
	// 32-bit: keep a batch of large logs well under that.
	if maxLogBytes+maxLogOverhead >= s.opts.ValueThreshold {
		n = min(n, maxVlogBatch/(maxLogBytes+maxLogOverhead))
	}
	return int(max(n, 0))
}

const (
	logKeySize       = 9
	valuePointerSize = 12
	maxLogOverhead   = 1 + 3*binary.MaxVarintLen64 + 1 + 1 + 8 + binary.MaxVarintLen64
	commitEntrySize  = 1 + 8 + 2
	// maxVlogBatch caps the value log bytes of one transaction: with the
	// current file up to 1 GiB, the write stays below the 4 GiB that Badger's
	// 32-bit value log offsets address.
	maxVlogBatch = 1 << 31
)

func logKey(i uint64) []byte {
	k := make([]byte, logKeySize)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], i)
	return k
}

func stableKey(k []byte) []byte {
	return append([]byte{prefixStable}, k...)
}

func (s *Store) check() error {
	s.idxMu.RLock()
	defer s.idxMu.RUnlock()
	return s.failed
}

func (s *Store) fail(err error) error {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if s.failed == nil {
		s.failed = fmt.Errorf("%w: %w", ErrFailed, err)
		s.log.Error("raft log store: write failed; refusing further use", "err", err)
	}
	return s.failed
}

// FirstIndex implements raft.LogStore.
func (s *Store) FirstIndex() (uint64, error) {
	s.idxMu.RLock()
	defer s.idxMu.RUnlock()
	return s.first, s.failed
}

// LastIndex implements raft.LogStore.
func (s *Store) LastIndex() (uint64, error) {
	s.idxMu.RLock()
	defer s.idxMu.RUnlock()
	return s.last, s.failed
}

// bounds finds the first and last stored log indexes and whether there is
// any log at all (raft never writes index 0, but the contract allows it).
func (s *Store) bounds() (first, last uint64, has bool, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.PrefetchValues = false
		o.Prefix = []byte{prefixLog}
		it := txn.NewIterator(o)
		it.Seek(logKey(0))
		if it.Valid() {
			first, has = binary.BigEndian.Uint64(it.Item().Key()[1:]), true
		}
		it.Close()
		if !has {
			return nil
		}
		o.Reverse = true
		it = txn.NewIterator(o)
		defer it.Close()
		it.Seek(logKey(^uint64(0)))
		if it.Valid() {
			last = binary.BigEndian.Uint64(it.Item().Key()[1:])
		}
		return nil
	})
	return first, last, has, err
}

// GetLog implements raft.LogStore. A missing index gives raft.ErrLogNotFound.
func (s *Store) GetLog(index uint64, l *raft.Log) error {
	if err := s.check(); err != nil {
		return err
	}
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(logKey(index))
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("get raft log %d: %w", index, err)
	}
	if err := decodeLog(index, v, l); err != nil {
		return fmt.Errorf("get raft log %d: %w", index, err)
	}
	return nil
}

// StoreLog implements raft.LogStore.
func (s *Store) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

// StoreLogs implements raft.LogStore: all logs, and the commit index staged
// by StageCommitIndex, are written in one synced Badger transaction.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	s.idxMu.RLock()
	staged := s.staged
	s.idxMu.RUnlock()

	// Check the size first, so a batch that cannot fit fails with a clear
	// error and nothing written.
	var size, vlog int64
	count := int64(len(logs))
	lo, hi := logs[0].Index, logs[0].Index
	for _, l := range logs {
		n := int64(encodedLogSize(l))
		if n < s.opts.ValueThreshold {
			size += logKeySize + 2 + n
		} else {
			size += logKeySize + 2 + valuePointerSize
			vlog += n
		}
		lo, hi = min(lo, l.Index), max(hi, l.Index)
	}
	if staged != 0 {
		size += commitEntrySize
		count++
	}
	if size >= s.db.MaxBatchSize() || count >= s.db.MaxBatchCount() || vlog > maxVlogBatch {
		return fmt.Errorf("%w: %d logs (%d..%d), %d bytes inline and %d in the value log; the limit is %d bytes inline and 2 GiB in the value log (lower raft's MaxAppendEntries or the command size)",
			ErrBatchTooLarge, len(logs), lo, hi, size, vlog, s.db.MaxBatchSize())
	}

	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for _, l := range logs {
		if err := txn.Set(logKey(l.Index), encodeLog(l)); err != nil {
			if errors.Is(err, badger.ErrTxnTooBig) {
				return fmt.Errorf("%w: %d logs (%d..%d): %v", ErrBatchTooLarge, len(logs), lo, hi, err)
			}
			return fmt.Errorf("store raft logs %d..%d: %w", lo, hi, err)
		}
	}
	if staged != 0 {
		if err := txn.Set(keyCommitIndex, binary.BigEndian.AppendUint64(nil, staged)); err != nil {
			return fmt.Errorf("store raft logs %d..%d: commit index: %w", lo, hi, err)
		}
	}
	if err := txn.Commit(); err != nil {
		return s.fail(fmt.Errorf("store raft logs %d..%d: %w", lo, hi, err))
	}
	if err := s.check(); err != nil {
		// Badger only logs a failed value log sync (see badgerLogger).
		return err
	}
	if s.written += size + vlog; s.written >= adviseEvery {
		s.advise()
	}
	s.idxMu.Lock()
	if !s.has {
		s.first, s.last, s.has = lo, hi, true
	} else {
		s.first, s.last = min(s.first, lo), max(s.last, hi)
	}
	if s.staged == staged {
		s.staged = 0
	}
	s.idxMu.Unlock()
	return nil
}

// DeleteRange implements raft.LogStore: it deletes the logs with indexes in
// [min, max]. Large ranges are deleted in several transactions, from the end
// that keeps the remaining log contiguous if a crash interrupts them: upward
// when truncating a prefix (after a snapshot), downward when removing a
// suffix (conflicting entries on a follower).
func (s *Store) DeleteRange(lo, hi uint64) error {
	if lo > hi {
		return nil
	}
	s.idxMu.RLock()
	suffix := hi >= s.last
	s.idxMu.RUnlock()
	for {
		done, err := s.deleteChunk(lo, hi, suffix)
		if err != nil {
			return fmt.Errorf("delete raft logs %d..%d: %w", lo, hi, err)
		}
		if done {
			return nil
		}
	}
}

// deleteChunk deletes up to deleteChunk logs of [lo, hi], from the top if
// downward, and reports whether the range is now empty.
func (s *Store) deleteChunk(lo, hi uint64, downward bool) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.check(); err != nil {
		return false, err
	}
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		io := badger.DefaultIteratorOptions
		io.PrefetchValues = false
		io.Prefix = []byte{prefixLog}
		io.Reverse = downward
		it := txn.NewIterator(io)
		defer it.Close()
		start := logKey(lo)
		if downward {
			start = logKey(hi)
		}
		for it.Seek(start); it.Valid() && len(keys) < deleteChunk; it.Next() {
			idx := binary.BigEndian.Uint64(it.Item().Key()[1:])
			if idx < lo || idx > hi {
				break
			}
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if len(keys) == 0 {
		return true, nil
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return false, err
		}
	}
	if err := txn.Commit(); err != nil {
		return false, s.fail(err)
	}
	first, last, has, err := s.bounds()
	if err != nil {
		return false, s.fail(err)
	}
	s.idxMu.Lock()
	s.first, s.last, s.has = first, last, has
	s.idxMu.Unlock()
	return len(keys) < deleteChunk, nil
}

// IsMonotonic implements raft.MonotonicLogStore. The store tolerates gaps,
// but answering true makes raft delete the whole log after installing a
// snapshot, so FirstIndex never points below a gap.
func (s *Store) IsMonotonic() bool { return true }

// StageCommitIndex implements raft.CommitTrackingLogStore: idx is written
// with the next StoreLogs, in the same transaction.
func (s *Store) StageCommitIndex(idx uint64) error {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	s.staged = idx
	return nil
}

// GetCommitIndex implements raft.CommitTrackingLogStore: the last commit
// index written with StoreLogs, never above LastIndex (0 if none).
func (s *Store) GetCommitIndex() (uint64, error) {
	v, err := s.get(keyCommitIndex)
	if errors.Is(err, ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raft log store: commit index has %d bytes", len(v))
	}
	last, err := s.LastIndex()
	return min(binary.BigEndian.Uint64(v), last), err
}

// Set implements raft.StableStore.
func (s *Store) Set(key, val []byte) error {
	return s.set(stableKey(key), bytes.Clone(val))
}

// Get implements raft.StableStore. A missing key gives ErrKeyNotFound,
// whose text is "not found".
func (s *Store) Get(key []byte) ([]byte, error) {
	return s.get(stableKey(key))
}

// SetUint64 implements raft.StableStore.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.set(stableKey(key), binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore. A missing key gives
// ErrKeyNotFound, whose text is "not found".
func (s *Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raft stable store: %q holds %d bytes, not a uint64", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func (s *Store) set(k, v []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	if err := txn.Set(k, v); err != nil {
		return fmt.Errorf("raft stable store: set %q: %w", k[1:], err)
	}
	if err := txn.Commit(); err != nil {
		return s.fail(fmt.Errorf("raft stable store: set %q: %w", k[1:], err))
	}
	return nil
}

func (s *Store) get(k []byte) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrKeyNotFound
	}
	return v, err
}

// badgerLogger sends Badger's logs to slog; its chatty Info lines go to
// Debug. Badger v4 only logs a failed sync of its value log ("Error while
// curlf sync") and still reports the commit as successful; the logger turns
// that message into a store failure, which StoreLogs checks after each
// commit (the message is logged before the commit returns).
type badgerLogger struct {
	l *slog.Logger
	s *Store
}

func (b *badgerLogger) Errorf(f string, a ...any) {
	msg := trimNL(fmt.Sprintf(f, a...))
	b.l.Error(msg)
	if strings.Contains(msg, "curlf sync") {
		b.s.fail(errors.New("badger value log sync failed: " + msg))
	}
}
func (b *badgerLogger) Warningf(f string, a ...any) { b.l.Warn(trimNL(fmt.Sprintf(f, a...))) }
func (b *badgerLogger) Infof(f string, a ...any)    { b.l.Debug(trimNL(fmt.Sprintf(f, a...))) }
func (b *badgerLogger) Debugf(f string, a ...any)   {}

func trimNL(s string) string { return strings.TrimRight(s, "\n") }
