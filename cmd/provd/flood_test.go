package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
)

// The flood test (issue 7, "Limits and hostile input"): many clients send
// large appends at once to a real provd; its peak RSS must stay under
// floodRSSBound, and every acknowledged entry must read back intact.
const (
	floodClients  = 32
	floodPerCli   = 5
	floodPayload  = 700 << 10 // JSON payload bytes: ~0.93 MiB as DSSE JSON, near the 1 MiB default limit
	floodInflight = 16        // --max-inflight-appends
	// floodRSSBound is the documented bound (docs/operations.md): 160 MiB
	// of baseline (Go runtime, Pebble memtables and caches warmed by the
	// appends) plus 16 MiB per append in flight (the request, its decoded
	// and canonical envelope, its share of the batch and WAL write, and
	// the garbage the Go collector lets pile up to twice the live heap).
	// Measured: 356 MiB peak with 16 in flight on the 2-core reference
	// machine.
	floodRSSBound = 160<<20 + floodInflight*16<<20
)

// peakRSS returns VmHWM (peak resident set) of pid, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// bigStatement is a signed in-toto statement with a payload of about
// floodPayload bytes, distinct for each (client, i).
func bigStatement(t *testing.T, s *testSigner, cli, i int) *envelope.Envelope {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"flood-%d-%d","digest":{"sha256":"%064x"}}],"predicateType":"https://provledger.dev/test/v1","predicate":{"blob":"`, cli, i, cli*1000+i)
	for b.Len() < floodPayload {
		fmt.Fprintf(&b, "%08x", b.Len()^(cli<<20)^i)
	}
	b.WriteString(`"}}`)
	env, err := envelope.Sign(testPayloadType, b.Bytes(), s.signer)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestFloodBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a node with ~150 MB of appends")
	}
	p := startProvd(t, t.TempDir(), "--admin-addr", "", "--max-inflight-appends", strconv.Itoa(floodInflight))
	m := reVerifier.FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no verifier key in the banner:\n%s", p.stdout.String())
	}
	v, err := note.NewVerifier(m[1])
	if err != nil {
		t.Fatal(err)
	}
	s := newTestSigner(t)
	conns := make([]*client.Client, 4)
	for i := range conns {
		conns[i] = p.dial(t)
	}
	// Trust the key (first use, --dev) before the flood.
	if _, err := appendOne(t, conns[0], v, s, "flood-warmup", true); err != nil {
		t.Fatal(err)
	}

	type ack struct {
		index uint64
		env   []byte
	}
	var (
		mu      sync.Mutex
		acks    []ack
		refused atomic.Int64
		wg      sync.WaitGroup
		errs    = make(chan error, floodClients)
	)
	start := time.Now()
	for cli := range floodClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conns[cli%len(conns)]
			for i := range floodPerCli {
				env := bigStatement(t, s, cli, i)
				canonical := env.Marshal()
				req := &provledgerpb.AppendRequest{Namespace: "flood", Body: &provledgerpb.AppendRequest_DsseJson{DsseJson: canonical}}
				for attempt := 0; ; attempt++ {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					resp, err := c.Append(ctx, req)
					cancel()
					if status.Code(err) == codes.ResourceExhausted && attempt < 1000 {
						refused.Add(1)
						time.Sleep(time.Duration(10+attempt%40) * time.Millisecond)
						continue
					}
					if err != nil {
						errs <- fmt.Errorf("client %d append %d: %w", cli, i, err)
						return
					}
					if err := client.VerifyReceipt(resp, canonical, v); err != nil {
						errs <- fmt.Errorf("client %d append %d: receipt: %w", cli, i, err)
						return
					}
					mu.Lock()
					acks = append(acks, ack{resp.GetIndex(), canonical})
					mu.Unlock()
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	hwm := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("%d appends of ~%d KiB in %v (%d refused while %d were in flight, retried); provd peak RSS %d MiB (bound %d MiB)",
		len(acks), len(acks[0].env)>>10, time.Since(start).Round(time.Millisecond), refused.Load(), floodInflight, hwm>>20, floodRSSBound>>20)
	if hwm > floodRSSBound {
		t.Errorf("provd peak RSS %d MiB is above the documented bound of %d MiB", hwm>>20, floodRSSBound>>20)
	}

	// Every acknowledged entry reads back intact.
	c := conns[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seen := map[uint64]bool{}
	for _, a := range acks {
		if seen[a.index] {
			t.Fatalf("index %d acknowledged twice for distinct envelopes", a.index)
		}
		seen[a.index] = true
		e, err := c.GetEntry(ctx, &provledgerpb.GetEntryRequest{Index: a.index})
		if err != nil {
			t.Fatalf("GetEntry %d: %v", a.index, err)
		}
		if !bytes.Equal(e.GetEnvelopeJson(), a.env) {
			t.Fatalf("entry %d: envelope differs from the one acknowledged (%d vs %d bytes)", a.index, len(e.GetEnvelopeJson()), len(a.env))
		}
	}
	cp, err := c.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(acks) + 1); cp.GetSize() != want {
		t.Errorf("log size %d; want %d (the warm-up and every acknowledged append)", cp.GetSize(), want)
	}
	p.stop(t)
}
