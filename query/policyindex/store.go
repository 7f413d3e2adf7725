package policyindex

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Key layout: under the query indexes' prefix 'q' (docs/ledger.md), tag
// 'P' for policy.
//
//	qPc              → next index to index (u64, big-endian)
//	qPe <index u64>  → Entry JSON
const (
	prefix   = 'q'
	tag      = 'P'
	tagEntry = 'e'
)

var cursorKey = []byte{prefix, tag, 'c'}

func entryKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefix, tag, tagEntry}, index)
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func encodeEntry(e Entry) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("policyindex: encode entry %d: %w", e.Index, err)
	}
	return b, nil
}

func decodeEntry(k, v []byte) (Entry, error) {
	var e Entry
	if len(k) != 3+8 {
		return e, fmt.Errorf("policyindex: malformed key %x", k)
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return e, fmt.Errorf("policyindex: stored entry %x: %w", k, err)
	}
	if e.Index != binary.BigEndian.Uint64(k[3:]) {
		return e, fmt.Errorf("policyindex: stored entry %x names index %d", k, e.Index)
	}
	return e, nil
}

func readCursor(db *pebble.DB) (uint64, error) {
	v, closer, err := db.Get(cursorKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("policyindex: read cursor: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("policyindex: malformed cursor %x", v)
	}
	return binary.BigEndian.Uint64(v), nil
}
