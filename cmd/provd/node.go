package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/provledger/provledger/api/adminservice"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/queryservice"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/graph"
)

// node is a running provd: the log, its sequencer and the API servers.
type node struct {
	log    *slog.Logger
	ledger *ledger.Log
	seq    sequencer // ledger.LocalSequencer, or the Raft one (cluster.go)
	srv    *server.Server
	errc   chan error
	lock   io.Closer // DATA/provd.lock, held while the node runs
	guard  *guard    // metrics, TLS, auth, limits (security.go)
	scan   func()    // stops the anomaly scanner (scan.go)
}

func startNode(ctx context.Context, c *config, stdout, stderr io.Writer) (*node, error) {
	lg := c.logger(stderr)
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	// Lock the data directory before touching anything in it: a second
	// node on the same --data must not rewrite its keys.
	lockPath := filepath.Join(c.dataDir, "provd.lock")
	lock, err := vfs.Default.Lock(lockPath)
	if err != nil {
		return nil, fmt.Errorf("data directory %s is in use by another provd (cannot lock %s: %w)", c.dataDir, lockPath, err)
	}
	// undo holds what to release, last first, if the start fails.
	started := false
	undo := []func(){func() { lock.Close() }}
	defer func() {
		if !started {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	priv, keyPath, err := loadOrCreateLogKey(c, lg)
	if err != nil {
		return nil, err
	}
	signer, err := checkpoint.NewSigner(c.origin, priv)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	vkey, err := checkpoint.VerifierKey(c.origin, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	if err := restoreData(c, signer, vkey, stdout, lg); err != nil { // restore.go: --restore FILE
		return nil, err
	}

	keyring, err := keys.NewKeyring()
	if err != nil {
		return nil, err
	}
	if c.trustFile != "" {
		if keyring, err = keys.LoadKeyringFile(c.trustFile); err != nil {
			return nil, fmt.Errorf("--trust: %w", err)
		}
	}
	tofu := &tofuStore{path: filepath.Join(c.dataDir, "tofu-keys.pem"), log: lg}
	if c.dev {
		lg.Warn("DEVELOPMENT MODE: any key that signs validly is trusted on first use; do not use --dev in production", "tofu_keys", tofu.path)
		if err := tofu.loadInto(keyring); err != nil {
			return nil, err
		}
	}

	admins, err := loadAdminKeys(c.adminKeysFile, keyring)
	if err != nil {
		return nil, err
	}

	g, err := newGuard(c, lg)
	if err != nil {
		return nil, err
	}

	// The lineage index commits in the same Pebble batch as the entries
	// (ledger.Indexer), so a query at size N sees exactly the entries below N.
	ix := graph.New(graph.Options{Logger: lg})
	pol, err := newNodePolicy(ix, keyring, priv, lg) // policy.go: the policy in force at each index, chaining ix
	if err != nil {
		return nil, err
	}
	pol.bindAuth(g.auth) // the policy's identities decide what the callers it names may do
	l, err := ledger.Open(filepath.Join(c.dataDir, "ledger"), ledger.Options{
		Origin:          c.origin,
		Signer:          signer,
		MaxEnvelopeSize: c.maxEnvelopeSize,
		Indexer:         pol.index,
		AdminKeys:       pol.adminKeys(admins), // --admin-keys and the policy's admin keys
		Logger:          lg,
		Observer:        g.observer(),
	})
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { l.Close() })
	if err := ix.Attach(l); err != nil {
		return nil, fmt.Errorf("lineage index: %w", err)
	}
	if err := pol.index.Attach(l); err != nil {
		return nil, fmt.Errorf("policy index: %w", err)
	}
	pubPath, err := checkLogKey(c, l, keyPath, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	seq, err := openSequencer(c, l, keyring, priv, g, lg) // cluster.go: Raft with --node-id
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { seq.Close() })
	if err := pol.bootstrap(ctx, c, seq, priv, lg); err != nil { // --policy, at the first start
		return nil, err
	}
	pol.warnUnenforcedIdentities(ctx, g.auth != nil, lg) // policy.go: identities without --auth-tokens
	svc := service.Config{
		Log:                 l,
		Sequencer:           pol.sequencer(seq),
		Verifier:            &envelope.Verifier{Keyring: keyring, TrustOnFirstUse: c.dev},
		AllowAnyPayloadType: c.anyPayloadType,
		MaxEnvelopeSize:     c.maxEnvelopeSize,
		Preparer:            ix, // payloads parsed on the checkers, off the apply path
		Logger:              lg,
	}
	if len(c.extraPayloadTypes) > 0 {
		svc.PayloadTypes = append(slices.Clone(service.DefaultPayloadTypes), c.extraPayloadTypes...)
	}
	if c.dev {
		svc.OnNewKey = func(pub crypto.PublicKey) { tofu.add(keyring, pub) }
	}
	grpcLis, err := net.Listen("tcp", c.grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on --grpc-addr: %w", err)
	}
	undo = append(undo, func() { grpcLis.Close() })
	httpLis, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on --http-addr: %w", err)
	}
	undo = append(undo, func() { httpLis.Close() })
	pub, err := c.witness.publisher(l, lg) // witness.go: --witness policy
	if err != nil {
		return nil, err
	}
	srv, err := server.New(withWitnessPolicy(pub, g.serverConfig(server.Config{Service: svc, GRPCListener: grpcLis, HTTPListener: httpLis, Logger: lg})))
	if err != nil {
		return nil, err
	}
	qs, err := queryservice.New(queryservice.Config{Log: l, Logger: lg})
	if err != nil {
		return nil, err
	}
	provledgerpb.RegisterQueryServer(srv.GRPC(), qs)
	admin, err := adminservice.New(adminservice.Config{Log: l, LogKey: vkey, Node: c.cluster.nodeID, Logger: lg}) // Backup (admin role)
	if err != nil {
		return nil, err
	}
	provledgerpb.RegisterAdminServer(srv.GRPC(), admin)
	registerCluster(srv.GRPC(), seq)
	if err := startIngest(ctx, c, srv, keyring, lg); err != nil { // ingest.go: OpenLineage over HTTP
		return nil, err
	}
	if err := g.start(c, l, seq, lg); err != nil { // admin listener: metrics, pprof
		return nil, err
	}
	undo = append(undo, func() { g.stop(context.Background()) })
	stopScan, err := startScanner(c, l, seq, srv, keyring, lg) // scan.go: Scanner service, --scan
	if err != nil {
		return nil, err
	}
	n := &node{log: lg, ledger: l, seq: seq, srv: srv, errc: make(chan error, 1), lock: lock, guard: g, scan: stopScan}
	started = true
	go func() { n.errc <- srv.Serve() }()
	if pub != nil {
		go pub.Run(ctx) // ends with ctx (the node's signal context)
	}

	cp := l.Latest()
	fmt.Fprintf(stdout, `provd is serving log %q (size %d)
  gRPC:       %s
  HTTP tiles: %s://%s/checkpoint
  metrics:    %s
  log key:    %s
  verifier:   %s

Try, in another shell:
  ./bin/prov keygen --out ./keys
  ./bin/prov append --key ./keys/signer.key --type openlineage examples/openlineage-run.json
  ./bin/prov get 0
  ./bin/prov verify --log-key %s 0
  ./bin/prov audit --log-key %s
`, c.origin, cp.Size, grpcLis.Addr(), g.scheme(), httpLis.Addr(), g.admin.metricsURL(), pubPath, vkey, pubPath, pubPath)
	return n, nil
}

// wait serves until ctx ends (a signal) or the servers fail, then shuts
// down in order: stop taking requests, finish the batch in flight, close
// the store.
func (n *node) wait(ctx context.Context) error {
	var serveErr error
	select {
	case <-ctx.Done():
		n.log.Info("shutting down")
	case serveErr = <-n.errc:
	case <-clusterDone(n.seq):
		serveErr = clusterErr(n.seq)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.srv.Stop(sctx)
	n.guard.stop(sctx)
	n.scan()
	n.seq.Close()
	defer n.lock.Close()
	if err := n.ledger.Close(); err != nil && !errors.Is(err, ledger.ErrClosed) {
		return fmt.Errorf("close ledger: %w", err)
	}
	return serveErr
}

// checkLogKey refuses a log key that did not sign the log's latest
// checkpoint, then writes its public key to DATA/log.pub. Without this
// check a node restarted with another key would sign new checkpoints that
// no client of the log can verify, and overwrite log.pub with the new key.
func checkLogKey(c *config, l *ledger.Log, keyPath string, pub ed25519.PublicKey) (string, error) {
	v, err := checkpoint.NewVerifier(c.origin, pub)
	if err != nil {
		return "", fmt.Errorf("log key: %w", err)
	}
	if _, err := checkpoint.Open(l.Latest().Note, v); err != nil {
		return "", fmt.Errorf("log key %s did not sign this log's checkpoints (in %s): start with the key the log was created with (--log-key FILE), or use another --data directory: %w", keyPath, filepath.Join(c.dataDir, "ledger"), err)
	}
	b, err := keys.MarshalPublicPEM(pub)
	if err != nil {
		return "", err
	}
	pubPath := filepath.Join(c.dataDir, "log.pub")
	if err := writeFileAtomic(pubPath, b, 0o644); err != nil {
		return "", fmt.Errorf("write log public key: %w", err)
	}
	return pubPath, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// tofuStore records keys trusted on first use in --dev mode, so that they
// stay trusted across restarts and auditors can re-check signatures.
type tofuStore struct {
	path string
	log  *slog.Logger
	mu   sync.Mutex
}

func (t *tofuStore) loadInto(k *keys.Keyring) error {
	b, err := os.ReadFile(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", t.path, err)
	}
	pubs, err := keys.ParsePublicPEMs(b)
	if err != nil {
		return fmt.Errorf("read %s: %w", t.path, err)
	}
	for _, p := range pubs {
		if _, err := k.Add(p); err != nil {
			return fmt.Errorf("read %s: %w", t.path, err)
		}
	}
	return nil
}

func (t *tofuStore) add(k *keys.Keyring, pub crypto.PublicKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, err := keys.IDOf(pub)
	if err != nil {
		return
	}
	// The service calls OnNewKey once per key, after adding it to the
	// keyring; record it so it stays trusted across restarts.
	pem, err := keys.MarshalPublicPEM(pub)
	if err != nil {
		return
	}
	// Rewrite the whole file atomically: a crash in the middle of an
	// append would leave a torn PEM block that stops the next start.
	old, err := os.ReadFile(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err == nil {
		err = writeFileAtomic(t.path, append(old, pem...), 0o644)
	}
	if err != nil {
		t.log.Error("cannot record trusted-on-first-use key", "key_id", id, "err", err)
		return
	}
	if _, err := k.Add(pub); err != nil {
		return
	}
	t.log.Warn("recorded a key trusted on first use (--dev)", "key_id", id, "file", t.path)
}
