package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/scanservice"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/scanner"
)

// scanConfig holds the anomaly scanner's flags (docs/scanner.md).
type scanConfig struct {
	enabled  bool
	interval time.Duration
	keyPath  string
}

func addScanFlags(fs *flag.FlagSet, c *scanConfig) {
	fs.BoolVar(&c.enabled, "scan", false, "run the anomaly scanner continuously on the leader: findings are appended to the log, signed by the scanner key (prov findings lists them; without --scan, prov scan runs one pass on demand)")
	fs.DurationVar(&c.interval, "scan-interval", 2*time.Second, "pause between two scanner passes with --scan: the scan lags the log by about this plus one pass")
	fs.StringVar(&c.keyPath, "scanner-key", "", "PEM Ed25519 private key that signs findings (default DATA/scanner.key, generated on first start; its public key is written to DATA/scanner.pub and trusted); in a cluster give every node the same key")
}

func (c *scanConfig) validate() error {
	if c.interval < 10*time.Millisecond || c.interval > time.Hour {
		return fmt.Errorf("--scan-interval %s: must be between 10ms and 1h", c.interval)
	}
	return nil
}

// scanLeader is the IsLeader hook of the scanner: a single node leads
// itself; in cluster mode the Raft node says.
func scanLeader(seq sequencer) func() bool {
	if r, ok := seq.(*raftSequencer); ok && r.node != nil {
		return r.node.IsLeader
	}
	return func() bool { return true }
}

// startScanner opens the scanner over l, registers the Scanner gRPC
// service and, with --scan, starts the continuous scan. The returned stop
// ends the scan and waits for it (call it before closing the sequencer).
func startScanner(c *config, l *ledger.Log, seq sequencer, srv *server.Server, keyring *keys.Keyring, lg *slog.Logger) (stop func(), err error) {
	priv, err := loadOrCreateScannerKey(c, lg)
	if err != nil {
		return nil, err
	}
	signer, err := keys.NewSigner(priv)
	if err != nil {
		return nil, fmt.Errorf("scanner key: %w", err)
	}
	if _, err := keyring.Add(priv.Public()); err != nil {
		return nil, fmt.Errorf("scanner key: trust it: %w", err)
	}
	sc, err := scanner.New(l, seq, scanner.Options{Signer: signer, Trust: keyring, Policy: c.policy.scannerPolicy(), Logger: lg.With("component", "scanner")}) // policy.go
	if err != nil {
		return nil, fmt.Errorf("scanner: %w", err)
	}
	isLeader := scanLeader(seq)
	svc, err := scanservice.New(scanservice.Config{Scanner: sc, IsLeader: isLeader, Logger: lg})
	if err != nil {
		return nil, err
	}
	provledgerpb.RegisterScannerServer(srv.GRPC(), svc)
	if !c.scan.enabled {
		return func() {}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := sc.Run(ctx, scanner.RunOptions{Interval: c.scan.interval, IsLeader: isLeader}); err != nil && !errors.Is(err, context.Canceled) {
			lg.Error("scanner stopped", "err", err)
		}
	}()
	lg.Info("anomaly scanner running", "interval", c.scan.interval, "cursor", sc.Cursor(), "key", sc.KeyID().String())
	unregister := registerScannerMetrics(sc) // admin_raft.go
	return func() { cancel(); wg.Wait(); unregister() }, nil
}
