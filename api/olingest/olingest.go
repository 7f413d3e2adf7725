// Package olingest is the node's OpenLineage HTTP endpoint: existing
// OpenLineage integrations (the HTTP transport of the Python and Java
// clients, Airflow, Spark, dbt, Flink) send events to provledger
// unchanged.
//
//	POST /api/v1/lineage        one event (JSON object)
//	POST /api/v1/lineage/batch  a JSON array of events (OpenLineage spec, postEventBatch)
//
// An event is a RunEvent, or static lineage (spec 2-0-x): a DatasetEvent
// (a dataset and its facets) or a JobEvent (a job's inputs and outputs,
// no run); payload.ParseOpenLineageEvent tells them apart as the spec
// does. Every request carries "Authorization: Bearer <token>"; tokens are
// read, hashed, from a tokens file in api/auth's format (see Tokens),
// reloaded when it changes (checked at most once a second, before a
// request is authenticated: Tokens.Refresh) and, where the node runs
// Tokens.Watch, on SIGHUP; a token the policy in force names gets the
// policy's grant (Config.Policy, policy.go). Each event is
// checked with the same parser the lineage index uses, so a malformed
// event is answered 400 with the JSON path of the bad field, and is never
// appended. A good event is wrapped, byte for byte as received, in a DSSE
// envelope signed by the node's ingest key — payload type
// application/vnd.openlineage.run-event+json, …dataset-event+json or
// …job-event+json — and appended through the same path as a gRPC
// AppendBatch (the Ledger service: size, type and signature checks, then
// the sequencer), with the sending token's name as the entry's
// namespace. The entry record — hashed into the Merkle leaf, covered by
// every later checkpoint — therefore says which token sent the event (its
// namespace) and that the node vouched for it (its signer is the ingest
// key), and the envelope's payload is exactly the event the client sent.
//
// A batch is checked event by event: the good events are committed
// together and the answer lists every event's result.
package olingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/query/payload"
)

// Paths the handler serves (Register mounts them).
const (
	PathEvent = "/api/v1/lineage"
	PathBatch = "/api/v1/lineage/batch"
)

// Defaults of the Config limits.
const (
	DefaultMaxEventSize = 768 << 10 // fits a 1 MiB envelope once base64-encoded
	DefaultMaxBatch     = 1000
	DefaultMaxBatchSize = 32 << 20
	DefaultAppendChunk  = 100
)

// Appender appends checked requests: the Ledger service
// (*service.Service), so HTTP appends take exactly the gRPC path.
type Appender interface {
	AppendBatch(ctx context.Context, req *provledgerpb.AppendBatchRequest) (*provledgerpb.AppendBatchResponse, error)
}

// Config configures a Handler.
type Config struct {
	// Appender appends the envelopes. Required.
	Appender Appender
	// Signer is the node's ingest key; its public key must be in the
	// keyring the Appender verifies signatures with. Required.
	Signer signature.Signer
	// Tokens are the accepted bearer tokens (LoadTokensFile, NewTokens).
	// Required.
	Tokens *Tokens
	// Policy, if set, is the policy in force: a token it names gets the
	// grant of the policy's identity instead of its tokens file line
	// (policy.go).
	Policy PolicySource
	// Limits bound one event (facet size, datasets, fields, names), as
	// for the lineage index. Zero fields select the payload defaults.
	Limits payload.Limits
	// MaxEventSize caps one event in bytes. Default DefaultMaxEventSize.
	MaxEventSize int
	// MaxBatch caps the events of one batch. Default DefaultMaxBatch.
	MaxBatch int
	// MaxBatchSize caps a batch body in bytes. Default DefaultMaxBatchSize.
	MaxBatchSize int
	// AppendChunk is the most events handed to the Appender in one
	// AppendBatch (at most the service's MaxBatch). Default
	// DefaultAppendChunk.
	AppendChunk int
	// Logger receives the handler's logs. Default slog.Default().
	Logger *slog.Logger
}

// Handler serves the OpenLineage endpoints.
type Handler struct {
	cfg    Config
	keyID  string
	logger *slog.Logger
}

