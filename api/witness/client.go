package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/provledger/provledger/crypto/cosignature"
)

// Client errors; a 409 is a *ConflictError.
var (
	ErrUnknownLog   = errors.New("witness: unknown log (404)")
	ErrForbidden    = errors.New("witness: no valid log signature (403)")
	ErrBadRequest   = errors.New("witness: bad request (400)")
	ErrInconsistent = errors.New("witness: consistency proof does not verify (422)")
)

// ConflictError is a 409 answer: the witness's size, and why.
type ConflictError struct {
	Size   uint64
	Reason string // "old-size", "fork", "stale" (from ConflictHeader; may be empty for other witnesses)
}

// Error implements error.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("witness: conflict (409, %s): the witness has cosigned size %d", e.Reason, e.Size)
}

// Client talks to one witness.
type Client struct {
	// URL is the witness's submission prefix (e.g. http://host:7402).
	URL string
	// HTTP is the client to use; default http.DefaultClient.
	HTTP *http.Client
}

// AddCheckpoint submits a checkpoint and returns the witness's
// cosignature lines (not verified: see cosignature.Verify).
func (c *Client) AddCheckpoint(ctx context.Context, req *Request) ([]cosignature.Line, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+"/add-checkpoint", bytes.NewReader(req.Marshal()))
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return nil, err
	}
	msg := strings.TrimSpace(string(body))
	switch resp.StatusCode {
	case http.StatusOK:
		return cosignature.ParseLines(body)
	case http.StatusConflict:
		n, err := parseSize(msg)
		if err != nil {
			return nil, fmt.Errorf("witness: 409 with a bad size body %q", msg)
		}
		return nil, &ConflictError{Size: n, Reason: resp.Header.Get(ConflictHeader)}
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", ErrUnknownLog, msg)
	case http.StatusForbidden:
		return nil, fmt.Errorf("%w: %s", ErrForbidden, msg)
	case http.StatusBadRequest:
		return nil, fmt.Errorf("%w: %s", ErrBadRequest, msg)
	case http.StatusUnprocessableEntity:
		return nil, fmt.Errorf("%w: %s", ErrInconsistent, msg)
	}
	return nil, fmt.Errorf("witness: HTTP %d: %s", resp.StatusCode, msg)
}

// ProofFunc returns the consistency proof from old to new.
type ProofFunc func(ctx context.Context, old, new uint64) ([][]byte, error)

// Cosign gets the witness's cosignature on the checkpoint signedNote of
// size size: it submits with the old size hint (0 if unknown), and on a
// 409 "old-size" retries once from the size the witness reports, with the
// consistency proof from proofs.
func (c *Client) Cosign(ctx context.Context, signedNote []byte, size, hint uint64, proofs ProofFunc) ([]cosignature.Line, error) {
	old := hint
	for attempt := 0; ; attempt++ {
		req := &Request{OldSize: old, Checkpoint: signedNote}
		if old > 0 && old < size {
			p, err := proofs(ctx, old, size)
			if err != nil {
				return nil, fmt.Errorf("consistency proof %d -> %d: %w", old, size, err)
			}
			req.Proof = p
		}
		lines, err := c.AddCheckpoint(ctx, req)
		var ce *ConflictError
		if errors.As(err, &ce) && attempt < 2 && ce.Size <= size && ce.Size != old && ce.Reason != "fork" {
			old = ce.Size
			continue
		}
		return lines, err
	}
}
