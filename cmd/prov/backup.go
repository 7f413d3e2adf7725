package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/provledger/provledger/api/adminservice/backupclient"
	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
)

func (a *app) backupCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov backup", flag.ContinueOnError)
	out := fs.String("out", "", "file to write the backup to (required; written through a temporary file and renamed, so FILE is either whole or untouched)")
	return &ffcli.Command{
		Name:       "backup",
		ShortUsage: "prov backup --out FILE",
		ShortHelp:  "stream a consistent backup of the node's store into FILE (admin)",
		LongHelp: strings.TrimSpace(`
Asks --server (the Admin service; needs an admin token or certificate) for
a consistent backup of its store: every entry, envelope, tile, checkpoint
and index as of one signed checkpoint, streamed while the node goes on
appending. The file is kept only if the stream arrived whole (byte count
and SHA-256 of the trailer). Prints the file, its size, the entries it
holds and the checkpoint it matches, whose signature is checked with
--log-key when a log key is available. Restore it with
provd --restore FILE (docs/operations.md).`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("backup takes no arguments (the file is --out FILE)")
			}
			if *out == "" {
				return usagef("backup needs --out FILE")
			}
			return a.backup(ctx, *out)
		},
	}
}

// backupReport is what prov backup prints with --json.
type backupReport struct {
	File         string `json:"file"`
	Bytes        uint64 `json:"bytes"`
	SHA256       string `json:"sha256"`
	Entries      uint64 `json:"entries"`
	AppliedIndex uint64 `json:"applied_index"`
	Node         string `json:"node,omitempty"`
	LogKey       string `json:"log_key"`
	Checkpoint   string `json:"checkpoint"`
	Verified     bool   `json:"verified"`
}

func (a *app) backup(ctx context.Context, out string) error {
	conn, closeConn, err := a.serviceConn()
	if err != nil {
		return err
	}
	defer closeConn()
	// A backup of a large log takes as long as it takes: only --timeout
	// (if given) or a signal ends it.
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	stream, err := provledgerpb.NewAdminClient(conn).Backup(rctx, &provledgerpb.BackupRequest{})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	res, err := receiveToFile(stream, out)
	if err != nil {
		return err
	}
	rep := backupReport{File: out, Bytes: res.Bytes, SHA256: hex.EncodeToString(res.SHA256), Entries: res.Info.GetSize(),
		AppliedIndex: res.Info.GetAppliedIndex(), Node: res.Info.GetNode(), LogKey: res.Info.GetLogKey(), Checkpoint: string(res.Info.GetCheckpoint())}
	v, err := a.verifierFor(res.Info.GetCheckpoint(), false)
	if err != nil {
		return err
	}
	cp, err := client.OpenCheckpoint(res.Info.GetCheckpoint(), v)
	if err != nil {
		return fmt.Errorf("backup written to %s, but its checkpoint does not verify: %w", out, err)
	}
	if cp.Size != res.Info.GetSize() {
		return fmt.Errorf("%w: the backup's checkpoint says size %d, its info %d", client.ErrVerify, cp.Size, res.Info.GetSize())
	}
	rep.Verified = v != nil
	if !rep.Verified {
		a.warnUnverified("backup")
	}
	if a.json {
		return a.printJSON(rep)
	}
	fmt.Fprintf(a.stdout, "backup written to %s\n  size:        %d bytes (SHA-256 %s)\n  entries:     %d\n  log key:     %s\n  checkpoint:\n", out, rep.Bytes, rep.SHA256, rep.Entries, rep.LogKey)
	for _, line := range strings.SplitAfter(strings.TrimRight(rep.Checkpoint, "\n"), "\n") {
		fmt.Fprintf(a.stdout, "    %s", line)
	}
	fmt.Fprintf(a.stdout, "\nrestore with: provd --restore %s --data EMPTY_DIR --log-key LOG_PRIVATE_KEY ...\n", out)
	return nil
}

// receiveToFile receives the stream into a temporary file beside path and
// renames it into place only once the stream is confirmed whole.
func receiveToFile(stream backupclient.Stream, path string) (*backupclient.Result, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	res, err := backupclient.Receive(stream, w)
	if err != nil {
		return nil, fmt.Errorf("backup (nothing written to %s): %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("backup: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("backup: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("backup: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return res, nil
}
