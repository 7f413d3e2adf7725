package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
)

// The crash test (issue 2, "Bad input and faults"): SIGKILL provd in the
// middle of concurrent appends, restart it on the same data, and check that
// nothing it acknowledged was lost or rewritten.
const (
	crashAppenders = 32
	crashLoadTime  = 1500 * time.Millisecond
	crashRounds    = 2
	devOrigin      = "provledger.local/dev"
)

// provdProc is a provd process started by a test.
type provdProc struct {
	cmd      *exec.Cmd
	grpcAddr string
	httpAddr string
	stdout   syncBuffer
	stderr   syncBuffer
	exited   chan struct{}
	waitErr  error
}

// startProvd runs the provd binary with --dev on dataDir, on fresh loopback
// ports, and waits until its gRPC health service says SERVING.
func startProvd(t *testing.T, dataDir string, extra ...string) *provdProc {
	t.Helper()
	p := &provdProc{grpcAddr: freeAddr(t), httpAddr: freeAddr(t), exited: make(chan struct{})}
	args := append([]string{"--dev", "--data", dataDir, "--grpc-addr", p.grpcAddr, "--http-addr", p.httpAddr, "--log-level", "warn"}, extra...)
	p.cmd = exec.Command(provdBinary(t), args...)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	waitServing(t, p.grpcAddr, 20*time.Second, p.exited, &p.stderr)
	return p
}

// kill sends SIGKILL and waits for the process to die of it.
func (p *provdProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL provd: %v", err)
	}
	<-p.exited
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("provd did not die of SIGKILL: %v; its log:\n%s", p.waitErr, &p.stderr)
	}
}

// stop sends SIGTERM and expects a clean exit (status 0) within 15 s.
func (p *provdProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM provd: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("provd did not exit within 15 s of SIGTERM; its log:\n%s", &p.stderr)
	}
	if p.waitErr != nil {
		t.Fatalf("provd after SIGTERM: %v; its log:\n%s", p.waitErr, &p.stderr)
	}
}

func (p *provdProc) dial(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), p.grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// acked is an append the node acknowledged with a receipt that verified.
type acked struct {
	index    uint64
	leaf     [32]byte
	envelope []byte // canonical DSSE JSON that was sent
	signer   *testSigner
}

// history is what the clients learned from the node across every round:
// what it acknowledged and every checkpoint it signed in a receipt.
type history struct {
	mu    sync.Mutex
	acks  []acked
	notes map[string]bool // signed checkpoint notes, from receipts
	// inflight are the envelopes whose append was cut by a kill: they may
	// or may not be in the log.
	inflight []acked
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills provd; skipped with -short")
	}
	start := time.Now()
	data := t.TempDir()
	provdBinary(t)
	t.Logf("build %v", time.Since(start))
	p := startProvd(t, data)
	pub, err := client.LoadLogKey(filepath.Join(data, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := checkpoint.NewVerifier(devOrigin, pub)
	if err != nil {
		t.Fatal(err)
	}
	h := &history{notes: map[string]bool{}}
	for round := 1; round <= crashRounds; round++ {
		c := p.dial(t)
		n := len(h.acks)
		inflight := runLoadAndKill(t, p, c, v, h, round)
		t.Logf("round %d: %d appends acknowledged, %d in flight at SIGKILL (%d checkpoints seen so far)", round, len(h.acks)-n, inflight, len(h.notes))
		if len(h.acks) == n {
			t.Fatalf("round %d: no append was acknowledged in %v; provd log:\n%s", round, crashLoadTime, &p.stderr)
		}
		if t.Failed() {
			t.FailNow()
		}

		t0 := time.Now()
		p = startProvd(t, data)
		t1 := time.Now()
		c = p.dial(t)
		checkRecovered(t, c, v, h)
		t2 := time.Now()
		resubmit(t, c, v, h)
		t.Logf("restart %v, check %v, resubmit %v", t1.Sub(t0), t2.Sub(t1), time.Since(t2))
		if t.Failed() {
			t.Fatalf("after round %d; provd log:\n%s", round, &p.stderr)
		}
	}
	// The recovered node shuts down cleanly on SIGTERM.
	p.stop(t)
	t.Logf("%d rounds in %v", crashRounds, time.Since(start).Round(time.Millisecond))
}

// runLoadAndKill runs crashAppenders concurrent appenders against p for
// crashLoadTime, then SIGKILLs p while they are still appending. Each
// appender has its own key (new each round), sent with every append so that
// --dev trusts it. It returns how many appends were cut by the kill.
func runLoadAndKill(t *testing.T, p *provdProc, c *client.Client, v note.Verifier, h *history, round int) int {
	var killed atomic.Bool
	var wg sync.WaitGroup
	var inflight atomic.Int64
	for a := range crashAppenders {
		s := newTestSigner(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				env, err := s.statement(fmt.Sprintf("crash/round-%d/appender-%d/%d", round, a, i))
				if err != nil {
					t.Errorf("sign: %v", err)
					return
				}
				canonical := env.Marshal()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := c.Append(ctx, s.appendRequest(env, true))
				cancel()
				if err != nil {
					if killed.Load() {
						inflight.Add(1)
						h.mu.Lock()
						h.inflight = append(h.inflight, acked{envelope: canonical, signer: s})
						h.mu.Unlock()
						return
					}
					t.Errorf("appender %d: append %d before the kill: %v", a, i, err)
					return
				}
				if err := client.VerifyReceipt(resp, canonical, v); err != nil {
					t.Errorf("appender %d: append %d: receipt does not verify: %v", a, i, err)
					return
				}
				if resp.GetDuplicate() {
					t.Errorf("appender %d: append %d of a new envelope says duplicate (index %d)", a, i, resp.GetIndex())
					return
				}
				h.mu.Lock()
				h.acks = append(h.acks, acked{index: resp.GetIndex(), leaf: [32]byte(resp.GetLeafHash()), envelope: canonical, signer: s})
				h.notes[string(resp.GetCheckpoint())] = true
				h.mu.Unlock()
			}
		}()
	}
	time.Sleep(crashLoadTime)
	killed.Store(true)
	p.kill(t)
	wg.Wait()
	return int(inflight.Load())
}

