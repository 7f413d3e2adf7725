package tiles

import (
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func TestPathRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		tile Tile
		path string
	}{
		{Tile{Level: 0, Index: 0, Width: 256}, "tile/0/000"},
		{Tile{Level: 1, Index: 1234067, Width: 256}, "tile/1/x001/x234/067"},
		{Tile{Level: 0, Index: 1000, Width: 3}, "tile/0/x001/000.p/3"},
		{Tile{Index: 5, Width: 255, Entries: true}, "tile/entries/005.p/255"},
		{Tile{Index: 999, Width: 256, Entries: true}, "tile/entries/999"},
		{Tile{Level: 7, Index: 1<<64 - 1, Width: 256}, "tile/7/x018/x446/x744/x073/x709/x551/615"},
	} {
		if got := tc.tile.Path(); got != tc.path {
			t.Errorf("%+v.Path() = %q, want %q", tc.tile, got, tc.path)
		}
		got, err := ParsePath("/" + tc.path)
		if err != nil || got != tc.tile {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", tc.path, got, err, tc.tile)
		}
	}
}

func TestParsePathRejects(t *testing.T) {
	for _, p := range []string{
		"", "tile", "tile/", "tile/0", "tile/0/", "tile/8/000", "tile/01/000", "tile/-1/000",
		"tile/0/0", "tile/0/0000", "tile/0/x000/001", "tile/0/001/002", "tile/0/x1/002",
		"tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/01", "tile/0/000.p/", "tile/0/000.p/x",
		"tile/data/000", "tiles/0/000", "tile/0/x018/x446/x744/x073/x709/x551/616", "tile/0/00a",
	} {
		if _, err := ParsePath(p); !errors.Is(err, ErrBadPath) {
			t.Errorf("ParsePath(%q) err = %v, want ErrBadPath", p, err)
		}
	}
}

// The index groups are those of golang.org/x/mod/sumdb/tlog.
func TestPathMatchesTlog(t *testing.T) {
	for _, n := range []int64{0, 1, 999, 1000, 1234067, 1 << 40} {
		for _, w := range []int{1, 100, 256} {
			tt := tlog.Tile{H: 8, L: 2, N: n, W: w}
			want := tt.Path() // tile/8/2/...
			got := "tile/8/" + Tile{Level: 2, Index: uint64(n), Width: w}.Path()[len("tile/"):]
			if got != want {
				t.Errorf("n=%d w=%d: %q, tlog %q", n, w, got, want)
			}
		}
	}
}

func TestNodeTileAndAvailability(t *testing.T) {
	for _, tc := range []struct {
		level uint
		index uint64
		L     uint8
		N     uint64
		h     uint
		pos   int
	}{
		{0, 0, 0, 0, 0, 0},
		{0, 257, 0, 1, 0, 1},
		{3, 33, 0, 1, 3, 1},
		{8, 5, 1, 0, 0, 5},
		{9, 200, 1, 1, 1, 72},
	} {
		L, N, h, pos := NodeTile(tc.level, tc.index)
		if L != tc.L || N != tc.N || h != tc.h || pos != tc.pos {
			t.Errorf("NodeTile(%d, %d) = %d %d %d %d, want %d %d %d %d", tc.level, tc.index, L, N, h, pos, tc.L, tc.N, tc.h, tc.pos)
		}
	}
	for _, tc := range []struct {
		L    uint8
		N    uint64
		W    int
		size uint64
		want bool
	}{
		{0, 0, 256, 256, true}, {0, 0, 256, 255, false}, {0, 1, 1, 257, true}, {0, 1, 2, 257, false},
		{1, 0, 1, 256, true}, {1, 0, 2, 511, false}, {1, 0, 2, 512, true}, {0, 0, 0, 10, false},
		{0, 1 << 60, 256, 1 << 63, false}, {7, 1, 1, 1 << 63, false},
	} {
		if got := Available(tc.L, tc.N, tc.W, tc.size); got != tc.want {
			t.Errorf("Available(%d, %d, %d, %d) = %v", tc.L, tc.N, tc.W, tc.size, got)
		}
	}
	if w := WidthAt(0, 1, 300); w != 44 {
		t.Errorf("WidthAt(0,1,300) = %d", w)
	}
	if w := WidthAt(1, 0, 1<<20); w != 256 {
		t.Errorf("WidthAt(1,0,2^20) = %d", w)
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"tile/0/000", "tile/1/x001/x234/067.p/5", "tile/entries/x999/000", "/tile/0/000.p/255", "tile/0/x000/001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		tile, err := ParsePath(p)
		if err != nil {
			return
		}
		// Every accepted path is the canonical name of what it parses to.
		if got := tile.Path(); got != p && "/"+got != p {
			t.Fatalf("ParsePath(%q) = %+v whose Path is %q", p, tile, got)
		}
	})
}
