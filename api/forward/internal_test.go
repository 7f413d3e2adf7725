package forward

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"slices"
	"testing"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/ledger"
)

func TestChunks(t *testing.T) {
	for _, tc := range []struct {
		name          string
		sizes         []int
		maxN, maxSize int
		want          [][2]int
	}{
		{"empty", nil, 3, 100, nil},
		{"one", []int{10}, 3, 100, [][2]int{{0, 1}}},
		{"by count", []int{1, 1, 1, 1, 1, 1, 1}, 3, 100, [][2]int{{0, 3}, {3, 6}, {6, 7}}},
		{"by bytes", []int{40, 40, 40, 40}, 10, 100, [][2]int{{0, 2}, {2, 4}}},
		{"an entry larger than the byte cap goes alone", []int{10, 500, 10}, 10, 100, [][2]int{{0, 1}, {1, 2}, {2, 3}}},
		{"exactly the byte cap", []int{50, 50, 1}, 10, 100, [][2]int{{0, 2}, {2, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Sequencer{cfg: Config{MaxChunk: tc.maxN, MaxChunkBytes: tc.maxSize}}
			es := make([]ledger.Entry, len(tc.sizes))
			for i, n := range tc.sizes {
				es[i].Envelope = bytes.Repeat([]byte{'x'}, n)
			}
			if got := s.chunks(es); !slices.Equal(got, tc.want) {
				t.Fatalf("chunks(%v) = %v, want %v", tc.sizes, got, tc.want)
			}
		})
	}
}

// TestReceiptChecks: a forwarded receipt that does not hold together is
// refused before it reaches the client.
func TestReceiptChecks(t *testing.T) {
	const origin = "test.provledger/forward"
	logKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	otherKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	sign := func(k ed25519.PrivateKey, size uint64) []byte {
		s, err := checkpoint.NewSigner(origin, k)
		if err != nil {
			t.Fatal(err)
		}
		n, err := checkpoint.Sign(s, checkpoint.Checkpoint{Origin: origin, Size: size, Hash: [32]byte{9}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	v, err := checkpoint.NewVerifier(origin, logKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	rec := []byte("record")
	leaf := proof.LeafHash(rec)
	good := func() *provledgerpb.AppendResponse {
		return &provledgerpb.AppendResponse{Index: 3, LeafHash: leaf[:], Record: rec, Checkpoint: sign(logKey, 5), InclusionProof: [][]byte{make([]byte, 32)}}
	}
	for _, tc := range []struct {
		name     string
		mod      func(*provledgerpb.AppendResponse)
		verifier bool
		ok       bool
	}{
		{"good, signature checked", func(*provledgerpb.AppendResponse) {}, true, true},
		{"good, parsed only", func(*provledgerpb.AppendResponse) {}, false, true},
		{"leaf of another record", func(r *provledgerpb.AppendResponse) { r.Record = []byte("other") }, true, false},
		{"short leaf hash", func(r *provledgerpb.AppendResponse) { r.LeafHash = r.LeafHash[:5] }, true, false},
		{"index beyond the checkpoint", func(r *provledgerpb.AppendResponse) { r.Index = 5 }, true, false},
		{"checkpoint signed by another key", func(r *provledgerpb.AppendResponse) { r.Checkpoint = sign(otherKey, 5) }, true, false},
		{"checkpoint not a note", func(r *provledgerpb.AppendResponse) { r.Checkpoint = []byte("garbage") }, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Sequencer{}
			if tc.verifier {
				s.cfg.Verifier = v
			}
			r := good()
			tc.mod(r)
			rc, err := s.receipt(r, map[string]*ledger.Checkpoint{})
			if tc.ok {
				if err != nil {
					t.Fatalf("receipt: %v", err)
				}
				if rc.Index != 3 || rc.LeafHash != leaf || rc.Checkpoint.Size != 5 || !bytes.Equal(rc.Checkpoint.Note, r.Checkpoint) {
					t.Fatalf("receipt = %+v", rc)
				}
				return
			}
			if !errors.Is(err, ErrBadReceipt) {
				t.Fatalf("receipt: %v, want ErrBadReceipt", err)
			}
		})
	}
}
