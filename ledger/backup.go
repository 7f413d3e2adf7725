package ledger

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/crypto/checkpoint"
)

// Backup file format, version 1: a small header naming the log key and the
// signed checkpoint the backup matches, followed by the snapshot stream of
// snapshot.go, unchanged (one format for Raft snapshots and backups):
//
//	magic       "provledger backup v1\n"
//	log key     uvarint length, bytes: the log's C2SP note verifier key
//	            ("origin+hash+base64"), as provd prints it
//	checkpoint  uvarint length, bytes: the signed checkpoint note
//	snapshot    the snapshot stream (see Snapshot.WriteTo), whose own
//	            checkpoint must be this one byte for byte
//
// Every header byte is checked on restore: the key must equal the restoring
// node's and verify the checkpoint; the checkpoint must equal the
// snapshot's, whose SHA-256 covers the rest. The digest is not keyed: what
// makes a backup trustworthy is that the root recomputed from its entries
// equals the root the log key signed (RestoreBackup checks it).
const backupMagic = "provledger backup v1\n"

const (
	maxBackupKey  = 1 << 10
	maxBackupNote = 1 << 16
)

// ErrBadBackup: a backup file that is malformed, truncated, altered, or
// not of this log and key. The message names what failed.
var ErrBadBackup = errors.New("bad ledger backup")

// BackupHeader is what a backup says about itself before its data.
type BackupHeader struct {
	// LogKey is the log's note verifier key ("origin+hash+base64").
	LogKey string
	// Checkpoint is the signed checkpoint the backup's data matches; its
	// signature was verified with LogKey.
	Checkpoint *Checkpoint
	// Len is the header's length in bytes (the snapshot stream follows).
	Len int64
}

// Backup is a consistent view of the log taken for a backup. Release it
// with Close.
type Backup struct {
	snap   *Snapshot
	logKey string
}

// NewBackup captures the store for a backup. logKey is the log's note
// verifier key (checkpoint.VerifierKey); it must verify the latest
// checkpoint, so that a backup never names a key that did not sign it.
//
// The view is taken once every batch already committed has published its
// checkpoint (a pipelined batch still syncing is waited for), so the
// backup's latest stored checkpoint is the one its header names.
func (l *Log) NewBackup(logKey string) (*Backup, error) {
	if len(logKey) > maxBackupKey {
		return nil, fmt.Errorf("backup: log key of %d bytes", len(logKey))
	}
	v, err := note.NewVerifier(logKey)
	if err != nil {
		return nil, fmt.Errorf("backup: log key %q: %w", logKey, err)
	}
	if l.closed.Load() {
		return nil, ErrClosed
	}
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	for l.pending.Load() > 0 && !l.closed.Load() {
		time.Sleep(100 * time.Microsecond)
	}
	if l.closed.Load() {
		return nil, ErrClosed
	}
	cp := l.latest.Load()
	if _, err := checkpoint.Open(cp.Note, v); err != nil {
		return nil, fmt.Errorf("backup: log key %q does not verify the log's checkpoint of size %d: %w", logKey, cp.Size, err)
	}
	s := l.newSnapshotLocked(cp)
	return &Backup{snap: s, logKey: logKey}, nil
}

// Checkpoint is the signed checkpoint the backup matches.
func (b *Backup) Checkpoint() *Checkpoint { return b.snap.cp }

// AppliedIndex is the Raft index of the last batch in the backup (0 for a
// single node).
func (b *Backup) AppliedIndex() uint64 { return b.snap.applied }

// LogKey is the log's note verifier key written in the header.
func (b *Backup) LogKey() string { return b.logKey }

// Close releases the view.
func (b *Backup) Close() error { return b.snap.Close() }

// WriteTo streams the backup (header, then snapshot) to w and returns the
// number of bytes written.
func (b *Backup) WriteTo(w io.Writer) (int64, error) {
	hdr := appendBackupHeader(nil, b.logKey, b.snap.cp.Note)
	n, err := w.Write(hdr)
	if err != nil {
		return int64(n), fmt.Errorf("write backup header: %w", err)
	}
	m, err := b.snap.WriteTo(w)
	return int64(n) + m, err
}

func appendBackupHeader(b []byte, logKey string, cpNote []byte) []byte {
	b = append(b, backupMagic...)
	b = binary.AppendUvarint(b, uint64(len(logKey)))
	b = append(b, logKey...)
	b = binary.AppendUvarint(b, uint64(len(cpNote)))
	return append(b, cpNote...)
}

// ReadBackupHeader reads and checks a backup's header from r: the format,
// that the log key parses, and that it signed the checkpoint. It reads
// exactly the header's bytes (r is wrapped in a bufio.Reader unless it is
// an io.ByteReader already; then the snapshot stream follows in it).
// Errors wrap ErrBadBackup.
func ReadBackupHeader(r io.Reader) (*BackupHeader, error) {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = bufio.NewReader(r)
		r = br.(io.Reader)
	}
	cr := &countByteReader{r: r, br: br}
	magic := make([]byte, len(backupMagic))
	if _, err := io.ReadFull(cr, magic); err != nil || string(magic) != backupMagic {
		return nil, fmt.Errorf("%w: not a provledger backup (v1): the file does not start with %q", ErrBadBackup, backupMagic[:len(backupMagic)-1])
	}
	key, err := cr.field("log key", maxBackupKey)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(string(key))
	if err != nil {
		return nil, fmt.Errorf("%w: header log key %q: %v", ErrBadBackup, key, err)
	}
	n, err := cr.field("checkpoint", maxBackupNote)
	if err != nil {
		return nil, err
	}
	c, err := checkpoint.Open(n, v)
	if err != nil {
		return nil, fmt.Errorf("%w: header checkpoint is not signed by the header's log key %q: %v", ErrBadBackup, key, err)
	}
	return &BackupHeader{LogKey: string(key), Checkpoint: &Checkpoint{Checkpoint: c, Note: n}, Len: cr.n}, nil
}

// countByteReader counts the bytes read through it.
type countByteReader struct {
	r  io.Reader
	br io.ByteReader
	n  int64
}

func (c *countByteReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countByteReader) ReadByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func (c *countByteReader) field(what string, limit uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(c)
	if err != nil {
		return nil, fmt.Errorf("%w: header %s length at byte %d: %v", ErrBadBackup, what, c.n, err)
	}
	if n == 0 || n > limit {
		return nil, fmt.Errorf("%w: header %s of %d bytes (want 1..%d)", ErrBadBackup, what, n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, fmt.Errorf("%w: truncated in the header's %s: %v", ErrBadBackup, what, err)
	}
	return bytes.Clone(b), nil
}
