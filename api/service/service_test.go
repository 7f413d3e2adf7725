package service_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
)

func TestConfigValidate(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	kr, _ := keys.NewKeyring()
	good := service.Config{Log: env.Log, Sequencer: env.Seq, Verifier: &envelope.Verifier{Keyring: kr}}
	for _, tc := range []struct {
		name string
		mod  func(*service.Config)
		want string
	}{
		{"ok", func(*service.Config) {}, ""},
		{"no log", func(c *service.Config) { c.Log = nil }, "Log is required"},
		{"no sequencer", func(c *service.Config) { c.Sequencer = nil }, "Sequencer is required"},
		{"no verifier", func(c *service.Config) { c.Verifier = nil }, "Verifier is required"},
		{"no keyring", func(c *service.Config) { c.Verifier = &envelope.Verifier{} }, "Keyring is required"},
		{"envelope above log limit", func(c *service.Config) { c.MaxEnvelopeSize = ledger.DefaultMaxEnvelopeSize + 1 }, "above the log's limit"},
		{"negative batch", func(c *service.Config) { c.MaxBatch = -1 }, "MaxBatch -1 is negative"},
		{"empty payload type", func(c *service.Config) { c.PayloadTypes = []string{""} }, "payload type"},
		{"negative verify workers", func(c *service.Config) { c.VerifyWorkers = -1 }, "VerifyWorkers -1 is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			_, err := service.New(c)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
		})
	}
	s, err := service.New(good)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config()
	if !slices.Equal(c.PayloadTypes, service.DefaultPayloadTypes) || c.MaxBatch != service.DefaultMaxBatch || c.MaxEnvelopeSize != ledger.DefaultMaxEnvelopeSize || c.Logger == nil {
		t.Fatalf("defaults not filled in: %+v", c)
	}
}

func TestRedactedBy(t *testing.T) {
	err := fmt.Errorf("get: %w", fmt.Errorf("envelope %x: %w by entry %d", [32]byte{}, ledger.ErrRedacted, 42))
	if n, ok := service.RedactedBy(err); !ok || n != 42 {
		t.Fatalf("RedactedBy = %d, %v", n, ok)
	}
	if _, ok := service.RedactedBy(ledger.ErrNotFound); ok {
		t.Fatal("RedactedBy of ErrNotFound")
	}
	if _, ok := service.RedactedBy(ledger.ErrRedacted); ok {
		t.Fatal("RedactedBy without an index")
	}
}

// FuzzAppendRequest unmarshals random bytes into an AppendRequest and serves
// it: the service must never panic and always answer with a receipt or a
// status that is not Internal or Unknown.
func FuzzAppendRequest(f *testing.F) {
	env := apitest.Start(f, apitest.Options{TOFU: true})
	svc := env.Server.Service()
	for i := range 3 {
		b, _ := proto.Marshal(apitest.Request(i))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req provledgerpb.AppendRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		resp, err := svc.Append(context.Background(), &req)
		if err == nil {
			if resp == nil || len(resp.LeafHash) != 32 {
				t.Fatalf("no receipt: %v", resp)
			}
			return
		}
		st, ok := status.FromError(err)
		if !ok {
			t.Fatalf("not a status: %v", err)
		}
		if st.Code() == codes.Internal || st.Code() == codes.Unknown || st.Message() == "" {
			t.Fatalf("%v: %q", st.Code(), st.Message())
		}
		if errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	})
}

// TestCheckers appends concurrently through a service with one checker
// goroutine (every request waits for it): all appends succeed, each with its
// own index, and a request whose context ends while queued fails with
// Canceled without being appended.
func TestCheckers(t *testing.T) {
	env := apitest.Start(t, apitest.Options{Service: func(c *service.Config) { c.VerifyWorkers = 1 }})
	svc := env.Server.Service()
	if got := svc.Config().VerifyWorkers; got != 1 {
		t.Fatalf("VerifyWorkers = %d", got)
	}
	const n = 64
	errs := make(chan error, n)
	idx := make(chan uint64, 2*n)
	for i := range n {
		go func() {
			if i%2 == 0 {
				resp, err := svc.Append(context.Background(), apitest.Request(i))
				if err == nil {
					idx <- resp.GetIndex()
				}
				errs <- err
				return
			}
			resp, err := svc.AppendBatch(context.Background(), &provledgerpb.AppendBatchRequest{Requests: []*provledgerpb.AppendRequest{apitest.Request(1000 + i), apitest.Request(2000 + i)}})
			if err == nil {
				for _, r := range resp.GetResponses() {
					if r.GetError() != nil {
						err = fmt.Errorf("batch item: %v", r.GetError())
						break
					}
					idx <- r.GetIndex()
				}
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(idx)
	seen := map[uint64]bool{}
	for i := range idx {
		if seen[i] {
			t.Fatalf("index %d twice", i)
		}
		seen[i] = true
	}
	if len(seen) != n/2+n {
		t.Fatalf("%d indexes, want %d", len(seen), n/2+n)
	}
	size := env.Log.Latest().Size

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := svc.Append(ctx, apitest.Request(5000))
	if status.Code(err) != codes.Canceled {
		t.Fatalf("append with a canceled context: %v", err)
	}
	if got := env.Log.Latest().Size; got != size {
		t.Fatalf("log grew from %d to %d on a canceled append", size, got)
	}
}
