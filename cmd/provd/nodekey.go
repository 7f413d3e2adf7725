package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/provledger/provledger/crypto/keys"
)

// nodeKey describes one of the node's Ed25519 keys: the log key, the
// ingest key, the scanner key.
type nodeKey struct {
	// what names the key in messages ("log key").
	what string
	// flagPath is the path given by the key's flag; "" means defaultPath.
	flagPath string
	// defaultPath is DATA/<name>.key, generated on first start.
	defaultPath string
	// pubPath, if set, receives the public key as PEM.
	pubPath string
	// mayGenerate, if set, is asked before a missing default key is made.
	mayGenerate func() error
}

// load reads the key, generating defaultPath first when no flag named a
// file and it does not exist yet. It returns the key and the file it read.
func (k nodeKey) load(lg *slog.Logger) (ed25519.PrivateKey, string, error) {
	path := k.flagPath
	if path == "" {
		path = k.defaultPath
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			if k.mayGenerate != nil {
				if err := k.mayGenerate(); err != nil {
					return nil, "", err
				}
			}
			gen, err := keys.Generate("ed25519")
			if err != nil {
				return nil, "", err
			}
			pem, err := keys.MarshalPrivatePEM(gen)
			if err != nil {
				return nil, "", err
			}
			if err := writeFileAtomic(path, pem, 0o600); err != nil {
				return nil, "", fmt.Errorf("write %s: %w", k.what, err)
			}
			lg.Info("generated a new "+k.what, "path", path)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", k.what, err)
	}
	parsed, err := keys.ParsePrivatePEM(b)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", k.what, path, err)
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, "", fmt.Errorf("%s %s: must be Ed25519, got %T", k.what, path, parsed)
	}
	if k.pubPath != "" {
		pub, err := keys.MarshalPublicPEM(priv.Public())
		if err != nil {
			return nil, "", err
		}
		if err := writeFileAtomic(k.pubPath, pub, 0o644); err != nil {
			return nil, "", fmt.Errorf("write %s public key: %w", k.what, err)
		}
	}
	return priv, path, nil
}

// loadOrCreateIngestKey reads the ingest key (--ingest-key, else
// DATA/ingest.key, generated on first start) and writes its public key to
// DATA/ingest.pub for auditors.
func loadOrCreateIngestKey(c *config, lg *slog.Logger) (ed25519.PrivateKey, error) {
	priv, _, err := nodeKey{
		what:        "ingest key",
		flagPath:    c.ingest.keyPath,
		defaultPath: filepath.Join(c.dataDir, "ingest.key"),
		pubPath:     filepath.Join(c.dataDir, "ingest.pub"),
	}.load(lg)
	return priv, err
}

// loadOrCreateScannerKey reads --scanner-key, or DATA/scanner.key
// (generated on first start), and writes its public key to
// DATA/scanner.pub.
func loadOrCreateScannerKey(c *config, lg *slog.Logger) (ed25519.PrivateKey, error) {
	priv, _, err := nodeKey{
		what:        "scanner key",
		flagPath:    c.scan.keyPath,
		defaultPath: filepath.Join(c.dataDir, "scanner.key"),
		pubPath:     filepath.Join(c.dataDir, "scanner.pub"),
	}.load(lg)
	return priv, err
}

// loadOrCreateLogKey reads the log's Ed25519 key. When no --log-key was
// given it uses DATA/log.key, generating it on first start, but only for a
// new log: an existing log whose key file is gone must not get a new key
// (its checkpoints could no longer be verified). Its public key is written
// by checkLogKey, once the key is known to have signed the log.
func loadOrCreateLogKey(c *config, lg *slog.Logger) (ed25519.PrivateKey, string, error) {
	defaultPath := filepath.Join(c.dataDir, "log.key")
	return nodeKey{
		what:        "log key",
		flagPath:    c.logKeyPath,
		defaultPath: defaultPath,
		mayGenerate: func() error {
			ledgerDir := filepath.Join(c.dataDir, "ledger")
			if ents, err := os.ReadDir(ledgerDir); err == nil && len(ents) > 0 {
				return fmt.Errorf("log key: %s does not exist, but %s holds a log: start with the key that signed it (--log-key FILE)", defaultPath, ledgerDir)
			}
			return nil
		},
	}.load(lg)
}
