package proof

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// tree is a test Merkle tree built with merkle/compact; it keeps every
// node hash (by NodeID) and the root at every size.
type tree struct {
	nodes map[compact.NodeID][]byte
	roots [][32]byte // roots[n] = root of the first n leaves
	leafs [][32]byte
}

func record(i int) []byte { return []byte(fmt.Sprintf("record %d", i)) }

func buildTree(t testing.TB, n int) *tree {
	t.Helper()
	tr := &tree{nodes: map[compact.NodeID][]byte{}, roots: [][32]byte{EmptyRoot()}}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	visit := func(id compact.NodeID, h []byte) { tr.nodes[id] = h }
	for i := range n {
		leaf := LeafHash(record(i))
		tr.leafs = append(tr.leafs, leaf)
		if err := r.Append(leaf[:], visit); err != nil {
			t.Fatal(err)
		}
		root, err := r.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		tr.roots = append(tr.roots, [32]byte(root))
	}
	return tr
}

func (tr *tree) fetch(t testing.TB, n mproof.Nodes) [][]byte {
	t.Helper()
	hs := make([][]byte, len(n.IDs))
	for i, id := range n.IDs {
		h, ok := tr.nodes[id]
		if !ok {
			t.Fatalf("missing node %+v", id)
		}
		hs[i] = bytes.Clone(h)
	}
	p, err := n.Rehash(hs, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (tr *tree) inclusion(t testing.TB, index, size uint64) [][]byte {
	n, err := mproof.Inclusion(index, size)
	if err != nil {
		t.Fatal(err)
	}
	return tr.fetch(t, n)
}

func (tr *tree) consistency(t testing.TB, size1, size2 uint64) [][]byte {
	n, err := mproof.Consistency(size1, size2)
	if err != nil {
		t.Fatal(err)
	}
	return tr.fetch(t, n)
}

func TestHashes(t *testing.T) {
	h := rfc6962.DefaultHasher
	tests := []struct {
		name string
		got  [32]byte
		want []byte
	}{
		{"empty root", EmptyRoot(), h.EmptyRoot()},
		{"leaf empty", LeafHash(nil), h.HashLeaf(nil)},
		{"leaf", LeafHash([]byte("L123456")), h.HashLeaf([]byte("L123456"))},
		{"children", HashChildren(LeafHash([]byte("a")), LeafHash([]byte("b"))), h.HashChildren(h.HashLeaf([]byte("a")), h.HashLeaf([]byte("b")))},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got[:], tt.want) {
			t.Errorf("%s = %x, want %x", tt.name, tt.got, tt.want)
		}
	}
	// Known-answer values (RFC 6962 test vectors as used by Certificate Transparency).
	if got := hex.EncodeToString(func() []byte { x := EmptyRoot(); return x[:] }()); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("EmptyRoot = %s", got)
	}
	if got := hex.EncodeToString(func() []byte { x := LeafHash(nil); return x[:] }()); got != "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d" {
		t.Errorf("LeafHash(empty) = %s", got)
	}
}

func TestRootMatchesSumdbTlog(t *testing.T) {
	const n = 70
	tr := buildTree(t, n)
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i := range n {
		if got := tlog.RecordHash(record(i)); got != tlog.Hash(tr.leafs[i]) {
			t.Fatalf("leaf %d: tlog.RecordHash differs", i)
		}
		hs, err := tlog.StoredHashes(int64(i), record(i), reader)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	for size := 0; size <= n; size++ {
		th, err := tlog.TreeHash(int64(size), reader)
		if err != nil {
			t.Fatal(err)
		}
		if th != tlog.Hash(tr.roots[size]) {
			t.Fatalf("size %d: tlog.TreeHash %x, compact root %x", size, th, tr.roots[size])
		}
	}
	// tlog's record proofs verify with VerifyInclusion.
	for _, c := range []struct{ i, size int64 }{{0, 1}, {3, 7}, {64, 70}, {69, 70}} {
		rp, err := tlog.ProveRecord(c.size, c.i, reader)
		if err != nil {
			t.Fatal(err)
		}
		p := make([][]byte, len(rp))
		for j := range rp {
			p[j] = rp[j][:]
		}
		if err := VerifyInclusion(uint64(c.i), uint64(c.size), tr.leafs[c.i], p, tr.roots[c.size]); err != nil {
			t.Errorf("tlog proof of %d in %d: %v", c.i, c.size, err)
		}
	}
}

func TestVerifyInclusionAll(t *testing.T) {
	const n = 40
	tr := buildTree(t, n)
	for size := uint64(1); size <= n; size++ {
		for index := uint64(0); index < size; index++ {
			p := tr.inclusion(t, index, size)
			if err := VerifyInclusion(index, size, tr.leafs[index], p, tr.roots[size]); err != nil {
				t.Fatalf("valid proof of %d in %d rejected: %v", index, size, err)
			}
			// Tamper with each element.
			for j := range p {
				bad := cloneProof(p)
				bad[j][0] ^= 1
				if err := VerifyInclusion(index, size, tr.leafs[index], bad, tr.roots[size]); !errors.Is(err, ErrInvalidProof) {
					t.Fatalf("tampered element %d accepted (index %d size %d): %v", j, index, size, err)
				}
			}
			// Wrong leaf.
			other := tr.leafs[(index+1)%size]
			if size > 1 {
				if err := VerifyInclusion(index, size, other, p, tr.roots[size]); !errors.Is(err, ErrInvalidProof) {
					t.Fatalf("wrong leaf accepted: %v", err)
				}
			}
		}
	}
}

func cloneProof(p [][]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = bytes.Clone(p[i])
	}
	return out
}

