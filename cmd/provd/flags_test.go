package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
)

// allFlags lists every flag of provd, with a value to set through its
// PROVLEDGER_* variable and how to read it back from the config.
var allFlags = []struct {
	name, env, value string
	got              func(*config) string
}{
	{"dev", "PROVLEDGER_DEV", "true", func(c *config) string { return strconv.FormatBool(c.dev) }},
	{"data", "PROVLEDGER_DATA", "/var/lib/provd", func(c *config) string { return c.dataDir }},
	{"grpc-addr", "PROVLEDGER_GRPC_ADDR", "0.0.0.0:7500", func(c *config) string { return c.grpcAddr }},
	{"http-addr", "PROVLEDGER_HTTP_ADDR", "[::1]:7501", func(c *config) string { return c.httpAddr }},
	{"origin", "PROVLEDGER_ORIGIN", "ledger.example/test", func(c *config) string { return c.origin }},
	{"log-key", "PROVLEDGER_LOG_KEY", "/etc/provd/log.key", func(c *config) string { return c.logKeyPath }},
	{"trust", "PROVLEDGER_TRUST", "/etc/provd/trust.pem", func(c *config) string { return c.trustFile }},
	{"admin-keys", "PROVLEDGER_ADMIN_KEYS", "/etc/provd/admins.pem", func(c *config) string { return c.adminKeysFile }},
	{"max-envelope-size", "PROVLEDGER_MAX_ENVELOPE_SIZE", "2048", func(c *config) string { return strconv.Itoa(c.maxEnvelopeSize) }},
	{"max-batch", "PROVLEDGER_MAX_BATCH", "7", func(c *config) string { return strconv.Itoa(c.maxBatch) }},
	{"scan", "PROVLEDGER_SCAN", "true", func(c *config) string { return strconv.FormatBool(c.scan.enabled) }},
	{"policy", "PROVLEDGER_POLICY", "../../examples/policy.yaml", func(c *config) string { return c.policy.file }},
	{"scan-interval", "PROVLEDGER_SCAN_INTERVAL", "5s", func(c *config) string { return c.scan.interval.String() }},
	{"scanner-key", "PROVLEDGER_SCANNER_KEY", "/etc/provd/scanner.key", func(c *config) string { return c.scan.keyPath }},
	{"payload-types", "PROVLEDGER_PAYLOAD_TYPES", "application/x-a+json,application/x-b", func(c *config) string { return strings.Join(c.extraPayloadTypes, ",") }},
	{"allow-any-payload-type", "PROVLEDGER_ALLOW_ANY_PAYLOAD_TYPE", "true", func(c *config) string { return strconv.FormatBool(c.anyPayloadType) }},
	{"log-format", "PROVLEDGER_LOG_FORMAT", "json", func(c *config) string { return c.logFormat }},
	{"log-level", "PROVLEDGER_LOG_LEVEL", "debug", func(c *config) string { return c.logLevel }},
	// cluster.go
	{"node-id", "PROVLEDGER_NODE_ID", "n7", func(c *config) string { return c.cluster.nodeID }},
	{"raft-addr", "PROVLEDGER_RAFT_ADDR", "127.0.0.1:9402", func(c *config) string { return c.cluster.raftAddr }},
	{"raft-advertise", "PROVLEDGER_RAFT_ADVERTISE", "10.0.0.7:7402", func(c *config) string { return c.cluster.raftAdvertise }},
	{"api-advertise", "PROVLEDGER_API_ADVERTISE", "10.0.0.7:7400", func(c *config) string { return c.cluster.apiAdvertise }},
	{"bootstrap", "PROVLEDGER_BOOTSTRAP", "true", func(c *config) string { return strconv.FormatBool(c.cluster.bootstrap) }},
	{"peers", "PROVLEDGER_PEERS", "n2=10.0.0.2:7402=10.0.0.2:7400", func(c *config) string { return c.cluster.peers }},
	{"join", "PROVLEDGER_JOIN", "10.0.0.1:7400", func(c *config) string { return c.cluster.join }},
	{"raft-timeout", "PROVLEDGER_RAFT_TIMEOUT", "500ms", func(c *config) string { return c.cluster.raftTimeout.String() }},
	// peertls.go
	{"peer-tls-cert", "PROVLEDGER_PEER_TLS_CERT", "/etc/provd/node.crt", func(c *config) string { return c.cluster.peerTLS.cert }},
	{"peer-tls-key", "PROVLEDGER_PEER_TLS_KEY", "/etc/provd/node.key", func(c *config) string { return c.cluster.peerTLS.key }},
	{"peer-tls-ca", "PROVLEDGER_PEER_TLS_CA", "/etc/provd/cluster-ca.pem", func(c *config) string { return c.cluster.peerTLS.ca }},
	// admin.go, security.go
	{"admin-addr", "PROVLEDGER_ADMIN_ADDR", "127.0.0.1:9403", func(c *config) string { return c.admin.addr }},
	{"tls-cert", "PROVLEDGER_TLS_CERT", "/etc/provd/tls.crt", func(c *config) string { return c.security.tlsCert }},
	{"tls-key", "PROVLEDGER_TLS_KEY", "/etc/provd/tls.key", func(c *config) string { return c.security.tlsKey }},
	{"tls-client-ca", "PROVLEDGER_TLS_CLIENT_CA", "/etc/provd/ca.pem", func(c *config) string { return c.security.tlsClientCA }},
	{"tls-client-cert-optional", "PROVLEDGER_TLS_CLIENT_CERT_OPTIONAL", "true", func(c *config) string { return strconv.FormatBool(c.security.tlsClientCertOptional) }},
	{"auth-tokens", "PROVLEDGER_AUTH_TOKENS", "/etc/provd/tokens", func(c *config) string { return c.security.authTokens }},
	{"auth-private-audit", "PROVLEDGER_AUTH_PRIVATE_AUDIT", "true", func(c *config) string { return strconv.FormatBool(c.security.authPrivateAudit) }},
	{"rate-limit", "PROVLEDGER_RATE_LIMIT", "12.5", func(c *config) string { return strconv.FormatFloat(c.security.rateLimit, 'g', -1, 64) }},
	{"rate-burst", "PROVLEDGER_RATE_BURST", "99", func(c *config) string { return strconv.Itoa(c.security.rateBurst) }},
	{"max-concurrent", "PROVLEDGER_MAX_CONCURRENT", "7", func(c *config) string { return strconv.Itoa(c.security.maxConcurrent) }},
	{"max-inflight-appends", "PROVLEDGER_MAX_INFLIGHT_APPENDS", "9", func(c *config) string { return strconv.Itoa(c.security.maxInflightAppends) }},
	{"rpc-timeout", "PROVLEDGER_RPC_TIMEOUT", "45s", func(c *config) string { return c.security.rpcTimeout.String() }},
	{"stream-timeout", "PROVLEDGER_STREAM_TIMEOUT", "2h0m0s", func(c *config) string { return c.security.streamTimeout.String() }},
	// ingest.go
	{"ingest-tokens", "PROVLEDGER_INGEST_TOKENS", "/etc/provd/ingest-tokens", func(c *config) string { return c.ingest.tokensFile }},
	{"ingest-key", "PROVLEDGER_INGEST_KEY", "/etc/provd/ingest.key", func(c *config) string { return c.ingest.keyPath }},
	{"ingest-max-facet-size", "PROVLEDGER_INGEST_MAX_FACET_SIZE", "4096", func(c *config) string { return strconv.Itoa(c.ingest.maxFacetSize) }},
	{"ingest-max-batch", "PROVLEDGER_INGEST_MAX_BATCH", "17", func(c *config) string { return strconv.Itoa(c.ingest.maxBatch) }},
	{"ingest-max-batch-size", "PROVLEDGER_INGEST_MAX_BATCH_SIZE", "65536", func(c *config) string { return strconv.Itoa(c.ingest.maxBatchSize) }},
	// witness.go
	{"witness", "PROVLEDGER_WITNESS", "http://w1.example:7402=w1.example+bdde10ec+BDtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop", func(c *config) string { return c.witness.witnesses.String() }},
	{"witness-quorum", "PROVLEDGER_WITNESS_QUORUM", "1", func(c *config) string { return strconv.Itoa(c.witness.quorum) }},
	{"witness-interval", "PROVLEDGER_WITNESS_INTERVAL", "3s", func(c *config) string { return c.witness.interval.String() }},
	// restore.go
	{"restore", "PROVLEDGER_RESTORE", "/var/backups/provd.backup", func(c *config) string { return c.restore.file }},
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		t.Run(arg, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runOnce(t, []string{arg}, &stdout, &stderr); code != 0 {
				t.Fatalf("provd %s exited %d; stderr:\n%s", arg, code, &stderr)
			}
			help := stdout.String() + stderr.String()
			var documented []string
			for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(help, -1) {
				documented = append(documented, m[1])
			}
			var want []string
			for _, f := range allFlags {
				want = append(want, f.name)
			}
			slices.Sort(documented)
			slices.Sort(want)
			if !slices.Equal(documented, want) {
				t.Errorf("--help documents flags %v; want %v (update allFlags when adding a flag)", documented, want)
			}
			// Each flag has a description line under it.
			for _, f := range allFlags {
				if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f.name) + `( \w+)?\n    \t\S`).MatchString(help) {
					t.Errorf("--help: flag -%s has no description", f.name)
				}
			}
			if !strings.Contains(help, "PROVLEDGER_") {
				t.Errorf("--help does not say flags can be set by PROVLEDGER_* variables:\n%s", help)
			}
		})
	}
}

