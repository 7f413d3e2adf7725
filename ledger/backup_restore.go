package ledger

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// ErrRestoreTarget: RestoreBackup was pointed at a directory that already
// holds something (it restores only into an empty or missing directory).
var ErrRestoreTarget = errors.New("restore target is not empty")

// RestoreBackupOptions control RestoreBackup.
type RestoreBackupOptions struct {
	// Log are the options of the restored log (Origin and Signer are
	// required; the Indexer and Observer are not used while restoring).
	Log Options
	// LogKey is this node's log verifier key (checkpoint.VerifierKey of
	// the public half of Log.Signer's key). The backup's header must name
	// the same key.
	LogKey string
}

// RestoredBackup describes a completed RestoreBackup.
type RestoredBackup struct {
	// Checkpoint is the backup's signed checkpoint, which the restored log
	// now serves as its latest.
	Checkpoint *Checkpoint
	// Keys and Bytes count the store's pairs and the file's bytes.
	Keys  uint64
	Bytes int64
	// Took is the wall time of the restore and its checks.
	Took time.Duration
}

// RestoreBackup rebuilds a log in dir, which must be missing or empty, from
// the backup file at path, and checks it before anything is left in dir:
//
//   - the header's log key equals opts.LogKey and signed the header's
//     checkpoint; the origin is opts.Log.Origin;
//   - the snapshot stream is well formed, complete (no byte missing or
//     extra) and matches its SHA-256, its checkpoint is the header's and
//     was signed by opts.Log.Signer's key, and the root recomputed from its
//     tiles is the checkpoint's (Log.Restore);
//   - the root recomputed from the entry records themselves is the
//     checkpoint's, and every stored tile, leaf index, envelope index and
//     envelope agrees with the records (Log.Verify).
//
// The log is built in a sibling directory (dir + ".restoring") and renamed
// to dir only once every check passed; on any failure the sibling is
// removed, so dir never holds a partial restore. The restored log begins a
// new Raft history: the backup's applied Raft index is not kept.
//
// Errors wrap ErrRestoreTarget, ErrBadBackup or ErrBadSnapshot (a damaged
// or foreign backup), ErrCorrupt (data that contradicts the signed
// checkpoint), or an I/O error.
func RestoreBackup(dir, path string, opts RestoreBackupOptions) (*RestoredBackup, error) {
	start := time.Now()
	if err := opts.Log.Validate(); err != nil {
		return nil, err
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%w: %s holds %d files; restore into an empty or new directory", ErrRestoreTarget, dir, len(ents))
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("restore backup: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("restore backup: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("restore backup: %w", err)
	}
	br := bufio.NewReaderSize(f, 256<<10)
	hdr, err := ReadBackupHeader(br)
	if err != nil {
		return nil, err
	}
	if hdr.LogKey != opts.LogKey {
		return nil, fmt.Errorf("%w: the backup was signed by log key %q, this node's log key is %q: restore with the key of the backed-up log (--log-key)", ErrBadBackup, hdr.LogKey, opts.LogKey)
	}
	if hdr.Checkpoint.Origin != opts.Log.Origin {
		return nil, fmt.Errorf("%w: the backup is of log %q, this node's origin is %q", ErrBadBackup, hdr.Checkpoint.Origin, opts.Log.Origin)
	}

	tmp := dir + ".restoring"
	if err := os.RemoveAll(tmp); err != nil { // a crashed earlier attempt
		return nil, fmt.Errorf("restore backup: remove leftover %s: %w", tmp, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	lo := opts.Log
	lo.Indexer, lo.Observer = nil, nil
	l, err := Open(tmp, lo)
	if err != nil {
		return nil, fmt.Errorf("restore backup: %w", err)
	}
	closeLog := func() error {
		if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
			return err
		}
		return nil
	}
	info, err := l.Restore(br, RestoreOptions{ScratchDir: tmp})
	if err == nil {
		err = checkRestored(l, hdr, info, st.Size())
	}
	if err == nil {
		err = l.Verify()
	}
	if err == nil {
		err = l.forgetAppliedIndex()
	}
	if err != nil {
		closeLog()
		return nil, fmt.Errorf("restore backup %s: %w", path, err)
	}
	if err := closeLog(); err != nil {
		return nil, fmt.Errorf("restore backup: close: %w", err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("restore backup: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("restore backup: %w", err)
	}
	done = true
	if d, err := os.Open(filepath.Dir(dir)); err == nil {
		d.Sync()
		d.Close()
	}
	return &RestoredBackup{Checkpoint: hdr.Checkpoint, Keys: info.Keys, Bytes: st.Size(), Took: time.Since(start)}, nil
}

// checkRestored checks that the snapshot held exactly the header's
// checkpoint as its latest and that the file had nothing after it.
func checkRestored(l *Log, hdr *BackupHeader, info *RestoreInfo, size int64) error {
	if string(info.Checkpoint.Note) != string(hdr.Checkpoint.Note) {
		return fmt.Errorf("%w: the snapshot's checkpoint (size %d) is not the header's (size %d)", ErrBadBackup, info.Checkpoint.Size, hdr.Checkpoint.Size)
	}
	if got := l.Latest(); string(got.Note) != string(hdr.Checkpoint.Note) {
		return fmt.Errorf("%w: the snapshot holds a checkpoint of size %d beyond the header's %d", ErrBadBackup, got.Size, hdr.Checkpoint.Size)
	}
	if end := hdr.Len + info.Bytes; end != size {
		return fmt.Errorf("%w: the file has %d bytes after the snapshot's checksum", ErrBadBackup, size-end)
	}
	return nil
}

// forgetAppliedIndex drops the Raft applied index of a restored store: it
// starts a new Raft history, whose indexes begin again at 1.
func (l *Log) forgetAppliedIndex() error {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	if err := l.db.Delete(keyAppliedIndex, pebble.Sync); err != nil {
		return fmt.Errorf("reset applied index: %w", err)
	}
	l.applied.Store(0)
	return nil
}