// New checks cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Appender == nil:
		return nil, errors.New("olingest config: Appender is required")
	case cfg.Signer == nil:
		return nil, errors.New("olingest config: Signer (the node's ingest key) is required")
	case cfg.Tokens == nil || cfg.Tokens.Len() == 0:
		return nil, errors.New("olingest config: Tokens is required (at least one token)")
	case cfg.MaxEventSize < 0, cfg.MaxBatch < 0, cfg.MaxBatchSize < 0, cfg.AppendChunk < 0:
		return nil, errors.New("olingest config: limits must not be negative")
	}
	if cfg.MaxEventSize == 0 {
		cfg.MaxEventSize = DefaultMaxEventSize
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxBatchSize == 0 {
		cfg.MaxBatchSize = DefaultMaxBatchSize
	}
	if cfg.AppendChunk == 0 {
		cfg.AppendChunk = DefaultAppendChunk
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// The key id the envelopes carry: sign an empty payload once.
	e, err := envelope.Sign(payload.TypeOpenLineage, []byte("{}"), cfg.Signer)
	if err != nil {
		return nil, fmt.Errorf("olingest config: ingest key: %w", err)
	}
	return &Handler{cfg: cfg, keyID: e.Signatures[0].KeyID, logger: cfg.Logger.With("component", "olingest")}, nil
}

// KeyID returns the key id of the ingest key (the signer of every
// envelope the handler appends).
func (h *Handler) KeyID() string { return h.keyID }

// Register mounts the handler's paths on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle(PathEvent, h)
	mux.Handle(PathBatch, h)
}

// EventResult is the answer about one event.
type EventResult struct {
	// Index is the event's position in the batch (0 for a single event).
	Index int `json:"index"`
	// Status is "ok" or "failed".
	Status string `json:"status"`
	// Entry is the log index of the event's entry (ok only).
	Entry *uint64 `json:"entry,omitempty"`
	// Duplicate says the same event was appended before: Entry is the
	// first append's index, and the log did not grow.
	Duplicate bool `json:"duplicate,omitempty"`
	// LeafHash is the hex RFC 6962 leaf hash of the entry (ok only).
	LeafHash string `json:"leafHash,omitempty"`
	// Field is the JSON path of the bad field, when one is to blame.
	Field string `json:"field,omitempty"`
	// Error says what is wrong and what to fix (failed only).
	Error string `json:"error,omitempty"`
	// Retriable says sending the event again may succeed (the node was
	// busy or stopping), as opposed to a bad event.
	Retriable bool `json:"retriable,omitempty"`

	httpStatus int
}

// BatchSummary counts a batch's results (the OpenLineage batch response's
// summary).
type BatchSummary struct {
	Received     int `json:"received"`
	Successful   int `json:"successful"`
	Failed       int `json:"failed"`
	Retriable    int `json:"retriable"`
	NonRetriable int `json:"non_retriable"`
}

// FailedEvent is one failed event of a batch.
type FailedEvent struct {
	Index     int    `json:"index"`
	Reason    string `json:"reason"`
	Field     string `json:"field,omitempty"`
	Retriable bool   `json:"retriable"`
}

// BatchResponse answers a batch: "success", "partial_success" or
// "failure", the counts, the failed events, and every event's result.
type BatchResponse struct {
	Status       string        `json:"status"`
	Summary      BatchSummary  `json:"summary"`
	FailedEvents []FailedEvent `json:"failed_events"`
	Results      []EventResult `json:"results"`
}

