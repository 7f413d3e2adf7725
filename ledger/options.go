package ledger

import (
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxEnvelopeSize = 1 << 20
	DefaultTileCacheSize   = 1024
)

// Options configure a Log. The zero value of each optional field selects the
// documented default.
type Options struct {
	// Origin names the log in its checkpoints (e.g. "ledger.example/prod").
	// Required. It must equal Signer's key name.
	Origin string
	// Signer signs checkpoints with the log's Ed25519 key (see
	// crypto/checkpoint.NewSigner). Required.
	Signer note.Signer
	// MaxEnvelopeSize caps the canonical envelope size in bytes.
	// Default DefaultMaxEnvelopeSize (1 MiB).
	MaxEnvelopeSize int
	// TileCacheSize is the number of full tiles kept in memory with their
	// interior nodes, to serve proofs without rehashing. Each costs ~16 KiB.
	// Default DefaultTileCacheSize.
	TileCacheSize int
	// Indexer, if set, is called inside every batch (see Indexer).
	Indexer Indexer
	// AdminKeys says who may sign redaction entries (see redact.go). Nil:
	// the log refuses every redaction (ErrNotAdmin).
	AdminKeys AdminKeys
	// Logger receives the log's structured logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock used by sequencers. Default time.Now.
	Now func() time.Time
	// Observer, if set, is told about every applied batch (metrics).
	Observer Observer
	// PebbleCacheSize is the Pebble block cache size in bytes; Pebble charges its memtables (24–40 MiB each, memtable.go) to it. Default 256 MiB.
	PebbleCacheSize int64
}

// Validate reports the first problem with o, naming the field to fix.
func (o *Options) Validate() error {
	switch {
	case o.Origin == "":
		return fmt.Errorf("ledger options: Origin is required")
	case o.Signer == nil:
		return fmt.Errorf("ledger options: Signer is required")
	case o.Signer.Name() != o.Origin:
		return fmt.Errorf("ledger options: Signer key name %q must equal Origin %q", o.Signer.Name(), o.Origin)
	case o.MaxEnvelopeSize < 0:
		return fmt.Errorf("ledger options: MaxEnvelopeSize %d is negative", o.MaxEnvelopeSize)
	case o.TileCacheSize < 0:
		return fmt.Errorf("ledger options: TileCacheSize %d is negative", o.TileCacheSize)
	case o.PebbleCacheSize < 0:
		return fmt.Errorf("ledger options: PebbleCacheSize %d is negative", o.PebbleCacheSize)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.MaxEnvelopeSize == 0 {
		o.MaxEnvelopeSize = DefaultMaxEnvelopeSize
	}
	if o.TileCacheSize == 0 {
		o.TileCacheSize = DefaultTileCacheSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PebbleCacheSize == 0 {
		o.PebbleCacheSize = 256 << 20
	}
	return o
}

// Observer receives statistics of applied batches, e.g. for metrics. It is
// called inside Apply, after the commit, and must not block.
type Observer interface {
	BatchApplied(BatchStats)
}

// BatchStats describes one applied batch.
type BatchStats struct {
	// Entries is the batch's length; Added how many of them grew the log
	// (the rest were duplicates or invalid).
	Entries, Added int
	// Size is the log size after the batch.
	Size uint64
	// Apply is the time spent in Apply, Commit the part spent committing
	// (and syncing, with Sync) the Pebble batch.
	Apply, Commit time.Duration
	// Sync reports whether the batch was synced.
	Sync bool
}