func TestEveryFlagSettableFromEnv(t *testing.T) {
	for _, f := range allFlags {
		t.Run(f.name, func(t *testing.T) {
			t.Setenv(f.env, f.value)
			if f.name == "ingest-key" {
				// An ingest key alone is refused: the endpoint needs tokens.
				t.Setenv("PROVLEDGER_INGEST_TOKENS", "/etc/provd/ingest-tokens")
			}
			if f.name == "restore" {
				// A restore needs the log key that signed the backup.
				t.Setenv("PROVLEDGER_LOG_KEY", "/etc/provd/log.key")
			}
			args := []string{"--dev"}
			if f.name == "dev" {
				args = nil // --dev comes from the environment alone
			}
			c, err := parseFlags(args, io.Discard)
			if err != nil {
				t.Fatalf("%s=%s: %v", f.env, f.value, err)
			}
			if got := f.got(c); got != f.value {
				t.Errorf("%s=%s: --%s is %q", f.env, f.value, f.name, got)
			}
		})
	}
	t.Run("flag beats env", func(t *testing.T) {
		t.Setenv("PROVLEDGER_GRPC_ADDR", "127.0.0.1:1")
		c, err := parseFlags([]string{"--dev", "--grpc-addr", "127.0.0.1:2"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.grpcAddr != "127.0.0.1:2" {
			t.Errorf("--grpc-addr is %q; the command line should win over PROVLEDGER_GRPC_ADDR", c.grpcAddr)
		}
	})
	t.Run("production config from env", func(t *testing.T) {
		t.Setenv("PROVLEDGER_ORIGIN", "ledger.example/prod")
		t.Setenv("PROVLEDGER_TRUST", "/etc/provd/trust.pem")
		c, err := parseFlags(nil, io.Discard)
		if err != nil {
			t.Fatalf("--origin and --trust from the environment, no --dev: %v", err)
		}
		if c.dev || c.origin != "ledger.example/prod" {
			t.Errorf("config %+v", c)
		}
	})
}

func TestBadFlagValues(t *testing.T) {
	data := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ed := writeKey(t, "ed25519")
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		code int
		want []string // in stderr
		not  []string // not in stderr
	}{
		{name: "no origin without dev", args: nil, code: 2, want: []string{"--origin", "--dev"}},
		{name: "no trust without dev", args: []string{"--origin", "ledger.example/prod"}, code: 2, want: []string{"--trust", "--dev"}},
		{name: "grpc addr without port", args: []string{"--dev", "--grpc-addr", "localhost"}, code: 2, want: []string{"--grpc-addr", "localhost"}},
		{name: "http addr without port", args: []string{"--dev", "--http-addr", "127.0.0.1"}, code: 2, want: []string{"--http-addr"}},
		{name: "log level", args: []string{"--dev", "--log-level", "loud"}, code: 2, want: []string{"--log-level", "loud"}},
		{name: "log level from env", args: []string{"--dev"}, env: map[string]string{"PROVLEDGER_LOG_LEVEL": "loud"}, code: 2, want: []string{"--log-level", "loud"}},
		{name: "log format", args: []string{"--dev", "--log-format", "xml"}, code: 2, want: []string{"--log-format", "xml"}},
		{name: "max batch zero", args: []string{"--dev", "--max-batch", "0"}, code: 2, want: []string{"--max-batch"}, not: []string{"max-envelope-size"}},
		{name: "max envelope size above the gRPC message cap", args: []string{"--dev", "--max-envelope-size", "1073741824"}, code: 2, want: []string{"--max-envelope-size 1073741824: must be between 1 and 16777216"}},
		{name: "max envelope size negative", args: []string{"--dev", "--max-envelope-size", "-1"}, code: 2, want: []string{"--max-envelope-size"}, not: []string{"max-batch"}},
		{name: "max batch not a number", args: []string{"--dev", "--max-batch", "many"}, code: 2, want: []string{"max-batch", "many"}},
		{name: "max batch from env not a number", args: []string{"--dev"}, env: map[string]string{"PROVLEDGER_MAX_BATCH": "many"}, code: 2, want: []string{"PROVLEDGER_MAX_BATCH"}},
		{name: "origin with space", args: []string{"--dev", "--origin", "my log"}, code: 2, want: []string{"--origin"}},
		{name: "empty payload type", args: []string{"--dev", "--payload-types", "application/x-a,,application/x-b"}, code: 2, want: []string{"--payload-types"}},
		{name: "unknown flag", args: []string{"--dev", "--no-such-flag"}, code: 2, want: []string{"no-such-flag"}},
		{name: "stray argument", args: []string{"--dev", "serve"}, code: 2, want: []string{"unexpected arguments", "serve"}},
		// Errors found when starting: exit status 1, the flag named.
		{name: "grpc port out of range", args: []string{"--dev", "--data", data, "--grpc-addr", "127.0.0.1:99999", "--http-addr", "127.0.0.1:0"}, code: 1, want: []string{"--grpc-addr"}},
		{name: "grpc port in use", args: []string{"--dev", "--data", data, "--grpc-addr", busy.Addr().String(), "--http-addr", "127.0.0.1:0"}, code: 1, want: []string{"--grpc-addr"}},
		{name: "http port in use", args: []string{"--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", busy.Addr().String()}, code: 1, want: []string{"--http-addr"}},
		{name: "trust file missing", args: []string{"--origin", "ledger.example/prod", "--trust", filepath.Join(data, "nope.pem"), "--log-key", ed, "--data", data}, code: 1, want: []string{"--trust", "nope.pem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := runOnce(t, tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("provd %q exited %d, want %d; stderr:\n%s", tc.args, code, tc.code, &stderr)
			}
			msg := stderr.String()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("provd %q: stderr does not name %q:\n%s", tc.args, w, msg)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(msg, w) {
					t.Errorf("provd %q: stderr names %q, which is not at fault:\n%s", tc.args, w, msg)
				}
			}
			if strings.Contains(msg, "Flags:") {
				t.Errorf("provd %q: the error is buried under the whole usage text:\n%s", tc.args, msg)
			}
		})
	}
	// A failed start leaves the data directory usable.
	n := startRun(t, "--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	if code := n.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// runOnce runs provd in-process for a run that should end by itself (help,
// bad flags, a refused start); a node that starts anyway is stopped after
// 10 s, and its exit code (0) then fails the caller's check.
func runOnce(t *testing.T, args []string, stdout, stderr io.Writer) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return run(ctx, args, stdout, stderr)
}

