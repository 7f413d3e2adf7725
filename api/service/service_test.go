package service_test

import (
	"context"
	"errors"
	"fmt"
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
	if len(c.PayloadTypes) != 5 || c.MaxBatch != service.DefaultMaxBatch || c.MaxEnvelopeSize != ledger.DefaultMaxEnvelopeSize || c.Logger == nil {
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
