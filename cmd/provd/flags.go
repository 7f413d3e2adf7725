package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/peterbourgon/ff/v3"

	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/ledger"
)

var errHelp = errors.New("help requested")

// maxEnvelopeSizeCap bounds --max-envelope-size: an append request carries
// the envelope JSON (whose payload is base64, a third larger) and the
// signers' public keys, and must fit in one gRPC message.
const maxEnvelopeSizeCap = server.MaxRecvMsgSize / 4

// config is every setting of a node, from flags or PROVLEDGER_* variables.
type config struct {
	dev             bool
	dataDir         string
	grpcAddr        string
	httpAddr        string
	origin          string
	logKeyPath      string
	trustFile       string
	adminKeysFile   string
	maxEnvelopeSize int
	maxBatch        int
	payloadTypes    string
	anyPayloadType  bool
	// extraPayloadTypes is payloadTypes split, trimmed and checked.
	extraPayloadTypes []string
	logFormat         string
	logLevel          string
	// given holds the names of the flags set on the command line or in
	// the environment (cluster mode keeps the others from DATA/cluster.json).
	given map[string]bool
	// ingest configures the OpenLineage HTTP endpoint (ingest.go).
	ingest ingestConfig
	// admin and security configure metrics, TLS, auth and limits
	// (admin.go, security.go).
	admin    adminConfig
	security securityConfig
	// cluster configures Raft cluster mode (cluster.go).
	cluster clusterConfig
	// scan configures the anomaly scanner (scan.go).
	scan scanConfig
	// witness is the witness policy (witness.go).
	witness witnessConfig
	// policy is --policy, the bootstrap policy (policy.go).
	policy policyConfig
	// restore is --restore (restore.go).
	restore restoreConfig
}

const usageHeader = `provd — the provledger node.

Serves one append-only, verifiable provenance log: appends of DSSE-signed
records over gRPC, and the C2SP tlog-tiles read API over HTTP.

  provd --dev                      # one node on loopback, data in ./data
  provd token new NAME [roles=…]   # a bearer token for --auth-tokens (docs/security.md)
  provd certs --out DIR            # CAs, node and client certificates for a TLS cluster

Every flag can also be set with an environment variable PROVLEDGER_<FLAG>,
e.g. PROVLEDGER_GRPC_ADDR=127.0.0.1:7400.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("provd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.dev, "dev", false, "development mode: trust any key that signs validly (trust on first use, recorded in DATA/tofu-keys.pem) — never in production")
	fs.StringVar(&c.dataDir, "data", "./data", "data directory (Pebble store, log key, TOFU keys)")
	fs.StringVar(&c.grpcAddr, "grpc-addr", "127.0.0.1:7400", "gRPC listen address")
	fs.StringVar(&c.httpAddr, "http-addr", "127.0.0.1:7401", "HTTP listen address (C2SP tlog-tiles read API)")
	fs.StringVar(&c.origin, "origin", "", "log origin, the checkpoint's first line and the note key name (default: provledger.local/dev with --dev; required otherwise)")
	fs.StringVar(&c.logKeyPath, "log-key", "", "PEM Ed25519 private key of the log (default DATA/log.key, generated on first start; its public key is written to DATA/log.pub)")
	fs.StringVar(&c.trustFile, "trust", "", "file of PEM public keys whose signatures are accepted (required unless --dev)")
	fs.StringVar(&c.adminKeysFile, "admin-keys", "", "file of PEM public keys of the admins: only they may sign redaction entries (erasure requests); without it every redaction is refused")
	fs.IntVar(&c.maxEnvelopeSize, "max-envelope-size", ledger.DefaultMaxEnvelopeSize, "largest accepted envelope, in bytes of canonical DSSE JSON")
	fs.IntVar(&c.maxBatch, "max-batch", 1024, "most entries group-committed in one synced batch")
	fs.StringVar(&c.payloadTypes, "payload-types", "", "comma-separated payload types accepted in addition to the built-in five")
	fs.BoolVar(&c.anyPayloadType, "allow-any-payload-type", false, "accept any payload type")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	addIngestFlags(fs, &c.ingest)
	addAdminFlags(fs, &c.admin)
	addSecurityFlags(fs, &c.security)
	addClusterFlags(fs, &c.cluster)
	addScanFlags(fs, &c.scan)
	addWitnessFlags(fs, &c.witness)
	addPolicyFlags(fs, &c.policy)
	addRestoreFlags(fs, &c.restore)
	// The usage is printed for --help only: after a bad flag it would bury
	// the one line that says what is wrong.
	fs.Usage = func() {}
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("PROVLEDGER")); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, usageHeader)
			fs.PrintDefaults()
			return nil, errHelp
		}
		return nil, fmt.Errorf("%w (see provd --help)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (see provd --help)", fs.Args())
	}
	c.given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { c.given[f.Name] = true }) // flags and PROVLEDGER_* variables set
	return c, c.validate()
}

func (c *config) validate() error {
	if c.origin == "" {
		if !c.dev {
			return errors.New("--origin is required (e.g. --origin ledger.example/prod), or use --dev")
		}
		c.origin = "provledger.local/dev"
	}
	if strings.ContainsAny(c.origin, " \n\t+") {
		return fmt.Errorf("--origin %q must not contain spaces, newlines or '+'", c.origin)
	}
	if err := c.policy.validate(); err != nil {
		return err
	}
	if c.trustFile == "" && !c.dev && c.policy.file == "" {
		return errors.New("--trust FILE (PEM public keys of the signers) is required, or --policy FILE, or use --dev")
	}
	for _, a := range []struct{ name, addr string }{{"--grpc-addr", c.grpcAddr}, {"--http-addr", c.httpAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("%s %q: %v", a.name, a.addr, err)
		}
	}
	if c.maxEnvelopeSize <= 0 || c.maxEnvelopeSize > maxEnvelopeSizeCap {
		return fmt.Errorf("--max-envelope-size %d: must be between 1 and %d bytes (a larger envelope would not fit in one gRPC request)", c.maxEnvelopeSize, maxEnvelopeSizeCap)
	}
	if c.maxBatch <= 0 {
		return fmt.Errorf("--max-batch %d: must be a positive number of entries", c.maxBatch)
	}
	c.extraPayloadTypes = nil
	if c.payloadTypes != "" {
		for _, t := range strings.Split(c.payloadTypes, ",") {
			t = strings.TrimSpace(t)
			if t == "" || len(t) > 255 || !utf8.ValidString(t) {
				return fmt.Errorf("--payload-types %q: each comma-separated payload type must be 1..255 bytes of UTF-8", c.payloadTypes)
			}
			c.extraPayloadTypes = append(c.extraPayloadTypes, t)
		}
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", c.logFormat)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	if err := c.cluster.validate(c); err != nil {
		return err
	}
	if err := c.admin.validate(); err != nil {
		return err
	}
	if err := c.security.validate(); err != nil {
		return err
	}
	if err := c.scan.validate(); err != nil {
		return err
	}
	if err := c.restore.validate(c); err != nil {
		return err
	}
	return c.ingest.validate()
}

func (c *config) logger(w io.Writer) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(c.logLevel))
	o := &slog.HandlerOptions{Level: lv}
	if c.logFormat == "json" {
		return slog.New(requestIDHandler{slog.NewJSONHandler(w, o)})
	}
	return slog.New(requestIDHandler{slog.NewTextHandler(w, o)})
}
