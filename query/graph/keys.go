package graph

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"
)

// Pebble key layout of the lineage graph. Everything lives under the
// prefix 'q' that the ledger reserves for the query indexes; the second
// byte says what the key holds. Integers are big-endian so keys sort
// numerically; node ids are fixed-size, so adjacency lists are contiguous
// key ranges. docs/query.md has the full table.
const (
	prefix = 'q'

	tagNode    = 'n' // qn <id>                    → idx ‖ kind ‖ parts
	tagOut     = 'e' // qe <src> <rel> <dst>        → idx ‖ attrs      (forward edge)
	tagIn      = 'r' // qr <dst> <rel> <src>        → idx ‖ attrs      (reverse edge)
	tagHistory = 'h' // qh <dataset> <idx> <pos>    → VersionFacts JSON
	tagLatest  = 'l' // ql <dataset> <idx>          → version (completed outputs)
	tagRun     = 's' // qs <run> <idx>              → RunFacts JSON
	tagCost    = '$' // q$ <idx> <row>              → payload.CostRow JSON
	tagCostBy  = 'k' // qk <target> <idx> <row>     → (empty): cost rows linked to a run, job or tag
	tagSkip    = 'x' // qx <idx>                    → class ‖ reason (payloads not indexed)
	tagStatic  = 't' // qt <job|dataset> <idx>      → (empty): the static events (JobEvent, DatasetEvent) about a node
	tagMeta    = 'm' // qm <name>                   → value
)

var (
	keyNext   = []byte{prefix, tagMeta, 'n', 'e', 'x', 't'}           // index of the next entry to index
	keyFormat = []byte{prefix, tagMeta, 'f', 'o', 'r', 'm', 'a', 't'} // FormatVersion of the index
)

// IDSize is the size of a node id.
const IDSize = 16

// ID identifies a node: its kind byte, then the first 15 bytes of the
// SHA-256 of its kind and name parts. Ids are stable across nodes and
// versions of the software: they are part of the stored index.
type ID [IDSize]byte

// Kind is the kind of a node.
type Kind byte

// Node kinds.
const (
	Dataset        Kind = 'D' // namespace, name
	DatasetVersion Kind = 'V' // namespace, name, version
	Job            Kind = 'J' // namespace, name
	JobVersion     Kind = 'K' // namespace, name, code version
	Run            Kind = 'R' // run id
	Column         Kind = 'C' // dataset namespace, dataset name, field
	TagNode        Kind = 'T' // key, value
)

var kindNames = map[Kind]string{
	Dataset: "dataset", DatasetVersion: "datasetVersion", Job: "job", JobVersion: "jobVersion",
	Run: "run", Column: "column", TagNode: "tag",
}

