// Package apitest starts a real ledger and API server for the api tests.
package apitest

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
)

// Origin is the test log's origin.
const Origin = "test.provledger/api"

// PayloadType is an accepted payload type used by the tests.
const PayloadType = "application/vnd.in-toto+json"

// Deterministic keys.
var (
	LogKey     = ed25519.NewKeyFromSeed(seed(1))
	TrustedKey = ed25519.NewKeyFromSeed(seed(2)) // in the keyring
	OtherKey   = ed25519.NewKeyFromSeed(seed(3)) // not in the keyring
)

func seed(b byte) []byte {
	s := sha256.Sum256([]byte{b})
	return s[:]
}

// Env is a running ledger with its API.
type Env struct {
	Log     *ledger.Log
	Seq     *ledger.LocalSequencer
	Keyring *keys.Keyring
	Server  *server.Server
	Conn    *grpc.ClientConn
	Client  provledgerpb.LedgerClient
	HTTPURL string

	mu      sync.Mutex
	newKeys []crypto.PublicKey
}

// Options tweak the environment.
type Options struct {
	TOFU       bool
	Service    func(*service.Config)
	HTTPPrefix string
	// Ledger and Server, if set, adjust the ledger and server configs
	// (e.g. a metrics observer, interceptors, TLS).
	Ledger func(*ledger.Options)
	Server func(*server.Config)
}

// Start opens a ledger in a temporary directory and serves it on loopback.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	signer, err := checkpoint.NewSigner(Origin, LogKey)
	if err != nil {
		t.Fatal(err)
	}
	lo := ledger.Options{Origin: Origin, Signer: signer, Logger: logger}
	if o.Ledger != nil {
		o.Ledger(&lo)
	}
	l, err := ledger.Open(t.TempDir(), lo)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keys.NewKeyring(TrustedKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Log: l, Seq: seq, Keyring: kr}
	sc := service.Config{
		Log: l, Sequencer: seq,
		Verifier:        &envelope.Verifier{Keyring: kr, TrustOnFirstUse: o.TOFU},
		MaxEnvelopeSize: 64 << 10,
		MaxBatch:        100,
		OnNewKey: func(k crypto.PublicKey) {
			e.mu.Lock()
			e.newKeys = append(e.newKeys, k)
			e.mu.Unlock()
		},
		Logger: logger,
	}
	if o.Service != nil {
		o.Service(&sc)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvCfg := server.Config{Service: sc, GRPCListener: gl, HTTPListener: hl, HTTPPrefix: o.HTTPPrefix, Logger: logger}
	if o.Server != nil {
		o.Server(&srvCfg)
	}
	srv, err := server.New(srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	conn, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e.Server, e.Conn, e.Client = srv, conn, provledgerpb.NewLedgerClient(conn)
	e.HTTPURL = "http://" + hl.Addr().String() + o.HTTPPrefix
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		seq.Close()
		l.Close()
	})
	return e
}

// NewKeys returns the keys OnNewKey was called with.
func (e *Env) NewKeys() []crypto.PublicKey {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]crypto.PublicKey(nil), e.newKeys...)
}

// PAE is the DSSE pre-authentication encoding (written out here so the
// tests do not depend on the code under test).
func PAE(payloadType string, payload []byte) []byte {
	return []byte("DSSEv1 " + strconv.Itoa(len(payloadType)) + " " + payloadType + " " + strconv.Itoa(len(payload)) + " " + string(payload))
}

// KeyID is the provledger key id of an Ed25519 key.
func KeyID(k ed25519.PrivateKey) keys.KeyID {
	id, err := keys.IDOf(k.Public())
	if err != nil {
		panic(err)
	}
	return id
}

// Sign returns a DSSE envelope signed by the given keys.
func Sign(payloadType string, payload []byte, signers ...ed25519.PrivateKey) *provledgerpb.Envelope {
	e := &provledgerpb.Envelope{PayloadType: payloadType, Payload: payload}
	for _, k := range signers {
		e.Signatures = append(e.Signatures, &provledgerpb.Signature{Keyid: KeyID(k).String(), Sig: ed25519.Sign(k, PAE(payloadType, payload))})
	}
	return e
}

// Payload is a distinct valid JSON payload for i.
func Payload(i int) []byte {
	return fmt.Appendf(nil, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"artifact-%d","digest":{"sha256":"%064x"}}]}`, i, i)
}

// Request is a valid append request for i, signed by the trusted key.
func Request(i int) *provledgerpb.AppendRequest {
	return &provledgerpb.AppendRequest{
		Namespace: "team-a",
		Body:      &provledgerpb.AppendRequest_Envelope{Envelope: Sign(PayloadType, Payload(i), TrustedKey)},
		RequestId: uint64(i),
	}
}

// Fill appends n distinct entries, starting at i0, in batches of batch.
func (e *Env) Fill(t testing.TB, i0, n, batch int) {
	t.Helper()
	ctx := context.Background()
	for i := i0; i < i0+n; i += batch {
		req := &provledgerpb.AppendBatchRequest{}
		for j := i; j < min(i+batch, i0+n); j++ {
			req.Requests = append(req.Requests, Request(j))
		}
		resp, err := e.Client.AppendBatch(ctx, req)
		if err != nil {
			t.Fatalf("AppendBatch: %v", err)
		}
		for _, r := range resp.Responses {
			if r.Error != nil {
				t.Fatalf("AppendBatch item %d: %v", r.RequestId, r.Error)
			}
		}
	}
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
