package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// tileSource is what the auditor and the monitor read from a log: the
// C2SP tlog-tiles API plus envelopes by digest. Nothing it returns is
// trusted; everything is checked against the signed checkpoint.
type tileSource interface {
	// Checkpoint returns the latest signed checkpoint note.
	Checkpoint(ctx context.Context) ([]byte, error)
	// Tile returns width hashes of tile (level, index).
	Tile(ctx context.Context, level int, index uint64, width int) ([]byte, error)
	// EntryBundle returns the entry bundle index with width entries.
	EntryBundle(ctx context.Context, index uint64, width int) ([]byte, error)
	// Envelope returns the canonical envelope JSON with the SHA-256
	// digest; errRedacted if the log says it was redacted.
	Envelope(ctx context.Context, digest [32]byte) ([]byte, error)
}

var (
	// errRedacted: the log says the envelope was redacted (HTTP 410).
	errRedacted = errors.New("envelope redacted")
	// errWithheld: the log refused (HTTP 404) something its signed
	// checkpoint covers.
	errWithheld = errors.New("not served")
)

// fetchError is an HTTP answer the source could not use.
type fetchError struct {
	url    string
	status int
	body   string
	err    error
}

func (e *fetchError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("GET %s: %v", e.url, e.err)
	}
	return fmt.Sprintf("GET %s: HTTP %d: %s", e.url, e.status, strings.TrimSpace(e.body))
}

func (e *fetchError) Unwrap() error {
	switch {
	case e.err != nil:
		return e.err
	case e.status == http.StatusGone:
		return errRedacted
	case e.status == http.StatusNotFound:
		return errWithheld
	}
	return nil
}

// transient reports whether a fetch error means the log could not be
// reached (network error, timeout, 5xx, 429) rather than a definite answer.
func transient(err error) bool {
	var fe *fetchError
	if errors.As(err, &fe) {
		return fe.err != nil || fe.status >= 500 || fe.status == http.StatusTooManyRequests
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// httpSource reads a log's tlog-tiles HTTP API.
type httpSource struct {
	base    string // without trailing slash
	client  *http.Client
	timeout time.Duration
}

func newHTTPSource(base string, timeout time.Duration, conns int) (*httpSource, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--url %q: want the node's HTTP tiles API, e.g. http://127.0.0.1:7401", base)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns * 2
	tr.MaxIdleConnsPerHost = conns * 2
	tr.DisableCompression = true
	return &httpSource{base: strings.TrimRight(base, "/"), client: &http.Client{Transport: tr}, timeout: timeout}, nil
}

func (s *httpSource) get(ctx context.Context, path string, max int64) ([]byte, error) {
	u := s.base + "/" + path
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, &fetchError{url: u, err: ctx.Err()}
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		b, err := s.getOnce(ctx, u, max)
		if err == nil || !transient(err) {
			return b, err
		}
		lastErr = err
	}
	return nil, lastErr
}

func (s *httpSource) getOnce(ctx context.Context, u string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, &fetchError{url: u, err: err}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, &fetchError{url: u, err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, &fetchError{url: u, err: err}
	}
	if resp.StatusCode != http.StatusOK {
		if len(b) > 512 {
			b = b[:512]
		}
		return nil, &fetchError{url: u, status: resp.StatusCode, body: string(b)}
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("GET %s: answer larger than %d bytes", u, max)
	}
	return b, nil
}

func (s *httpSource) Checkpoint(ctx context.Context) ([]byte, error) {
	return s.get(ctx, "checkpoint", 1<<16)
}

func (s *httpSource) Tile(ctx context.Context, level int, index uint64, width int) ([]byte, error) {
	return s.get(ctx, tilePath(strconv.Itoa(level), index, width), 256*32)
}

func (s *httpSource) EntryBundle(ctx context.Context, index uint64, width int) ([]byte, error) {
	return s.get(ctx, tilePath("entries", index, width), 256*(2+65535))
}

func (s *httpSource) Envelope(ctx context.Context, digest [32]byte) ([]byte, error) {
	return s.get(ctx, fmt.Sprintf("envelope/sha256/%x", digest), 64<<20)
}

// tilePath is the C2SP tlog-tiles path of tile kind (a level or
// "entries") index N of width w (256: full).
func tilePath(kind string, n uint64, w int) string {
	p := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		p = fmt.Sprintf("x%03d/", n%1000) + p
	}
	p = "tile/" + kind + "/" + p
	if w < 256 {
		p += ".p/" + strconv.Itoa(w)
	}
	return p
}

// tlogReader adapts a tileSource to golang.org/x/mod/sumdb/tlog's
// TileReader (height 8), so tlog.TileHashReader can authenticate tiles
// against a checkpoint.
type tlogReader struct {
	ctx context.Context
	src tileSource
}

func (r tlogReader) Height() int { return 8 }

func (r tlogReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.L < 0 {
			return nil, fmt.Errorf("entry bundles are not read through tlog")
		}
		b, err := r.src.Tile(r.ctx, t.L, uint64(t.N), t.W)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (r tlogReader) SaveTiles([]tlog.Tile, [][]byte) {}

// httpBundles reads envelopes in bulk from the node's envelope bundles
// (GET /envelopes/<N>[.p/<W>], docs/api.md): one request per 256
// entries instead of one per envelope.
type httpBundles struct{ s *httpSource }

// maxEnvelopeBundle bounds an envelope bundle's answer (256 envelopes of
// up to 4 MiB each; provd's default limit is 1 MiB).
const maxEnvelopeBundle = 256 * (4 + 4<<20)

func (h httpBundles) Envelopes(ctx context.Context, lo, hi uint64) ([][]byte, error) {
	k := lo / 256
	width := int(hi - k*256)
	if hi <= lo || k != (hi-1)/256 {
		return nil, fmt.Errorf("envelopes [%d, %d) are not within one entry bundle", lo, hi)
	}
	p := "envelopes/" + strings.TrimPrefix(tilePath("entries", k, width), "tile/entries/")
	b, err := h.s.get(ctx, p, maxEnvelopeBundle)
	if err != nil {
		return nil, err
	}
	envs, err := splitEnvelopeBundle(b, width)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %v", errBadEnvelopeBundle, p, err)
	}
	return envs[lo-k*256:], nil
}

// errBadEnvelopeBundle: an envelope bundle does not parse (a verification
// failure: the log serves garbage for data its checkpoint covers).
var errBadEnvelopeBundle = errors.New("malformed envelope bundle")

// splitEnvelopeBundle splits an envelope bundle (a 4-byte big-endian
// length, then that many bytes, per entry; length 0 for a redacted
// envelope, returned as nil) into exactly n envelopes. The envelopes
// alias b.
func splitEnvelopeBundle(b []byte, n int) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for len(b) > 0 {
		if len(out) == n {
			return nil, fmt.Errorf("%d bytes after the %d envelopes expected", len(b), n)
		}
		if len(b) < 4 {
			return nil, fmt.Errorf("truncated length prefix after %d envelopes", len(out))
		}
		l := uint64(binary.BigEndian.Uint32(b))
		if uint64(len(b)-4) < l {
			return nil, fmt.Errorf("envelope %d is cut short (%d of %d bytes)", len(out), len(b)-4, l)
		}
		var e []byte
		if l > 0 {
			e = b[4 : 4+l : 4+l]
		}
		out = append(out, e)
		b = b[4+l:]
	}
	if len(out) != n {
		return nil, fmt.Errorf("holds %d envelopes, want %d", len(out), n)
	}
	return out, nil
}
