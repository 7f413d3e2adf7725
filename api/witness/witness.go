// Package witness implements a C2SP tlog-witness (https://c2sp.org/tlog-witness):
// an HTTP service that cosigns a log's checkpoints (C2SP tlog-cosignature
// v1, Ed25519; see crypto/cosignature) only if each is consistent with the
// last one it cosigned for that log, and a client for it.
//
//	POST <prefix>/add-checkpoint
//
// For each known log (origin and log key) the witness keeps the latest
// checkpoint it cosigned, persisted atomically (Store) before it answers,
// so it never cosigns two inconsistent checkpoints of one log, nor a
// smaller tree after a larger one, across restarts.
//
// Answers: 200 with the cosignature line; 400 malformed request or old
// size above the checkpoint's; 403 no valid log signature; 404 unknown
// origin; 409 old size is not the witness's (body: its size, Content-Type
// text/x.tlog.size) or same size with another root (a fork); 422 the
// consistency proof does not verify. Requests that fail with 409 (fork)
// or 422 can be kept as evidence (Config.EvidenceDir).
package witness

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/cosignature"
	"github.com/provledger/provledger/crypto/proof"
)

// ContentTypeSize is the Content-Type of a 409 answer's body.
const ContentTypeSize = "text/x.tlog.size"

// ConflictHeader names why a 409 was answered: "old-size" (the client's
// old size is not the witness's), "fork" (same size, other root) or
// "stale" (the checkpoint is smaller than one already cosigned).
const ConflictHeader = "Witness-Conflict"

// Log is a log the witness follows.
type Log struct {
	// Origin is the log's name (its checkpoints' first line).
	Origin string
	// Verifier checks the log's checkpoint signatures; its Name must be
	// Origin.
	Verifier note.Verifier
}

// Store keeps the latest cosigned checkpoint of each log.
type Store interface {
	// Load returns the latest cosigned checkpoint note of origin, or nil.
	Load(origin string) ([]byte, error)
	// Save durably and atomically replaces it.
	Save(origin string, signedNote []byte) error
}

