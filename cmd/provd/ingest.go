package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/provledger/provledger/api/olingest"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/query/payload"
)

// ingestConfig holds the flags of the OpenLineage HTTP endpoint
// (api/olingest); it is off unless --ingest-tokens is set.
type ingestConfig struct {
	tokensFile   string
	keyPath      string
	maxFacetSize int
	maxBatch     int
	maxBatchSize int
}

func addIngestFlags(fs *flag.FlagSet, c *ingestConfig) {
	fs.StringVar(&c.tokensFile, "ingest-tokens", "", "serve the OpenLineage HTTP endpoint (POST /api/v1/lineage and /api/v1/lineage/batch) to the bearer tokens in FILE, a tokens file as for --auth-tokens (lines \"<name> sha256:<hex of SHA-256 of the token>\"; principals that may append to the namespace of their name), re-read when it changes; a token's name becomes the namespace of the entries it sends (off when unset)")
	fs.StringVar(&c.keyPath, "ingest-key", "", "PEM Ed25519 private key the node signs HTTP-ingested events with (default DATA/ingest.key, generated on first start; its public key is written to DATA/ingest.pub and trusted)")
	fs.IntVar(&c.maxFacetSize, "ingest-max-facet-size", payload.DefaultMaxFacetSize, "largest facet of an HTTP-ingested event, in bytes of JSON (a bigger one is answered 400)")
	fs.IntVar(&c.maxBatch, "ingest-max-batch", olingest.DefaultMaxBatch, "most events in one POST /api/v1/lineage/batch")
	fs.IntVar(&c.maxBatchSize, "ingest-max-batch-size", olingest.DefaultMaxBatchSize, "largest POST /api/v1/lineage/batch body, in bytes")
}

func (c *ingestConfig) validate() error {
	switch {
	case c.maxFacetSize <= 0:
		return fmt.Errorf("--ingest-max-facet-size %d: must be a positive number of bytes", c.maxFacetSize)
	case c.maxBatch <= 0:
		return fmt.Errorf("--ingest-max-batch %d: must be a positive number of events", c.maxBatch)
	case c.maxBatchSize <= 0:
		return fmt.Errorf("--ingest-max-batch-size %d: must be a positive number of bytes", c.maxBatchSize)
	case c.keyPath != "" && c.tokensFile == "":
		return errors.New("--ingest-key is set but --ingest-tokens is not: the HTTP ingest endpoint is off without tokens")
	}
	return nil
}

// startIngest mounts the OpenLineage HTTP endpoint on srv's HTTP mux
// when --ingest-tokens is set: it loads (or makes) the ingest key, adds
// its public key to the keyring the Ledger service verifies with, and
// appends through that service. The tokens file is re-read when it
// changes and on SIGHUP, until ctx (the node's signal context) ends.
func startIngest(ctx context.Context, c *config, srv *server.Server, keyring *keys.Keyring, lg *slog.Logger) error {
	ic := &c.ingest
	if ic.tokensFile == "" {
		return nil
	}
	tokens, err := olingest.LoadTokensFile(ic.tokensFile)
	if err != nil {
		return fmt.Errorf("--ingest-tokens: %w", err)
	}
	priv, err := loadOrCreateIngestKey(c, lg)
	if err != nil {
		return err
	}
	if _, err := keyring.Add(priv.Public()); err != nil {
		return fmt.Errorf("ingest key: trust it: %w", err)
	}
	signer, err := keys.NewSigner(priv)
	if err != nil {
		return fmt.Errorf("ingest key: %w", err)
	}
	sc := srv.Service().Config()
	h, err := olingest.New(olingest.Config{
		Appender:     srv.Service(),
		Signer:       signer,
		Tokens:       tokens,
		Policy:       c.policy.identities(), // policy.go: a token the policy names gets its grant
		Limits:       payload.Limits{MaxFacetSize: ic.maxFacetSize},
		MaxEventSize: olingestMaxEvent(sc.MaxEnvelopeSize),
		MaxBatch:     ic.maxBatch,
		MaxBatchSize: ic.maxBatchSize,
		AppendChunk:  sc.MaxBatch,
		Logger:       lg,
	})
	if err != nil {
		return err
	}
	h.Register(srv.Mux())
	go tokens.Watch(ctx, olingest.WatchOptions{Interval: -1, Hangup: true, Logger: lg}) // changes: h refreshes per request
	lg.Info("serving OpenLineage HTTP ingest", "paths", []string{olingest.PathEvent, olingest.PathBatch}, "tokens", tokens.Len(), "ingest_key_id", h.KeyID())
	return nil
}

// olingestMaxEvent is the largest event whose envelope (base64 payload,
// one Ed25519 signature) fits in maxEnvelope bytes.
func olingestMaxEvent(maxEnvelope int) int {
	return max((maxEnvelope-512)/4*3, 1)
}
