package ledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/transparency-dev/merkle/compact"

	"github.com/provledger/provledger/ledger/tiles"
)

// Snapshot stream format, version 1 (all integers big-endian or uvarint):
//
//	magic       "provledger snapshot v1\n"
//	origin      uvarint length, bytes
//	applied     u64: Raft index of the last applied batch (0 if none)
//	checkpoint  uvarint length, bytes: the latest signed checkpoint note
//	pairs       repeated: uvarint key length (≥ 1), uvarint value length,
//	            key, value; keys strictly increasing (Pebble order)
//	end         uvarint 0
//	count       u64: number of pairs
//	digest      32 bytes: SHA-256 of every byte above
//
// The pairs are every key of the store (ledger keys, indexer keys, Raft
// metadata), so a restored store is byte-for-byte the snapshotted one.
const snapshotMagic = "provledger snapshot v1\n"

const (
	maxSnapshotKey   = 1 << 16
	maxSnapshotValue = 256 << 20
)

// ErrBadSnapshot: a snapshot stream that is malformed, truncated, fails its
// checksum, or does not hold a verifiable log of this origin and key.
var ErrBadSnapshot = errors.New("bad ledger snapshot")

// Snapshot is a consistent, read-only view of the whole store at one
// applied batch. Release it with Close.
type Snapshot struct {
	snap      *pebble.Snapshot
	origin    string
	applied   uint64
	cp        *Checkpoint
	release   func() // tells the log this snapshot is closed
	closeOnce sync.Once
	closeErr  error
}

// newSnapshotLocked captures the store as of the last applied batch and
// counts it open, so that Close waits for it; l.applyMu must be held and
// the log not closed.
func (l *Log) newSnapshotLocked(cp *Checkpoint) *Snapshot {
	l.snaps.Add(1)
	return &Snapshot{snap: l.db.NewSnapshot(), origin: l.opts.Origin, applied: l.applied.Load(), cp: cp, release: l.snaps.Done}
}

// NewSnapshot captures the store as of the last applied batch. It is cheap
// (no I/O); the data is read by WriteTo. The store's files cannot be
// reclaimed by compactions while a Snapshot is open.
func (l *Log) NewSnapshot() (*Snapshot, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	if l.closed.Load() {
		return nil, ErrClosed
	}
	return l.newSnapshotLocked(l.latest.Load()), nil
}

// AppliedIndex is the Raft index of the last batch in the snapshot.
func (s *Snapshot) AppliedIndex() uint64 { return s.applied }

// Checkpoint is the latest signed checkpoint in the snapshot.
func (s *Snapshot) Checkpoint() *Checkpoint { return s.cp }

// Close releases the snapshot. The log's Close waits for every open
// snapshot to be closed (a snapshot read after the store closed would
// fail inside Pebble), so close each one, also on error paths.
// A second Close does nothing and returns the first one's result.
func (s *Snapshot) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.snap.Close()
		s.release()
	})
	return s.closeErr
}

// WriteTo streams the snapshot to w in the format above and returns the
// number of bytes written. It does not sync anything: a caller that lets
// something else be discarded because of the snapshot (a Raft log) must
// first make the live store durable (Log.Sync).
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(cw, h), 256<<10)
	if _, err := bw.Write(s.header()); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	it, err := s.snap.NewIter(nil)
	if err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	defer it.Close()
	var count uint64
	var lens [2 * binary.MaxVarintLen64]byte
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return cw.n, fmt.Errorf("write snapshot: read %q: %w", k, err)
		}
		n := binary.PutUvarint(lens[:], uint64(len(k)))
		n += binary.PutUvarint(lens[n:], uint64(len(v)))
		if _, err := bw.Write(lens[:n]); err != nil {
			return cw.n, fmt.Errorf("write snapshot: %w", err)
		}
		if _, err := bw.Write(k); err != nil {
			return cw.n, fmt.Errorf("write snapshot: %w", err)
		}
		if _, err := bw.Write(v); err != nil {
			return cw.n, fmt.Errorf("write snapshot: %w", err)
		}
		count++
	}
	if err := it.Error(); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	tail := binary.BigEndian.AppendUint64([]byte{0}, count)
	if _, err := bw.Write(tail); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	if _, err := cw.Write(h.Sum(nil)); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	return cw.n, nil
}

