package fsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/raft"

	"github.com/provledger/provledger/ledger"
)

// refMagic starts a snapshot reference: what Persist writes instead of the
// store's content (see snapshotRef).
const refMagic = "provledger snapshot reference v1\n"

// A snapshot reference is what this node persists into raft's snapshot
// store: refMagic, the applied Raft index (u64 big-endian), then the
// ledger's snapshot header (ledger.Snapshot.WriteHeaderTo: origin, applied
// index, checkpoint), and no store content.
//
// Why: a full snapshot streams every key of the store (≈ 6.6 µs of CPU and
// 1.6 KB of disk per stored entry, on every node, once per
// SnapshotThreshold logs), a cost per appended entry that grows with the
// log. Raft needs a local snapshot only to truncate its log, and Persist
// syncs the ledger first, so the ledger itself holds everything the
// snapshot stands for; the content is needed only when the snapshot is
// sent to a node that lacks it.
//
//   - Restore of a reference (raft restores its newest snapshot on start)
//     checks that the ledger holds it (applied index at least the
//     reference's, and its checkpoint byte for byte) and reads nothing else;
//     a ledger that does not hold it (its data directory was lost while the
//     Raft state was kept) refuses it, and the node does not start.
//   - Sending (raft's InstallSnapshot): ExpandSnapshot replaces a reference
//     with the full stream of the ledger as it is at that moment. Its
//     applied index may be beyond the snapshot's Raft index; that is safe
//     because applying is idempotent: the receiver restores the newer
//     state, and the batches raft then sends after the snapshot index that
//     the state already holds are skipped by the ledger.
func (f *FSM) persistRef(s *ledger.Snapshot, w io.Writer) (int64, error) {
	var hdr [len(refMagic) + 8]byte
	copy(hdr[:], refMagic)
	binary.BigEndian.PutUint64(hdr[len(refMagic):], s.AppliedIndex())
	n, err := w.Write(hdr[:])
	if err != nil {
		return int64(n), err
	}
	m, err := s.WriteHeaderTo(w)
	return int64(n) + m, err
}

// readRef reads a reference's prefix from br if it starts with one:
// ok tells whether it did, index is the reference's applied Raft index.
func readRef(br *bufio.Reader) (index uint64, ok bool, err error) {
	head, err := br.Peek(len(refMagic))
	if err != nil || string(head) != refMagic {
		return 0, false, nil // not a reference: a full stream, or garbage the ledger refuses
	}
	var hdr [len(refMagic) + 8]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, true, fmt.Errorf("%w: snapshot reference truncated", ledger.ErrBadSnapshot)
	}
	return binary.BigEndian.Uint64(hdr[len(refMagic):]), true, nil
}

// ErrNotHeld is returned by Restore for a snapshot reference (this node's own
// snapshot) that the ledger does not hold: its data was lost or replaced
// while the Raft state was kept. Empty the node's data directory and let it
// rejoin: it then catches up with a full snapshot from the leader.
var ErrNotHeld = errors.New("this node's snapshot reference is not held by its ledger")

// CheckNewestSnapshot returns an error wrapping ErrNotHeld, saying what
// to do, when the newest snapshot in store is a reference this node's
// ledger does not hold. Call it before raft.NewRaft: raft would otherwise
// fail with "failed to load any existing snapshots", or fall back to an
// older full snapshot whose following logs it has truncated and panic. A
// reference the ledger holds, a full snapshot (one received from a
// leader) or no snapshot at all is fine (nil); the check reads the
// reference's header only and changes nothing.
func (f *FSM) CheckNewestSnapshot(store raft.SnapshotStore) error {
	metas, err := store.List() // newest first
	if err != nil {
		return fmt.Errorf("list raft snapshots: %w", err)
	}
	if len(metas) == 0 {
		return nil
	}
	_, rc, err := store.Open(metas[0].ID)
	if err != nil {
		return fmt.Errorf("open raft snapshot %s: %w", metas[0].ID, err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	index, isRef, err := readRef(br)
	if err != nil {
		return fmt.Errorf("raft snapshot %s: %w", metas[0].ID, err)
	}
	if !isRef {
		return nil
	}
	if err := f.checkHeld(br, index); err != nil {
		return fmt.Errorf("raft snapshot %s: %w", metas[0].ID, err)
	}
	return nil
}

// checkHeld finishes reading a reference at raft index index (its prefix
// already read from br): nil when the ledger holds it (it then reads only
// the ledger's snapshot header and changes nothing), else an error
// wrapping ErrNotHeld that says what to do.
func (f *FSM) checkHeld(br *bufio.Reader, index uint64) error {
	info, err := f.log.Restore(br, ledger.RestoreOptions{ScratchDir: f.opts.ScratchDir, SkipIfCovered: true})
	if err == nil && info.Skipped {
		return nil
	}
	why := "its data was lost or replaced while the raft directory was kept"
	if err != nil {
		why += "; " + err.Error()
	}
	return fmt.Errorf("snapshot reference at raft index %d: %w: the ledger is at raft index %d (%s): %s",
		index, ErrNotHeld, f.log.AppliedIndex(), why, notHeldRemedy)
}

// notHeldRemedy is what an ErrNotHeld message tells the operator to do.
const notHeldRemedy = "stop the node, empty its whole data directory and let it rejoin the cluster; it then receives a full snapshot from the leader"

// ExpandSnapshot returns what raft should send for a snapshot opened from
// the snapshot store: the data itself when it is a full stream (a snapshot
// this node received from a leader), or, for a reference this node
// persisted, the full stream of the ledger as it is now, written to an
// unlinked temporary file in ScratchDir (its size must be known before it
// is sent). Call done when the returned reader is no longer needed.
func (f *FSM) ExpandSnapshot(data io.Reader, size int64) (r io.Reader, n int64, done func(), err error) {
	br := bufio.NewReaderSize(data, 64<<10)
	index, isRef, err := readRef(br)
	if err != nil {
		return nil, 0, nil, err
	}
	if !isRef {
		return br, size, func() {}, nil
	}
	s, err := f.log.NewSnapshot()
	if err != nil {
		return nil, 0, nil, fmt.Errorf("expand snapshot reference at raft index %d: %w", index, err)
	}
	defer s.Close()
	if s.AppliedIndex() < index {
		return nil, 0, nil, fmt.Errorf("expand snapshot reference at raft index %d: the ledger is at %d", index, s.AppliedIndex())
	}
	dir := f.opts.ScratchDir
	if dir == "" {
		dir = os.TempDir()
	}
	tmp, err := os.CreateTemp(dir, "snapshot-send-*")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("expand snapshot reference: %w", err)
	}
	os.Remove(tmp.Name()) // the open file lives on; nothing is left behind by a crash
	bw := bufio.NewWriterSize(tmp, 1<<20)
	n, err = s.WriteTo(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		tmp.Close()
		return nil, 0, nil, fmt.Errorf("expand snapshot reference at raft index %d: %w", index, err)
	}
	f.lg.Info("snapshot reference expanded for sending", "raft_index", index, "ledger_applied_index", s.AppliedIndex(), "size", s.Checkpoint().Size, "bytes", n)
	return tmp, n, func() { tmp.Close() }, nil
}
