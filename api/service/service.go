// Package service implements the provledger Ledger gRPC service
// (provledgerpb.LedgerServer) over a ledger.Log and a ledger.Sequencer.
//
// Appends are checked here, on the node that receives them: namespace,
// envelope syntax, size, payload type, payload JSON and signatures. Only
// entries that pass go to the sequencer, so a bad input never touches the
// log. Reads (entries, checkpoints, proofs) come straight from the Log.
//
// Every error is a gRPC status whose message says what to fix; ledger errors
// are mapped onto codes in one place (see docs/api.md for the table).
package service

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/ledger/redaction"
)

// DefaultPayloadTypes are the payload types a ledger accepts unless
// configured otherwise (DESIGN.md, "Payload types").
var DefaultPayloadTypes = []string{
	"application/vnd.openlineage.run-event+json",
	"application/vnd.openlineage.dataset-event+json", // static lineage (api/olingest)
	"application/vnd.openlineage.job-event+json",     // static lineage (api/olingest)
	"application/vnd.in-toto+json",
	"application/vnd.provledger.cost+json",
	"application/vnd.provledger.finding+json",
	"application/vnd.provledger.policy+json",
	redaction.PayloadType, // accepted only when signed by an admin key (ledger.AdminKeys)
}

// DefaultMaxBatch is the default cap on the requests of one AppendBatch.
const DefaultMaxBatch = 1000

// MaxNamespaceLen is the longest namespace, in bytes.
const MaxNamespaceLen = 255

// Config configures a Service. Zero optional fields select the documented
// defaults.
type Config struct {
	// Log is the ledger the reads come from. Required.
	Log *ledger.Log
	// Sequencer orders appends into Log (ledger.LocalSequencer on a single
	// node, the Raft sequencer in a cluster). Required.
	Sequencer ledger.Sequencer
	// Verifier checks envelope signatures against the trust keyring.
	// Required.
	Verifier *envelope.Verifier
	// PayloadTypes are the accepted DSSE payload types. Default
	// DefaultPayloadTypes.
	PayloadTypes []string
	// AllowAnyPayloadType accepts every payload type (PayloadTypes is then
	// ignored).
	AllowAnyPayloadType bool
	// MaxEnvelopeSize caps the canonical envelope JSON in bytes. Default
	// ledger.DefaultMaxEnvelopeSize; it must not exceed the Log's limit.
	MaxEnvelopeSize int
	// MaxBatch caps the requests of one AppendBatch. Default DefaultMaxBatch.
	MaxBatch int
	// OnNewKey, if set, is called once for each key accepted on first use
	// (Verifier.TrustOnFirstUse): such a key is added to Verifier.Keyring,
	// and provd --dev persists it so auditors have it.
	OnNewKey func(crypto.PublicKey)
	// Logger receives the service's logs. Default slog.Default().
	Logger *slog.Logger
	// VerifyWorkers caps the appends being checked (parsed, marshalled,
	// signature-verified) at once, across all RPCs. Default GOMAXPROCS:
	// checking is pure CPU, so more at once only lengthens the scheduler's
	// run queues, and the sequencer's goroutine and the gRPC transport then
	// wait behind hundreds of verifications (see docs/ledger.md).
	VerifyWorkers int
	// Preparer, if set, is called on the checker goroutines for every
	// accepted append, and its result rides with the entry to the log's
	// Indexer (ledger.Entry.Prepared): the payload parsing the index needs
	// then runs in parallel, before sequencing, instead of on the log's
	// serialized apply path. Pass the log's Indexer when it implements
	// ledger.Preparer (provd passes the lineage index).
	Preparer ledger.Preparer
}

// Validate reports the first problem with c, naming the field to fix.
func (c *Config) Validate() error {
	switch {
	case c.Log == nil:
		return errors.New("service config: Log is required")
	case c.Sequencer == nil:
		return errors.New("service config: Sequencer is required")
	case c.Verifier == nil:
		return errors.New("service config: Verifier is required")
	case c.Verifier.Keyring == nil:
		return errors.New("service config: Verifier.Keyring is required (it may be empty)")
	case c.MaxEnvelopeSize < 0:
		return fmt.Errorf("service config: MaxEnvelopeSize %d is negative", c.MaxEnvelopeSize)
	case c.MaxBatch < 0:
		return fmt.Errorf("service config: MaxBatch %d is negative", c.MaxBatch)
	case c.VerifyWorkers < 0:
		return fmt.Errorf("service config: VerifyWorkers %d is negative", c.VerifyWorkers)
	}
	if limit := c.Log.Options().MaxEnvelopeSize; c.MaxEnvelopeSize > limit {
		return fmt.Errorf("service config: MaxEnvelopeSize %d is above the log's limit %d; raise the log's MaxEnvelopeSize too", c.MaxEnvelopeSize, limit)
	}
	for _, t := range c.PayloadTypes {
		if t == "" || len(t) > 255 || !utf8.ValidString(t) {
			return fmt.Errorf("service config: payload type %q must be 1..255 bytes of UTF-8", t)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if len(c.PayloadTypes) == 0 {
		c.PayloadTypes = DefaultPayloadTypes
	}
	if c.MaxEnvelopeSize == 0 {
		c.MaxEnvelopeSize = min(ledger.DefaultMaxEnvelopeSize, c.Log.Options().MaxEnvelopeSize)
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.VerifyWorkers == 0 {
		c.VerifyWorkers = runtime.GOMAXPROCS(0)
	}
	return c
}

// Service implements provledgerpb.LedgerServer.
type Service struct {
	provledgerpb.UnimplementedLedgerServer

	cfg      Config
	log      *ledger.Log
	seq      ledger.Sequencer
	verifier *envelope.Verifier
	logger   *slog.Logger
	types    map[string]struct{}
	typeList string // for error messages

	pems     pemCache
	notified sync.Map // keys.KeyID → struct{}: OnNewKey already called

	// jobs queues append requests for the checker goroutines, of which
	// checkers run (at most VerifyWorkers).
	jobs     chan checkJob
	checkers atomic.Int32
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Service{
		cfg:      cfg,
		log:      cfg.Log,
		seq:      cfg.Sequencer,
		verifier: cfg.Verifier,
		logger:   cfg.Logger.With("component", "api"),
		types:    make(map[string]struct{}, len(cfg.PayloadTypes)),
		typeList: strings.Join(cfg.PayloadTypes, ", "),
		jobs:     make(chan checkJob, checkJobs),
	}
	for _, t := range cfg.PayloadTypes {
		s.types[t] = struct{}{}
	}
	s.pems.m = map[string]pemKey{}
	return s, nil
}

// Config returns the configuration in use, defaults filled in.
func (s *Service) Config() Config { return s.cfg }

// checkNamespace reports what is wrong with a namespace, as a status error.
func checkNamespace(ns string) error {
	if ns == "" {
		return invalid("namespace is required: set it to the team or pipeline group that owns the entry (e.g. an OpenLineage job namespace)")
	}
	if len(ns) > MaxNamespaceLen {
		return invalid("namespace is %d bytes; the limit is %d", len(ns), MaxNamespaceLen)
	}
	if !utf8.ValidString(ns) {
		return invalid("namespace is not valid UTF-8")
	}
	for i, r := range ns {
		if unicode.IsControl(r) {
			return invalid("namespace has a control character %U at byte %d; use printable characters only", r, i)
		}
	}
	return nil
}

var _ provledgerpb.LedgerServer = (*Service)(nil)

// ctxErr returns the context's error if it is done, else nil.
func ctxErr(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	default:
		return nil
	}
}
