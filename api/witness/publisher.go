package witness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/cosignature"
)

// Witness is one witness a Publisher asks: where it is and its key.
type Witness struct {
	Client   *Client
	Verifier *cosignature.Verifier
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Latest returns the log's latest signed checkpoint note. Required.
	Latest func() []byte
	// Proof returns the consistency proof between two sizes. Required.
	Proof ProofFunc
	// Witnesses to ask, and how many must cosign (default: all).
	Witnesses []Witness
	Quorum    int
	// Interval between rounds of Run; default 1s.
	Interval time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Publisher implements a log's witness policy: it submits the log's
// checkpoints to its witnesses (C2SP tlog-witness) and publishes a
// checkpoint only once at least Quorum of them cosigned it. Readers get
// the published, cosigned checkpoint through HTTPMiddleware (GET
// /checkpoint) and UnaryInterceptor (GetCheckpoint); the log itself is not
// touched, and appends are acknowledged as before, with the log's own
// checkpoint.
type Publisher struct {
	cfg PublisherConfig

	mu        sync.Mutex
	known     []uint64 // per witness: the size it last cosigned (hint)
	published []byte
	pubCP     checkpoint.Checkpoint
}

// NewPublisher checks cfg and returns a Publisher.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Latest == nil || cfg.Proof == nil || len(cfg.Witnesses) == 0 {
		return nil, errors.New("witness publisher: Latest, Proof and at least one witness are required")
	}
	if cfg.Quorum == 0 {
		cfg.Quorum = len(cfg.Witnesses)
	}
	if cfg.Quorum < 1 || cfg.Quorum > len(cfg.Witnesses) {
		return nil, fmt.Errorf("witness publisher: quorum %d is not between 1 and the %d witnesses", cfg.Quorum, len(cfg.Witnesses))
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Publisher{cfg: cfg, known: make([]uint64, len(cfg.Witnesses))}, nil
}

// Run calls Step every Interval until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		if err := p.Step(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("witness publisher: checkpoint not published", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step submits the log's latest checkpoint, if newer than the published
// one, to every witness and publishes it with their cosignatures if at
// least Quorum cosigned.
func (p *Publisher) Step(ctx context.Context) error {
	n := p.cfg.Latest()
	body, _, ok := strings.Cut(string(n), "\n\n")
	if !ok {
		return errors.New("the log's checkpoint is not a signed note")
	}
	cp, err := checkpoint.ParseBody([]byte(body + "\n"))
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.published != nil && cp.Size <= p.pubCP.Size {
		p.mu.Unlock()
		return nil
	}
	hints := append([]uint64(nil), p.known...)
	p.mu.Unlock()

	type answer struct {
		lines []cosignature.Line
		err   error
	}
	answers := make([]answer, len(p.cfg.Witnesses))
	var wg sync.WaitGroup
	for i, w := range p.cfg.Witnesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines, err := w.Client.Cosign(ctx, n, cp.Size, hints[i], p.cfg.Proof)
			if err == nil {
				var got []cosignature.Cosigned
				got, err = cosignature.Verify(cosignature.AddLines(n, lines), []*cosignature.Verifier{w.Verifier})
				if err == nil && len(got) == 0 {
					err = fmt.Errorf("witness %s answered without its cosignature", w.Verifier.Name())
				}
			}
			answers[i] = answer{lines, err}
		}()
	}
	wg.Wait()
	cosigned := n
	var count int
	var errs []error
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, a := range answers {
		if a.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.cfg.Witnesses[i].Verifier.Name(), a.err))
			continue
		}
		p.known[i] = cp.Size
		count++
		cosigned = cosignature.AddLines(cosigned, a.lines)
	}
	if count < p.cfg.Quorum {
		return fmt.Errorf("size %d: %d of %d witnesses cosigned, %d needed: %w", cp.Size, count, len(p.cfg.Witnesses), p.cfg.Quorum, errors.Join(errs...))
	}
	if p.published == nil || cp.Size > p.pubCP.Size {
		p.published, p.pubCP = cosigned, cp
		p.cfg.Logger.Info("witness publisher: published", "size", cp.Size, "cosignatures", count)
	}
	return nil
}

// Published returns the latest published (cosigned) checkpoint note and
// its checkpoint, or nil before the first.
func (p *Publisher) Published() ([]byte, checkpoint.Checkpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.published, p.pubCP
}

// HTTPMiddleware serves the published checkpoint on GET/HEAD
// <prefix>/checkpoint (503 until one is published) and passes every
// other request to next.
func (p *Publisher) HTTPMiddleware(prefix string) func(http.Handler) http.Handler {
	path := strings.TrimRight(prefix, "/") + "/checkpoint"
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != path || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
				next.ServeHTTP(w, r)
				return
			}
			n, _ := p.Published()
			w.Header().Set("Cache-Control", "no-store")
			if n == nil {
				http.Error(w, "no checkpoint has been cosigned by enough witnesses yet; retry shortly", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write(n)
		})
	}
}

// getCheckpointMethod is the gRPC method UnaryInterceptor rewrites.
const getCheckpointMethod = "/provledger.v1.Ledger/GetCheckpoint"

// UnaryInterceptor answers GetCheckpoint for the latest size (size 0)
// with the published checkpoint (Unavailable until there is one), and
// adds the cosignatures to an answer for the published size.
func (p *Publisher) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod != getCheckpointMethod {
		return handler(ctx, req)
	}
	n, cp := p.Published()
	if r, ok := req.(*provledgerpb.GetCheckpointRequest); ok && r.GetSize() == 0 {
		if n == nil {
			return nil, status.Error(codes.Unavailable, "no checkpoint has been cosigned by enough witnesses yet; retry shortly")
		}
		return &provledgerpb.Checkpoint{Note: n, Origin: cp.Origin, Size: cp.Size, RootHash: cp.Hash[:]}, nil
	}
	resp, err := handler(ctx, req)
	if c, ok := resp.(*provledgerpb.Checkpoint); ok && err == nil && n != nil && c.GetSize() == cp.Size {
		c.Note = n
	}
	return resp, err
}
