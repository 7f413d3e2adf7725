package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"

	"github.com/provledger/provledger/api/client"
)

// app is one invocation of prov: its global flags, its streams and its
// connection (made on first use).
type app struct {
	globalFlags
	stdin          io.Reader
	stdout, stderr io.Writer

	client *client.Client
}

// dial returns the connection to --server, connecting on first use.
func (a *app) dial(ctx context.Context) (*client.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	opts, err := a.dialOptions(a.server)
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(ctx, a.server, opts...)
	if err != nil {
		return nil, err
	}
	a.client = c
	return c, nil
}

// dialOptions are the TLS and token options of --tls-* and --token for
// addr.
func (a *app) dialOptions(addr string) ([]grpc.DialOption, error) {
	sec := client.Security{Token: a.token, CAFile: a.tlsCA, CertFile: a.tlsCert, KeyFile: a.tlsKey}
	opts, err := sec.DialOptions(addr)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return opts, nil
}

// serviceConn connects to --server for the services beyond Ledger (Query,
// Cluster, Scanner), with --tls-* and --token like every other command;
// answers may be up to 256 MiB (a large lineage answer with proofs).
func (a *app) serviceConn() (*grpc.ClientConn, func(), error) {
	addr := a.server
	if addr == "" {
		addr = client.DefaultAddr
	}
	opts, err := a.dialOptions(addr)
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return conn, func() { conn.Close() }, nil
}

// rpcCtx bounds one request by --timeout.
func (a *app) rpcCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, a.timeout)
}

// logKeyPath is --log-key, or ./data/log.pub when that exists; "" if none.
func (a *app) logKeyPath() string {
	if a.logKey != "" {
		return a.logKey
	}
	if _, err := os.Stat(defaultLogKey); err == nil {
		return defaultLogKey
	}
	return ""
}

// loadLogKey reads the log key. required makes a missing key an error;
// otherwise (nil, nil) means there is none.
func (a *app) loadLogKey(required bool) (ed25519.PublicKey, error) {
	p := a.logKeyPath()
	if p == "" {
		if required {
			return nil, usagef("--log-key is required: the log's public key (the node's DATA/log.pub)")
		}
		return nil, nil
	}
	pub, err := client.LoadLogKey(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, usagef("--log-key %s: no such file", p)
		}
		return nil, usagef("--log-key %s: %v", p, err)
	}
	return pub, nil
}

// verifierFor builds the log's note verifier for checking cpNote: named
// --origin, or the checkpoint's own origin line when --origin is empty.
// It returns nil (and no error) when there is no log key and required is
// false.
func (a *app) verifierFor(cpNote []byte, required bool) (note.Verifier, error) {
	pub, err := a.loadLogKey(required)
	if err != nil || pub == nil {
		return nil, err
	}
	return client.VerifierForCheckpoint(pub, a.origin, cpNote)
}

// warnUnverified says, loudly, that a checkpoint signature was not checked.
func (a *app) warnUnverified(what string) {
	fmt.Fprintf(a.stderr, "WARNING: %s: the checkpoint's signature was NOT checked: no log key.\n"+
		"         Pass --log-key (the node's DATA/log.pub) to verify that the log itself signed it.\n", what)
}

// printJSON writes v as indented JSON on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeFileAtomic writes b to path through a temporary file in the same
// directory, synced and renamed into place, so path holds either its old
// content or all of b.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