// WriteSnapshot writes a snapshot of the store as of now to w and returns
// the Raft index it was taken at (see Snapshot.WriteTo).
func (l *Log) WriteSnapshot(w io.Writer) (uint64, error) {
	s, err := l.NewSnapshot()
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if _, err := s.WriteTo(w); err != nil {
		return 0, err
	}
	return s.applied, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// RestoreOptions control Restore.
type RestoreOptions struct {
	// ScratchDir holds the temporary file the stream is written to before
	// it replaces the store. Put it on the store's file system so the file
	// is linked into the store rather than copied. Default os.TempDir().
	ScratchDir string
	// SkipIfCovered makes Restore return early, reading only the stream's
	// header, when the store already holds the snapshot's state: its applied
	// index is at least the snapshot's and it published the snapshot's
	// checkpoint byte for byte. (The store then holds the same history, maybe
	// more of it.) A Raft node restarting from its own snapshot takes this
	// path.
	SkipIfCovered bool
}

// RestoreInfo describes what Restore did.
type RestoreInfo struct {
	// AppliedIndex and Checkpoint are those of the snapshot.
	AppliedIndex uint64
	Checkpoint   *Checkpoint
	// Skipped is set when SkipIfCovered applied and nothing was changed.
	Skipped bool
	// Keys and Bytes count the pairs and stream bytes read.
	Keys  uint64
	Bytes int64
}

// Restore replaces the whole content of the store with a snapshot written
// by Snapshot.WriteTo, atomically: readers and a crash see either the old
// store or the new one, never a mix.
//
// The stream is first checked entirely, while it is written to a temporary
// sstable: framing, key order, checksum, origin, that its checkpoint was
// signed by this log's key (re-signed here and compared byte for byte, as
// Ed25519 signatures are deterministic), and that the root recomputed from
// its tiles matches that checkpoint (the check Open makes). Only then is the
// sstable ingested into Pebble together with a range deletion of every key
// it held before (one atomic ingestion), and the in-memory tree, tile cache,
// dedup filter and latest checkpoint are rebuilt as Open does.
//
// Apply waits while Restore runs; readers do not, and keep reading the old
// content until the ingestion. Crash behaviour: before the ingestion the old
// store is intact and the temporary file is left in ScratchDir (Restore
// removes leftovers of earlier runs); the ingestion is one synced Pebble
// manifest edit; after it the new content is durable. If the rebuild after
// ingestion fails, the log closes itself (ErrClosed thereafter) and Open
// reports the problem.
func (l *Log) Restore(r io.Reader, o RestoreOptions) (*RestoreInfo, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	if l.closed.Load() {
		return nil, ErrClosed
	}
	start := time.Now()
	sr := &snapReader{br: bufio.NewReaderSize(r, 256<<10), h: sha256.New()}
	info, cp, err := l.readSnapshotHeader(sr)
	if err != nil {
		return nil, err
	}
	if o.SkipIfCovered && l.applied.Load() >= info.AppliedIndex {
		if have, err := l.get(u64Key(prefixCheckpoint, cp.Size)); err == nil && bytes.Equal(have, cp.Note) {
			info.Skipped = true
			info.Bytes = sr.n
			l.log.Info("snapshot restore skipped: the store already holds it", "applied_index", info.AppliedIndex, "size", cp.Size, "store_applied_index", l.applied.Load())
			return info, nil
		}
	}

	dir := o.ScratchDir
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restore snapshot: %w", err)
	}
	if old, _ := filepath.Glob(filepath.Join(dir, "ledger-restore-*.sst")); len(old) > 0 {
		for _, p := range old {
			os.Remove(p)
		}
	}
	path := filepath.Join(dir, "ledger-restore-"+strconv.FormatInt(time.Now().UnixNano(), 10)+".sst")
	defer os.Remove(path)
	if err := l.writeRestoreTable(sr, path, info, cp); err != nil {
		return nil, err
	}
	info.Bytes = sr.n

	if err := l.db.Ingest(context.Background(), []string{path}); err != nil {
		return nil, fmt.Errorf("restore snapshot: ingest: %w", err)
	}
	l.cacheMu.Lock()
	l.cache.reset()
	l.cacheMu.Unlock()
	l.applied.Store(0)
	l.lastTime = 0
	err = l.recover()
	if err == nil {
		l.filter, err = buildDigestFilter(l.db, l.latest.Load().Size)
	}
	if err != nil {
		l.log.Error("cannot rebuild the log after restoring a snapshot; closing it", "err", err)
		l.closed.Store(true)
		return nil, fmt.Errorf("restore snapshot: rebuild after ingestion: %w", err)
	}
	l.log.Info("snapshot restored", "applied_index", info.AppliedIndex, "size", cp.Size, "keys", info.Keys, "bytes", info.Bytes, "took", time.Since(start))
	return info, nil
}