// Config configures a Server.
type Config struct {
	// Signer makes the cosignatures. Required.
	Signer *cosignature.Signer
	// Logs are the logs this witness cosigns. Required.
	Logs []Log
	// Store persists the witness's state. Required.
	Store Store
	// Prefix is the submission prefix (e.g. "/witness"); empty: root.
	Prefix string
	// EvidenceDir, if set, receives every well-signed request the witness
	// refused as a fork or an inconsistent proof, one file each.
	EvidenceDir string
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

type logState struct {
	v     note.Verifier
	known *checkpoint.Checkpoint // nil: never cosigned
}

// Server is the witness's HTTP handler.
type Server struct {
	cfg  Config
	mu   sync.Mutex // serializes check + persist (the spec's atomicity)
	logs map[string]*logState
}

// New returns a witness server, loading each log's state from the store.
func New(cfg Config) (*Server, error) {
	if cfg.Signer == nil || cfg.Store == nil || len(cfg.Logs) == 0 {
		return nil, errors.New("witness: Signer, Store and at least one Log are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Prefix = strings.TrimRight(cfg.Prefix, "/")
	s := &Server{cfg: cfg, logs: map[string]*logState{}}
	for _, l := range cfg.Logs {
		if l.Verifier == nil || l.Verifier.Name() != l.Origin {
			return nil, fmt.Errorf("witness: log %q: the verifier's name must be the origin", l.Origin)
		}
		if _, dup := s.logs[l.Origin]; dup {
			return nil, fmt.Errorf("witness: log %q given twice", l.Origin)
		}
		st := &logState{v: l.Verifier}
		b, err := cfg.Store.Load(l.Origin)
		if err != nil {
			return nil, fmt.Errorf("witness: load state of %q: %w", l.Origin, err)
		}
		if b != nil {
			cp, err := checkpoint.Open(b, l.Verifier)
			if err != nil {
				return nil, fmt.Errorf("witness: stored checkpoint of %q: %w", l.Origin, err)
			}
			st.known = &cp
		}
		s.logs[l.Origin] = st
	}
	return s, nil
}

// Known returns the size the witness last cosigned for origin (0, false
// if none).
func (s *Server) Known(origin string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.logs[origin]
	if !ok || st.known == nil {
		return 0, false
	}
	return st.known.Size, true
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case s.cfg.Prefix + "/add-checkpoint":
	case s.cfg.Prefix + "/healthz":
		w.Write([]byte("ok\n"))
		return
	default:
		http.Error(w, "not found; POST "+s.cfg.Prefix+"/add-checkpoint", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestSize+1))
	if err != nil {
		http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	res := s.Add(body)
	if res.Status == http.StatusConflict {
		w.Header().Set("Content-Type", ContentTypeSize)
		w.Header().Set(ConflictHeader, res.Conflict)
		w.WriteHeader(res.Status)
		fmt.Fprintf(w, "%d\n", res.KnownSize)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(res.Status)
	if res.Status == http.StatusOK {
		w.Write([]byte(res.Cosignature))
		return
	}
	fmt.Fprintln(w, res.Message)
}

// Result is the outcome of one add-checkpoint.
type Result struct {
	// Status is the HTTP status.
	Status int
	// Cosignature is the signature line (200).
	Cosignature string
	// KnownSize is the witness's size (409).
	KnownSize uint64
	// Conflict is "old-size", "fork" or "stale" (409).
	Conflict string
	// Message says why (not 200).
	Message string
}

// Add handles one add-checkpoint request body.
func (s *Server) Add(body []byte) Result {
	req, err := ParseRequest(body)
	if err != nil {
		return Result{Status: http.StatusBadRequest, Message: err.Error()}
	}
	origin, _, _ := strings.Cut(string(req.Checkpoint), "\n")
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.logs[origin]
	if !ok {
		return Result{Status: http.StatusNotFound, Message: fmt.Sprintf("unknown log %q: this witness does not follow it", origin)}
	}
	cp, err := checkpoint.Open(req.Checkpoint, st.v)
	if err != nil {
		if errors.Is(err, checkpoint.ErrMalformed) {
			return Result{Status: http.StatusBadRequest, Message: err.Error()}
		}
		return Result{Status: http.StatusForbidden, Message: fmt.Sprintf("no valid signature by the log key of %q: %v", origin, err)}
	}
	if req.OldSize > cp.Size {
		return Result{Status: http.StatusBadRequest, Message: fmt.Sprintf("old size %d is above the checkpoint's size %d", req.OldSize, cp.Size)}
	}
	var known checkpoint.Checkpoint
	if st.known != nil {
		known = *st.known
	}
	if req.OldSize != known.Size {
		c := "old-size"
		if cp.Size < known.Size {
			c = "stale"
		}
		return Result{Status: http.StatusConflict, KnownSize: known.Size, Conflict: c,
			Message: fmt.Sprintf("old size %d is not the size this witness last cosigned (%d)", req.OldSize, known.Size)}
	}
	switch {
	case req.OldSize == 0 && len(req.Proof) > 0:
		return Result{Status: http.StatusBadRequest, Message: "old size 0 takes no consistency proof"}
	case req.OldSize == cp.Size && len(req.Proof) > 0:
		return Result{Status: http.StatusBadRequest, Message: "old size equal to the checkpoint's takes no consistency proof"}
	case req.OldSize == cp.Size && known.Size > 0 && cp.Hash != known.Hash:
		s.evidence("fork", req, st.known)
		s.cfg.Logger.Warn("witness: fork", "origin", origin, "size", cp.Size)
		return Result{Status: http.StatusConflict, KnownSize: known.Size, Conflict: "fork",
			Message: fmt.Sprintf("fork: another root for size %d was cosigned", cp.Size)}
	case req.OldSize > 0 && req.OldSize < cp.Size:
		if err := proof.VerifyConsistency(req.OldSize, cp.Size, req.Proof, known.Hash, cp.Hash); err != nil {
			s.evidence("inconsistent", req, st.known)
			s.cfg.Logger.Warn("witness: inconsistent checkpoint", "origin", origin, "old", req.OldSize, "new", cp.Size, "err", err)
			return Result{Status: http.StatusUnprocessableEntity, Message: fmt.Sprintf(
				"inconsistent: the consistency proof from the cosigned size %d to %d does not verify: %v", req.OldSize, cp.Size, err)}
		}
	}
	if err := s.cfg.Store.Save(origin, req.Checkpoint); err != nil {
		s.cfg.Logger.Error("witness: persist state", "origin", origin, "err", err)
		return Result{Status: http.StatusInternalServerError, Message: "could not persist the witness state; nothing was cosigned"}
	}
	st.known = &cp
	t := s.cfg.Now().Unix()
	sig := s.cfg.Signer.SignAt(uint64(max(t, 0)), cp.Body())
	return Result{Status: http.StatusOK, Cosignature: s.cfg.Signer.Line(sig)}
}

// evidence keeps a refused request next to the checkpoint it conflicts with.
func (s *Server) evidence(kind string, req *Request, known *checkpoint.Checkpoint) {
	if s.cfg.EvidenceDir == "" {
		return
	}
	sum := sha256.Sum256(req.Checkpoint)
	name := fmt.Sprintf("%s-%d-%s.txt", kind, s.cfg.Now().Unix(), hex.EncodeToString(sum[:6]))
	var b strings.Builder
	fmt.Fprintf(&b, "kind %s\n", kind)
	if known != nil {
		fmt.Fprintf(&b, "cosigned size %d root %x\n", known.Size, known.Hash)
	}
	b.WriteString("request:\n")
	b.Write(req.Marshal())
	if err := os.WriteFile(filepath.Join(s.cfg.EvidenceDir, name), []byte(b.String()), 0o644); err != nil {
		s.cfg.Logger.Error("witness: write evidence", "err", err)
	}
}

// FileStore keeps each log's latest cosigned checkpoint in a file of its
// own in Dir, replaced atomically (temporary file, fsync, rename, fsync of
// the directory).
type FileStore struct{ Dir string }

func (f FileStore) path(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return filepath.Join(f.Dir, hex.EncodeToString(h[:16])+".checkpoint")
}

// Load implements Store.
func (f FileStore) Load(origin string) ([]byte, error) {
	b, err := os.ReadFile(f.path(origin))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Save implements Store.
func (f FileStore) Save(origin string, signedNote []byte) error {
	p := f.path(origin)
	tmp, err := os.CreateTemp(f.Dir, ".checkpoint.tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(signedNote); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return err
	}
	d, err := os.Open(f.Dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// MemStore is an in-memory Store (tests).
type MemStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

// Load implements Store.
func (m *MemStore) Load(origin string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[origin], nil
}

// Save implements Store.
func (m *MemStore) Save(origin string, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string][]byte{}
	}
	m.m[origin] = append([]byte(nil), b...)
	return nil
}