// errorBody is the JSON body of a failed request.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	batch := false
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case PathEvent:
	case PathBatch:
		batch = true
	default:
		h.fail(w, http.StatusNotFound, "", "no such endpoint; POST one OpenLineage event to "+PathEvent+" or an array of them to "+PathBatch)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, http.StatusMethodNotAllowed, "", fmt.Sprintf("method %s is not allowed; POST the event(s) as JSON", r.Method))
		return
	}
	if changed, err := h.cfg.Tokens.Refresh(); err != nil {
		h.logger.Error("tokens file changed but did not load; the previous tokens stay in force", "err", err)
	} else if changed {
		h.logger.Info("tokens file changed: reloaded the ingest tokens", "tokens", h.cfg.Tokens.Len())
	}
	token, ok := h.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="provledger", error="invalid_token"`)
		h.fail(w, http.StatusUnauthorized, "", "missing or unknown bearer token: send \"Authorization: Bearer <token>\" with a token the operator configured (provd --ingest-tokens)")
		return
	}
	snd, err := h.sender(token)
	if err != nil {
		h.fail(w, http.StatusForbidden, "", err.Error())
		return
	}
	name := token.name
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			h.fail(w, http.StatusUnsupportedMediaType, "", fmt.Sprintf("Content-Type %q: send application/json", ct))
			return
		}
	}
	limit := h.cfg.MaxEventSize
	if batch {
		limit = h.cfg.MaxBatchSize
	}
	body, status, err := readBody(r, limit)
	if err != nil {
		h.fail(w, status, "", err.Error())
		return
	}
	if batch {
		h.serveBatch(w, r, snd, body)
		return
	}
	res := h.appendEvents(r.Context(), snd, [][]byte{body})[0]
	if res.Status != "ok" {
		h.logger.Debug("event rejected", "token", name, "field", res.Field, "err", res.Error)
		h.fail(w, res.httpStatus, res.Field, res.Error)
		return
	}
	h.logger.Debug("event appended", "token", name, "entry", *res.Entry, "duplicate", res.Duplicate)
	writeJSON(w, http.StatusOK, res)
}

// authenticate returns the request's bearer token.
func (h *Handler) authenticate(r *http.Request) (token, bool) {
	a := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(a, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return token{}, false
	}
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return token{}, false
	}
	return h.cfg.Tokens.match(secret)
}

// readBody reads at most limit bytes of the (possibly gzip-compressed)
// body.
func readBody(r *http.Request, limit int) ([]byte, int, error) {
	var rd io.Reader = http.MaxBytesReader(nil, r.Body, int64(limit)+1)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("the body is not gzip (Content-Encoding: gzip): %v", err)
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Encoding %q is not supported; send the body plain or gzip-compressed", enc)
	}
	b, err := io.ReadAll(io.LimitReader(rd, int64(limit)+1))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || len(b) > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the body is over %d bytes; send smaller events or batches (the operator sets the limits: provd --max-envelope-size, --ingest-max-batch-size)", limit)
	}
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %v", err)
	}
	return b, 0, nil
}

// SplitBatch splits a batch body — a JSON array — into its elements,
// each exactly the bytes the array holds for it. It fails for a body that
// is not a JSON array, and for more than max elements.
func SplitBatch(body []byte, max int) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("the batch is not JSON: %v; send a JSON array of OpenLineage events", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, errors.New("the batch must be a JSON array of OpenLineage events ([{…}, {…}]); to send one event, POST it to " + PathEvent)
	}
	var out []json.RawMessage
	for dec.More() {
		if len(out) >= max {
			return nil, fmt.Errorf("the batch has more than %d events; split it", max)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("batch element %d is not JSON: %v", len(out), err)
		}
		out = append(out, raw)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("the batch array is not closed: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("the batch has data after its closing ']'; send one JSON array")
	}
	return out, nil
}

func (h *Handler) serveBatch(w http.ResponseWriter, r *http.Request, tok sender, body []byte) {
	elems, err := SplitBatch(body, h.cfg.MaxBatch)
	if err != nil {
		h.fail(w, http.StatusBadRequest, "", err.Error())
		return
	}
	events := make([][]byte, len(elems))
	for i, e := range elems {
		events[i] = e
	}
	results := h.appendEvents(r.Context(), tok, events)
	resp := BatchResponse{Results: results, FailedEvents: []FailedEvent{}}
	resp.Summary.Received = len(results)
	for _, res := range results {
		if res.Status == "ok" {
			resp.Summary.Successful++
			continue
		}
		resp.Summary.Failed++
		if res.Retriable {
			resp.Summary.Retriable++
		} else {
			resp.Summary.NonRetriable++
		}
		resp.FailedEvents = append(resp.FailedEvents, FailedEvent{Index: res.Index, Reason: res.Error, Field: res.Field, Retriable: res.Retriable})
	}
	code := http.StatusOK
	switch s := resp.Summary; {
	case s.Failed == 0:
		resp.Status = "success"
	case s.Successful > 0:
		resp.Status = "partial_success"
	default:
		resp.Status = "failure"
		code = http.StatusBadRequest
		if s.Retriable > 0 {
			code = http.StatusServiceUnavailable
		}
	}
	h.logger.Debug("batch", "token", tok.name, "received", resp.Summary.Received, "successful", resp.Summary.Successful, "failed", resp.Summary.Failed)
	writeJSON(w, code, resp)
}

// appendEvents checks, signs and appends events sent by tok; the result
// i answers events[i]. Good events are appended together (in chunks of
// AppendChunk), whatever the bad ones.
func (h *Handler) appendEvents(ctx context.Context, tok sender, events [][]byte) []EventResult {
	results := make([]EventResult, len(events))
	var reqs []*provledgerpb.AppendRequest
	var pos []int
	for i, ev := range events {
		results[i].Index = i
		pt, err := h.check(ev)
		if err != nil {
			results[i].fail(err)
			continue
		}
		if err := tok.allows(pt); err != nil {
			results[i] = EventResult{Index: i, Status: "failed", httpStatus: http.StatusForbidden, Error: err.Error()}
			continue
		}
		env, err := envelope.Sign(pt, ev, h.cfg.Signer)
		if err != nil {
			h.logger.Error("cannot sign with the ingest key", "err", err)
			results[i] = EventResult{Index: i, Status: "failed", Error: "the node cannot sign with its ingest key; the server log has the details", Retriable: true, httpStatus: http.StatusInternalServerError}
			continue
		}
		pe := &provledgerpb.Envelope{PayloadType: env.PayloadType, Payload: env.Payload}
		for _, s := range env.Signatures {
			pe.Signatures = append(pe.Signatures, &provledgerpb.Signature{Keyid: s.KeyID, Sig: s.Sig})
		}
		reqs = append(reqs, &provledgerpb.AppendRequest{Namespace: tok.name, Body: &provledgerpb.AppendRequest_Envelope{Envelope: pe}, RequestId: uint64(i)})
		pos = append(pos, i)
	}
	for start := 0; start < len(reqs); start += h.cfg.AppendChunk {
		end := min(start+h.cfg.AppendChunk, len(reqs))
		resp, err := h.cfg.Appender.AppendBatch(ctx, &provledgerpb.AppendBatchRequest{Requests: reqs[start:end]})
		if err == nil && len(resp.GetResponses()) != end-start {
			err = fmt.Errorf("the ledger answered %d of %d appends", len(resp.GetResponses()), end-start)
		}
		for j := start; j < end; j++ {
			res := &results[pos[j]]
			if err != nil {
				res.failStatus(grpcCode(err), err.Error())
				continue
			}
			ar := resp.Responses[j-start]
			if e := ar.GetError(); e != nil {
				res.failStatus(codes.Code(e.GetCode()), e.GetMessage())
				continue
			}
			idx := ar.GetIndex()
			res.Status, res.Entry, res.Duplicate, res.LeafHash = "ok", &idx, ar.GetDuplicate(), hex.EncodeToString(ar.GetLeafHash())
		}
	}
	return results
}

// check parses one event as the lineage index will, and returns its
// payload type.
func (h *Handler) check(ev []byte) (string, error) {
	if len(ev) > h.cfg.MaxEventSize {
		return "", &payload.FieldError{Msg: fmt.Sprintf("the event is %d bytes; the limit is %d (send smaller facets, or have the operator raise provd --max-envelope-size)", len(ev), h.cfg.MaxEventSize)}
	}
	e, err := payload.ParseOpenLineageEvent(ev, h.cfg.Limits)
	if err != nil {
		return "", err
	}
	return e.Type, nil
}

func (r *EventResult) fail(err error) {
	r.Status, r.Error, r.httpStatus = "failed", err.Error(), http.StatusBadRequest
	var fe *payload.FieldError
	if errors.As(err, &fe) {
		r.Field = fe.Field
	}
}

// failStatus records a failure the ledger reported with a gRPC code.
func (r *EventResult) failStatus(c codes.Code, msg string) {
	r.Status, r.Error = "failed", msg
	switch c {
	case codes.InvalidArgument, codes.OutOfRange, codes.NotFound:
		r.httpStatus = http.StatusBadRequest
	case codes.PermissionDenied:
		// The ingest key is not trusted: the node is misconfigured.
		r.httpStatus = http.StatusInternalServerError
	case codes.ResourceExhausted:
		r.httpStatus, r.Retriable = http.StatusTooManyRequests, true
	case codes.Unavailable, codes.Aborted:
		r.httpStatus, r.Retriable = http.StatusServiceUnavailable, true
	case codes.DeadlineExceeded, codes.Canceled:
		r.httpStatus, r.Retriable = http.StatusGatewayTimeout, true
	default:
		r.httpStatus, r.Retriable = http.StatusInternalServerError, true
	}
}

func grpcCode(err error) codes.Code {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return status.Code(err)
}

func (h *Handler) fail(w http.ResponseWriter, code int, field, msg string) {
	writeJSON(w, code, errorBody{Error: msg, Field: field})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