// inProc is run() serving on its own goroutine.
type inProc struct {
	cancel      context.CancelFunc
	done        chan int
	stopOnce    sync.Once
	code        int
	stdout      syncBuffer
	stderr      syncBuffer
	grpcAddr    string
	httpAddr    string
	logPubPath  string
	verifierKey string
}

var (
	reGRPC     = regexp.MustCompile(`(?m)^\s+gRPC:\s+(\S+)$`)
	reHTTP     = regexp.MustCompile(`(?m)^\s+HTTP tiles:\s+https?://(\S+)/checkpoint$`)
	reLogKey   = regexp.MustCompile(`(?m)^\s+log key:\s+(\S+)$`)
	reVerifier = regexp.MustCompile(`(?m)^\s+verifier:\s+(\S+)$`)
)

// startRun runs provd in-process with args and waits until it has printed
// where it serves.
func startRun(t *testing.T, args ...string) *inProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &inProc{cancel: cancel, done: make(chan int, 1)}
	go func() { n.done <- run(ctx, args, &n.stdout, &n.stderr) }()
	t.Cleanup(func() { n.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := n.stdout.String()
		if m := reVerifier.FindStringSubmatch(out); m != nil {
			n.verifierKey = m[1]
			for _, x := range []struct {
				re  *regexp.Regexp
				dst *string
			}{{reGRPC, &n.grpcAddr}, {reHTTP, &n.httpAddr}, {reLogKey, &n.logPubPath}} {
				mm := x.re.FindStringSubmatch(out)
				if mm == nil {
					t.Fatalf("provd's banner lacks %v:\n%s", x.re, out)
				}
				*x.dst = mm[1]
			}
			return n
		}
		select {
		case code := <-n.done:
			n.done <- code
			t.Fatalf("provd %q exited %d before serving; stderr:\n%s", args, code, &n.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("provd %q printed no banner in 20 s; stderr:\n%s", args, &n.stderr)
		}
	}
}

// stop cancels run's context and returns its exit code.
func (n *inProc) stop(t *testing.T) int {
	n.stopOnce.Do(func() {
		n.cancel()
		select {
		case n.code = <-n.done:
		case <-time.After(20 * time.Second):
			t.Errorf("provd did not return within 20 s of its context ending; stderr:\n%s", &n.stderr)
			n.code = -1
		}
	})
	return n.code
}

func (n *inProc) dial(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), n.grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (n *inProc) verifier(t *testing.T) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(n.verifierKey)
	if err != nil {
		t.Fatalf("printed verifier key %q: %v", n.verifierKey, err)
	}
	return v
}

