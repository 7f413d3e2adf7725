package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/queryservice"
	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/ledger/redaction"
	"github.com/provledger/provledger/query/graph"
)

// startRedactServer is a real node as provd wires it with --admin-keys:
// ledger with the lineage index and the admin keys, gRPC (Ledger and
// Query) and the HTTP tiles API on the next port.
func startRedactServer(t *testing.T, adminPub string) *testServer {
	t.Helper()
	ts := &testServer{dir: t.TempDir()}
	seed := sha256.Sum256([]byte("prov cli redaction test log key"))
	ts.logPriv = ed25519.NewKeyFromSeed(seed[:])
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, err := checkpoint.NewSigner(testOrigin, ts.logPriv)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keys.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(adminPub)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.ParsePublicPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	adminID, err := kr.Add(pub)
	if err != nil {
		t.Fatal(err)
	}
	ix := graph.New(graph.Options{Logger: logger})
	l, err := ledger.Open(filepath.Join(ts.dir, "ledger"), ledger.Options{
		Origin: testOrigin, Signer: signer, Logger: logger, Indexer: ix, PebbleCacheSize: 32 << 20,
		AdminKeys: ledger.NewAdminKeySet(adminID),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Attach(l); err != nil {
		t.Fatal(err)
	}
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lis, hlis := listenPair(t)
	srv, err := server.New(server.Config{
		Service:      service.Config{Log: l, Sequencer: seq, Logger: logger, Verifier: &envelope.Verifier{Keyring: kr, TrustOnFirstUse: true}},
		GRPCListener: lis, HTTPListener: hlis, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	qs, err := queryservice.New(queryservice.Config{Log: l, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	provledgerpb.RegisterQueryServer(srv.GRPC(), qs)
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
		<-done
		seq.Close()
		l.Close()
	})
	ts.addr = lis.Addr().String()
	pubPEM, _ := keys.MarshalPublicPEM(ts.logPriv.Public())
	ts.logPub = filepath.Join(ts.dir, "log.pub")
	if err := os.WriteFile(ts.logPub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return ts
}

const secretEvent = `{"eventType":"COMPLETE","eventTime":"2026-11-26T11:00:00.000Z","producer":"https://example.test/producer",` +
	`"run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1aff"},"job":{"namespace":"crm","name":"export_jane_doe"},` +
	`"inputs":[{"namespace":"s3://raw","name":"customers"}],"outputs":[{"namespace":"s3://curated","name":"jane_doe_profile"}]}`

// End to end: append, redact with an admin key, read back "redacted by",
// the lineage query forgets the redacted run, proofs and the audit pass;
// a non-admin redaction is refused (PermissionDenied) and changes nothing;
// redacting twice or an unknown index is a clear error.
func TestRedactEndToEnd(t *testing.T) {
	dir := t.TempDir()
	mustProv(t, "keygen", "--out", filepath.Join(dir, "user"))
	mustProv(t, "keygen", "--out", filepath.Join(dir, "admin"), "--name", "admin")
	userKey, userPub := filepath.Join(dir, "user", "signer.key"), filepath.Join(dir, "user", "signer.pub")
	adminKey, adminPub := filepath.Join(dir, "admin", "admin.key"), filepath.Join(dir, "admin", "admin.pub")
	ts := startRedactServer(t, adminPub)
	receipts := filepath.Join(dir, "receipts")
	appendFile := func(name, body string) {
		t.Helper()
		mustProv(t, ts.args("append", "--key", userKey, "--type", "openlineage", "--namespace", "etl", "--receipts", receipts, writeFile(t, filepath.Join(dir, name), body))...)
	}
	appendFile("e0.json", lineageEvent) // 0
	appendFile("e1.json", secretEvent)  // 1: to be erased
	appendFile("e2.json", strings.Replace(lineageEvent, "1a00", "1a01", 1))

	upstream := func() result {
		return prov(t, "", ts.args("lineage", "upstream", "dataset", "s3://curated", "jane_doe_profile", "--json")...)
	}
	if r := upstream(); r.code != 0 || !strings.Contains(r.stdout, "export_jane_doe") {
		t.Fatalf("before the redaction the lineage query does not find the job: %d %s", r.code, r.stdout)
	}
	var got struct {
		Record struct {
			EnvelopeDigest string `json:"envelope_digest"`
		} `json:"record"`
	}
	r := mustProv(t, ts.args("get", "1", "--json")...)
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Record.EnvelopeDigest == "" {
		t.Fatalf("prov get --json: %v", err)
	}

	// A redaction signed by a pipeline key: PermissionDenied, nothing changes.
	r = prov(t, "", ts.args("redact", "--key", userKey, "--index", "1", "--reason", "GDPR erasure request")...)
	if r.code != exitFailed || !strings.Contains(r.stderr, "none of which is an admin key") {
		t.Fatalf("non-admin redaction: exit %d, %s", r.code, r.stderr)
	}
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	userSigner, userPEM := signerOf(t, userKey)
	digest, err := redaction.ParseDigest("sha256:" + got.Record.EnvelopeDigest)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := redaction.Encode(redaction.Payload{Targets: []redaction.Target{{Index: 1, EnvelopeDigest: digest}}, Reason: "x"})
	env, err := envelope.Sign(redaction.PayloadType, body, userSigner)
	if err != nil {
		t.Fatal(err)
	}
	_, err = provledgerpb.NewLedgerClient(conn).Append(context.Background(), &provledgerpb.AppendRequest{
		Namespace: "admin", Body: &provledgerpb.AppendRequest_Envelope{Envelope: toProtoEnvelope(env)}, PublicKeys: [][]byte{userPEM},
	})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("non-admin redaction over gRPC: %v, want PermissionDenied", err)
	}
	if r := mustProv(t, ts.args("get", "1")...); strings.Contains(r.stdout, "REDACTED") {
		t.Fatal("a refused redaction redacted the entry")
	}

	// The admin's redaction.
	r = mustProv(t, ts.args("redact", "--key", adminKey, "--index", "1", "--reason", "GDPR erasure request", "--ticket", "DPO-118")...)
	if !strings.Contains(r.stdout, "redacted: entry 1 by entry 3 (reason: GDPR erasure request)") {
		t.Fatalf("prov redact: %s", r.stdout)
	}
	r = mustProv(t, ts.args("get", "1")...)
	if !strings.Contains(r.stdout, "REDACTED by entry 3 (reason: GDPR erasure request; ticket DPO-118)") || strings.Contains(r.stdout, "jane_doe") {
		t.Fatalf("prov get of the redacted entry:\n%s", r.stdout)
	}
	r = mustProv(t, ts.args("verify", "1", "--trust", userPub)...)
	if !strings.Contains(r.stdout, "verified: entry 1") || !strings.Contains(r.stdout, "REDACTED by entry 3") {
		t.Fatalf("prov verify of the redacted entry:\n%s", r.stdout)
	}
	both := filepath.Join(dir, "both.pem")
	writeFile(t, both, readFile(t, userPub)+readFile(t, adminPub))
	for _, n := range []string{"0", "2", "3"} {
		mustProv(t, ts.args("verify", n, "--trust", both)...)
	}
	resp, err := http.Get(tilesBase(t, ts) + "/envelope/sha256/" + got.Record.EnvelopeDigest)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || !strings.Contains(string(msg), "redacted by entry 3 (reason: GDPR erasure request)") {
		t.Fatalf("tiles envelope endpoint: %d %s", resp.StatusCode, msg)
	}
	if r := upstream(); strings.Contains(r.stdout, "export_jane_doe") {
		t.Fatalf("after the redaction the lineage query still returns the redacted run's job:\n%s", r.stdout)
	}

	// Audit: passes with the admin keys, and names the entry without them.
	r = mustProv(t, ts.args("audit", "--full", "--state", filepath.Join(dir, "audit.state"), "--trust", userPub, "--admin-keys", adminPub)...)
	if !strings.Contains(r.stdout, "audit OK") || !strings.Contains(r.stdout, "1 redacted") {
		t.Fatalf("audit after the redaction:\n%s", r.stdout)
	}
	r = prov(t, "", ts.args("audit", "--full", "--state", filepath.Join(dir, "audit2.state"), "--trust", userPub)...)
	if r.code != exitFailed || !strings.Contains(r.stderr, "entry 1: redaction-unproven") || !strings.Contains(r.stderr, "no --admin-keys") {
		t.Fatalf("audit without --admin-keys: exit %d\n%s", r.code, r.stderr)
	}

	// Twice, and an index the log does not have.
	r = prov(t, "", ts.args("redact", "--key", adminKey, "--index", "1", "--reason", "again")...)
	if r.code != exitFailed || !strings.Contains(r.stderr, "entry 1 is already redacted by entry 3") {
		t.Fatalf("redacting twice: exit %d %s", r.code, r.stderr)
	}
	r = prov(t, "", ts.args("redact", "--key", adminKey, "--index", "99", "--reason", "x")...)
	if r.code != exitFailed || !strings.Contains(r.stderr, "entry 99") {
		t.Fatalf("redacting an unknown index: exit %d %s", r.code, r.stderr)
	}
}

// signerOf loads a private key file as a DSSE signer and its public PEM.
func signerOf(t *testing.T, path string) (signature.Signer, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := keys.ParsePrivatePEM(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := keys.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	pemb, err := keys.MarshalPublicPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s, pemb
}

// tilesBase is the HTTP tiles API of ts (the gRPC port + 1).
func tilesBase(t *testing.T, ts *testServer) string {
	t.Helper()
	a := &app{}
	a.server = ts.addr
	u, err := a.tilesURL("")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A log that withholds an envelope without a redaction entry (the value
// cut down on disk, as an attacker or a bug would) fails the audit, and
// the entry is named.
func TestAuditWithheldEnvelopeWithoutRedaction(t *testing.T) {
	dir := t.TempDir()
	f := newLogFixture(t, dir)
	f.append(t, 6, 3, "w")
	if err := f.log.DB().Delete([]byte{'v', 0, 0, 0, 0, 0, 0, 0, 2}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	r := prov(t, "", "--log-key", f.logPub, "audit", "--url", f.url, "--state", filepath.Join(dir, "s"), "--full", "--trust", f.trust, "--admin-keys", f.trust)
	if r.code != exitFailed || !strings.Contains(r.stderr, "entry 2: redaction-unproven") || !strings.Contains(r.stderr, "no redaction entry after it names it") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}
