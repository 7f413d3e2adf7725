package ledger

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// layoutVersion is the key layout this code writes (keyLayout):
//
//	1: e<digest> → index ‖ envelope (index only once redacted)
//	2: e<digest> → index, v<index> → envelope (absent once redacted)
//
// Layout 2 stores envelopes in index order, so a scan of a range of the
// log (the anomaly scanner, an audit's envelope bundles, a follower's
// catch-up) reads them sequentially instead of one random blob block per
// envelope.
const layoutVersion = 2

// migrateBatch is how many envelopes one migration batch moves.
const migrateBatch = 4096

// migrateLayout brings a store to layoutVersion. A store without the
// layout key and without any envelope is new: it is marked. A layout-1
// store has its envelopes moved from e<digest> to v<index> in batches,
// each batch atomic (the envelope moves and its e value shrinks to the
// index together), so a crash in the middle leaves a store the next Open
// finishes migrating; the layout key is written, synced, last. A store of
// a later layout is refused.
func (l *Log) migrateLayout() error {
	v, err := l.get(keyLayout)
	switch {
	case err == nil:
		if len(v) != 8 {
			return fmt.Errorf("%w: layout key has %d bytes", ErrCorrupt, len(v))
		}
		if n := beUint64(v); n != layoutVersion {
			return fmt.Errorf("%w: the store has key layout %d; this provd reads layout %d: run a provd at least as new as the one that wrote it", ErrCorrupt, n, layoutVersion)
		}
		return nil
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("read layout: %w", err)
	}
	moved, err := l.migrateEnvelopes()
	if err != nil {
		return fmt.Errorf("migrate envelopes to layout %d: %w", layoutVersion, err)
	}
	if err := l.db.Set(keyLayout, u64Value(layoutVersion), pebble.Sync); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	if moved > 0 {
		l.log.Info("envelopes migrated to the index-ordered layout", "envelopes", moved, "layout", layoutVersion)
	}
	return nil
}

// migrateEnvelopes moves every layout-1 envelope (an e value longer than
// the index) to its v key, in one pass over the e keys (a Pebble iterator
// reads the store as of its creation, so the batches it commits do not
// disturb it), committing every migrateBatch envelopes.
func (l *Log) migrateEnvelopes() (int, error) {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEnvelope}, UpperBound: []byte{prefixEnvelope + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	b := l.db.NewBatch()
	defer func() { b.Close() }()
	moved, pending := 0, 0
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return moved, err
		}
		if len(v) < 8 {
			return moved, fmt.Errorf("%w: envelope %x value has %d bytes", ErrCorrupt, it.Key()[1:], len(v))
		}
		if len(v) == 8 {
			continue // migrated, or redacted
		}
		idx := beUint64(v[:8])
		if err := b.Set(u64Key(prefixEnvelopeAt, idx), v[8:], nil); err != nil {
			return moved, err
		}
		if err := b.Set(it.Key(), v[:8], nil); err != nil {
			return moved, err
		}
		if pending++; pending == migrateBatch {
			if err := b.Commit(pebble.NoSync); err != nil {
				return moved, err
			}
			moved += pending
			pending = 0
			b.Close()
			b = l.db.NewBatch()
			if moved%(16*migrateBatch) == 0 {
				l.log.Info("migrating envelopes to the index-ordered layout", "moved", moved)
			}
		}
	}
	if err := it.Error(); err != nil {
		return moved, err
	}
	if pending > 0 {
		if err := b.Commit(pebble.NoSync); err != nil {
			return moved, err
		}
		moved += pending
	}
	return moved, nil
}
