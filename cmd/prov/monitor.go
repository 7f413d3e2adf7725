package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/proof"
)

func (a *app) monitorCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov monitor", flag.ContinueOnError)
	url := fs.String("url", "", "base URL of the node's HTTP tlog-tiles API (default: http://HOST:PORT+1 of --server)")
	interval := fs.Duration("interval", 10*time.Second, "how often to fetch the checkpoint")
	state := fs.String("state", "./prov-monitor.state", "file keeping the last checkpoint the monitor verified")
	evidence := fs.String("evidence", "./prov-evidence.json", "where to write the evidence of an inconsistency")
	onAlert := fs.String("on-alert", "", "shell command run on an alert, with PROV_ALERT_KIND, PROV_ALERT_DETAIL, PROV_ALERT_EVIDENCE set")
	trust := fs.String("trust", "", "also re-verify the DSSE signatures of new entries with these PEM keys")
	once := fs.Bool("once", false, "check once and exit (0 ok, 1 alert, 2 unreachable)")
	return &ffcli.Command{
		Name:       "monitor",
		ShortUsage: "prov monitor --log-key FILE [--url URL] [--interval D] [--state FILE] [--evidence FILE] [--on-alert CMD] [--once]",
		ShortHelp:  "follow the log and alert on any inconsistency",
		LongHelp: strings.TrimSpace(`
Follows the log through its tiles API. Every --interval it fetches the
checkpoint, checks its signature with --log-key, and checks it against the
last one it verified (kept in --state, so a restart continues): the log may
only grow (a smaller checkpoint is a rollback), one size has one root (two
are a fork), and the new tree must extend the old one (RFC 6962
consistency proof, from tiles authenticated against the new checkpoint).
It also replays the new entries as prov audit does (leaf hashes, root;
with --trust, envelopes and signatures).

On an inconsistency it logs an ERROR line, writes --evidence (JSON: both
signed checkpoints, the consistency proof that fails, and the tree's
compact ranges that prove the fork; see docs/audit.md), runs --on-alert
(sh -c, with PROV_ALERT_KIND, PROV_ALERT_DETAIL, PROV_ALERT_EVIDENCE) and
exits 1. Anyone with the log key re-checks the evidence offline with
prov verify --evidence-file FILE. A log it cannot reach is logged and
retried (with --once: exit 2).`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("monitor takes no arguments")
			}
			if *interval <= 0 {
				return usagef("--interval must be positive")
			}
			return a.monitor(ctx, monitorOptions{url: *url, interval: *interval, state: *state, evidence: *evidence, onAlert: *onAlert, trust: *trust, once: *once})
		},
	}
}

type monitorOptions struct {
	url, state, evidence, onAlert, trust string
	interval                             time.Duration
	once                                 bool
}

// Evidence is what the monitor keeps when the log misbehaves; prov verify
// --evidence-file re-checks it with the log key alone.
type Evidence struct {
	Format     string    `json:"format"`
	Kind       string    `json:"kind"`
	Origin     string    `json:"origin"`
	Detail     string    `json:"detail"`
	ObservedAt time.Time `json:"observed_at"`
	LogURL     string    `json:"log_url,omitempty"`
	// OldCheckpoint is the signed checkpoint verified before; NewCheckpoint
	// the signed checkpoint that conflicts with it.
	OldCheckpoint string `json:"old_checkpoint"`
	NewCheckpoint string `json:"new_checkpoint"`
	// ConsistencyProof is the RFC 6962 proof old -> new built from the new
	// tree's tiles; it does not verify against the old root.
	ConsistencyProof [][]byte `json:"consistency_proof,omitempty"`
	// OldRange and NewRange are the new tree's compact ranges [0, old size)
	// and [old size, new size): together they hash to the new root, and
	// OldRange alone to the new tree's root at the old size.
	OldRange [][]byte `json:"old_range,omitempty"`
	NewRange [][]byte `json:"new_range,omitempty"`
	// Problems are entry-level findings (not checkable offline).
	Problems []problem `json:"problems,omitempty"`
}

