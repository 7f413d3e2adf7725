package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
)

func (a *app) checkpointCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov checkpoint", flag.ContinueOnError)
	size := fs.Uint64("size", 0, "print the checkpoint of this tree size instead of the latest (0: latest)")
	return &ffcli.Command{
		Name:       "checkpoint",
		ShortUsage: "prov checkpoint [--size N]",
		ShortHelp:  "print the log's signed checkpoint",
		LongHelp: strings.TrimSpace(`
Prints the latest signed checkpoint (or the one of tree size --size) as the
node returns it: C2SP signed-note text (origin, tree size, base64 root
hash, blank line, signature lines). The signature is checked with
--log-key when a log key is available; otherwise prov warns on stderr.
--json prints origin, size, root hash and the note.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("checkpoint takes no arguments (use --size N for a past checkpoint)")
			}
			return a.checkpoint(ctx, *size)
		},
	}
}

// fetchCheckpoint gets the checkpoint of size (0: latest), checks that the
// note agrees with the response fields and, when a log key is available
// (or required), its signature.
func (a *app) fetchCheckpoint(ctx context.Context, size uint64, keyRequired bool) (checkpoint.Checkpoint, []byte, bool, error) {
	c, err := a.dial(ctx)
	if err != nil {
		return checkpoint.Checkpoint{}, nil, false, err
	}
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	resp, err := c.GetCheckpoint(rctx, &provledgerpb.GetCheckpointRequest{Size: size})
	if err != nil {
		return checkpoint.Checkpoint{}, nil, false, fmt.Errorf("get checkpoint: %w", err)
	}
	v, err := a.verifierFor(resp.GetNote(), keyRequired)
	if err != nil {
		return checkpoint.Checkpoint{}, nil, false, err
	}
	cp, err := client.OpenCheckpoint(resp.GetNote(), v)
	if err != nil {
		return checkpoint.Checkpoint{}, nil, false, err
	}
	if cp.Origin != resp.GetOrigin() || cp.Size != resp.GetSize() || !bytes.Equal(cp.Hash[:], resp.GetRootHash()) {
		return checkpoint.Checkpoint{}, nil, false, fmt.Errorf("%w: the checkpoint note says %s size %d, the response fields say %s size %d",
			client.ErrVerify, cp.Origin, cp.Size, resp.GetOrigin(), resp.GetSize())
	}
	if size != 0 && cp.Size != size {
		return checkpoint.Checkpoint{}, nil, false, fmt.Errorf("%w: asked for the checkpoint of size %d, got size %d", client.ErrVerify, size, cp.Size)
	}
	return cp, resp.GetNote(), v != nil, nil
}

func (a *app) checkpoint(ctx context.Context, size uint64) error {
	cp, note, verified, err := a.fetchCheckpoint(ctx, size, false)
	if err != nil {
		return err
	}
	if !verified {
		a.warnUnverified("checkpoint")
	}
	if a.json {
		return a.printJSON(map[string]any{
			"origin": cp.Origin, "size": cp.Size, "root_hash": base64.StdEncoding.EncodeToString(cp.Hash[:]),
			"note": string(note), "signature_verified": verified,
		})
	}
	_, err = a.stdout.Write(note)
	if verified {
		fmt.Fprintf(a.stderr, "checkpoint signature verified with %s\n", a.logKeyPath())
	}
	return err
}
