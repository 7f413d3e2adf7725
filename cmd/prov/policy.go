package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"
	"sigs.k8s.io/yaml"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/crypto/record"
)

// defaultPolicyNamespace is the namespace of policy entries (provd writes
// the bootstrap policy there too).
const defaultPolicyNamespace = "provledger.policy"

// policyFlags are the flags of prov policy apply and show. They are
// defined on the policy command itself (prov moves a command's flags before
// its arguments, and the subcommand name is an argument of policy).
type policyFlags struct {
	key, commit, ns string
	dirty, entries  bool
	at              uint64
}

func (a *app) policyCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov policy", flag.ContinueOnError)
	f := &policyFlags{}
	fs.StringVar(&f.key, "key", "", "apply: PEM private key of a policy admin (a key the policy in force lists with admin: true; required)")
	fs.StringVar(&f.commit, "git-commit", "", "apply: git commit the file comes from (default: git rev-parse HEAD in the file's repository)")
	fs.StringVar(&f.ns, "namespace", defaultPolicyNamespace, "apply: namespace of the policy entry")
	fs.BoolVar(&f.dirty, "allow-dirty", false, "apply: apply a file that differs from the commit recorded (not recommended: the entry would name a commit that does not hold it)")
	fs.Uint64Var(&f.at, "at", 0, "show: the policy in force for the entry at this index (default: for the next entry)")
	fs.BoolVar(&f.entries, "entries", false, "show: also list every policy entry below --at, honoured or not, with the reason")
	subs := []*ffcli.Command{a.policyApplyCommand(f), a.policyShowCommand(f)}
	for _, s := range subs {
		s.FlagSet.SetOutput(a.stderr)
		s.UsageFunc = usageFunc
	}
	return &ffcli.Command{
		Name:       "policy",
		ShortUsage: "prov policy apply FILE --key ADMIN.key | prov policy show [--at INDEX]",
		ShortHelp:  "apply the GitOps policy file, or show the policy in force",
		LongHelp: strings.TrimSpace(`
The ledger's trust policy is data in the log (docs/security.md): which
keys may sign which payload types in which namespaces, the admin keys that
may change the policy, approved code versions per job, budgets and scanner
thresholds. Keep the policy file in git and apply it with an admin key.`),
		FlagSet:     fs,
		Subcommands: subs,
		Exec: func(context.Context, []string) error {
			return usagef("policy: say apply or show (prov policy --help)")
		},
	}
}

func (a *app) policyApplyCommand(f *policyFlags) *ffcli.Command {
	fs := flag.NewFlagSet("prov policy apply", flag.ContinueOnError)
	return &ffcli.Command{
		Name:       "apply",
		ShortUsage: "prov policy apply FILE --key ADMIN.key [--git-commit SHA] [--namespace NS]",
		ShortHelp:  "append the policy file (YAML or JSON) as a policy entry signed by an admin key",
		LongHelp: strings.TrimSpace(`
Reads FILE (YAML or JSON, see examples/policy.yaml), checks it, records
where it came from (the git repository, the file's path in it and the
commit: git rev-parse HEAD in the file's repository, or --git-commit),
signs its canonical JSON with --key and appends it. The node accepts it
only if --key is an admin key of the policy in force; the new policy is in
force from the next index on.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return usagef("policy apply: give one policy file, got %d arguments", len(args))
			}
			if f.key == "" {
				return usagef("policy apply: --key ADMIN.key is required")
			}
			return a.policyApply(ctx, args[0], f.key, f.commit, f.ns, f.dirty)
		},
	}
}

func (a *app) policyApply(ctx context.Context, file, keyPath, commit, ns string, allowDirty bool) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("policy apply: %w", err)
	}
	p, err := policy.Parse(b)
	if err != nil {
		return fmt.Errorf("policy apply: %s: %w", file, err)
	}
	src, err := gitSource(file, commit, allowDirty)
	if err != nil {
		return fmt.Errorf("policy apply: %w", err)
	}
	if p.Source == nil {
		p.Source = &policy.Source{}
	}
	if src.Repo != "" && p.Source.Repo == "" {
		p.Source.Repo = src.Repo
	}
	if src.Path != "" {
		p.Source.Path = src.Path
	}
	p.Source.GitCommit = src.GitCommit
	if *p.Source == (policy.Source{}) {
		p.Source = nil
	}
	key, err := loadSigningKey(keyPath)
	if err != nil {
		return fmt.Errorf("policy apply: %w", err)
	}
	env, err := policy.Sign(p, key.signer)
	if err != nil {
		return fmt.Errorf("policy apply: %w", err)
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	resp, _, err := a.appendSigned(ctx, c, "policy apply", ns, env, nil)
	if err != nil {
		return err
	}
	out := struct {
		Index     uint64 `json:"index"`
		Duplicate bool   `json:"duplicate"`
		GitCommit string `json:"git_commit,omitempty"`
		InForceAt uint64 `json:"in_force_from"`
	}{resp.GetIndex(), resp.GetDuplicate(), src.GitCommit, resp.GetIndex() + 1}
	if a.json {
		return a.printJSON(out)
	}
	fmt.Fprintf(a.stdout, "policy entry %d appended (in force from index %d)", out.Index, out.InForceAt)
	if out.GitCommit != "" {
		fmt.Fprintf(a.stdout, ", from git commit %s", out.GitCommit)
	}
	if out.Duplicate {
		fmt.Fprint(a.stdout, "; this exact entry was already in the log")
	}
	fmt.Fprintln(a.stdout)
	return nil
}

// gitSource finds the repository, path and commit of file: commit when
// given, else git rev-parse HEAD in the file's directory. A file outside a
// repository (or without git) gives only what was given. A file that
// differs from the commit is refused unless allowDirty.
func gitSource(file, commit string, allowDirty bool) (policy.Source, error) {
	dir := filepath.Dir(file)
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
		return strings.TrimSpace(string(out)), err
	}
	src := policy.Source{GitCommit: commit}
	top, err := git("rev-parse", "--show-toplevel")
	if err != nil {
		return src, nil // not in a repository
	}
	abs, err := filepath.Abs(file)
	if err == nil {
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
		if rel, err := filepath.Rel(top, abs); err == nil && !strings.HasPrefix(rel, "..") {
			src.Path = filepath.ToSlash(rel)
		}
	}
	src.Repo, _ = git("config", "--get", "remote.origin.url")
	if commit == "" {
		head, err := git("rev-parse", "HEAD")
		if err != nil {
			return src, fmt.Errorf("%s is in a git repository with no commit yet: commit it, or pass --git-commit", file)
		}
		src.GitCommit = head
		if st, err := git("status", "--porcelain", "--", filepath.Base(file)); err == nil && st != "" && !allowDirty {
			return src, fmt.Errorf("%s differs from git commit %s (%s): commit it first, so the entry names the commit that holds it (or --allow-dirty)", file, head[:min(12, len(head))], strings.Fields(st)[0])
		}
	}
	return src, nil
}

func (a *app) policyShowCommand(f *policyFlags) *ffcli.Command {
	fs := flag.NewFlagSet("prov policy show", flag.ContinueOnError)
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: "prov policy show [--at INDEX] [--entries] [--json]",
		ShortHelp:  "print the policy in force (YAML, or JSON with --json)",
		LongHelp: strings.TrimSpace(`
Reads the policy entries of the log below INDEX and folds them as the node
does (the first one must be signed by the log key, later ones by an admin
key of the policy in force), then prints the policy in force as one
document (replace: true). Needs --log-key: the log key is the bootstrap
policy's signer. Run prov audit to check the entries themselves.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("policy show takes no arguments, got %q", args)
			}
			return a.policyShow(ctx, f.at, f.entries)
		},
	}
}

