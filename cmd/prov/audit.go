package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/schollz/progressbar/v3"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/term"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
)

// auditChunk is the number of entries read per GetEntries call; each call
// gets its own --timeout.
const auditChunk = 4096

// maxProblemsShown bounds the per-entry problems printed.
const maxProblemsShown = 20

func (a *app) auditCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov audit", flag.ContinueOnError)
	state := fs.String("state", "./prov-audit.state", "file keeping the last checkpoint this auditor verified (a signed checkpoint note); created on the first run")
	trust := fs.String("trust", "", "file of PEM public keys: re-verify every DSSE signature (signatures by keys not in the file are counted as unverifiable)")
	return &ffcli.Command{
		Name:       "audit",
		ShortUsage: "prov audit --log-key FILE [--state FILE] [--trust FILE]",
		ShortHelp:  "replay the whole log and check it end to end",
		LongHelp: strings.TrimSpace(`
Replays the whole log up to the latest checkpoint (whose signature is
checked with --log-key, required): for every entry it recomputes the leaf
hash from the entry record and checks the envelope's digest, size and
payload type (redacted envelopes are counted, their records still hashed);
it recomputes the tree's root from all leaves and checks it equals the
checkpoint's root. With --trust it re-verifies every DSSE signature: a bad
signature by a trusted key fails the audit, a signature by a key not in the
file is counted as unverifiable.

The state file keeps the last checkpoint a previous audit verified. The
new checkpoint must be consistent with it: the node's consistency proof
must verify, and the root recomputed at the old size must equal the old
root. So a log that rewrote or dropped history since the last audit fails.
Only when everything passed is the new checkpoint saved to the state file
(atomically: a temporary file renamed into place).

A progress bar is drawn when stderr is a terminal. The summary line gives
entries/s.

Exit codes: 0 the log checks out; 1 a check failed (each problem is
listed); 2 the server could not be reached; 64 bad flags or arguments.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("audit takes no arguments")
			}
			return a.audit(ctx, *state, *trust)
		},
	}
}

// auditStats counts what an audit saw.
type auditStats struct {
	Entries      uint64 `json:"entries"`
	Redacted     uint64 `json:"redacted"`
	SigsVerified uint64 `json:"signatures_verified"`
	Unverifiable uint64 `json:"signatures_unverifiable"`
}

func (a *app) audit(ctx context.Context, statePath, trustFile string) error {
	pub, err := a.loadLogKey(true)
	if err != nil {
		return err
	}
	kr, err := loadTrust(trustFile)
	if err != nil {
		return err
	}
	start := time.Now()
	cp, cpNote, _, err := a.fetchCheckpoint(ctx, 0, true)
	if err != nil {
		return a.failed("latest checkpoint", err)
	}
	v, err := client.VerifierForCheckpoint(pub, a.origin, cpNote)
	if err != nil {
		return a.failed("latest checkpoint", err)
	}

	// The checkpoint of the previous audit, if any.
	var old *checkpoint.Checkpoint
	if b, err := os.ReadFile(statePath); err == nil {
		o, err := openState(b, v)
		if err != nil {
			return a.failed("state file "+statePath, err)
		}
		old = &o
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state file: %w", err)
	}
	if old != nil && old.Size > cp.Size {
		return a.failed("consistency", fmt.Errorf("the log's latest checkpoint has size %d, but the previous audit verified size %d: the log lost entries (or the server is behind)", cp.Size, old.Size))
	}

	var bar *progressbar.ProgressBar
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && cp.Size > 0 {
		bar = progressbar.NewOptions64(int64(cp.Size),
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription("auditing"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("entries"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}

	var (
		st       auditStats
		problems []string
		tree     = (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
		oldRoot  []byte
	)
	problem := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	if old != nil && old.Size == 0 {
		e := proof.EmptyRoot()
		oldRoot = e[:]
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	for next := uint64(0); next < cp.Size; {
		end := min(next+auditChunk, cp.Size)
		got, err := a.auditChunk(ctx, c, next, end, func(e *provledgerpb.Entry) {
			i := e.GetIndex()
			raw := e.GetRecord()
			leaf := proof.LeafHash(raw)
			if err := tree.Append(leaf[:], nil); err != nil {
				problem("entry %d: %v", i, err)
			}
			if tree.End() == oldSizeOf(old) {
				oldRoot, _ = tree.GetRootHash(nil)
			}
			st.Entries++
			if !bytes.Equal(leaf[:], e.GetLeafHash()) {
				problem("entry %d: leaf hash %x, but the record hashes to %x", i, e.GetLeafHash(), leaf[:])
			}
			rec, err := record.Unmarshal(raw)
			if err != nil {
				problem("entry %d: %v", i, err)
				return
			}
			if len(e.GetEnvelopeJson()) == 0 {
				if e.RedactedBy == nil {
					problem("entry %d: no envelope, and the server does not say it was redacted", i)
				}
				st.Redacted++
				return
			}
			if err := client.CheckEnvelope(rec, e.GetEnvelopeJson()); err != nil {
				problem("entry %d: %v", i, err)
				return
			}
			if kr == nil {
				return
			}
			env, err := envelope.Parse(e.GetEnvelopeJson())
			if err != nil {
				problem("entry %d: envelope: %v", i, err)
				return
			}
			rep, err := checkSignatures(env, rec, kr)
			if err != nil {
				problem("entry %d: %v", i, err)
				return
			}
			st.SigsVerified += uint64(len(rep.Verified))
			st.Unverifiable += uint64(len(rep.Unverifiable))
		})
		if err != nil {
			if bar != nil {
				bar.Exit()
			}
			return a.failed(fmt.Sprintf("read entries [%d, %d)", next, end), err)
		}
		next = end
		if bar != nil {
			bar.Add64(int64(got))
		}
	}
	if bar != nil {
		bar.Finish()
	}

	root := proof.EmptyRoot()
	if cp.Size > 0 {
		r, err := tree.GetRootHash(nil)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		copy(root[:], r)
	}
	if root != cp.Hash {
		problem("the root recomputed from all %d entries is %s, the signed checkpoint says %s",
			cp.Size, base64.StdEncoding.EncodeToString(root[:]), base64.StdEncoding.EncodeToString(cp.Hash[:]))
	}
	consistency := "no previous audit state: first audit, nothing to be consistent with"
	if old != nil {
		if !bytes.Equal(oldRoot, old.Hash[:]) {
			problem("the root recomputed at the previously audited size %d is %s, the saved checkpoint says %s: the log rewrote history",
				old.Size, base64.StdEncoding.EncodeToString(oldRoot), base64.StdEncoding.EncodeToString(old.Hash[:]))
		}
		if err := a.checkConsistency(ctx, c, *old, cp); err != nil {
			if unreachable(err) {
				return err
			}
			problem("consistency with the previously audited checkpoint (size %d): %v", old.Size, grpcMessage(err))
		} else {
			consistency = fmt.Sprintf("consistent with the previously audited checkpoint of size %d", old.Size)
		}
	}
	elapsed := time.Since(start)
	if len(problems) > 0 {
		for i, p := range problems {
			if i == maxProblemsShown {
				fmt.Fprintf(a.stderr, "  ... and %d more\n", len(problems)-maxProblemsShown)
				break
			}
			fmt.Fprintf(a.stderr, "  %s\n", p)
		}
		return exitError{code: exitFailed, err: fmt.Errorf("FAILED: audit of %s at size %d found %d problem(s); the state file was not updated", cp.Origin, cp.Size, len(problems))}
	}
	if err := writeFileAtomic(statePath, cpNote, 0o644); err != nil {
		return fmt.Errorf("audit passed, but saving the state file failed: %w", err)
	}
	rate := float64(st.Entries) / elapsed.Seconds()
	if a.json {
		return a.printJSON(map[string]any{
			"ok": true, "origin": cp.Origin, "tree_size": cp.Size, "root_hash": base64.StdEncoding.EncodeToString(cp.Hash[:]),
			"stats": st, "previous_size": oldSizeOf(old), "first_audit": old == nil, "consistency": consistency,
			"signatures_checked": kr != nil, "seconds": elapsed.Seconds(), "entries_per_second": rate, "state_file": statePath,
		})
	}
	sigs := "signatures not re-verified (no --trust)"
	if kr != nil {
		sigs = fmt.Sprintf("%d signature(s) verified, %d unverifiable (key not in %s)", st.SigsVerified, st.Unverifiable, trustFile)
	}
	fmt.Fprintf(a.stdout, "audit OK: %s, %d entries, root %s matches the signed checkpoint; %s; %s; %d redacted; %.2fs (%.0f entries/s); state saved to %s\n",
		cp.Origin, st.Entries, base64.StdEncoding.EncodeToString(cp.Hash[:]), consistency, sigs, st.Redacted,
		elapsed.Seconds(), rate, statePath)
	return nil
}

func oldSizeOf(old *checkpoint.Checkpoint) uint64 {
	if old == nil {
		return ^uint64(0)
	}
	return old.Size
}

// openState opens the state file's checkpoint with the log's verifier.
func openState(b []byte, v note.Verifier) (checkpoint.Checkpoint, error) {
	cp, err := client.OpenCheckpoint(b, v)
	if err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("%w (delete the file to start over, if it is not from this log)", err)
	}
	return cp, nil
}

// auditChunk streams the entries [start, end) into fn, checking that they
// come in order and all of them come. It returns how many came.
func (a *app) auditChunk(ctx context.Context, c *client.Client, start, end uint64, fn func(*provledgerpb.Entry)) (uint64, error) {
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	stream, err := c.GetEntries(rctx, &provledgerpb.GetEntriesRequest{Start: start, End: end})
	if err != nil {
		return 0, err
	}
	next := start
	for {
		e, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return next - start, err
		}
		if e.GetIndex() != next {
			return next - start, fmt.Errorf("%w: expected entry %d, the server sent entry %d", client.ErrVerify, next, e.GetIndex())
		}
		if next == end {
			return next - start, fmt.Errorf("%w: the server sent more entries than asked for", client.ErrVerify)
		}
		fn(e)
		next++
	}
	if next != end {
		return next - start, fmt.Errorf("%w: the server sent entries up to %d, not %d", client.ErrVerify, next, end)
	}
	return next - start, nil
}

// checkConsistency verifies that old is a prefix of cp with the node's
// consistency proof.
func (a *app) checkConsistency(ctx context.Context, c *client.Client, old, cp checkpoint.Checkpoint) error {
	if old.Size == cp.Size {
		if old.Hash != cp.Hash {
			return fmt.Errorf("%w: two different signed roots for size %d", client.ErrVerify, cp.Size)
		}
		return nil
	}
	if old.Size == 0 {
		return nil // the empty tree is a prefix of every tree
	}
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	cproof, err := c.GetConsistencyProof(rctx, &provledgerpb.GetConsistencyProofRequest{OldSize: old.Size, NewSize: cp.Size})
	if err != nil {
		return fmt.Errorf("get consistency proof %d → %d: %w", old.Size, cp.Size, err)
	}
	if cproof.GetOldSize() != old.Size || cproof.GetNewSize() != cp.Size {
		return fmt.Errorf("%w: asked for a proof %d → %d, got %d → %d", client.ErrVerify, old.Size, cp.Size, cproof.GetOldSize(), cproof.GetNewSize())
	}
	if err := proof.VerifyConsistency(old.Size, cp.Size, cproof.GetHashes(), old.Hash, cp.Hash); err != nil {
		return fmt.Errorf("%w: %w", client.ErrVerify, err)
	}
	return nil
}
