// Package testlog opens real ledgers with the lineage indexer for the
// query tests, and signs payloads into entries.
package testlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/graph"
	"github.com/provledger/provledger/query/payload"
)

// Origin is the test log's origin.
const Origin = "test.provledger/query"

// Deterministic keys.
var (
	LogKey    = ed25519.NewKeyFromSeed(seed("query test log key"))
	SignerKey = ed25519.NewKeyFromSeed(seed("query test pipeline key"))
)

func seed(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// Log is an open ledger with the lineage indexer attached.
type Log struct {
	*ledger.Log
	Indexer *graph.Indexer
	Dir     string
	signer  signature.Signer
	keyID   [32]byte
	// Time is the integration time of the next Apply; each Apply advances
	// it by a second.
	Time time.Time
}

// Logger discards logs.
var Logger = slog.New(slog.NewTextHandler(io.Discard, nil))

// Open opens a new log in a temporary directory, with the indexer (nil: a
// log without one).
func Open(t testing.TB, ix *graph.Indexer) *Log {
	t.Helper()
	return OpenDir(t, filepath.Join(t.TempDir(), "ledger"), ix)
}

// OpenDir opens (or reopens) the log in dir.
func OpenDir(t testing.TB, dir string, ix *graph.Indexer) *Log {
	t.Helper()
	s, err := checkpoint.NewSigner(Origin, LogKey)
	if err != nil {
		t.Fatal(err)
	}
	opts := ledger.Options{Origin: Origin, Signer: s, Logger: Logger}
	if ix != nil {
		opts.Indexer = ix
	}
	l, err := ledger.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if ix != nil {
		if err := ix.Attach(l); err != nil {
			l.Close()
			t.Fatal(err)
		}
	}
	ps, err := keys.NewSigner(SignerKey)
	if err != nil {
		t.Fatal(err)
	}
	id, err := keys.IDOf(SignerKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	tl := &Log{Log: l, Indexer: ix, Dir: dir, signer: ps, keyID: id, Time: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	t.Cleanup(func() { l.Close() })
	return tl
}

// Payload is one payload to append.
type Payload struct {
	Type string
	Body []byte
	// Namespace defaults to "test".
	Namespace string
}

// Entry signs p into a ledger entry.
func (l *Log) Entry(t testing.TB, p Payload) ledger.Entry {
	t.Helper()
	env, err := envelope.Sign(p.Type, p.Body, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	ns := p.Namespace
	if ns == "" {
		ns = "test"
	}
	return ledger.Entry{Namespace: ns, PayloadType: p.Type, Envelope: env.Marshal(), Signers: [][32]byte{l.keyID}}
}

// Apply appends the payloads as one batch and returns their indexes.
func (l *Log) Apply(t testing.TB, ps ...Payload) []uint64 {
	t.Helper()
	entries := make([]ledger.Entry, len(ps))
	for i, p := range ps {
		entries[i] = l.Entry(t, p)
	}
	return l.ApplyEntries(t, entries)
}

// ApplyEntries appends signed entries as one batch.
func (l *Log) ApplyEntries(t testing.TB, entries []ledger.Entry) []uint64 {
	t.Helper()
	a, err := l.Log.Apply(ledger.Batch{Time: l.Time, Entries: entries}, ledger.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l.Time = l.Time.Add(time.Second)
	out := make([]uint64, len(a.Results))
	for i, r := range a.Results {
		if r.Err != nil {
			t.Fatalf("entry %d: %v", i, r.Err)
		}
		out[i] = r.Index
	}
	return out
}

// ReadFile reads a test file.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// LoadDir reads the payloads in dir (sorted by name): *.intoto.json are
// in-toto statements, *.cost.json cost records, *.dataset.json and
// *.job.json OpenLineage DatasetEvents and JobEvents, other *.json
// OpenLineage run events.
func LoadDir(t testing.TB, dir string) []Payload {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no payloads in %s: %v", dir, err)
	}
	var out []Payload
	for _, f := range files {
		p := Payload{Type: payload.TypeOpenLineage, Body: ReadFile(t, f)}
		switch {
		case strings.HasSuffix(f, ".intoto.json"):
			p.Type = payload.TypeInToto
		case strings.HasSuffix(f, ".cost.json"):
			p.Type = payload.TypeCost
		case strings.HasSuffix(f, ".dataset.json"):
			p.Type = payload.TypeOpenLineageDataset
		case strings.HasSuffix(f, ".job.json"):
			p.Type = payload.TypeOpenLineageJob
		}
		out = append(out, p)
	}
	return out
}

// RunID makes a deterministic UUID from n.
func RunID(n uint64) string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", n)
}

// Event builds a COMPLETE OpenLineage run event of run n of job
// (ns, name), reading ins and writing outs (each a namespace and name).
func Event(n uint64, ns, name string, ins, outs [][2]string) []byte {
	ds := func(list [][2]string) string {
		parts := make([]string, len(list))
		for i, d := range list {
			parts[i] = fmt.Sprintf(`{"namespace":%q,"name":%q}`, d[0], d[1])
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Appendf(nil, `{"eventType":"COMPLETE","eventTime":"2026-11-26T10:00:00Z","producer":"https://example.test/synthetic","run":{"runId":%q},"job":{"namespace":%q,"name":%q},"inputs":%s,"outputs":%s}`,
		RunID(n), ns, name, ds(ins), ds(outs))
}