func (k Kind) String() string {
	if s := kindNameArr[k]; s != "" {
		return s
	}
	return fmt.Sprintf("kind(%q)", byte(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n == s {
			return k, true
		}
	}
	return 0, false
}

// Kind returns the kind of the node id names.
func (id ID) Kind() Kind { return Kind(id[0]) }

// NodeID computes the id of the node of kind k named by parts.
func NodeID(k Kind, parts ...string) ID {
	h := sha256.New()
	h.Write([]byte{byte(k)})
	var n [binary.MaxVarintLen64]byte
	for _, p := range parts {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	var sum [32]byte
	h.Sum(sum[:0])
	var id ID
	id[0] = byte(k)
	copy(id[1:], sum[:IDSize-1])
	return id
}

// Rel is the relation of an edge.
type Rel byte

// Edge relations. An edge goes from src to dst; the reverse index lets
// traversals walk it backwards.
const (
	RunOf       Rel = 'o' // run → job
	RanCode     Rel = 'c' // run → job version (the code version it ran)
	VersionOf   Rel = 'v' // job version → job; dataset version → dataset
	ParentRun   Rel = 'p' // run → parent run
	Read        Rel = 'i' // run → dataset version it read
	Wrote       Rel = 'w' // run → dataset version it wrote
	JobReads    Rel = 'I' // job → dataset (some run of the job read it)
	JobWrites   Rel = 'W' // job → dataset (some run of the job wrote it)
	DerivedFrom Rel = 'd' // column → input column it is derived from (attrs: DerivationAttrs)
	FieldOf     Rel = 'f' // column → its dataset
	Affects     Rel = 'a' // dataset → input column that affects it as a whole (filters, joins…; attrs: DerivationAttrs)
	Tagged      Rel = 't' // run, job, dataset or column → tag
)

var relNames = map[Rel]string{
	RunOf: "runOf", RanCode: "ranCode", VersionOf: "versionOf", ParentRun: "parent", Read: "read",
	Wrote: "wrote", JobReads: "jobReads", JobWrites: "jobWrites", DerivedFrom: "derivedFrom",
	FieldOf: "fieldOf", Affects: "affects", Tagged: "tagged",
}

func (r Rel) String() string {
	if s, ok := relNames[r]; ok {
		return s
	}
	return fmt.Sprintf("rel(%q)", byte(r))
}

func u64(b []byte, n uint64) []byte { return binary.BigEndian.AppendUint64(b, n) }

func nodeKey(id ID) []byte {
	return append([]byte{prefix, tagNode}, id[:]...)
}

func edgeKey(tag byte, a ID, rel Rel, b ID) []byte {
	k := make([]byte, 0, 2+2*IDSize+1)
	k = append(k, prefix, tag)
	k = append(k, a[:]...)
	k = append(k, byte(rel))
	return append(k, b[:]...)
}

// adjPrefix is the key prefix of a's edges of relation rel in direction
// tag (tagOut or tagIn).
func adjPrefix(tag byte, a ID, rel Rel) []byte {
	k := make([]byte, 0, 2+IDSize+1)
	k = append(k, prefix, tag)
	k = append(k, a[:]...)
	return append(k, byte(rel))
}

func idxKey(tag byte, id ID, idx uint64) []byte {
	k := make([]byte, 0, 2+IDSize+8+2)
	k = append(k, prefix, tag)
	k = append(k, id[:]...)
	return u64(k, idx)
}

func idPrefix(tag byte, id ID) []byte {
	return append([]byte{prefix, tag}, id[:]...)
}

func costKey(idx uint64, row int) []byte {
	k := u64([]byte{prefix, tagCost}, idx)
	return binary.BigEndian.AppendUint16(k, uint16(row))
}

func costByKey(target ID, idx uint64, row int) []byte {
	return binary.BigEndian.AppendUint16(idxKey(tagCostBy, target, idx), uint16(row))
}

func skipKey(idx uint64) []byte { return u64([]byte{prefix, tagSkip}, idx) }

// prefixEnd returns the smallest key above every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Node names. Parts are stored with the node; Name renders them.

// NodeInfo is a node as stored: its kind, the parts that name it and the
// index of the entry that first asserted it.
type NodeInfo struct {
	ID    ID
	Kind  Kind
	Parts []string
	Index uint64
}

// Name renders the node the way Marquez names nodes:
// dataset:<ns>:<name>, job:<ns>:<name>, datasetField:<ns>:<name>:<field>,
// and run:<id>, datasetVersion:<ns>:<name>:<version>,
// jobVersion:<ns>:<name>:<version>, tag:<key>=<value>.
func (n NodeInfo) Name() string { return NodeName(n.Kind, n.Parts...) }

// NodeName renders a node name from its kind and parts (see NodeInfo.Name).
func NodeName(k Kind, parts ...string) string {
	switch k {
	case Column:
		return "datasetField:" + strings.Join(parts, ":")
	case TagNode:
		if len(parts) == 2 {
			return "tag:" + parts[0] + "=" + parts[1]
		}
	}
	return k.String() + ":" + strings.Join(parts, ":")
}

// encodeName appends a node's name: its kind, then each part
// uvarint-length-prefixed.
func encodeName(b []byte, k Kind, parts []string) []byte {
	b = append(b, byte(k))
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// EncodeName encodes the name of the node of kind k named by parts, as
// edges carry it (Edge.Name).
func EncodeName(k Kind, parts ...string) []byte { return encodeName(nil, k, parts) }

// kindNameArr is kindNames as an array, for String.
var kindNameArr = func() (a [256]string) {
	for k, n := range kindNames {
		a[k] = n
	}
	return a
}()

// DecodeNamed is DecodeName that also returns the node's rendered name
// (NodeInfo.Name), in one allocation: the parts are substrings of it.
func DecodeNamed(id ID, b []byte) (NodeInfo, string, error) {
	a := NameArena{single: true}
	return a.DecodeNamed(id, b)
}

// NameArena hands out the memory of rendered names and their parts in
// chunks, so decoding the names of a large answer costs a few
// allocations instead of two per node. The zero value is ready; the
// strings and slices it returns stay valid after it is dropped.
type NameArena struct {
	buf   []byte
	parts []string
	// single: exact allocations (one name to decode).
	single bool
}

// nameChunk is the size of an arena's chunks (names, and parts × 16).
const nameChunk = 32 << 10

// bytes returns n bytes of fresh arena memory, empty, to append to.
func (a *NameArena) bytes(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		if a.single || n > nameChunk/8 {
			return make([]byte, 0, n)
		}
		a.buf = make([]byte, 0, max(n, nameChunk))
	}
	b := a.buf[len(a.buf) : len(a.buf) : len(a.buf)+n]
	a.buf = a.buf[:len(a.buf)+n]
	return b
}

// strings returns n fresh strings (capacity n: appending copies).
func (a *NameArena) strings(n int) []string {
	if cap(a.parts)-len(a.parts) < n {
		if a.single || n > nameChunk/64 {
			return make([]string, n)
		}
		a.parts = make([]string, 0, max(n, nameChunk/16))
	}
	p := a.parts[len(a.parts) : len(a.parts)+n : len(a.parts)+n]
	a.parts = a.parts[:len(a.parts)+n]
	return p
}

// DecodeNamed is the package's DecodeNamed with the arena's memory.
func (a *NameArena) DecodeNamed(id ID, b []byte) (NodeInfo, string, error) {
	if len(b) < 1 {
		return NodeInfo{}, "", fmt.Errorf("node %x: empty name", id)
	}
	k := Kind(b[0])
	prefix, sep := k.String(), ":"
	if k == Column {
		prefix = "datasetField"
	}
	// Count the parts and their bytes first.
	var lens [8]int
	n, total := 0, 0
	for rest := b[1:]; len(rest) > 0; n++ {
		l, w := binary.Uvarint(rest)
		if w <= 0 || uint64(len(rest)-w) < l {
			return NodeInfo{}, "", fmt.Errorf("node %x: bad name part", id)
		}
		if n < len(lens) {
			lens[n] = int(l)
		}
		total += int(l)
		rest = rest[w+int(l):]
	}
	if n > len(lens) || (k == TagNode && n == 2) {
		ni, err := DecodeName(id, b)
		return ni, ni.Name(), err
	}
	size := len(prefix) + max(n, 1) + total
	buf := a.bytes(size)
	buf = append(buf, prefix...)
	var offs [8]int
	rest := b[1:]
	for i := 0; i < n; i++ {
		_, w := binary.Uvarint(rest)
		buf = append(buf, sep...)
		offs[i] = len(buf)
		buf = append(buf, rest[w:w+lens[i]]...)
		rest = rest[w+lens[i]:]
	}
	if n == 0 {
		buf = append(buf, sep...)
	}
	name := unsafe.String(unsafe.SliceData(buf), len(buf))
	ni := NodeInfo{ID: id, Kind: k, Parts: a.strings(n)}
	for i := 0; i < n; i++ {
		ni.Parts[i] = name[offs[i] : offs[i]+lens[i]]
	}
	return ni, name, nil
}

// DecodeName decodes a name written by encodeName (Index is left zero).
func DecodeName(id ID, b []byte) (NodeInfo, error) {
	if len(b) < 1 {
		return NodeInfo{}, fmt.Errorf("node %x: empty name", id)
	}
	n := NodeInfo{ID: id, Kind: Kind(b[0])}
	rest := b[1:]
	for len(rest) > 0 {
		l, w := binary.Uvarint(rest)
		if w <= 0 || uint64(len(rest)-w) < l {
			return NodeInfo{}, fmt.Errorf("node %x: bad name part", id)
		}
		n.Parts = append(n.Parts, string(rest[w:w+int(l)]))
		rest = rest[w+int(l):]
	}
	return n, nil
}

func encodeNode(idx uint64, k Kind, parts []string) []byte {
	return encodeName(u64(make([]byte, 0, 9+16*len(parts)), idx), k, parts)
}

func decodeNode(id ID, v []byte) (NodeInfo, error) {
	if len(v) < 9 {
		return NodeInfo{}, fmt.Errorf("node %x: value has %d bytes", id, len(v))
	}
	n, err := DecodeName(id, v[8:])
	n.Index = binary.BigEndian.Uint64(v)
	return n, err
}

// encodeEdgeValue is an edge's value: the index that first asserted it,
// the name of the node at the far end (length-prefixed), then its JSON
// attributes, if any.
func encodeEdgeValue(idx uint64, name, attrs []byte) []byte {
	v := make([]byte, 0, 8+binary.MaxVarintLen32+len(name)+len(attrs))
	v = u64(v, idx)
	v = binary.AppendUvarint(v, uint64(len(name)))
	v = append(v, name...)
	return append(v, attrs...)
}

// decodeEdgeValue splits an edge's value.
func decodeEdgeValue(v []byte) (idx uint64, name, attrs []byte, ok bool) {
	if len(v) < 9 {
		return 0, nil, nil, false
	}
	idx = binary.BigEndian.Uint64(v)
	l, w := binary.Uvarint(v[8:])
	if w <= 0 || uint64(len(v)-8-w) < l || l == 0 {
		return 0, nil, nil, false
	}
	name = v[8+w : 8+w+int(l)]
	return idx, name, v[8+w+int(l):], true
}