func TestVerifyInclusionErrors(t *testing.T) {
	tr := buildTree(t, 8)
	good := tr.inclusion(t, 2, 7)
	tests := []struct {
		name        string
		index, size uint64
		leaf        [32]byte
		proof       [][]byte
		root        [32]byte
	}{
		{"index == size", 7, 7, tr.leafs[2], good, tr.roots[7]},
		{"size 0", 0, 0, tr.leafs[0], nil, tr.roots[0]},
		{"wrong size", 2, 8, tr.leafs[2], good, tr.roots[8]},
		{"wrong root", 2, 7, tr.leafs[2], good, tr.roots[6]},
		{"short proof", 2, 7, tr.leafs[2], good[:len(good)-1], tr.roots[7]},
		{"long proof", 2, 7, tr.leafs[2], append(cloneProof(good), make([]byte, 32)), tr.roots[7]},
		{"33-byte element", 2, 7, tr.leafs[2], append(cloneProof(good[:1]), append(bytes.Clone(good[1]), 0)), tr.roots[7]},
		{"nil element", 2, 7, tr.leafs[2], [][]byte{nil, good[1], good[2]}, tr.roots[7]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyInclusion(tt.index, tt.size, tt.leaf, tt.proof, tt.root)
			if !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("error = %v, want ErrInvalidProof", err)
			}
		})
	}
}

func TestVerifyConsistencyAll(t *testing.T) {
	const n = 34
	tr := buildTree(t, n)
	for size2 := uint64(0); size2 <= n; size2++ {
		for size1 := uint64(0); size1 <= size2; size1++ {
			p := tr.consistency(t, size1, size2)
			if err := VerifyConsistency(size1, size2, p, tr.roots[size1], tr.roots[size2]); err != nil {
				t.Fatalf("valid proof %d→%d rejected: %v", size1, size2, err)
			}
			for j := range p {
				bad := cloneProof(p)
				bad[j][31] ^= 0x80
				if err := VerifyConsistency(size1, size2, bad, tr.roots[size1], tr.roots[size2]); !errors.Is(err, ErrInvalidProof) {
					t.Fatalf("tampered element %d accepted (%d→%d)", j, size1, size2)
				}
			}
			if size1 > 0 && size1 < size2 {
				wrong := tr.roots[size1]
				wrong[0] ^= 1
				if err := VerifyConsistency(size1, size2, p, wrong, tr.roots[size2]); !errors.Is(err, ErrInvalidProof) {
					t.Fatalf("wrong old root accepted (%d→%d)", size1, size2)
				}
				if err := VerifyConsistency(size1, size2, p, tr.roots[size1], tr.roots[size2-1]); !errors.Is(err, ErrInvalidProof) {
					t.Fatalf("wrong new root accepted (%d→%d)", size1, size2)
				}
			}
		}
	}
}

func TestVerifyConsistencyErrors(t *testing.T) {
	tr := buildTree(t, 8)
	good := tr.consistency(t, 3, 7)
	tests := []struct {
		name         string
		size1, size2 uint64
		proof        [][]byte
		root1, root2 [32]byte
	}{
		{"size1 > size2", 7, 3, good, tr.roots[7], tr.roots[3]},
		{"equal sizes, different roots", 5, 5, nil, tr.roots[5], tr.roots[4]},
		{"equal sizes, non-empty proof", 5, 5, [][]byte{make([]byte, 32)}, tr.roots[5], tr.roots[5]},
		{"from 0 with proof", 0, 5, [][]byte{make([]byte, 32)}, tr.roots[0], tr.roots[5]},
		{"empty proof", 3, 7, nil, tr.roots[3], tr.roots[7]},
		{"short proof", 3, 7, good[:len(good)-1], tr.roots[3], tr.roots[7]},
		{"short element", 3, 7, [][]byte{good[0][:31], good[1], good[2]}, tr.roots[3], tr.roots[7]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyConsistency(tt.size1, tt.size2, tt.proof, tt.root1, tt.root2)
			if !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("error = %v, want ErrInvalidProof", err)
			}
		})
	}
}

func TestLeafHashIsPrefixed(t *testing.T) {
	rec := []byte("x")
	if LeafHash(rec) == sha256.Sum256(rec) {
		t.Fatal("leaf hash lacks domain separation")
	}
}

func BenchmarkVerifyInclusion(b *testing.B) {
	tr := buildTree(b, 1000)
	p := tr.inclusion(b, 517, 1000)
	for b.Loop() {
		if err := VerifyInclusion(517, 1000, tr.leafs[517], p, tr.roots[1000]); err != nil {
			b.Fatal(err)
		}
	}
}