// policyEntry is one policy entry as prov policy show judged it.
type policyEntry struct {
	Index    uint64 `json:"index"`
	Honoured bool   `json:"honoured"`
	Reason   string `json:"reason,omitempty"`
	Commit   string `json:"git_commit,omitempty"`
}

func (a *app) policyShow(ctx context.Context, at uint64, list bool) error {
	pub, err := a.loadLogKey(true)
	if err != nil {
		return err
	}
	logID, err := keys.IDOf(pub)
	if err != nil {
		return fmt.Errorf("policy show: log key: %w", err)
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := a.rpcCtx(ctx)
	defer cancel()
	stream, err := c.GetEntries(rctx, &provledgerpb.GetEntriesRequest{Start: 0, End: at})
	if err != nil {
		return fmt.Errorf("policy show: %w", err)
	}
	var st *policy.State
	var judged []policyEntry
	for {
		e, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("policy show: read entries: %w", err)
		}
		rec, err := record.Unmarshal(e.GetRecord())
		if err != nil {
			return fmt.Errorf("policy show: entry %d: %w", e.GetIndex(), err)
		}
		if rec.PayloadType != policy.PayloadType {
			continue
		}
		signers := make([]keys.KeyID, len(rec.Signers))
		for i, s := range rec.Signers {
			signers[i] = s
		}
		p, err := st.Accept(e.GetEnvelopeJson(), rec.Namespace, signers, []keys.KeyID{logID})
		pe := policyEntry{Index: e.GetIndex(), Honoured: err == nil}
		if err != nil {
			pe.Reason = err.Error()
		} else {
			st = st.Apply(e.GetIndex(), p)
			if p.Source != nil {
				pe.Commit = p.Source.GitCommit
			}
		}
		judged = append(judged, pe)
	}
	doc := st.Policy()
	if a.json {
		out := struct {
			InForce bool           `json:"in_force"`
			Entry   uint64         `json:"policy_entry"`
			Policy  *policy.Policy `json:"policy"`
			Entries []policyEntry  `json:"entries,omitempty"`
		}{st.InForce(), st.Index(), doc, nil}
		if list {
			out.Entries = judged
		}
		return a.printJSON(out)
	}
	if list {
		for _, pe := range judged {
			switch {
			case pe.Honoured && pe.Commit != "":
				fmt.Fprintf(a.stdout, "# entry %d: honoured (git commit %s)\n", pe.Index, pe.Commit)
			case pe.Honoured:
				fmt.Fprintf(a.stdout, "# entry %d: honoured\n", pe.Index)
			default:
				fmt.Fprintf(a.stdout, "# entry %d: ignored: %s\n", pe.Index, pe.Reason)
			}
		}
	}
	if !st.InForce() {
		fmt.Fprintln(a.stdout, "# no policy is in force (the node enforces its --trust file, or --dev)")
		return nil
	}
	j, err := doc.Marshal()
	if err != nil {
		return err
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return fmt.Errorf("policy show: %w", err)
	}
	fmt.Fprintf(a.stdout, "# the policy in force after policy entry %d\n%s", st.Index(), y)
	return nil
}
