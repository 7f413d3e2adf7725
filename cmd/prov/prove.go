package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
	"github.com/provledger/provledger/crypto/tlogproof"
)

func (a *app) proveCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov prove", flag.ContinueOnError)
	size := fs.Uint64("size", 0, "prove inclusion in the tree of this size (0: the latest checkpoint)")
	out := fs.String("out", "", "write the proof to this file instead of standard output")
	bundle := fs.String("bundle", "", "write an offline bundle: FILE (tlog-proof whose checkpoint carries the witnesses' cosignatures) and FILE.envelope.json (the entry's DSSE envelope)")
	var witnesses multiFlag
	fs.Var(&witnesses, "witness", "with --bundle: URL of a C2SP tlog-witness to cosign the checkpoint (repeat for more)")
	var witnessKeys multiFlag
	fs.Var(&witnessKeys, "witness-key", "with --witness: the witness's verifier key, to check its cosignature before writing it (repeat)")
	return &ffcli.Command{
		Name:       "prove",
		ShortUsage: "prov prove [--size S] [--out FILE | --bundle FILE [--witness URL --witness-key VKEY]...] N",
		ShortHelp:  "write entry N's inclusion proof as a tlog-proof",
		LongHelp: strings.TrimSpace(`
Fetches the inclusion proof of entry N in the tree of size S (default: the
latest checkpoint), checks it, and writes it as a C2SP tlog-proof file
(https://c2sp.org/tlog-proof): extra line = the entry record, the index,
the proof hashes, and the signed checkpoint. Anyone with the log's public
key can check it offline: prov verify --receipt FILE.

--bundle FILE writes a self-contained offline proof: the same tlog-proof,
whose checkpoint also carries cosignatures (C2SP tlog-cosignature) from
each --witness (asked with the C2SP tlog-witness protocol; the consistency
proof it needs comes from the node), and FILE.envelope.json, the entry's
DSSE envelope. prov verify --bundle FILE --log-key K --witness-key W
checks it with no network.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			n, err := indexArg("prove", args)
			if err != nil {
				return err
			}
			if *bundle != "" {
				if *out != "" {
					return usagef("prove: give --out or --bundle, not both")
				}
				return a.proveBundle(ctx, n, *size, *bundle, witnesses, witnessKeys)
			}
			if len(witnesses) > 0 {
				return usagef("prove: --witness needs --bundle")
			}
			return a.prove(ctx, n, *size, *out)
		},
	}
}

func (a *app) prove(ctx context.Context, n, size uint64, out string) error {
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	e, err := c.GetEntry(rctx, &provledgerpb.GetEntryRequest{Index: n})
	if err != nil {
		return fmt.Errorf("get entry %d: %w", n, err)
	}
	if _, err := record.Unmarshal(e.GetRecord()); err != nil {
		return fmt.Errorf("entry %d: %w: record: %w", n, client.ErrVerify, err)
	}
	ip, err := c.GetInclusionProof(rctx, &provledgerpb.GetInclusionProofRequest{
		Leaf: &provledgerpb.GetInclusionProofRequest_Index{Index: n}, TreeSize: size,
	})
	if err != nil {
		return fmt.Errorf("get inclusion proof of entry %d: %w", n, err)
	}
	leaf := proof.LeafHash(e.GetRecord())
	if !bytes.Equal(ip.GetLeafHash(), leaf[:]) {
		return fmt.Errorf("%w: the proof is for leaf %x, entry %d hashes to %x", client.ErrVerify, ip.GetLeafHash(), n, leaf[:])
	}
	p := &tlogproof.Proof{Extra: e.GetRecord(), Index: n, Hashes: ip.GetHashes(), Checkpoint: ip.GetCheckpoint()}
	v, err := a.verifierFor(p.Checkpoint, false)
	if err != nil {
		return err
	}
	var cpSize uint64
	if v != nil {
		_, cp, err := client.VerifyProof(p, v)
		if err != nil {
			return fmt.Errorf("entry %d: %w", n, err)
		}
		cpSize = cp.Size
	} else {
		cp, err := client.OpenCheckpoint(p.Checkpoint, nil)
		if err != nil {
			return err
		}
		if err := proof.VerifyInclusion(n, cp.Size, leaf, p.Hashes, cp.Hash); err != nil {
			return fmt.Errorf("%w: inclusion proof of entry %d: %w", client.ErrVerify, n, err)
		}
		cpSize = cp.Size
		a.warnUnverified("proof")
	}
	if size != 0 && cpSize != size {
		return fmt.Errorf("%w: asked for a proof in the tree of size %d, the checkpoint has size %d", client.ErrVerify, size, cpSize)
	}
	b := p.Marshal()
	if out == "" {
		if a.json {
			return a.printJSON(map[string]any{"index": n, "tree_size": cpSize, "leaf_hash": hex.EncodeToString(leaf[:]), "tlog_proof": string(b)})
		}
		_, err := a.stdout.Write(b)
		return err
	}
	if err := writeFileAtomic(out, b, 0o644); err != nil {
		return fmt.Errorf("prove: %w", err)
	}
	if a.json {
		return a.printJSON(map[string]any{"index": n, "tree_size": cpSize, "leaf_hash": hex.EncodeToString(leaf[:]), "file": out})
	}
	fmt.Fprintf(a.stdout, "wrote the inclusion proof of entry %d in the tree of size %d to %s\n", n, cpSize, out)
	return nil
}