// readSnapshotHeader reads and checks the header: magic, origin, and a
// checkpoint this log's key signed.
func (l *Log) readSnapshotHeader(sr *snapReader) (*RestoreInfo, *Checkpoint, error) {
	magic := make([]byte, len(snapshotMagic))
	if err := sr.full(magic); err != nil || string(magic) != snapshotMagic {
		return nil, nil, fmt.Errorf("%w: not a provledger snapshot (v1)", ErrBadSnapshot)
	}
	origin, err := sr.field(1 << 10)
	if err != nil {
		return nil, nil, err
	}
	if string(origin) != l.opts.Origin {
		return nil, nil, fmt.Errorf("%w: snapshot of log %q, this log is %q", ErrBadSnapshot, origin, l.opts.Origin)
	}
	var a [8]byte
	if err := sr.full(a[:]); err != nil {
		return nil, nil, err
	}
	note, err := sr.field(1 << 16)
	if err != nil {
		return nil, nil, err
	}
	cp, err := l.parseStoredCheckpoint(note)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if cp.Origin != l.opts.Origin {
		return nil, nil, fmt.Errorf("%w: checkpoint of log %q", ErrBadSnapshot, cp.Origin)
	}
	want, err := l.sign(cp.Size, cp.Hash)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(want.Note, note) {
		return nil, nil, fmt.Errorf("%w: its checkpoint of size %d was not signed by this log's key", ErrBadSnapshot, cp.Size)
	}
	return &RestoreInfo{AppliedIndex: binary.BigEndian.Uint64(a[:]), Checkpoint: cp}, cp, nil
}

