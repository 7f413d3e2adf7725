package ledger

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"

	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/ledger/tiles"
)

// Verify checks the whole store against the latest signed checkpoint, from
// the entries up: it recomputes the Merkle tree from every entry record
// and checks that its root is the checkpoint's and that every stored tile
// holds the recomputed hashes; for every entry, that its leaf hash and its
// envelope digest map back to its index and that a stored (unredacted)
// envelope hashes to its digest. A store that passes serves proofs and
// entries that verify against the checkpoint. It reads everything, so it
// takes time in proportion to the log; restore runs it before a node serves
// (RestoreBackup). Errors wrap ErrCorrupt and name the first discrepancy.
//
// Indexers' keys (lineage, scanner) are not checked: they are derived data
// the ledger does not know.
func (l *Log) Verify() error {
	cp := l.latest.Load()
	tree := rangeFactory.NewEmptyRange(0)
	tv := &tileVerifier{l: l, cur: map[uint8]*tileCheck{}}
	visit := func(id compact.NodeID, hash []byte) { tv.visit(id, hash) }
	err := l.Records(0, cp.Size, func(i uint64, rec []byte) error {
		r, err := record.Unmarshal(rec)
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrCorrupt, i, err)
		}
		leaf := proof.LeafHash(rec)
		if err := l.checkIndex(hashKey(prefixLeaf, leaf), i, "leaf hash"); err != nil {
			return err
		}
		if err := l.checkEnvelope(r.EnvelopeDigest, i); err != nil {
			return err
		}
		if err := tree.Append(leaf[:], visit); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		return tv.err
	})
	if err != nil {
		return fmt.Errorf("verify log of size %d: %w", cp.Size, err)
	}
	if tv.err != nil {
		return fmt.Errorf("verify log of size %d: %w", cp.Size, tv.err)
	}
	root := proof.EmptyRoot()
	if cp.Size > 0 {
		r, err := tree.GetRootHash(nil)
		if err != nil {
			return fmt.Errorf("verify log of size %d: %w", cp.Size, err)
		}
		copy(root[:], r)
	}
	if root != cp.Hash {
		return fmt.Errorf("%w: the root recomputed from the %d entries, %x, is not the signed checkpoint's %x", ErrCorrupt, cp.Size, root, cp.Hash)
	}
	return nil
}

// checkIndex checks that key maps to index i.
func (l *Log) checkIndex(key []byte, i uint64, what string) error {
	v, err := l.get(key)
	if err != nil {
		return fmt.Errorf("%w: entry %d: %s %x: %v", ErrCorrupt, i, what, key[1:], err)
	}
	if len(v) < 8 || beUint64(v[:8]) != i {
		return fmt.Errorf("%w: entry %d: %s %x maps to another index", ErrCorrupt, i, what, key[1:])
	}
	return nil
}

// checkEnvelope checks entry i's envelope: indexed at i, and either
// redacted (index only) or hashing to its digest.
func (l *Log) checkEnvelope(digest [32]byte, i uint64) error {
	v, err := l.get(hashKey(prefixEnvelope, digest))
	if err != nil {
		return fmt.Errorf("%w: entry %d: envelope %x: %v", ErrCorrupt, i, digest, err)
	}
	if len(v) != 8 || beUint64(v) != i {
		return fmt.Errorf("%w: entry %d: envelope %x maps to another index", ErrCorrupt, i, digest)
	}
	env, err := l.get(u64Key(prefixEnvelopeAt, i))
	if errors.Is(err, ErrNotFound) {
		return nil // redacted
	}
	if err != nil {
		return fmt.Errorf("%w: entry %d: envelope: %v", ErrCorrupt, i, err)
	}
	if sha256.Sum256(env) != digest {
		return fmt.Errorf("%w: entry %d: the stored envelope does not hash to the record's digest %x", ErrCorrupt, i, digest)
	}
	return nil
}

// tileVerifier compares the nodes of a recomputed tree with the stored
// tiles: a node at tree level 8·L is hash number index%256 of tile
// (L, index/256).
type tileVerifier struct {
	l   *Log
	cur map[uint8]*tileCheck
	err error
}

type tileCheck struct {
	index  uint64
	hashes []byte
}

func (t *tileVerifier) visit(id compact.NodeID, hash []byte) {
	if t.err != nil || id.Level%tiles.Height != 0 {
		return
	}
	L := uint8(id.Level / tiles.Height)
	N, pos := id.Index/tiles.Width, int(id.Index%tiles.Width)
	c := t.cur[L]
	if c == nil || c.index != N {
		v, err := t.l.get(tileKey(L, N))
		if err != nil {
			t.err = fmt.Errorf("%w: tile %d/%d: %v", ErrCorrupt, L, N, err)
			return
		}
		c = &tileCheck{index: N, hashes: v}
		t.cur[L] = c
	}
	off := pos * tiles.HashSize
	if len(c.hashes) < off+tiles.HashSize || !bytes.Equal(c.hashes[off:off+tiles.HashSize], hash) {
		t.err = fmt.Errorf("%w: tile %d/%d: hash %d is not the one recomputed from the entries", ErrCorrupt, L, N, pos)
	}
}
