// Package tiles names and parses C2SP tlog-tiles resources and does the tile
// arithmetic of a height-8 tiled RFC 6962 tree.
//
// Tile (L, N) holds the node hashes of tree level 8·L at positions
// 256·N … 256·N+W−1; W=256 is a full tile, 1 ≤ W < 256 a partial one.
// Paths are relative to the log's prefix:
//
//	tile/<L>/<N>[.p/<W>]
//	tile/entries/<N>[.p/<W>]
//
// where N is written in 3-digit groups, all but the last prefixed by "x"
// (1234067 → x001/x234/067). See https://c2sp.org/tlog-tiles.
package tiles
