// Command prov is the provledger command-line client: it makes keys, signs
// and appends records, and reads back entries, checkpoints and proofs, and
// verifies everything the server says with the log's public key.
//
// Run `prov --help` and `prov <command> --help` for every flag. Each flag
// can also be set with an environment variable PROVLEDGER_<FLAG> (dashes
// become underscores), e.g. PROVLEDGER_SERVER=10.0.0.5:7400. docs/cli.md
// has an example session.
//
// prov is a client: it opens no store and imports no server code.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1  // the command failed, or something did not verify
	exitUnreachable = 2  // could not reach the server
	exitUsage       = 64 // bad flags or arguments (BSD EX_USAGE)
)

const envPrefix = "PROVLEDGER"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code. Standard
// input (for `append -`) is os.Stdin.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, os.Stdin, stdout, stderr)
}

func runWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	if err := root.Parse(reorderArgs(root, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		var noExec ffcli.NoExecError
		if errors.As(err, &noExec) {
			// `prov` alone, or a command group with no subcommand.
			fmt.Fprintln(stderr, noExec.Command.UsageFunc(noExec.Command))
			return exitUsage
		}
		fmt.Fprintf(stderr, "prov: %v\n", err)
		return exitUsage
	}
	err := root.Run(ctx)
	if a.client != nil {
		a.client.Close()
	}
	return a.exitCode(err)
}

// reorderArgs lets a command's flags follow its arguments (`prov prove 0
// --out f` as well as `prov prove --out f 0`): Go's flag package stops at
// the first argument, so the command's flags are moved before its
// arguments, which go after a "--". Everything after a "--" given by the
// user stays an argument. A command group whose subcommands have flag sets
// of their own (`prov cluster join --node-id …`) is followed down to the
// subcommand, whose flags are moved after its name; a group that parses its
// subcommands' flags itself (`prov policy apply FILE --key …`) gets them.
func reorderArgs(root *ffcli.Command, args []string) []string {
	i := skipFlags(root.FlagSet, args)
	if i >= len(args) {
		return args
	}
	if sub := subcommandNamed(root, args[i]); sub != nil {
		out := append([]string{}, args[:i+1]...)
		rest := args[i+1:]
		if j := skipFlags(sub.FlagSet, rest); j < len(rest) {
			if leaf := subcommandNamed(sub, rest[j]); leaf != nil && hasFlags(leaf.FlagSet) {
				return append(out, reorderArgs(sub, rest)...)
			}
		}
		return append(out, moveFlagsFirst(sub.FlagSet, rest)...)
	}
	return args
}

// subcommandNamed returns c's subcommand called name (any case), or nil.
func subcommandNamed(c *ffcli.Command, name string) *ffcli.Command {
	for _, sub := range c.Subcommands {
		if strings.EqualFold(name, sub.Name) {
			return sub
		}
	}
	return nil
}

// hasFlags reports whether fs defines any flag.
func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// skipFlags returns the index of the first non-flag argument.
func skipFlags(fs *flag.FlagSet, args []string) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			return i
		}
		if takesValue(fs, a) {
			i++
		}
	}
	return len(args)
}

// takesValue reports whether flag argument a (-name or --name, without
// =value) consumes the next argument.
func takesValue(fs *flag.FlagSet, a string) bool {
	name := strings.TrimLeft(a, "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
		return false
	}
	return true
}

func moveFlagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		if takesValue(fs, a) && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	if len(pos) == 0 {
		return flags
	}
	return append(append(flags, "--"), pos...)
}

// usageError marks errors in how prov was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitError carries an exit code chosen by the command (e.g. verify's 1
// after it has already explained what failed).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func (a *app) exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(a.stderr, "prov: %v\n", err)
		return exitUsage
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(a.stderr, "prov: %v\n", ee.err)
		}
		return ee.code
	}
	if unreachable(err) {
		fmt.Fprintf(a.stderr, "prov: could not reach the server at %s: %v\n", a.server, grpcMessage(err))
		return exitUnreachable
	}
	fmt.Fprintf(a.stderr, "prov: %v\n", grpcMessage(err))
	return exitFailed
}