// checkRecovered checks the restarted node against everything the clients
// learned before the crash.
func checkRecovered(t *testing.T, c *client.Client, v note.Verifier, h *history) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The latest checkpoint, signed by the log key.
	resp, err := c.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{})
	if err != nil {
		t.Fatalf("GetCheckpoint after restart: %v", err)
	}
	latest, err := checkpoint.Open(resp.GetNote(), v)
	if err != nil {
		t.Fatalf("latest checkpoint after restart does not verify: %v\n%s", err, resp.GetNote())
	}

	// Every checkpoint the node signed before the crash, by size. Two
	// notes of the same size must have the same root.
	old := map[uint64]checkpoint.Checkpoint{}
	for n := range h.notes {
		cp, err := checkpoint.Open([]byte(n), v)
		if err != nil {
			t.Fatalf("a checkpoint from a receipt does not verify: %v\n%s", err, n)
		}
		if prev, ok := old[cp.Size]; ok && prev.Hash != cp.Hash {
			t.Errorf("two checkpoints of size %d with different roots %x and %x", cp.Size, prev.Hash, cp.Hash)
		}
		old[cp.Size] = cp
		if cp.Size > latest.Size {
			t.Errorf("checkpoint of size %d was issued before the crash, but the latest after restart has size %d: the log shrank", cp.Size, latest.Size)
		}
	}
	for _, a := range h.acks {
		if a.index >= latest.Size {
			t.Errorf("acknowledged entry %d is beyond the recovered log's size %d", a.index, latest.Size)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Read the whole log: each record hashes to its leaf and names its
	// envelope; the root recomputed from the leaves equals the latest
	// checkpoint's, and at every old checkpoint's size equals that one's.
	leaves := make([][32]byte, 0, latest.Size)
	digests := make(map[[32]byte]uint64, latest.Size)
	tree := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	checkRoot := func(size uint64) {
		cp, ok := old[size]
		if !ok || size == 0 {
			return
		}
		root, err := tree.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(root, cp.Hash[:]) {
			t.Errorf("root recomputed from entries [0, %d) is %x; the checkpoint of that size issued before the crash says %x", size, root, cp.Hash)
		}
	}
	stream, err := c.GetEntries(ctx, &provledgerpb.GetEntriesRequest{Start: 0, End: latest.Size})
	if err != nil {
		t.Fatalf("GetEntries: %v", err)
	}
	for {
		e, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("GetEntries after %d entries: %v", len(leaves), err)
		}
		i := uint64(len(leaves))
		if e.GetIndex() != i {
			t.Fatalf("GetEntries sent index %d where %d was expected", e.GetIndex(), i)
		}
		leaf := proof.LeafHash(e.GetRecord())
		if !bytes.Equal(leaf[:], e.GetLeafHash()) {
			t.Errorf("entry %d: leaf_hash %x, but its record hashes to %x", i, e.GetLeafHash(), leaf)
		}
		rec, err := record.Unmarshal(e.GetRecord())
		if err != nil {
			t.Fatalf("entry %d: record: %v", i, err)
		}
		if err := client.CheckEnvelope(rec, e.GetEnvelopeJson()); err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
		if first, dup := digests[rec.EnvelopeDigest]; dup {
			t.Errorf("entry %d: envelope %x is already in the log at %d (dedup broken by the crash)", i, rec.EnvelopeDigest, first)
		}
		digests[rec.EnvelopeDigest] = i
		if err := tree.Append(leaf[:], nil); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leaf)
		checkRoot(tree.End())
	}
	if uint64(len(leaves)) != latest.Size {
		t.Fatalf("GetEntries returned %d entries; the latest checkpoint has size %d", len(leaves), latest.Size)
	}
	root := proof.EmptyRoot()
	if latest.Size > 0 {
		r, err := tree.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		root = [32]byte(r)
	}
	if root != latest.Hash {
		t.Errorf("root recomputed from all %d entries is %x; the latest checkpoint says %x", latest.Size, root, latest.Hash)
	}

	// Every acknowledged entry is at its index, unchanged (GetEntry), and
	// its envelope is the one that was sent.
	acks := slices.Clone(h.acks)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(acks) {
					return
				}
				a := acks[k]
				withProof := k%101 == 0
				e, err := c.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: a.index, WithProof: withProof})
				if err != nil {
					t.Errorf("GetEntry(%d) of an acknowledged entry: %v", a.index, err)
					return
				}
				if !bytes.Equal(e.GetLeafHash(), a.leaf[:]) || leaves[a.index] != a.leaf {
					t.Errorf("entry %d: leaf hash %x after the crash, %x when acknowledged", a.index, e.GetLeafHash(), a.leaf)
				}
				if !bytes.Equal(e.GetEnvelopeJson(), a.envelope) {
					t.Errorf("entry %d: envelope differs from the one acknowledged", a.index)
				}
				if d := sha256.Sum256(a.envelope); digests[d] != a.index {
					t.Errorf("entry %d: the log holds its envelope at %d", a.index, digests[d])
				}
				if withProof {
					if _, err := client.VerifyEntry(e, v); err != nil {
						t.Errorf("entry %d with proof: %v", a.index, err)
					}
				}
			}
		}()
	}
	wg.Wait()

	// Every checkpoint issued before the crash is consistent with the
	// latest one, by a proof the node serves.
	for size, cp := range old {
		if size == latest.Size {
			if cp.Hash != latest.Hash {
				t.Errorf("checkpoint of size %d before the crash has root %x, the latest of the same size %x", size, cp.Hash, latest.Hash)
			}
			continue
		}
		cr, err := c.GetConsistencyProof(ctx, &provledgerpb.GetConsistencyProofRequest{OldSize: size, NewSize: latest.Size})
		if err != nil {
			t.Errorf("GetConsistencyProof(%d, %d): %v", size, latest.Size, err)
			continue
		}
		if err := proof.VerifyConsistency(size, latest.Size, cr.GetHashes(), cp.Hash, latest.Hash); err != nil {
			t.Errorf("checkpoint of size %d issued before the crash is not consistent with the latest (size %d): %v", size, latest.Size, err)
		}
	}
}