// writeRestoreTable copies the stream's pairs into an sstable at path that
// also deletes every key the store holds now, and checks the stream.
func (l *Log) writeRestoreTable(sr *snapReader, path string, info *RestoreInfo, cp *Checkpoint) (err error) {
	f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), sstable.WriterOptions{
		TableFormat:  l.db.TableFormat(),
		FilterPolicy: bloom.FilterPolicy(10),
	})
	closed := false
	defer func() {
		if !closed {
			w.Close()
		}
	}()
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadSnapshot}, a...)...)
	}

	// The range deletion covers the store's current keys; the snapshot's
	// pairs, ingested at the same sequence number, are not deleted by it.
	lo, hi, err := l.keyBounds()
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if lo != nil {
		if err := w.DeleteRange(lo, append(hi, 0)); err != nil {
			return fmt.Errorf("restore snapshot: %w", err)
		}
	}

	// Tiles needed to recompute the checkpoint's root.
	need := map[string][]byte{}
	for _, id := range compact.RangeNodes(0, cp.Size, nil) {
		L, N, _, _ := tiles.NodeTile(id.Level, id.Index)
		need[string(tileKey(L, N))] = nil
	}
	cpKey := u64Key(prefixCheckpoint, cp.Size)
	sawCheckpoint, sawApplied := false, false
	var prev, k, v []byte
	for {
		klen, err := sr.uvarint()
		if err != nil {
			return err
		}
		if klen == 0 {
			break
		}
		vlen, err := sr.uvarint()
		if err != nil {
			return err
		}
		if klen > maxSnapshotKey || vlen > maxSnapshotValue {
			return fail("pair %d: key of %d bytes, value of %d", info.Keys, klen, vlen)
		}
		k = grow(k, int(klen))
		v = grow(v, int(vlen))
		if err := sr.full(k); err != nil {
			return err
		}
		if err := sr.full(v); err != nil {
			return err
		}
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fail("pair %d: keys out of order", info.Keys)
		}
		prev = append(prev[:0], k...)
		switch {
		case bytes.Equal(k, cpKey):
			if !bytes.Equal(v, cp.Note) {
				return fail("stored checkpoint of size %d differs from the header's", cp.Size)
			}
			sawCheckpoint = true
		case bytes.Equal(k, keyAppliedIndex):
			if len(v) != 8 || binary.BigEndian.Uint64(v) != info.AppliedIndex {
				return fail("stored applied index differs from the header's %d", info.AppliedIndex)
			}
			sawApplied = true
		case k[0] == prefixTile:
			if _, ok := need[string(k)]; ok {
				need[string(k)] = bytes.Clone(v)
			}
		}
		if err := w.Set(k, v); err != nil {
			return fmt.Errorf("restore snapshot: write table: %w", err)
		}
		info.Keys++
	}
	var c [8]byte
	if err := sr.full(c[:]); err != nil {
		return err
	}
	if n := binary.BigEndian.Uint64(c[:]); n != info.Keys {
		return fail("trailer counts %d pairs, the stream had %d", n, info.Keys)
	}
	sum := sr.h.Sum(nil)
	var digest [sha256.Size]byte
	if _, err := io.ReadFull(sr.br, digest[:]); err != nil {
		return fail("truncated before its checksum")
	}
	sr.n += sha256.Size
	if !bytes.Equal(sum, digest[:]) {
		return fail("checksum mismatch")
	}
	if !sawCheckpoint {
		return fail("no stored checkpoint of size %d", cp.Size)
	}
	if sawApplied != (info.AppliedIndex != 0) {
		return fail("applied index %d not stored", info.AppliedIndex)
	}
	// Recompute the root from the snapshot's tiles, as Open does.
	tc, err := newTileCache(len(need)+1, func(id tileID) (*tileNodes, error) {
		b := need[string(tileKey(id.level, id.index))]
		if b == nil {
			return nil, fmt.Errorf("%w: tile %d/%d missing", ErrNotFound, id.level, id.index)
		}
		return decodeTile(b)
	})
	if err != nil {
		return err
	}
	if err := (&Log{cache: tc}).rebuildTree(cp); err != nil {
		return fail("%v", err)
	}
	closed = true
	if err := w.Close(); err != nil {
		return fmt.Errorf("restore snapshot: write table: %w", err)
	}
	return nil
}

// keyBounds returns the store's first and last keys (nil if it is empty).
func (l *Log) keyBounds() (lo, hi []byte, err error) {
	it, err := l.db.NewIter(nil)
	if err != nil {
		return nil, nil, err
	}
	defer it.Close()
	if it.First() {
		lo = bytes.Clone(it.Key())
	}
	if it.Last() {
		hi = bytes.Clone(it.Key())
	}
	return lo, hi, it.Error()
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// snapReader reads a snapshot stream, hashing what it consumes.
type snapReader struct {
	br *bufio.Reader
	h  hash.Hash
	n  int64
	b1 [1]byte
}

func (s *snapReader) ReadByte() (byte, error) {
	c, err := s.br.ReadByte()
	if err != nil {
		return 0, err
	}
	s.b1[0] = c
	s.h.Write(s.b1[:])
	s.n++
	return c, nil
}

func (s *snapReader) full(p []byte) error {
	n, err := io.ReadFull(s.br, p)
	s.h.Write(p[:n])
	s.n += int64(n)
	if err != nil {
		return fmt.Errorf("%w: truncated at byte %d: %v", ErrBadSnapshot, s.n, err)
	}
	return nil
}

func (s *snapReader) uvarint() (uint64, error) {
	x, err := binary.ReadUvarint(s)
	if err != nil {
		return 0, fmt.Errorf("%w: at byte %d: %v", ErrBadSnapshot, s.n, err)
	}
	return x, nil
}

func (s *snapReader) field(limit uint64) ([]byte, error) {
	n, err := s.uvarint()
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: header field of %d bytes at byte %d", ErrBadSnapshot, n, s.n)
	}
	b := make([]byte, n)
	return b, s.full(b)
}
