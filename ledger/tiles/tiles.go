package tiles

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

const (
	// Height is the number of tree levels one tile spans.
	Height = 8
	// Width is the number of hashes (or entries) in a full tile.
	Width = 1 << Height
	// HashSize is the size of one node hash.
	HashSize = 32
	// MaxLevel is the highest tile level a 64-bit tree can need.
	MaxLevel = 63 / Height
)

// ErrBadPath is wrapped by every path parsing error.
var ErrBadPath = errors.New("bad tile path")

// Tile names one tile or entry bundle. Width is 1..256; 256 means full.
type Tile struct {
	// Level is the tile level L; ignored when Entries is set.
	Level uint8
	// Index is the tile index N.
	Index uint64
	// Width is the number of hashes or entries, 1..256.
	Width int
	// Entries marks an entry bundle rather than a hash tile.
	Entries bool
}

// Full reports whether t is a full tile.
func (t Tile) Full() bool { return t.Width == Width }

// Path returns the C2SP path of t, without a leading slash.
func (t Tile) Path() string {
	var b strings.Builder
	b.WriteString("tile/")
	if t.Entries {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.Itoa(int(t.Level)))
	}
	b.WriteByte('/')
	b.WriteString(FormatIndex(t.Index))
	if t.Width < Width {
		b.WriteString(".p/")
		b.WriteString(strconv.Itoa(t.Width))
	}
	return b.String()
}

// FormatIndex writes n in the C2SP 3-digit groups: 1234067 → x001/x234/067.
func FormatIndex(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

// ParsePath parses a tile or entry bundle path (with or without a leading
// slash). It accepts exactly the paths Path writes, so each tile has one name.
func ParsePath(p string) (Tile, error) {
	p = strings.TrimPrefix(p, "/")
	rest, ok := strings.CutPrefix(p, "tile/")
	if !ok {
		return Tile{}, fmt.Errorf("%w %q: must start with tile/", ErrBadPath, p)
	}
	var t Tile
	levelStr, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return Tile{}, fmt.Errorf("%w %q: missing tile index", ErrBadPath, p)
	}
	if levelStr == "entries" {
		t.Entries = true
	} else {
		l, err := strconv.ParseUint(levelStr, 10, 8)
		if err != nil || l > MaxLevel || strconv.FormatUint(l, 10) != levelStr {
			return Tile{}, fmt.Errorf("%w %q: level %q is not 0..%d", ErrBadPath, p, levelStr, MaxLevel)
		}
		t.Level = uint8(l)
	}
	t.Width = Width
	if idx, w, ok := strings.Cut(rest, ".p/"); ok {
		width, err := strconv.Atoi(w)
		if err != nil || width < 1 || width >= Width || strconv.Itoa(width) != w {
			return Tile{}, fmt.Errorf("%w %q: partial width %q is not 1..%d", ErrBadPath, p, w, Width-1)
		}
		t.Width = width
		rest = idx
	}
	n, err := parseIndex(rest)
	if err != nil {
		return Tile{}, fmt.Errorf("%w %q: %v", ErrBadPath, p, err)
	}
	t.Index = n
	return t, nil
}

func parseIndex(s string) (uint64, error) {
	parts := strings.Split(s, "/")
	var n uint64
	for i, part := range parts {
		last := i == len(parts)-1
		if !last {
			if !strings.HasPrefix(part, "x") {
				return 0, fmt.Errorf("index group %q must start with x", part)
			}
			part = part[1:]
		}
		if len(part) != 3 || strings.Trim(part, "0123456789") != "" {
			return 0, fmt.Errorf("index group %q is not 3 digits", part)
		}
		g, _ := strconv.ParseUint(part, 10, 64)
		if n > (^uint64(0)-g)/1000 {
			return 0, errors.New("index overflows 64 bits")
		}
		n = n*1000 + g
	}
	if len(parts) > 1 && strings.TrimLeft(parts[0], "x0") == "" {
		return 0, errors.New("index has a leading zero group")
	}
	return n, nil
}

// NodeTile locates the tree node (level, index) in the tiling: the tile
// level L and index N that hold it (directly when level is a multiple of 8,
// else as an interior node of the tile), its sublevel h = level mod 8 inside
// the tile, and its position among that sublevel's nodes.
func NodeTile(level uint, index uint64) (L uint8, N uint64, h uint, pos int) {
	L = uint8(level / Height)
	h = level % Height
	N = index >> (Height - h)
	pos = int(index - N<<(Height-h))
	return L, N, h, pos
}

// Available reports whether tile (level L, index N, width W) lies entirely
// within a tree of the given size, so that it may be served: its last hash
// covers leaves below size. For an entry bundle use level 0.
func Available(L uint8, N uint64, W int, size uint64) bool {
	shift := uint(L) * Height
	if W < 1 || W > Width || N > (^uint64(0))>>Height-1 {
		return false
	}
	last := N*Width + uint64(W) // exclusive end at level 8L
	if shift >= 64 || last > (^uint64(0))>>shift {
		return false
	}
	return last<<shift <= size
}

// WidthAt returns the width of tile (L, N) in a tree of the given size:
// 0 when the tile has no complete node yet, Width when it is full.
func WidthAt(L uint8, N uint64, size uint64) int {
	shift := uint(L) * Height
	if shift >= 64 {
		return 0
	}
	nodes := size >> shift // complete nodes at level 8L
	start := N * Width
	if nodes <= start {
		return 0
	}
	if nodes-start >= Width {
		return Width
	}
	return int(nodes - start)
}
