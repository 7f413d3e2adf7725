package witness

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/cosignature"
	mproof "github.com/transparency-dev/merkle/proof"
)

const origin = "example.test/log"

// testLog is an in-memory RFC 6962 tree whose checkpoints are signed with
// a fixed log key.
type testLog struct {
	leaves [][]byte
	signer note.Signer
}

func logKey() ed25519.PrivateKey {
	s := sha256.Sum256([]byte("log key"))
	return ed25519.NewKeyFromSeed(s[:])
}

func newTestLog(t testing.TB, n int, salt string) *testLog {
	s, err := checkpoint.NewSigner(origin, logKey())
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{signer: s}
	l.grow(n, salt)
	return l
}

func (l *testLog) grow(n int, salt string) {
	for range n {
		h := rfc6962.DefaultHasher.HashLeaf(fmt.Appendf(nil, "%s%d", salt, len(l.leaves)))
		l.leaves = append(l.leaves, h)
	}
}

func (l *testLog) root(size int) [32]byte {
	r := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for _, h := range l.leaves[:size] {
		r.Append(h, nil)
	}
	var out [32]byte
	if size == 0 {
		return sha256.Sum256(nil)
	}
	h, _ := r.GetRootHash(nil)
	copy(out[:], h)
	return out
}

func (l *testLog) note(t testing.TB, size int) []byte {
	b, err := checkpoint.Sign(l.signer, checkpoint.Checkpoint{Origin: origin, Size: uint64(size), Hash: l.root(size)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// proof is the consistency proof old -> new, computed from the leaves.
func (l *testLog) proof(t testing.TB, old, new int) [][]byte {
	if old == 0 || old == new {
		return nil
	}
	nodes, err := mproof.Consistency(uint64(old), uint64(new))
	if err != nil {
		t.Fatal(err)
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		b, e := id.Coverage()
		hashes[i] = mth(l.leaves[b:min(e, uint64(new))])
	}
	p, err := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mth is RFC 6962's Merkle tree hash of leaf hashes.
func mth(leaves [][]byte) []byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return rfc6962.DefaultHasher.HashChildren(mth(leaves[:k]), mth(leaves[k:]))
}

func witnessKey() ed25519.PrivateKey {
	s := sha256.Sum256([]byte("witness key"))
	return ed25519.NewKeyFromSeed(s[:])
}

func newServer(t testing.TB, store Store) *Server {
	t.Helper()
	ws, err := cosignature.NewSigner("witness.test/w1", witnessKey(), func() time.Time { return time.Unix(1_800_000_000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	lv, _ := checkpoint.NewVerifier(origin, logKey().Public().(ed25519.PublicKey))
	s, err := New(Config{Signer: ws, Store: store, Logs: []Log{{Origin: origin, Verifier: lv}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), EvidenceDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAddCheckpoint(t *testing.T) {
	good := newTestLog(t, 100, "")
	fork := newTestLog(t, 50, "")
	fork.grow(50, "fork")
	otherKey := ed25519.NewKeyFromSeed(make([]byte, 32))
	os, _ := checkpoint.NewSigner(origin, otherKey)
	forged, _ := checkpoint.Sign(os, checkpoint.Checkpoint{Origin: origin, Size: 100, Hash: good.root(100)})
	unknownS, _ := checkpoint.NewSigner("other.test/log", logKey())
	unknown, _ := checkpoint.Sign(unknownS, checkpoint.Checkpoint{Origin: "other.test/log", Size: 1, Hash: good.root(1)})

	type step struct {
		req      *Request
		status   int
		conflict string
		known    uint64
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first checkpoint, then growth", []step{
			{&Request{OldSize: 0, Checkpoint: good.note(t, 10)}, 200, "", 0},
			{&Request{OldSize: 10, Proof: good.proof(t, 10, 60), Checkpoint: good.note(t, 60)}, 200, "", 0},
			{&Request{OldSize: 60, Checkpoint: good.note(t, 60)}, 200, "", 0},
			{&Request{OldSize: 60, Proof: good.proof(t, 60, 100), Checkpoint: good.note(t, 100)}, 200, "", 0},
		}},
		{"client does not know the size: 409 with it", []step{
			{&Request{OldSize: 0, Checkpoint: good.note(t, 10)}, 200, "", 0},
			{&Request{OldSize: 0, Checkpoint: good.note(t, 60)}, 409, "old-size", 10},
		}},
		{"stale checkpoint after a newer one", []step{
			{&Request{OldSize: 0, Checkpoint: good.note(t, 60)}, 200, "", 0},
			{&Request{OldSize: 10, Proof: good.proof(t, 10, 30), Checkpoint: good.note(t, 30)}, 409, "stale", 60},
			{&Request{OldSize: 60, Checkpoint: good.note(t, 30)}, 400, "", 0},
		}},
		{"forked checkpoint (same size, other root)", []step{
			{&Request{OldSize: 0, Checkpoint: good.note(t, 100)}, 200, "", 0},
			{&Request{OldSize: 100, Checkpoint: fork.note(t, 100)}, 409, "fork", 100},
		}},
		{"rewritten tree re-signed with the right key", []step{
			{&Request{OldSize: 0, Checkpoint: good.note(t, 60)}, 200, "", 0},
			{&Request{OldSize: 60, Proof: fork.proof(t, 60, 100), Checkpoint: fork.note(t, 100)}, 422, "", 0},
			{&Request{OldSize: 60, Proof: good.proof(t, 60, 100), Checkpoint: fork.note(t, 100)}, 422, "", 0},
		}},
		{"signature by another key", []step{
			{&Request{OldSize: 0, Checkpoint: forged}, 403, "", 0},
		}},
		{"unknown log", []step{
			{&Request{OldSize: 0, Checkpoint: unknown}, 404, "", 0},
		}},
		{"proof with old size 0", []step{
			{&Request{OldSize: 0, Proof: good.proof(t, 10, 20), Checkpoint: good.note(t, 20)}, 400, "", 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, &MemStore{})
			hs := httptest.NewServer(s)
			defer hs.Close()
			c := &Client{URL: hs.URL}
			for i, st := range tc.steps {
				lines, err := c.AddCheckpoint(context.Background(), st.req)
				var ce *ConflictError
				switch {
				case st.status == 200:
					if err != nil || len(lines) != 1 {
						t.Fatalf("step %d: %v", i, err)
					}
				case st.status == 409:
					if !errors.As(err, &ce) || ce.Size != st.known || ce.Reason != st.conflict {
						t.Fatalf("step %d: %v, want 409 %s %d", i, err, st.conflict, st.known)
					}
				default:
					want := map[int]error{400: ErrBadRequest, 403: ErrForbidden, 404: ErrUnknownLog, 422: ErrInconsistent}[st.status]
					if !errors.Is(err, want) {
						t.Fatalf("step %d: %v, want %v", i, err, want)
					}
				}
			}
		})
	}
}

// TestCosignatureInterop: the 200 answer appended to the checkpoint opens
// with x/mod's note.Open and formats' cosignature verifier.
func TestCosignatureInterop(t *testing.T) {
	s := newServer(t, &MemStore{})
	l := newTestLog(t, 5, "")
	res := s.Add((&Request{Checkpoint: l.note(t, 5)}).Marshal())
	if res.Status != 200 {
		t.Fatal(res.Message)
	}
	fv, err := fnote.NewVerifierForCosignatureV1(s.cfg.Signer.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	lv, _ := checkpoint.NewVerifier(origin, logKey().Public().(ed25519.PublicKey))
	n, err := note.Open(append(l.note(t, 5), res.Cosignature...), note.VerifierList(lv, fv))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("note.Open: %v", err)
	}
}

// TestPersistence: a restarted witness remembers the size it cosigned and
// refuses to go back.
func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	l := newTestLog(t, 40, "")
	s := newServer(t, FileStore{Dir: dir})
	if r := s.Add((&Request{Checkpoint: l.note(t, 40)}).Marshal()); r.Status != 200 {
		t.Fatal(r.Message)
	}
	s2 := newServer(t, FileStore{Dir: dir})
	if n, ok := s2.Known(origin); !ok || n != 40 {
		t.Fatalf("after restart: known %d %v", n, ok)
	}
	if r := s2.Add((&Request{Checkpoint: l.note(t, 20)}).Marshal()); r.Status != 409 || r.KnownSize != 40 {
		t.Fatalf("stale after restart: %+v", r)
	}
}

// TestConcurrentAdds: racing requests never roll the witness back.
func TestConcurrentAdds(t *testing.T) {
	l := newTestLog(t, 64, "")
	s := newServer(t, &MemStore{})
	var wg sync.WaitGroup
	for size := 1; size <= 64; size++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &Client{URL: "unused"}
			_ = c
			old, _ := s.Known(origin)
			if int(old) > size {
				return
			}
			s.Add((&Request{OldSize: old, Proof: l.proof(t, int(old), size), Checkpoint: l.note(t, size)}).Marshal())
		}()
	}
	wg.Wait()
	final, _ := s.Known(origin)
	if r := s.Add((&Request{OldSize: final, Proof: l.proof(t, int(final), 64), Checkpoint: l.note(t, 64)}).Marshal()); r.Status != 200 {
		t.Fatalf("catching up to 64 from %d: %+v", final, r)
	}
}

func TestHTTPMethodAndPath(t *testing.T) {
	hs := httptest.NewServer(newServer(t, &MemStore{}))
	defer hs.Close()
	r, _ := http.Get(hs.URL + "/add-checkpoint")
	if r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", r.StatusCode)
	}
	r, _ = http.Post(hs.URL+"/other", "text/plain", strings.NewReader(""))
	if r.StatusCode != http.StatusNotFound {
		t.Fatalf("other path: %d", r.StatusCode)
	}
	r, _ = http.Post(hs.URL+"/add-checkpoint", "text/plain", strings.NewReader("old 01\n\nx\n"))
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad body: %d", r.StatusCode)
	}
}

// TestClientCosign: Cosign learns the witness's size from a 409 and
// retries with a proof.
func TestClientCosign(t *testing.T) {
	l := newTestLog(t, 80, "")
	s := newServer(t, &MemStore{})
	hs := httptest.NewServer(s)
	defer hs.Close()
	c := &Client{URL: hs.URL}
	if _, err := c.Cosign(context.Background(), l.note(t, 30), 30, 0, nil); err != nil {
		t.Fatal(err)
	}
	lines, err := c.Cosign(context.Background(), l.note(t, 80), 80, 0, func(_ context.Context, old, new uint64) ([][]byte, error) {
		return l.proof(t, int(old), int(new)), nil
	})
	if err != nil || len(lines) != 1 {
		t.Fatalf("Cosign: %v", err)
	}
	v, _ := cosignature.ParseVerifierKey(s.cfg.Signer.VerifierKey())
	got, err := cosignature.Verify(cosignature.AddLines(l.note(t, 80), lines), []*cosignature.Verifier{v})
	if err != nil || len(got) != 1 {
		t.Fatalf("verify: %v %v", got, err)
	}
}
