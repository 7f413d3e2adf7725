package ledger

import (
	"encoding/binary"
	"fmt"
	"io"
)

// WriteHeaderTo writes only the header of the stream WriteTo writes: magic,
// origin, applied Raft index and the latest signed checkpoint, without the
// store's keys. It costs nothing however large the store is.
//
// A Raft node persists its own snapshots this way (raft/fsm): the store
// itself already holds the state (it was synced first), so a Restore with
// SkipIfCovered into the same store reads this header and returns; any
// other Restore of it fails on the missing body and changes nothing
// (ErrBadSnapshot). The full stream is written with WriteTo only when a
// snapshot must be sent to another node.
func (s *Snapshot) WriteHeaderTo(w io.Writer) (int64, error) {
	n, err := w.Write(s.header())
	if err != nil {
		return int64(n), fmt.Errorf("write snapshot header: %w", err)
	}
	return int64(n), nil
}

// header is the start of the snapshot stream: magic, origin, applied Raft
// index and the latest signed checkpoint note.
func (s *Snapshot) header() []byte {
	var hdr []byte
	hdr = append(hdr, snapshotMagic...)
	hdr = binary.AppendUvarint(hdr, uint64(len(s.origin)))
	hdr = append(hdr, s.origin...)
	hdr = binary.BigEndian.AppendUint64(hdr, s.applied)
	hdr = binary.AppendUvarint(hdr, uint64(len(s.cp.Note)))
	return append(hdr, s.cp.Note...)
}
