// Package httpapi serves a ledger.Log over HTTP as a C2SP tlog-tiles log
// (https://c2sp.org/tlog-tiles), plus the envelopes by digest:
//
//	GET /checkpoint                   latest signed checkpoint (text/plain)
//	GET /tile/<L>/<N>[.p/<W>]         hash tiles (application/octet-stream)
//	GET /tile/entries/<N>[.p/<W>]     entry bundles of entry records
//	GET /envelope/sha256/<hex>        canonical DSSE envelope JSON
//	GET /envelopes/<N>[.p/<W>]        the envelopes of entry bundle N, length-prefixed
//	GET /healthz                      200 "ok"
//
// Full tiles and envelopes never change and are served as immutable; the
// checkpoint is never cached. HEAD is accepted wherever GET is.
package httpapi

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/ledger/tiles"
)

// Cache-Control values.
const (
	CacheImmutable = "public, max-age=31536000, immutable"
	// CachePartial is for partial tiles: their content never changes, but
	// they are superseded (and may be pruned) once the tile fills.
	CachePartial = "public, max-age=60"
	CacheNone    = "no-store"
)

// Options configure a Handler.
type Options struct {
	// Prefix is the URL path the log is mounted under (e.g. "/log"); empty
	// mounts it at the root.
	Prefix string
	// Logger receives server-side failures. Default slog.Default().
	Logger *slog.Logger
}

// Handler serves a log's tlog-tiles read API.
type Handler struct {
	log    *ledger.Log
	prefix string
	logger *slog.Logger
}

// New returns a Handler for l.
func New(l *ledger.Log, o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	p := strings.TrimRight(o.Prefix, "/")
	if p != "" && !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return &Handler{log: l, prefix: p, logger: o.Logger.With("component", "httpapi")}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if h.prefix != "" {
		rest, ok := strings.CutPrefix(p, h.prefix)
		if !ok || (rest != "" && rest[0] != '/') {
			h.fail(w, http.StatusNotFound, fmt.Sprintf("no such resource %q; the log is served under %s/", p, h.prefix))
			return
		}
		p = rest
	}
	p = strings.TrimPrefix(p, "/")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed; this is a read-only API, use GET or HEAD", r.Method))
		return
	}
	switch {
	case p == "checkpoint":
		h.checkpoint(w)
	case p == "healthz":
		w.Header().Set("Cache-Control", CacheNone)
		h.write(w, "text/plain; charset=utf-8", []byte("ok\n"))
	case strings.HasPrefix(p, "tile/"):
		h.tile(w, p)
	case strings.HasPrefix(p, "envelope/"):
		h.envelope(w, p)
	case strings.HasPrefix(p, "envelopes/"):
		h.envelopeBundle(w, p)
	default:
		h.fail(w, http.StatusNotFound, fmt.Sprintf("no such resource %q; see /checkpoint, /tile/<L>/<N>, /tile/entries/<N>, /envelope/sha256/<hex>, /envelopes/<N>", p))
	}
}

func (h *Handler) checkpoint(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", CacheNone)
	h.write(w, "text/plain; charset=utf-8", h.log.Latest().Note)
}

func (h *Handler) tile(w http.ResponseWriter, p string) {
	t, err := tiles.ParsePath(p)
	if err != nil {
		h.fail(w, http.StatusBadRequest, err.Error()+"; see https://c2sp.org/tlog-tiles for the path syntax")
		return
	}
	var b []byte
	if t.Entries {
		b, err = h.log.EntryBundle(t.Index, t.Width)
	} else {
		b, err = h.log.Tile(t.Level, t.Index, t.Width)
	}
	if err != nil {
		h.ledgerError(w, p, err)
		return
	}
	if t.Full() {
		w.Header().Set("Cache-Control", CacheImmutable)
	} else {
		w.Header().Set("Cache-Control", CachePartial)
	}
	h.write(w, "application/octet-stream", b)
}

func (h *Handler) envelope(w http.ResponseWriter, p string) {
	hx, ok := strings.CutPrefix(p, "envelope/sha256/")
	if !ok {
		h.fail(w, http.StatusBadRequest, fmt.Sprintf("bad envelope path %q: want envelope/sha256/<64 lowercase hex digits>", p))
		return
	}
	var d [32]byte
	if len(hx) != 64 || strings.ToLower(hx) != hx {
		h.fail(w, http.StatusBadRequest, fmt.Sprintf("bad envelope digest %q: want 64 lowercase hex digits", hx))
		return
	}
	if _, err := hex.Decode(d[:], []byte(hx)); err != nil {
		h.fail(w, http.StatusBadRequest, fmt.Sprintf("bad envelope digest %q: want 64 lowercase hex digits", hx))
		return
	}
	b, err := h.log.Envelope(d)
	if err != nil {
		h.ledgerError(w, p, err)
		return
	}
	w.Header().Set("Cache-Control", CacheImmutable)
	w.Header().Set("ETag", `"sha256:`+hx+`"`)
	h.write(w, "application/json", b)
}

func (h *Handler) ledgerError(w http.ResponseWriter, p string, err error) {
	switch {
	case errors.Is(err, ledger.ErrRedacted):
		h.fail(w, http.StatusGone, fmt.Sprintf("%s: %v; the entry record stays in the log and still verifies", p, err))
	case errors.Is(err, ledger.ErrNotFound), errors.Is(err, ledger.ErrOutOfRange):
		h.fail(w, http.StatusNotFound, fmt.Sprintf("%s is not available: it lies beyond the latest checkpoint or does not exist; fetch /checkpoint for the current size", p))
	case errors.Is(err, ledger.ErrClosed):
		h.fail(w, http.StatusServiceUnavailable, "the ledger is shutting down; retry later")
	default:
		h.logger.Error("read failed", "path", p, "err", err)
		h.fail(w, http.StatusInternalServerError, "internal error; the server log has the details")
	}
}

func (h *Handler) write(w http.ResponseWriter, contentType string, b []byte) {
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(b) // discarded by net/http for HEAD
}

func (h *Handler) fail(w http.ResponseWriter, code int, msg string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Cache-Control", CacheNone)
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
