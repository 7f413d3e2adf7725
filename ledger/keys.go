package ledger

import "encoding/binary"

// Pebble key layout. One byte of prefix per kind; integers big-endian so
// keys sort numerically. Prefixes not listed here are free for indexers:
// query uses 'q', the scanner 's'.
const (
	prefixCheckpoint = 'c' // c<size u64> → signed checkpoint note
	prefixEnvelope   = 'e' // e<envelope sha256> → index u64 (dedup, lookups by digest)
	prefixLeaf       = 'h' // h<leaf hash> → index u64
	prefixMeta       = 'm' // m<name> → value
	prefixRecord     = 'r' // r<index u64> → entry record
	prefixTile       = 't' // t<level u8><index u64> → level-0 hashes of the tile
	prefixEnvelopeAt = 'v' // v<index u64> → canonical envelope JSON (absent once redacted)
	prefixRedaction  = 'x' // x<envelope sha256> → index u64 of the redaction entry
)

var (
	keyAppliedIndex = []byte("mapplied") // raft index of the last applied batch
	// keyLayout records the key layout of the store (layoutVersion); a
	// store without it has the first layout, with envelopes under their
	// digest, and is migrated at Open (migrate.go).
	keyLayout = []byte("mlayout")
)

func u64Key(prefix byte, n uint64) []byte { return u64KeyTo(make([]byte, 0, 9), prefix, n) }

// u64KeyTo appends the key prefix<n> to b (u64Key without an allocation).
func u64KeyTo(b []byte, prefix byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, prefix), n)
}

func hashKey(prefix byte, h [32]byte) []byte {
	k := make([]byte, 33)
	k[0] = prefix
	copy(k[1:], h[:])
	return k
}

func tileKey(level uint8, index uint64) []byte {
	k := make([]byte, 10)
	k[0] = prefixTile
	k[1] = level
	binary.BigEndian.PutUint64(k[2:], index)
	return k
}

func u64Value(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