// EvidenceFormat is Evidence.Format.
const EvidenceFormat = "provledger-evidence/v1"

type alert struct {
	kind, detail string
	ev           *Evidence
}

func (a *app) monitor(ctx context.Context, o monitorOptions) error {
	pub, err := a.loadLogKey(true)
	if err != nil {
		return err
	}
	kr, err := loadTrust(o.trust)
	if err != nil {
		return err
	}
	base, err := a.tilesURL(o.url)
	if err != nil {
		return err
	}
	src, err := newHTTPSource(base, a.timeout, 4*runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	var pol TrustPolicy
	if kr != nil {
		pol = staticTrust{kr}
	}
	logger := slog.New(slog.NewTextHandler(a.stderr, nil)).With("component", "monitor", "log", base)
	var (
		v       note.Verifier
		last    *checkpoint.Checkpoint
		lastRaw []byte
	)
	if b, err := os.ReadFile(o.state); err == nil {
		vv, err := client.VerifierForCheckpoint(pub, a.origin, b)
		if err != nil {
			return usagef("--state %s: %v", o.state, err)
		}
		cp, err := client.OpenCheckpoint(b, vv)
		if err != nil {
			return exitError{code: exitFailed, err: fmt.Errorf("FAILED: state file %s: %v", o.state, err)}
		}
		v, last, lastRaw = vv, &cp, b
		logger.Info("resuming", "size", cp.Size)
	} else if !errors.Is(err, os.ErrNotExist) {
		return usagef("--state: %v", err)
	}
	for {
		al, cp, raw, err := a.monitorStep(ctx, src, pub, &v, last, lastRaw, pol)
		switch {
		case al != nil:
			return a.raise(ctx, logger, o, base, al)
		case err != nil:
			logger.Warn("could not check the log", "err", err)
			if o.once {
				return exitError{code: exitUnreachable, err: fmt.Errorf("could not reach or read the log: %v", err)}
			}
		default:
			if last == nil || cp.Size != last.Size {
				if err := writeFileAtomic(o.state, raw, 0o644); err != nil {
					return fmt.Errorf("monitor: save state: %w", err)
				}
				from := uint64(0)
				if last != nil {
					from = last.Size
				}
				logger.Info("checkpoint verified", "size", cp.Size, "from", from, "root", b64(cp.Hash[:]))
			}
			last, lastRaw = cp, raw
			if o.once {
				if a.json {
					return a.printJSON(map[string]any{"ok": true, "origin": cp.Origin, "tree_size": cp.Size, "root_hash": b64(cp.Hash[:])})
				}
				fmt.Fprintf(a.stdout, "monitor OK: %s at size %d, root %s, consistent with what was seen before\n", cp.Origin, cp.Size, b64(cp.Hash[:]))
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.interval):
		}
	}
}

// monitorStep fetches and checks one checkpoint. It returns an alert for
// misbehaviour, an error when the log could not be read, or the new
// verified checkpoint.
func (a *app) monitorStep(ctx context.Context, src tileSource, pub []byte, v *note.Verifier, last *checkpoint.Checkpoint, lastRaw []byte, pol TrustPolicy) (*alert, *checkpoint.Checkpoint, []byte, error) {
	raw, err := src.Checkpoint(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if *v == nil {
		vv, err := client.VerifierForCheckpoint(pub, a.origin, raw)
		if err != nil {
			return &alert{kind: kindCheckpointSig, detail: err.Error()}, nil, nil, nil
		}
		*v = vv
	}
	cp, err := client.OpenCheckpoint(raw, *v)
	if err != nil {
		return &alert{kind: kindCheckpointSig, detail: "the log's checkpoint does not verify with the log key: " + err.Error()}, nil, nil, nil
	}
	if last == nil {
		return nil, &cp, raw, nil
	}
	ev := &Evidence{Format: EvidenceFormat, Origin: cp.Origin, OldCheckpoint: string(lastRaw), NewCheckpoint: string(raw)}
	if p, ok := checkOrder(*last, cp); !ok {
		ev.Kind, ev.Detail = p.Kind, p.Detail
		return &alert{kind: p.Kind, detail: p.Detail, ev: ev}, nil, nil, nil
	}
	if cp.Size == last.Size {
		return nil, &cp, raw, nil
	}
	rng, cproof, err := frontier(ctx, src, cp, last.Size)
	if err != nil {
		if transient(err) {
			return nil, nil, nil, err
		}
		d := fmt.Sprintf("the log's tiles do not match its signed checkpoint of size %d: %v", cp.Size, err)
		ev.Kind, ev.Detail = kindTiles, d
		return &alert{kind: kindTiles, detail: d, ev: ev}, nil, nil, nil
	}
	if r := rootOf(rng); r != last.Hash || proof.VerifyConsistency(last.Size, cp.Size, cproof, last.Hash, cp.Hash) != nil {
		d := fmt.Sprintf("the log's signed tree of size %d does not extend its signed tree of size %d: its root at size %d is %s, not %s",
			cp.Size, last.Size, last.Size, b64(r[:]), b64(last.Hash[:]))
		ev.Kind, ev.Detail, ev.ConsistencyProof = kindInconsistent, d, cproof
		if l, r, err := splitRanges(ctx, src, cp, last.Size); err == nil {
			ev.OldRange, ev.NewRange = l, r
		}
		return &alert{kind: kindInconsistent, detail: d, ev: ev}, nil, nil, nil
	}
	// The new entries, as an incremental audit checks them.
	au := &auditor{src: src, policy: pol}
	if hs, ok := src.(*httpSource); ok && pol != nil {
		au.bulk = httpBundles{hs} // envelopes 256 at a time (GET /envelopes/<N>)
	}
	res := au.replay(ctx, rng, cp.Size)
	probs := res.problems
	if res.rng != nil && rootOf(res.rng) != cp.Hash && len(probs) == 0 {
		probs = append(probs, problem{Index: -1, Kind: kindRootMismatch, Detail: "the root recomputed from the new entries differs from the signed checkpoint's"})
	}
	if len(probs) > 0 {
		ev.Kind, ev.Detail, ev.Problems = probs[0].Kind, probs[0].String(), probs
		return &alert{kind: probs[0].Kind, detail: probs[0].String(), ev: ev}, nil, nil, nil
	}
	if res.fetchErr != nil || res.rng == nil {
		if res.fetchErr == nil {
			res.fetchErr = errors.New("incomplete read")
		}
		return nil, nil, nil, res.fetchErr
	}
	return nil, &cp, raw, nil
}

// raise logs an alert, writes the evidence, runs --on-alert and exits 1.
func (a *app) raise(ctx context.Context, logger *slog.Logger, o monitorOptions, base string, al *alert) error {
	evPath := ""
	if al.ev != nil {
		al.ev.ObservedAt = time.Now().UTC()
		al.ev.LogURL = base
		b, _ := json.MarshalIndent(al.ev, "", "  ")
		if err := writeFileAtomic(o.evidence, append(b, '\n'), 0o644); err != nil {
			logger.Error("could not write the evidence file", "err", err)
		} else {
			evPath = o.evidence
		}
	}
	logger.Error("ALERT: the log misbehaved", "kind", al.kind, "detail", al.detail, "evidence", evPath)
	if o.onAlert != "" {
		cmd := exec.CommandContext(ctx, "sh", "-c", o.onAlert)
		cmd.Env = append(os.Environ(), "PROV_ALERT_KIND="+al.kind, "PROV_ALERT_DETAIL="+al.detail, "PROV_ALERT_EVIDENCE="+evPath)
		cmd.Stdout, cmd.Stderr = a.stderr, a.stderr
		if err := cmd.Run(); err != nil {
			logger.Error("--on-alert command failed", "err", err)
		}
	}
	if a.json {
		a.printJSON(map[string]any{"ok": false, "kind": al.kind, "detail": al.detail, "evidence": evPath})
	}
	return exitError{code: exitFailed, err: fmt.Errorf("ALERT: %s: %s (evidence: %s)", al.kind, al.detail, evPath)}
}
