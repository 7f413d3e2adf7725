package ledger

import (
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/ledger/tiles"
)

// tileNodes is one tile with its interior nodes: level[h] holds the hashes of
// tree level 8·L+h covered by the tile, left to right. Only level[0] is
// stored on disk; the rest is recomputed on load, so proofs need no
// rehashing while the tile is cached.
type tileNodes struct {
	level [tiles.Height][][32]byte
}

func (t *tileNodes) width() int { return len(t.level[0]) }

// encode returns the stored form: the level-0 hashes, concatenated.
func (t *tileNodes) encode() []byte {
	b := make([]byte, 0, len(t.level[0])*tiles.HashSize)
	for _, h := range t.level[0] {
		b = append(b, h[:]...)
	}
	return b
}

// decodeTile rebuilds a tile and its interior nodes from its stored form.
func decodeTile(b []byte) (*tileNodes, error) {
	if len(b) == 0 || len(b)%tiles.HashSize != 0 || len(b) > tiles.Width*tiles.HashSize {
		return nil, fmt.Errorf("%w: stored tile has %d bytes", ErrCorrupt, len(b))
	}
	t := &tileNodes{}
	n := len(b) / tiles.HashSize
	t.level[0] = make([][32]byte, n, tiles.Width)
	for i := range n {
		copy(t.level[0][i][:], b[i*tiles.HashSize:])
	}
	for h := 1; h < tiles.Height; h++ {
		below := t.level[h-1]
		cur := make([][32]byte, len(below)/2, tiles.Width>>h)
		for i := range cur {
			cur[i] = proof.HashChildren(below[2*i], below[2*i+1])
		}
		t.level[h] = cur
	}
	return t, nil
}

type tileID struct {
	level uint8
	index uint64
}

// tileCache holds the right-edge tiles (one per level, growing) and an LRU of
// full tiles. It is not safe for concurrent use; the Log guards it.
type tileCache struct {
	edge map[uint8]*edgeTile
	full *lru.Cache[tileID, *tileNodes]
	load func(tileID) (*tileNodes, error)
}

type edgeTile struct {
	index uint64
	nodes *tileNodes
}

func newTileCache(size int, load func(tileID) (*tileNodes, error)) (*tileCache, error) {
	c, err := lru.New[tileID, *tileNodes](size)
	if err != nil {
		return nil, err
	}
	return &tileCache{edge: map[uint8]*edgeTile{}, full: c, load: load}, nil
}

// get returns tile id, loading it on a miss.
func (c *tileCache) get(id tileID) (*tileNodes, error) {
	if e, ok := c.edge[id.level]; ok && e.index == id.index {
		return e.nodes, nil
	}
	if t, ok := c.full.Get(id); ok {
		return t, nil
	}
	t, err := c.load(id)
	if err != nil {
		return nil, err
	}
	if t.width() == tiles.Width {
		c.full.Add(id, t)
	}
	return t, nil
}

// node returns the hash of the complete tree node (level, index).
func (c *tileCache) node(level uint, index uint64) ([32]byte, error) {
	L, N, h, pos := tiles.NodeTile(level, index)
	t, err := c.get(tileID{L, N})
	if err != nil {
		return [32]byte{}, fmt.Errorf("node (%d, %d): %w", level, index, err)
	}
	if pos >= len(t.level[h]) {
		return [32]byte{}, fmt.Errorf("%w: node (%d, %d) missing from tile %d/%d of width %d", ErrCorrupt, level, index, L, N, t.width())
	}
	return t.level[h][pos], nil
}

// set records a newly completed node and returns the tile it went into.
// Nodes arrive in order within each level, as compact.Range reports them.
func (c *tileCache) set(level uint, index uint64, hash [32]byte) (tileID, *tileNodes, error) {
	L, N, h, pos := tiles.NodeTile(level, index)
	id := tileID{L, N}
	e, ok := c.edge[L]
	if !ok || e.index != N {
		var t *tileNodes
		if pos == 0 && h == 0 {
			t = &tileNodes{} // a new tile starts with its first leaf
		} else {
			var err error
			if t, err = c.get(id); err != nil {
				return id, nil, err
			}
		}
		e = &edgeTile{index: N, nodes: t}
		c.edge[L] = e
	}
	t := e.nodes
	if pos != len(t.level[h]) {
		return id, nil, fmt.Errorf("%w: node (%d, %d) out of order in tile %d/%d (have %d at sublevel %d)", ErrCorrupt, level, index, L, N, len(t.level[h]), h)
	}
	t.level[h] = append(t.level[h], hash)
	if h == 0 && t.width() == tiles.Width {
		c.full.Add(id, t)
	}
	return id, t, nil
}

// reset forgets the edge tiles, so they are reloaded from storage.
func (c *tileCache) reset() {
	c.edge = map[uint8]*edgeTile{}
	c.full.Purge()
}