// unreachable reports whether err means the server could not be reached
// (or did not answer in time), as opposed to an answer that failed.
func unreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	s, ok := status.FromError(err)
	if !ok {
		// status.FromError unwraps; errors that are not gRPC statuses are
		// not transport failures.
		return false
	}
	return s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded
}

// grpcMessage prints err with its gRPC status (if any) as "message (Code)"
// instead of grpc's "rpc error: code = Code desc = message"; the context
// wrapped around it is kept.
func grpcMessage(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return err.Error()
	}
	s := se.GRPCStatus()
	if s == nil || s.Code() == codes.OK {
		return err.Error()
	}
	inner := fmt.Sprintf("rpc error: code = %s desc = %s", s.Code(), s.Message())
	return strings.Replace(err.Error(), inner, fmt.Sprintf("%s (%s)", s.Message(), s.Code()), 1)
}

// globalFlags are accepted before the command and after it
// (`prov --server X get 0` and `prov get --server X 0` are the same).
type globalFlags struct {
	server  string
	timeout time.Duration
	logKey  string
	origin  string
	json    bool
	// security: TLS and bearer token (docs/security.md)
	token, tlsCA, tlsCert, tlsKey string
}

const defaultLogKey = "./data/log.pub"

func (g *globalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", "127.0.0.1:7400", "gRPC address (host:port) of a provledger node")
	fs.DurationVar(&g.timeout, "timeout", 30*time.Second, "time limit of each request to the server")
	fs.StringVar(&g.logKey, "log-key", "", "PEM Ed25519 public key of the log (the node's DATA/log.pub); default "+defaultLogKey+" if that file exists")
	fs.StringVar(&g.origin, "origin", "", "the log's origin (its name in checkpoints); default: taken from the first checkpoint seen, which trusts the server for the name only — the signature is still checked with --log-key")
	fs.BoolVar(&g.json, "json", false, "machine-readable JSON output on stdout")
	fs.StringVar(&g.token, "token", "", "bearer token for a node with --auth-tokens (prefer PROVLEDGER_TOKEN: a flag shows in ps); sent only over TLS or to loopback")
	fs.StringVar(&g.tlsCA, "tls-ca", "", "PEM CA bundle to verify a TLS node's certificate (connects over TLS)")
	fs.StringVar(&g.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS (with --tls-key)")
	fs.StringVar(&g.tlsKey, "tls-key", "", "PEM key of --tls-cert")
}

// share registers the root flag set's global flags on a subcommand's flag
// set, bound to the same values, so they can be given after the command.
func share(root, sub *flag.FlagSet) {
	root.VisitAll(func(f *flag.Flag) { sub.Var(f.Value, f.Name, f.Usage) })
	for _, name := range globalNames {
		sf := sub.Lookup(name)
		sf.DefValue = root.Lookup(name).DefValue
	}
}

var globalNames = []string{"server", "timeout", "log-key", "origin", "json", "token", "tls-ca", "tls-cert", "tls-key"}

// applyEnv sets the command's own (non-global) flags that were not given on
// the command line from PROVLEDGER_<FLAG>. The global flags were already
// read from the environment with the root flag set; reading them again here
// would let the environment override a global flag given before the command.
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	global := map[string]bool{}
	for _, n := range globalNames {
		global[n] = true
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || global[f.Name] {
			return
		}
		key := envName(f.Name)
		if v := os.Getenv(key); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("environment variable %s: %v", key, e)
			}
		}
	})
	return err
}

func envName(flagName string) string {
	return envPrefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_", "/", "_").Replace(flagName))
}

