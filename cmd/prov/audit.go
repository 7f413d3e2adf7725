package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/term"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/proof"
	"github.com/provledger/provledger/crypto/record"
)

// maxProblemsShown bounds the problems printed.
const maxProblemsShown = 20

func (a *app) auditCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov audit", flag.ContinueOnError)
	state := fs.String("state", "./prov-audit.state", "file keeping the last checkpoint this auditor verified (a signed checkpoint note); created on the first run")
	trust := fs.String("trust", "", "file of PEM public keys: re-verify every DSSE signature (signatures by keys not in the file are counted as unverifiable)")
	full := fs.Bool("full", false, "re-download and re-check every entry, not only those added since the state file's checkpoint")
	url := fs.String("url", "", "base URL of the node's HTTP tlog-tiles API (default: http://HOST:PORT+1 of --server, provd's default layout)")
	workers := fs.Int("workers", 0, "parallel fetches (default 4 per CPU)")
	adminKeys := fs.String("admin-keys", "", "with --trust, file of the log's admin PEM public keys: an envelope the log withholds as redacted passes only if a later redaction entry names it and is signed by one of them")
	envelopes := fs.String("envelopes", "bundle", "with --trust, where envelopes are read: bundle (one GET /envelopes/<N> per 256 entries), http (one GET /envelope/sha256/<digest> each, for a server without /envelopes) or grpc (GetEntries from --server, one stream per 256 entries); each is checked against the record from the tiles either way")
	policyFromLog := fs.Bool("policy-from-log", false, "fold the log's own policy entries (the first signed by the log key, later ones by an admin key of the policy before them) and check every entry's signers against the policy in force at its index; signatures are re-verified with the keys the policy granted (plus --trust); reads every entry bundle once more")
	follow := fs.Bool("follow", false, "after the log, follow its successor statement (key rotation, sharding) to the next log and audit that one too, and so on; see docs/audit.md")
	var followURLs stringList
	fs.Var(&followURLs, "follow-url", "ORIGIN=URL: the tiles API of a successor log (repeatable); overrides the url in its successor statement")
	return &ffcli.Command{
		Name:       "audit",
		ShortUsage: "prov audit --log-key FILE [--full] [--state FILE] [--trust FILE | --policy-from-log] [--url URL]",
		ShortHelp:  "check the log end to end through its tiles API",
		LongHelp: strings.TrimSpace(`
Reads the log through its C2SP tlog-tiles HTTP API (--url) and trusts
nothing it serves: the latest checkpoint's signature is checked with
--log-key (required), and everything else is checked against it.

For every entry audited it downloads the entry bundle and the hash tile,
recomputes the leaf hash from the entry record and compares it with the
tree's leaf, decodes the record, and recomputes the root of the whole tree,
which must equal the signed checkpoint's. Entries that do not match are
named: entry-modified, entry-dropped (later entries shifted), entries-swapped.
With --trust it also fetches every envelope (--envelopes: by default one
envelope bundle per 256 entries), checks its digest, size and
payload type against the record, and re-verifies every DSSE signature (a
bad signature by a trusted key fails; a key not in the file is counted as
unverifiable; redacted envelopes are counted).

With --policy-from-log the rules come from the log itself: its policy
entries (crypto/policy) are folded as the node folds them, with the log
key (--log-key) as the only root of trust, and every audited entry's
signers must be allowed its namespace and payload type by the policy in
force at its index (a policy entry: signed by an admin key of the policy
before it). A violation names the entry, the key, the namespace, the type
and the policy entry in force (policy-violation). Signatures are
re-verified with the keys the policy granted (and --trust); a withheld
envelope is proven redacted by an admin key of the policy at the
redaction's index (or of --admin-keys).

The state file keeps the last checkpoint an audit verified. Without --full
only the entries added since are audited (incremental), starting from the
tree's frontier at the old size read from tiles authenticated against the
new checkpoint; the RFC 6962 consistency proof old -> new is checked, so a
log that rewrote, forked or rolled back its history fails. --full audits
every entry again (and still checks consistency with the state). The state
file is replaced (atomically) only when everything passed.

With --follow, a log that named a successor (a policy entry
{"provledger_log_successor": {"origin", "vkey", "url"}}) is followed: the
successor's key comes from that statement, its entry 0 must carry the
handoff bundle proving the statement, and it is audited in turn (state in
STATE-<hash of origin>). docs/audit.md describes the procedure.

Work runs in parallel (--workers); a progress bar with ETA is drawn when
stderr is a terminal; --json prints the report as one object.

Exit codes: 0 verified; 1 verification failed (the first bad index and why
are printed); 2 the log could not be reached or read; 64 bad flags.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("audit takes no arguments")
			}
			if *envelopes != "bundle" && *envelopes != "http" && *envelopes != "grpc" {
				return usagef("--envelopes must be bundle, http or grpc")
			}
			urls, err := parseFollowURLs(followURLs)
			if err != nil {
				return err
			}
			return a.audit(ctx, auditOptions{statePath: *state, trustFile: *trust, full: *full, url: *url, workers: *workers, envelopes: *envelopes,
				follow: *follow, followURLs: urls, adminKeys: *adminKeys, policyFromLog: *policyFromLog})
		},
	}
}

type auditOptions struct {
	statePath, trustFile, url string
	adminKeys                 string // redacted.go
	envelopes                 string // bundle (default), http or grpc
	full                      bool
	policyFromLog             bool // audit_policy.go
	workers                   int
	follow                    bool              // walk the chain of successor logs (audit_chain.go)
	followURLs                map[string]string // origin → tiles URL, overriding a successor statement's url
}

// tilesURL is --url, or http://<host>:<port+1> of --server.
func (a *app) tilesURL(u string) (string, error) {
	if u != "" {
		return u, nil
	}
	host, port, err := net.SplitHostPort(a.server)
	if err != nil {
		return "", usagef("--url is required (cannot derive it from --server %q: %v)", a.server, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p >= 65535 {
		return "", usagef("--url is required (cannot derive it from --server %q)", a.server)
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(p+1)), nil
}

// auditReport is the outcome of an audit (printed with --json).
type auditReport struct {
	OK            bool       `json:"ok"`
	Mode          string     `json:"mode"`
	Origin        string     `json:"origin,omitempty"`
	TreeSize      uint64     `json:"tree_size"`
	RootHash      string     `json:"root_hash,omitempty"`
	PreviousSize  *uint64    `json:"previous_size,omitempty"`
	FirstAudit    bool       `json:"first_audit"`
	Consistency   string     `json:"consistency"`
	AuditedFrom   uint64     `json:"audited_from"`
	Stats         auditStats `json:"stats"`
	SigsChecked   bool       `json:"signatures_checked"`
	PolicyChecked bool       `json:"policy_checked"`
	PolicyEntries int        `json:"policy_entries,omitempty"`
	PolicyHonour  int        `json:"policy_entries_honoured,omitempty"`
	FirstBadIndex *int64     `json:"first_bad_index,omitempty"`
	Problems      []problem  `json:"problems,omitempty"`
	ReadError     string     `json:"read_error,omitempty"`
	Seconds       float64    `json:"seconds"`
	Rate          float64    `json:"entries_per_second"`
	StateFile     string     `json:"state_file"`
}

func (a *app) audit(ctx context.Context, o auditOptions) error {
	pub, err := a.loadLogKey(true)
	if err != nil {
		return err
	}
	base, err := a.tilesURL(o.url)
	if err != nil {
		return err
	}
	if !o.follow {
		_, err := a.auditOne(ctx, o, pub, a.origin, base, nil)
		return err
	}
	return a.followChain(ctx, o, pub, base)
}

// auditedLog is what a passing audit of one log leaves for the chain
// walk: the verified checkpoint and the source it was read from.
type auditedLog struct {
	cp     checkpoint.Checkpoint
	cpNote []byte
	src    *httpSource
}

// auditOne audits the log at base with the log key pub (origin: the
// checkpoint's, unless given), prints the outcome, and returns it; the
// error is an exitError as prov audit reports it. onRecord, if set, sees
// every record whose leaf matched the tree (from concurrent workers).
func (a *app) auditOne(ctx context.Context, o auditOptions, pub ed25519.PublicKey, origin, base string, onRecord func(uint64, [32]byte, record.Record)) (*auditedLog, error) {
	kr, err := loadTrust(o.trustFile)
	if err != nil {
		return nil, err
	}
	if o.workers < 0 {
		return nil, usagef("--workers must be positive")
	}
	workers := o.workers
	if workers == 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	src, err := newHTTPSource(base, a.timeout, workers)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rep := &auditReport{Mode: "incremental", StateFile: o.statePath, SigsChecked: kr != nil}
	if o.full {
		rep.Mode = "full"
	}

	cpNote, err := src.Checkpoint(ctx)
	if err != nil {
		return nil, a.readFailure(rep, "latest checkpoint", err)
	}
	v, err := client.VerifierForCheckpoint(pub, origin, cpNote)
	if err != nil {
		return nil, a.auditFailed(rep, problem{Index: -1, Kind: kindCheckpointSig, Detail: err.Error()})
	}
	cp, err := client.OpenCheckpoint(cpNote, v)
	if err != nil {
		return nil, a.auditFailed(rep, problem{Index: -1, Kind: kindCheckpointSig, Detail: "latest checkpoint: " + err.Error()})
	}
	rep.Origin, rep.TreeSize, rep.RootHash = cp.Origin, cp.Size, b64(cp.Hash[:])

	old, err := loadState(o.statePath, v)
	if err != nil {
		return nil, err
	}
	rep.FirstAudit = old == nil
	if old == nil {
		rep.Mode = "full" // no state: every entry is audited
	}
	rep.Consistency = "no previous audit state: first audit, nothing to be consistent with"
	base0 := rangeFactory.NewEmptyRange(0)
	if old != nil {
		rep.PreviousSize = &old.Size
		if p, ok := checkOrder(*old, cp); !ok {
			return nil, a.auditFailed(rep, p)
		}
		rng, cproof, err := frontier(ctx, src, cp, old.Size)
		if err != nil {
			if transient(err) {
				return nil, a.readFailure(rep, "tiles for the consistency proof", err)
			}
			return nil, a.auditFailed(rep, problem{Index: -1, Kind: kindTiles, Detail: fmt.Sprintf("the log's tiles do not match its signed checkpoint of size %d: %v", cp.Size, err)})
		}
		if r := rootOf(rng); r != old.Hash {
			return nil, a.auditFailed(rep, problem{Index: -1, Kind: kindInconsistent, Detail: fmt.Sprintf(
				"the log's signed tree of size %d has root %s at size %d, but the previously audited checkpoint of size %d says %s: the log rewrote history",
				cp.Size, b64(r[:]), old.Size, old.Size, b64(old.Hash[:]))})
		}
		if old.Size > 0 && old.Size < cp.Size {
			if err := proof.VerifyConsistency(old.Size, cp.Size, cproof, old.Hash, cp.Hash); err != nil {
				return nil, a.auditFailed(rep, problem{Index: -1, Kind: kindInconsistent, Detail: fmt.Sprintf("consistency proof %d -> %d: %v", old.Size, cp.Size, err)})
			}
		}
		rep.Consistency = fmt.Sprintf("consistent with the previously audited checkpoint of size %d (RFC 6962 consistency proof verified)", old.Size)
		if !o.full {
			base0 = rng
		}
	}
	rep.AuditedFrom = base0.End()

	var bar *progressbar.ProgressBar
	todo := cp.Size - base0.End()
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && todo > 0 && !a.json {
		bar = progressbar.NewOptions64(int64(todo),
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription("auditing"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("entries"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	au := &auditor{src: src, workers: workers, onRecord: onRecord}
	var lp *logPolicy
	if o.policyFromLog { // audit_policy.go
		lp, rep.Problems, err = foldLogPolicy(ctx, src, workers, checkpointRoot{cp.Size, cp.Hash}, pub, kr)
		if err != nil {
			return nil, a.readFailure(rep, "the log's policy entries", err)
		}
		if len(rep.Problems) > 0 {
			return nil, a.auditFailed(rep)
		}
		kr, au.rules = lp.keyring, lp.check
		rep.SigsChecked, rep.PolicyChecked = true, true
		rep.PolicyEntries, rep.PolicyHonour = lp.entries, len(lp.versions)
	}
	if kr != nil {
		if au.redactions, err = newRedactionAudit(o.adminKeys); err != nil { // redacted.go
			return nil, err
		}
		au.redactions.policy = lp
		au.policy = staticTrust{kr}
		switch o.envelopes {
		case "grpc":
			c, err := a.dial(ctx)
			if err != nil {
				return nil, err
			}
			au.bulk = grpcEnvelopes{c: c, rpcCtx: a.rpcCtx}
		case "http":
		default:
			au.bulk = httpBundles{src}
		}
	}
	if bar != nil {
		au.progress = func(done uint64) { bar.Set64(int64(done)) }
	}
	res := au.replay(ctx, base0, cp.Size)
	if bar != nil {
		bar.Finish()
	}
	rep.Stats = res.stats
	rep.Problems = append(res.problems, au.redactions.problems()...) // redacted.go
	if res.rng != nil {
		root, tileRoot := rootOf(res.rng), rootOf(res.tileRng)
		switch {
		case root == cp.Hash:
		case tileRoot == cp.Hash:
			rep.Problems = append(rep.Problems, problem{Index: -1, Kind: kindRootMismatch, Detail: fmt.Sprintf(
				"the root recomputed from the entries is %s, the signed checkpoint says %s (the entries named above differ from the signed tree)", b64(root[:]), b64(cp.Hash[:]))})
		default:
			rep.Problems = append(rep.Problems, problem{Index: -1, Kind: kindRootMismatch, Detail: fmt.Sprintf(
				"the root recomputed from the entries is %s and from the tiles %s; the signed checkpoint of size %d says %s",
				b64(root[:]), b64(tileRoot[:]), cp.Size, b64(cp.Hash[:]))})
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if rep.Seconds > 0 {
		rep.Rate = float64(rep.Stats.Entries) / rep.Seconds
	}
	if len(rep.Problems) > 0 {
		return nil, a.auditFailed(rep)
	}
	if res.fetchErr != nil || res.rng == nil {
		err := res.fetchErr
		if err == nil {
			err = errors.New("incomplete read")
		}
		return nil, a.readFailure(rep, "entries", err)
	}
	if err := writeFileAtomic(o.statePath, cpNote, 0o644); err != nil {
		return nil, fmt.Errorf("audit passed, but saving the state file failed: %w", err)
	}
	rep.OK = true
	ok := &auditedLog{cp: cp, cpNote: cpNote, src: src}
	if a.json {
		return ok, a.printJSON(rep)
	}
	sigs := "signatures not re-verified (no --trust)"
	switch {
	case lp != nil:
		sigs = fmt.Sprintf("%d signature(s) verified, %d unverifiable; every entry allowed by the policy in force at its index (%d policy entries, %d honoured)",
			rep.Stats.SigsVerified, rep.Stats.Unverifiable, rep.PolicyEntries, rep.PolicyHonour)
	case kr != nil:
		sigs = fmt.Sprintf("%d signature(s) verified, %d unverifiable (key not in %s)", rep.Stats.SigsVerified, rep.Stats.Unverifiable, o.trustFile)
	}
	fmt.Fprintf(a.stdout, "audit OK: %s, %d entries, root %s matches the signed checkpoint; %s audit of %d entries from index %d; %s; %s; %d redacted; %.2fs (%.0f entries/s); state saved to %s\n",
		cp.Origin, cp.Size, rep.RootHash, rep.Mode, rep.Stats.Entries, rep.AuditedFrom, rep.Consistency, sigs, rep.Stats.Redacted,
		rep.Seconds, rep.Rate, o.statePath)
	return ok, nil
}

// checkOrder compares a previously verified checkpoint with a new one of
// the same log: the log may only grow, and one size has one root.
func checkOrder(old, cp checkpoint.Checkpoint) (problem, bool) {
	switch {
	case old.Size > cp.Size:
		return problem{Index: -1, Kind: kindRollback, Detail: fmt.Sprintf(
			"the log's latest checkpoint has size %d, but size %d was verified before: the log lost entries or serves a stale checkpoint", cp.Size, old.Size)}, false
	case old.Size == cp.Size && old.Hash != cp.Hash:
		return problem{Index: -1, Kind: kindFork, Detail: fmt.Sprintf(
			"two different signed roots for size %d: %s (verified before) and %s (now)", cp.Size, b64(old.Hash[:]), b64(cp.Hash[:]))}, false
	}
	return problem{}, true
}

// loadState opens the state file's checkpoint with the log's verifier
// (nil: no state file).
func loadState(path string, v note.Verifier) (*checkpoint.Checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, usagef("state file: %v", err)
	}
	cp, err := client.OpenCheckpoint(b, v)
	if err != nil {
		return nil, exitError{code: exitFailed, err: fmt.Errorf("FAILED: state file %s: %v (delete the file to start over, if it is not from this log)", path, err)}
	}
	return &cp, nil
}

// auditFailed reports problems (exit 1): the first bad index and why on
// stderr (or the whole report with --json).
func (a *app) auditFailed(rep *auditReport, extra ...problem) error {
	rep.Problems = append(rep.Problems, extra...)
	rep.OK = false
	first := rep.Problems[0]
	for _, p := range rep.Problems {
		if p.Index >= 0 {
			i := p.Index
			rep.FirstBadIndex = &i
			first = p
			break
		}
	}
	if a.json {
		a.printJSON(rep)
	} else {
		for i, p := range rep.Problems {
			if i == maxProblemsShown {
				fmt.Fprintf(a.stderr, "  ... and %d more\n", len(rep.Problems)-maxProblemsShown)
				break
			}
			fmt.Fprintf(a.stderr, "  %s\n", p)
		}
	}
	where := ""
	if rep.FirstBadIndex != nil {
		where = fmt.Sprintf(" first bad index %d:", *rep.FirstBadIndex)
	}
	return exitError{code: exitFailed, err: fmt.Errorf("FAILED: audit of %s at size %d:%s %s (%d problem(s)); the state file was not updated",
		rep.Origin, rep.TreeSize, where, first, len(rep.Problems))}
}

// readFailure reports that the log could not be read (exit 2).
func (a *app) readFailure(rep *auditReport, what string, err error) error {
	rep.ReadError = fmt.Sprintf("%s: %v", what, err)
	if a.json {
		a.printJSON(rep)
	}
	return exitError{code: exitUnreachable, err: fmt.Errorf("could not reach or read the log: %s: %v", what, err)}
}