// appendOne appends a new statement signed by s and verifies its receipt.
func appendOne(t *testing.T, c *client.Client, v note.Verifier, s *testSigner, name string, withKey bool) (*provledgerpb.AppendResponse, error) {
	t.Helper()
	env, err := s.statement(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Append(ctx, s.appendRequest(env, withKey))
	if err != nil {
		return nil, err
	}
	if err := client.VerifyReceipt(resp, env.Marshal(), v); err != nil {
		t.Fatalf("receipt of %s: %v", name, err)
	}
	return resp, nil
}

func TestRunServesAndStops(t *testing.T) {
	data := t.TempDir()
	n := startRun(t, "--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	if want := filepath.Join(data, "log.pub"); n.logPubPath != want {
		t.Errorf("banner names the log key %s; want %s", n.logPubPath, want)
	}

	// DATA/log.pub is a PEM public key, the one the printed verifier names.
	b, err := os.ReadFile(filepath.Join(data, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if blk, rest := pem.Decode(b); blk == nil || blk.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("DATA/log.pub is not one PEM PUBLIC KEY block:\n%s", b)
	}
	pub, err := client.LoadLogKey(filepath.Join(data, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if vk, err := checkpoint.VerifierKey(devOrigin, pub); err != nil || vk != n.verifierKey {
		t.Errorf("printed verifier key %q; DATA/log.pub gives %q (%v)", n.verifierKey, vk, err)
	}
	v := n.verifier(t)
	if v.Name() != devOrigin {
		t.Errorf("verifier key names %q; want %q", v.Name(), devOrigin)
	}

	c := n.dial(t)
	s := newTestSigner(t)
	resp, err := appendOne(t, c, v, s, "serve/0", true)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if resp.GetIndex() != 0 {
		t.Errorf("first append at index %d", resp.GetIndex())
	}
	ctx := context.Background()
	cp, err := c.GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{})
	if err != nil {
		t.Fatalf("GetCheckpoint: %v", err)
	}
	// The served checkpoint verifies with the printed key, by x/mod's note.
	nt, err := note.Open(cp.GetNote(), note.VerifierList(v))
	if err != nil {
		t.Fatalf("served checkpoint does not verify with the printed verifier key: %v\n%s", err, cp.GetNote())
	}
	if want := devOrigin + "\n1\n"; !strings.HasPrefix(nt.Text, want) {
		t.Errorf("checkpoint text %q; want it to start with %q", nt.Text, want)
	}
	// So does the one served over HTTP, at the printed address.
	hr, err := http.Get("http://" + n.httpAddr + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	if hr.StatusCode != 200 {
		t.Fatalf("GET /checkpoint: %s\n%s", hr.Status, hb)
	}
	if _, err := note.Open(hb, note.VerifierList(v)); err != nil {
		t.Errorf("HTTP /checkpoint does not verify with the printed key: %v\n%s", err, hb)
	}

	if code := n.stop(t); code != 0 {
		t.Fatalf("provd exited %d after its context ended; stderr:\n%s", code, &n.stderr)
	}
	if conn, err := net.DialTimeout("tcp", n.grpcAddr, time.Second); err == nil {
		conn.Close()
		t.Errorf("gRPC address %s still accepts connections after provd returned", n.grpcAddr)
	}

	// A restart keeps the log, its key and the printed verifier.
	n2 := startRun(t, "--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	if n2.verifierKey != n.verifierKey {
		t.Errorf("verifier key changed across a restart: %s, then %s", n.verifierKey, n2.verifierKey)
	}
	cp2, err := n2.dial(t).GetCheckpoint(ctx, &provledgerpb.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if cp2.GetSize() != 1 || !bytes.Equal(cp2.GetRootHash(), cp.GetRootHash()) {
		t.Errorf("after restart: size %d root %x; before: size 1 root %x", cp2.GetSize(), cp2.GetRootHash(), cp.GetRootHash())
	}
	if code := n2.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// A second node on the data directory of a running one refuses to start,
// and touches nothing there.
func TestSecondNodeOnSameDataFails(t *testing.T) {
	data := t.TempDir()
	n := startRun(t, "--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	pub, err := os.ReadFile(filepath.Join(data, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(data, "log.pub"))
	var stdout, stderr bytes.Buffer
	if code := runOnce(t, []string{"--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, &stdout, &stderr); code != 1 {
		t.Fatalf("second node on the same --data exited %d, want 1; stderr:\n%s", code, &stderr)
	}
	if !strings.Contains(stderr.String(), "in use by another provd") {
		t.Errorf("error does not say the data directory is in use:\n%s", &stderr)
	}
	if fileExists(filepath.Join(data, "log.pub")) {
		t.Errorf("the second node wrote DATA/log.pub")
	}
	os.WriteFile(filepath.Join(data, "log.pub"), pub, 0o644)
	// The first one still serves.
	if _, err := appendOne(t, n.dial(t), n.verifier(t), newTestSigner(t), "second/0", true); err != nil {
		t.Errorf("first node after the second was refused: %v", err)
	}
	if code := n.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// Once it stopped, the directory is free again.
	n = startRun(t, "--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	n.stop(t)
}

func TestRestartWithOtherOriginFails(t *testing.T) {
	data := t.TempDir()
	n := startRun(t, "--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	if code := n.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var stdout, stderr bytes.Buffer
	code := runOnce(t, []string{"--dev", "--origin", "ledger.example/other", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("restart with another --origin exited %d, want 1; stderr:\n%s", code, &stderr)
	}
	for _, w := range []string{`"provledger.local/dev"`, `"ledger.example/other"`, "--origin"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("error does not name %s:\n%s", w, &stderr)
		}
	}
	// The log still opens under its own origin.
	n = startRun(t, "--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	n.stop(t)
}

// writeKey writes a new private key of algorithm alg as PEM and returns
// its path.
func writeKey(t *testing.T, alg string) string {
	t.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := keys.MarshalPrivatePEM(k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), alg+".key")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLogKeyFlag(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage.key")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"ecdsa", writeKey(t, "ecdsa-p256"), "Ed25519"},
		{"rsa", writeKey(t, "rsa-2048"), "Ed25519"},
		{"not a key", garbage, "garbage.key"},
		{"missing", filepath.Join(t.TempDir(), "missing.key"), "missing.key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			var stdout, stderr bytes.Buffer
			code := runOnce(t, []string{"--dev", "--log-key", tc.path, "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, &stdout, &stderr)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, &stderr)
			}
			if !strings.Contains(stderr.String(), "log key") || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("error does not say what is wrong with the log key (want %q):\n%s", tc.want, &stderr)
			}
			if fileExists(filepath.Join(data, "log.pub")) {
				t.Errorf("DATA/log.pub written although the log key was refused")
			}
		})
	}

	t.Run("ed25519", func(t *testing.T) {
		data := t.TempDir()
		path := writeKey(t, "ed25519")
		n := startRun(t, "--dev", "--log-key", path, "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn")
		b, _ := os.ReadFile(path)
		k, err := keys.ParsePrivatePEM(b)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := client.LoadLogKey(filepath.Join(data, "log.pub"))
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Equal(k.Public().(ed25519.PublicKey)) {
			t.Errorf("DATA/log.pub is not the public key of --log-key")
		}
		if fileExists(filepath.Join(data, "log.key")) {
			t.Errorf("DATA/log.key generated although --log-key was given")
		}
		n.stop(t)
	})
}

// A log's checkpoints are signed by one key: restarting it with another
// must fail, not sign new checkpoints that no client of the log can verify.
func TestRestartWithOtherLogKeyFails(t *testing.T) {
	data := t.TempDir()
	keyA, keyB := writeKey(t, "ed25519"), writeKey(t, "ed25519")
	n := startRun(t, "--dev", "--log-key", keyA, "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	if _, err := appendOne(t, n.dial(t), n.verifier(t), newTestSigner(t), "key/0", true); err != nil {
		t.Fatal(err)
	}
	n.stop(t)
	pubA, err := os.ReadFile(filepath.Join(data, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{
		{"--log-key", keyB}, // another key
		{"--log-key", filepath.Join(data, "absent", "x.key")}, // missing: must not generate one
	} {
		var stdout, stderr bytes.Buffer
		code := runOnce(t, append([]string{"--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, args...), &stdout, &stderr)
		if code != 1 {
			t.Errorf("restart with %q exited %d, want 1; stderr:\n%s", args, code, &stderr)
		}
		if !strings.Contains(stderr.String(), "log key") {
			t.Errorf("restart with %q: error does not mention the log key:\n%s", args, &stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(data, "log.pub")); !bytes.Equal(b, pubA) {
			t.Errorf("restart with %q replaced DATA/log.pub", args)
		}
	}
	// The DATA/log.key of an existing log lost: no new key is generated.
	var stdout, stderr bytes.Buffer
	if code := runOnce(t, []string{"--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, &stdout, &stderr); code != 1 {
		t.Errorf("restart of a log whose key was given by --log-key, without it, exited %d, want 1; stderr:\n%s", code, &stderr)
	}
	if fileExists(filepath.Join(data, "log.key")) {
		t.Errorf("a new DATA/log.key was generated for an existing log")
	}
	if b, _ := os.ReadFile(filepath.Join(data, "log.pub")); !bytes.Equal(b, pubA) {
		t.Errorf("DATA/log.pub replaced")
	}

	// With its own key it still starts.
	n = startRun(t, "--dev", "--log-key", keyA, "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	n.stop(t)
}

func TestDevTrustOnFirstUsePersists(t *testing.T) {
	data := t.TempDir()
	args := []string{"--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn"}
	n := startRun(t, args...)
	c, v := n.dial(t), n.verifier(t)
	s, stranger := newTestSigner(t), newTestSigner(t)

	// A key never sent is not trusted, even in --dev.
	if _, err := appendOne(t, c, v, stranger, "tofu/stranger", false); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("append signed by an unknown key, no public key sent: %v; want PermissionDenied", err)
	}
	if _, err := appendOne(t, c, v, s, "tofu/0", true); err != nil {
		t.Fatalf("append with the public key sent: %v", err)
	}
	if _, err := appendOne(t, c, v, s, "tofu/1", true); err != nil {
		t.Fatalf("second append with the public key sent: %v", err)
	}
	if got := tofuKeyIDs(t, data); !slices.Equal(got, []keys.KeyID{s.id}) {
		t.Errorf("DATA/tofu-keys.pem holds %v; want exactly the signer's key %v", got, s.id)
	}
	if _, err := appendOne(t, c, v, s, "tofu/2", false); err != nil {
		t.Errorf("append without the public key, once trusted: %v", err)
	}
	if code := n.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// After a restart the key is still trusted, with no public key sent.
	n = startRun(t, args...)
	c = n.dial(t)
	if _, err := appendOne(t, c, v, s, "tofu/3", false); err != nil {
		t.Errorf("append without the public key after restart: %v", err)
	}
	if _, err := appendOne(t, c, v, stranger, "tofu/stranger", false); status.Code(err) != codes.PermissionDenied {
		t.Errorf("unknown key after restart: %v; want PermissionDenied", err)
	}
	if got := tofuKeyIDs(t, data); !slices.Equal(got, []keys.KeyID{s.id}) {
		t.Errorf("after restart DATA/tofu-keys.pem holds %v; want %v", got, []keys.KeyID{s.id})
	}
	n.stop(t)
}

// Without --dev, only keys of the --trust file are accepted: a key sent in
// the request is not trusted, and nothing is written to tofu-keys.pem.
func TestTrustFileWithoutDev(t *testing.T) {
	data := t.TempDir()
	trusted, other := newTestSigner(t), newTestSigner(t)
	trust := filepath.Join(t.TempDir(), "trust.pem")
	if err := os.WriteFile(trust, trusted.pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	n := startRun(t, "--origin", "ledger.example/test", "--trust", trust, "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	c, v := n.dial(t), n.verifier(t)
	if v.Name() != "ledger.example/test" {
		t.Errorf("verifier names %q", v.Name())
	}
	if _, err := appendOne(t, c, v, trusted, "trust/0", false); err != nil {
		t.Errorf("append signed by a key of the trust file: %v", err)
	}
	if _, err := appendOne(t, c, v, other, "trust/1", true); status.Code(err) != codes.PermissionDenied {
		t.Errorf("append signed by a key not in the trust file, its public key sent: %v; want PermissionDenied", err)
	}
	if fileExists(filepath.Join(data, "tofu-keys.pem")) {
		t.Errorf("DATA/tofu-keys.pem written without --dev")
	}
	n.stop(t)
}

func tofuKeyIDs(t *testing.T, data string) []keys.KeyID {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "tofu-keys.pem"))
	if err != nil {
		t.Fatalf("DATA/tofu-keys.pem: %v", err)
	}
	pubs, err := keys.ParsePublicPEMs(b)
	if err != nil {
		t.Fatalf("DATA/tofu-keys.pem: %v", err)
	}
	var ids []keys.KeyID
	for _, p := range pubs {
		id, err := keys.IDOf(p)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}