func (a *app) rootCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	a.register(fs)
	subs := []*ffcli.Command{
		a.keygenCommand(),
		a.appendCommand(),
		a.redactCommand(), // redact.go
		a.getCommand(),
		a.checkpointCommand(),
		a.proveCommand(),
		a.verifyCommand(),
		a.auditCommand(),
		a.monitorCommand(),
		a.witnessCommand(),
		a.evidenceCommand(),
		a.lineageCommand(),
		a.costCommand(),
		a.verifyAnswerCommand(),
		a.scanCommand(), a.findingsCommand(), a.forecastCommand(), // scan.go
		a.clusterCommand(),
		a.policyCommand(), // policy.go
		a.backupCommand(), // backup.go
	}
	for _, s := range subs {
		s.FlagSet.SetOutput(a.stderr)
		share(fs, s.FlagSet)
		exec := s.Exec
		sfs := s.FlagSet
		s.Exec = func(ctx context.Context, args []string) error {
			if err := applyEnv(sfs); err != nil {
				return err
			}
			return exec(ctx, args)
		}
		s.UsageFunc = usageFunc
	}
	return &ffcli.Command{
		Name:       "prov",
		ShortUsage: "prov [global flags] <command> [flags] [args]",
		ShortHelp:  "provledger client",
		LongHelp: strings.TrimSpace(`
prov talks to a provledger node over gRPC, and checks everything the node
returns with the log's public key (--log-key): entries, checkpoints and
proofs are verified locally, never taken on trust.

  prov keygen --out ./keys
  prov append --key ./keys/signer.key --type openlineage event.json
  prov get 0
  prov checkpoint
  prov prove 0 --out entry-0.tlog-proof
  prov verify --log-key ./data/log.pub 0
  prov audit --log-key ./data/log.pub

Global flags may be given before or after the command. Every flag can also
be set with an environment variable PROVLEDGER_<FLAG> (upper case, dashes
become underscores): PROVLEDGER_SERVER, PROVLEDGER_LOG_KEY, PROVLEDGER_KEY...
A flag on the command line wins over the environment.

Exit codes: 0 success (verified); 1 failure (the server refused, or
something did not verify: the message says what); 2 the server could not be
reached; 64 bad flags or arguments.`),
		FlagSet:     fs,
		Options:     []ff.Option{ff.WithEnvVarPrefix(envPrefix)},
		Subcommands: subs,
		UsageFunc:   usageFunc,
	}
}

// usageFunc prints a command's help: usage, description, subcommands,
// its own flags, then the global flags, each with its environment variable.
func usageFunc(c *ffcli.Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "USAGE\n  %s\n", c.ShortUsage)
	if c.ShortHelp != "" {
		fmt.Fprintf(&b, "\n%s.\n", c.ShortHelp)
	}
	if c.LongHelp != "" {
		fmt.Fprintf(&b, "\n%s\n", c.LongHelp)
	}
	if len(c.Subcommands) > 0 {
		b.WriteString("\nCOMMANDS\n")
		tw := tabwriter.NewWriter(&b, 0, 2, 2, ' ', 0)
		for _, s := range c.Subcommands {
			fmt.Fprintf(tw, "  %s\t%s\n", s.Name, s.ShortHelp)
		}
		tw.Flush()
		b.WriteString("\nRun `prov <command> --help` for a command's flags.\n")
	}
	var own, global []*flag.Flag
	c.FlagSet.VisitAll(func(f *flag.Flag) {
		if contains(globalNames, f.Name) {
			global = append(global, f)
		} else {
			own = append(own, f)
		}
	})
	if len(own) > 0 {
		b.WriteString("\nFLAGS\n")
		writeFlags(&b, own)
	}
	if len(global) > 0 {
		b.WriteString("\nGLOBAL FLAGS (before or after the command)\n")
		writeFlags(&b, global)
	}
	return strings.TrimRight(b.String(), "\n")
}

func writeFlags(b *strings.Builder, fl []*flag.Flag) {
	for _, f := range fl {
		name, usage := flag.UnquoteUsage(f)
		head := "--" + f.Name
		if name != "" {
			head += " " + name
		}
		fmt.Fprintf(b, "  %s\n      %s\n", head, usage)
		var extra []string
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			extra = append(extra, "default "+f.DefValue)
		}
		extra = append(extra, "env "+envName(f.Name))
		fmt.Fprintf(b, "      (%s)\n", strings.Join(extra, "; "))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
