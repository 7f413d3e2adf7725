package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/witness"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/cosignature"
	"github.com/provledger/provledger/crypto/keys"
)

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func (a *app) witnessCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov witness", flag.ContinueOnError)
	key := fs.String("key", "", "the witness's Ed25519 private key (PEM, e.g. from prov keygen)")
	name := fs.String("name", "", "the witness's name (its key name in cosignature lines), e.g. witness.example/w1")
	var logs multiFlag
	fs.Var(&logs, "log", "a log to witness: ORIGIN=PEMFILE (the node's log.pub) or a note verifier key ORIGIN+KEYID+BASE64; repeat for more logs")
	addr := fs.String("addr", "127.0.0.1:7402", "listen address")
	stateDir := fs.String("state", "./witness-state", "directory of the witness's state (the latest cosigned checkpoint per log)")
	evidence := fs.String("evidence", "", "directory where refused forks and inconsistent checkpoints are kept (default: STATE/evidence)")
	return &ffcli.Command{
		Name:       "witness",
		ShortUsage: "prov witness serve --key FILE --name NAME --log ORIGIN=LOGPUB... [--addr A] [--state DIR] | prov witness key --key FILE --name NAME",
		ShortHelp:  "run a C2SP tlog-witness that cosigns consistent checkpoints",
		LongHelp: strings.TrimSpace(`
witness serve runs a C2SP tlog-witness (https://c2sp.org/tlog-witness):
POST /add-checkpoint with "old <size>", the consistency proof and the
log-signed checkpoint. The witness cosigns (C2SP tlog-cosignature v1,
Ed25519) only a checkpoint signed by a configured log key and consistent
with the last one it cosigned for that log; it persists that checkpoint
atomically (temporary file, fsync, rename) before answering, so it never
cosigns a fork or a rollback, also across restarts. Answers: 200 the
cosignature line; 400 malformed or old size above the checkpoint's; 403
not signed by the log key; 404 unknown log; 409 the old size is not the
witness's (body: its size; header Witness-Conflict: old-size, stale or
fork); 422 the consistency proof does not verify. Refused forks and
inconsistent checkpoints are kept as evidence files.

witness key prints the witness's verifier key (name+keyid+base64), which
verifiers pass to prov verify --bundle --witness-key.`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 || (args[0] != "serve" && args[0] != "key") {
				return usagef("witness: say serve or key")
			}
			signer, err := loadWitnessSigner(*key, *name)
			if err != nil {
				return err
			}
			if args[0] == "key" {
				fmt.Fprintln(a.stdout, signer.VerifierKey())
				return nil
			}
			return a.witnessServe(ctx, signer, logs, *addr, *stateDir, *evidence)
		},
	}
}

// loadWitnessSigner reads a PEM Ed25519 private key as the cosigner name.
func loadWitnessSigner(path, name string) (*cosignature.Signer, error) {
	if path == "" || name == "" {
		return nil, usagef("witness: --key and --name are required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--key: %v", err)
	}
	priv, err := keys.ParsePrivatePEM(b)
	if err != nil {
		return nil, usagef("--key %s: %v", path, err)
	}
	ed, ok := priv.(ed25519.PrivateKey)
	if !ok {
		return nil, usagef("--key %s: a witness signs with Ed25519, this is a %T key", path, priv)
	}
	s, err := cosignature.NewSigner(name, ed, nil)
	if err != nil {
		return nil, usagef("--name: %v", err)
	}
	return s, nil
}

// parseLogArg reads ORIGIN=PEMFILE or a note verifier key.
func parseLogArg(s string) (witness.Log, error) {
	if origin, file, ok := strings.Cut(s, "="); ok {
		pub, err := client.LoadLogKey(file)
		if err != nil {
			return witness.Log{}, usagef("--log %s: %v", s, err)
		}
		v, err := checkpoint.NewVerifier(origin, pub)
		if err != nil {
			return witness.Log{}, usagef("--log %s: %v", s, err)
		}
		return witness.Log{Origin: origin, Verifier: v}, nil
	}
	v, err := note.NewVerifier(s)
	if err != nil {
		return witness.Log{}, usagef("--log %q: want ORIGIN=PEMFILE or a verifier key: %v", s, err)
	}
	return witness.Log{Origin: v.Name(), Verifier: v}, nil
}

func (a *app) witnessServe(ctx context.Context, signer *cosignature.Signer, logArgs []string, addr, stateDir, evidence string) error {
	if len(logArgs) == 0 {
		return usagef("witness serve: give at least one --log")
	}
	var logs []witness.Log
	for _, s := range logArgs {
		l, err := parseLogArg(s)
		if err != nil {
			return err
		}
		logs = append(logs, l)
	}
	if evidence == "" {
		evidence = stateDir + "/evidence"
	}
	for _, d := range []string{stateDir, evidence} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("witness: %w", err)
		}
	}
	logger := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := witness.New(witness.Config{Signer: signer, Logs: logs, Store: witness.FileStore{Dir: stateDir}, EvidenceDir: evidence, Logger: logger})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return usagef("--addr %s: %v", addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	fmt.Fprintf(a.stdout, "witness %s listening on http://%s/add-checkpoint\nverifier key: %s\n", signer.Name(), lis.Addr(), signer.VerifierKey())
	for _, l := range logs {
		n, ok := srv.Known(l.Origin)
		fmt.Fprintf(a.stdout, "log %s: last cosigned size %d (state found: %v)\n", l.Origin, n, ok)
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(lis) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
