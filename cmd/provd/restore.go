package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/raft/cluster"
)

// restoreConfig is --restore: start from a backup (prov backup --out FILE).
type restoreConfig struct {
	file string
}

func addRestoreFlags(fs *flag.FlagSet, r *restoreConfig) {
	fs.StringVar(&r.file, "restore", "", "restore the log from this backup file (prov backup) into an empty --data directory, check it against its signed checkpoint, then serve; with --node-id it needs --bootstrap (the other nodes then --join empty)")
}

// validate checks how --restore combines with the other flags.
func (r *restoreConfig) validate(c *config) error {
	if r.file == "" {
		return nil
	}
	if c.logKeyPath == "" {
		if _, err := os.Stat(filepath.Join(c.dataDir, "log.key")); err != nil {
			return errors.New("--restore needs the log's private key, the one that signed the backup: pass --log-key FILE (the backed-up node's DATA/log.key)")
		}
	}
	if c.cluster.nodeID != "" {
		if !c.cluster.bootstrap {
			return errors.New("--restore with --node-id needs --bootstrap: restore one node into a new cluster, then start the others with an empty --data and --join (they receive the restored log from it)")
		}
		if c.cluster.peers != "" {
			return errors.New("--restore --bootstrap starts a one-voter cluster: leave out --peers and add the other nodes with --join")
		}
	}
	return nil
}

// restorable reports what in the data directory stops a restore: anything
// but the lock and key files (*.key, *.pub).
func restorable(dataDir string) error {
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return fmt.Errorf("--restore: %w", err)
	}
	var held []string
	for _, e := range ents {
		n := e.Name()
		if n == "provd.lock" || (!e.IsDir() && (strings.HasSuffix(n, ".key") || strings.HasSuffix(n, ".pub"))) {
			continue
		}
		held = append(held, n)
	}
	if len(held) > 0 {
		return fmt.Errorf("--restore: the data directory %s is not empty (it holds %s): restore into a new --data directory (key files may be there); provd never overwrites a node's data", dataDir, strings.Join(held, ", "))
	}
	return nil
}

// restoreData restores --restore into DATA/ledger before the ledger is
// opened. Nothing is left in DATA/ledger unless every check passed
// (ledger.RestoreBackup).
func restoreData(c *config, signer note.Signer, logKey string, stdout io.Writer, lg *slog.Logger) error {
	if c.restore.file == "" {
		return nil
	}
	if st, err := os.Stat(c.restore.file); err != nil {
		return fmt.Errorf("--restore: %w", err)
	} else if st.IsDir() {
		return fmt.Errorf("--restore %s: is a directory; give the backup file (prov backup --out FILE)", c.restore.file)
	}
	if err := restorable(c.dataDir); err != nil {
		return err
	}
	lg.Info("restoring from backup", "file", c.restore.file, "data", c.dataDir)
	res, err := ledger.RestoreBackup(filepath.Join(c.dataDir, "ledger"), c.restore.file, ledger.RestoreBackupOptions{
		Log:    ledger.Options{Origin: c.origin, Signer: signer, MaxEnvelopeSize: c.maxEnvelopeSize, Logger: lg},
		LogKey: logKey,
	})
	if err != nil {
		return fmt.Errorf("--restore %s refused, nothing restored: %w", c.restore.file, err)
	}
	lg.Info("restored from backup", "file", c.restore.file, "size", res.Checkpoint.Size, "keys", res.Keys, "bytes", res.Bytes, "took", res.Took)
	fmt.Fprintf(stdout, "restored %s: %d entries, checkpoint verified (root recomputed from every entry), %d bytes in %v\n",
		c.restore.file, res.Checkpoint.Size, res.Bytes, res.Took.Round(time.Millisecond))
	return nil
}

// compactRestored runs on a node just bootstrapped from a backup: its
// ledger holds the restored log but its Raft log starts empty, so a node
// that joins must receive the ledger as a Raft snapshot rather than replay
// a Raft log that lacks it. Once this node leads, it takes a snapshot and
// truncates its Raft log up to it; the other nodes then join empty and get
// the snapshot.
func compactRestored(c *config, node *cluster.Node) error {
	if c.restore.file == "" || node.HadState() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := node.WaitForLeader(ctx); err != nil {
		return fmt.Errorf("--restore: no leader after bootstrap: %w", err)
	}
	if err := node.Barrier(ctx); err != nil {
		return fmt.Errorf("--restore: %w", err)
	}
	r := node.Raft()
	saved := r.ReloadableConfig()
	keep := saved
	keep.TrailingLogs = 0
	if err := r.ReloadConfig(keep); err != nil {
		return fmt.Errorf("--restore: %w", err)
	}
	err := node.Snapshot()
	if rerr := r.ReloadConfig(saved); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("--restore: snapshot of the restored log: %w", err)
	}
	return nil
}
