package witness

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/cosignature"
)

// newWitnessN starts witness number i over the test log's key.
func newWitnessN(t *testing.T, i int) (Witness, *httptest.Server) {
	t.Helper()
	seed := sha256.Sum256([]byte{'w', byte(i)})
	name := "witness.test/w" + string(rune('0'+i))
	ws, _ := cosignature.NewSigner(name, ed25519.NewKeyFromSeed(seed[:]), nil)
	lv, _ := checkpoint.NewVerifier(origin, logKey().Public().(ed25519.PublicKey))
	s, err := New(Config{Signer: ws, Store: &MemStore{}, Logs: []Log{{Origin: origin, Verifier: lv}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	v, _ := cosignature.NewVerifier(name, ws.Public())
	return Witness{Client: &Client{URL: hs.URL}, Verifier: v}, hs
}

func TestPublisherQuorum(t *testing.T) {
	l := newTestLog(t, 10, "")
	size := 10
	var ws []Witness
	var servers []*httptest.Server
	for i := range 3 {
		w, hs := newWitnessN(t, i)
		ws = append(ws, w)
		servers = append(servers, hs)
	}
	p, err := NewPublisher(PublisherConfig{
		Latest:    func() []byte { return l.note(t, size) },
		Proof:     func(_ context.Context, old, new uint64) ([][]byte, error) { return l.proof(t, int(old), int(new)), nil },
		Witnesses: ws, Quorum: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Step(ctx); err != nil {
		t.Fatal(err)
	}
	n, cp := p.Published()
	got, err := cosignature.Verify(n, []*cosignature.Verifier{ws[0].Verifier, ws[1].Verifier, ws[2].Verifier})
	if cp.Size != 10 || err != nil || len(got) != 3 {
		t.Fatalf("published %d with %v %v", cp.Size, got, err)
	}
	// One witness down: 2 of 3 still publish size 40 (with a consistency proof).
	servers[2].Close()
	l.grow(30, "")
	size = 40
	if err := p.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if n, cp = p.Published(); cp.Size != 40 {
		t.Fatalf("published size %d", cp.Size)
	}
	if got, _ := cosignature.Verify(n, []*cosignature.Verifier{ws[0].Verifier, ws[1].Verifier, ws[2].Verifier}); len(got) != 2 {
		t.Fatalf("cosigned by %v", got)
	}
	// Two down: size 50 is not published; 40 stays.
	servers[1].Close()
	l.grow(10, "")
	size = 50
	if err := p.Step(ctx); err == nil || !strings.Contains(err.Error(), "1 of 3 witnesses cosigned, 2 needed") {
		t.Fatalf("Step with one witness: %v", err)
	}
	if _, cp = p.Published(); cp.Size != 40 {
		t.Fatalf("published size %d after a failed quorum", cp.Size)
	}

	// Readers get the published checkpoint.
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("next")) })
	h := p.HTTPMiddleware("")(next)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/checkpoint", nil))
	if !strings.HasPrefix(rec.Body.String(), origin+"\n40\n") {
		t.Fatalf("/checkpoint: %q", rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/tile/0/000", nil))
	if rec.Body.String() != "next" {
		t.Fatal("other paths must pass through")
	}
	info := &grpc.UnaryServerInfo{FullMethod: getCheckpointMethod}
	resp, err := p.UnaryInterceptor(ctx, &provledgerpb.GetCheckpointRequest{}, info, func(context.Context, any) (any, error) {
		return &provledgerpb.Checkpoint{Size: 50}, nil
	})
	if err != nil || resp.(*provledgerpb.Checkpoint).GetSize() != 40 {
		t.Fatalf("GetCheckpoint: %v %v", resp, err)
	}
	resp, err = p.UnaryInterceptor(ctx, &provledgerpb.GetCheckpointRequest{Size: 40}, info, func(context.Context, any) (any, error) {
		return &provledgerpb.Checkpoint{Size: 40, Note: []byte("log only")}, nil
	})
	if err != nil || string(resp.(*provledgerpb.Checkpoint).GetNote()) != string(n) {
		t.Fatalf("GetCheckpoint size 40: %v %v", resp, err)
	}
}

func TestPublisherNothingYet(t *testing.T) {
	w, hs := newWitnessN(t, 7)
	hs.Close()
	l := newTestLog(t, 3, "")
	p, _ := NewPublisher(PublisherConfig{Latest: func() []byte { return l.note(t, 3) },
		Proof: func(context.Context, uint64, uint64) ([][]byte, error) { return nil, nil }, Witnesses: []Witness{w},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := p.Step(context.Background()); err == nil {
		t.Fatal("published without a witness")
	}
	rec := httptest.NewRecorder()
	p.HTTPMiddleware("/log")(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/log/checkpoint", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("/checkpoint before a quorum: %d", rec.Code)
	}
	_, err := p.UnaryInterceptor(context.Background(), &provledgerpb.GetCheckpointRequest{}, &grpc.UnaryServerInfo{FullMethod: getCheckpointMethod}, nil)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("GetCheckpoint before a quorum: %v", err)
	}
	if _, err := NewPublisher(PublisherConfig{Latest: p.cfg.Latest, Proof: p.cfg.Proof, Witnesses: []Witness{w}, Quorum: 2}); err == nil {
		t.Fatal("quorum above the witnesses accepted")
	}
}
