package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/provledger/provledger/crypto/keys"
)

func (a *app) keygenCommand() *ffcli.Command {
	fs := flag.NewFlagSet("prov keygen", flag.ContinueOnError)
	out := fs.String("out", "", "directory to write the key pair to (created if missing; required)")
	alg := fs.String("alg", keys.AlgEd25519, "key algorithm: "+strings.Join(keys.Algorithms, ", "))
	name := fs.String("name", "signer", "file name stem: writes <out>/<name>.key and <out>/<name>.pub")
	return &ffcli.Command{
		Name:       "keygen",
		ShortUsage: "prov keygen --out DIR [--alg ALG] [--name NAME]",
		ShortHelp:  "make a signing key pair",
		LongHelp: strings.TrimSpace(`
Makes a key pair for signing envelopes: DIR/NAME.key (PKCS#8 PEM private
key, mode 0600) and DIR/NAME.pub (PEM public key, to put in the node's
--trust file). Refuses to overwrite either file. Prints the key id: the
lowercase hex SHA-256 of the public key's DER SubjectPublicKeyInfo, as it
appears in DSSE signatures and entry records.

Keys made by openssl work with prov append too (PKCS#8, or SEC1
"EC PRIVATE KEY" and PKCS#1 "RSA PRIVATE KEY"), e.g.
  openssl genpkey -algorithm ed25519 -out signer.key
  openssl ecparam -name prime256v1 -genkey -noout -out signer.key`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("keygen takes no arguments, got %q", args)
			}
			if *out == "" {
				return usagef("keygen: --out DIR is required")
			}
			if *name == "" || strings.ContainsAny(*name, `/\`) || *name == "." || *name == ".." {
				return usagef("keygen: --name %q must be a plain file name", *name)
			}
			return a.keygen(*out, *alg, *name)
		},
	}
}

func (a *app) keygen(dir, alg, name string) error {
	if !contains(keys.Algorithms, alg) {
		return usagef("keygen: unknown --alg %q (want one of %s)", alg, strings.Join(keys.Algorithms, ", "))
	}
	keyPath := filepath.Join(dir, name+".key")
	pubPath := filepath.Join(dir, name+".pub")
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("keygen: %s already exists; refusing to overwrite it (choose another --out or --name)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("keygen: %w", err)
		}
	}
	priv, err := keys.Generate(alg)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	privPEM, err := keys.MarshalPrivatePEM(priv)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	pubPEM, err := keys.MarshalPublicPEM(priv.Public())
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	id, err := keys.IDOf(priv.Public())
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := writeNew(keyPath, privPEM, 0o600); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
		os.Remove(keyPath)
		return fmt.Errorf("keygen: %w", err)
	}
	if a.json {
		return a.printJSON(map[string]string{
			"key_id": id.String(), "algorithm": alg, "private_key": keyPath, "public_key": pubPath,
		})
	}
	fmt.Fprintf(a.stdout, "key id:      %s\nalgorithm:   %s\nprivate key: %s\npublic key:  %s\n", id, alg, keyPath, pubPath)
	return nil
}

// writeNew creates path (which must not exist) with perm and writes b.
func writeNew(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