// resubmit appends again, with no public key (the keys must have survived
// in DATA/tofu-keys.pem), some acknowledged envelopes, which must come back
// as duplicates at their index without growing the log, and every envelope
// cut by the kill, which must end up in the log exactly once. The latter
// become acknowledged entries for the next round's checks.
func resubmit(t *testing.T, c *client.Client, v note.Verifier, h *history) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	size := func() uint64 {
		r, err := c.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{})
		if err != nil {
			t.Fatalf("GetCheckpoint: %v", err)
		}
		return r.GetSize()
	}
	appendAgain := func(a acked) *provledgerpb.AppendResponse {
		req := &provledgerpb.AppendRequest{Namespace: "provd-test", Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: a.envelope}}
		resp, err := c.Append(ctx, req)
		if err != nil {
			t.Fatalf("append again, without the public key, after restart: %v", err)
		}
		if err := client.VerifyReceipt(resp, a.envelope, v); err != nil {
			t.Fatalf("receipt of an append after restart: %v", err)
		}
		return resp
	}

	before := size()
	step := max(len(h.acks)/20, 1)
	for k := len(h.acks) - 1; k >= 0; k -= step {
		a := h.acks[k]
		resp := appendAgain(a)
		if !resp.GetDuplicate() || resp.GetIndex() != a.index {
			t.Errorf("acknowledged envelope at %d appended again: duplicate=%v index=%d; want duplicate at %d", a.index, resp.GetDuplicate(), resp.GetIndex(), a.index)
		}
	}
	if after := size(); after != before {
		t.Errorf("appending acknowledged envelopes again grew the log from %d to %d", before, after)
	}

	seen := map[uint64]bool{}
	for _, a := range h.inflight {
		resp := appendAgain(a)
		if resp.GetDuplicate() != (resp.GetIndex() < before) {
			t.Errorf("envelope cut by the kill appended again: duplicate=%v at index %d, log size was %d", resp.GetDuplicate(), resp.GetIndex(), before)
		}
		if seen[resp.GetIndex()] {
			t.Errorf("two different envelopes at index %d", resp.GetIndex())
		}
		seen[resp.GetIndex()] = true
		a.index, a.leaf = resp.GetIndex(), [32]byte(resp.GetLeafHash())
		h.acks = append(h.acks, a)
		h.notes[string(resp.GetCheckpoint())] = true
	}
	h.inflight = nil
}
