package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/tlogproof"
	"github.com/provledger/provledger/ledger"
)

const testOrigin = "test.provledger/cli"

// testServer is a real single-node ledger with its gRPC API on loopback,
// trusting signers on first use (like provd --dev).
type testServer struct {
	addr    string
	logPub  string // path of the PEM log public key
	logPriv ed25519.PrivateKey
	dir     string
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{dir: t.TempDir()}
	seed := sha256.Sum256([]byte("prov cli test log key"))
	ts.logPriv = ed25519.NewKeyFromSeed(seed[:])
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, err := checkpoint.NewSigner(testOrigin, ts.logPriv)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(ts.dir, "ledger"), ledger.Options{Origin: testOrigin, Signer: signer, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keys.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	// The HTTP tiles API listens on the gRPC port + 1, as provd's defaults
	// do, so prov audit finds it without --url.
	lis, hlis := listenPair(t)
	srv, err := server.New(server.Config{
		Service: service.Config{
			Log: l, Sequencer: seq, Logger: logger,
			Verifier: &envelope.Verifier{Keyring: kr, TrustOnFirstUse: true},
		},
		GRPCListener: lis,
		HTTPListener: hlis,
		Logger:       logger,
	})
	if err != nil {
		t.Fatal(err)
	}
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
	pubPEM, err := keys.MarshalPublicPEM(ts.logPriv.Public())
	if err != nil {
		t.Fatal(err)
	}
	ts.logPub = filepath.Join(ts.dir, "log.pub")
	if err := os.WriteFile(ts.logPub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return ts
}

// listenPair listens on two consecutive loopback ports.
func listenPair(t *testing.T) (net.Listener, net.Listener) {
	t.Helper()
	for range 50 {
		a, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", a.Addr().(*net.TCPAddr).Port+1))
		if err == nil {
			return a, b
		}
		a.Close()
	}
	t.Fatal("no two consecutive free ports")
	return nil, nil
}

type result struct {
	code           int
	stdout, stderr string
}

// prov runs the CLI in-process.
func prov(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := runWith(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	r := result{code, out.String(), errb.String()}
	t.Logf("prov %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

func mustProv(t *testing.T, args ...string) result {
	t.Helper()
	r := prov(t, "", args...)
	if r.code != 0 {
		t.Fatalf("prov %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

func (ts *testServer) args(args ...string) []string {
	return append([]string{"--server", ts.addr, "--log-key", ts.logPub}, args...)
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const lineageEvent = `{"eventType":"COMPLETE","eventTime":"2026-11-26T10:15:00.000Z","producer":"https://example.test/producer",` +
	`"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",` +
	`"run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"},"job":{"namespace":"etl","name":"daily"},` +
	`"inputs":[{"namespace":"s3://raw","name":"events"}],"outputs":[{"namespace":"s3://curated","name":"events_clean"}]}`

func jsonEqual(a []byte, b string) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

func TestHelp(t *testing.T) {
	r := prov(t, "", "--help")
	if r.code != 0 {
		t.Fatalf("--help exit %d", r.code)
	}
	for _, want := range []string{"keygen", "append", "get", "checkpoint", "prove", "verify", "audit", "--server", "--log-key", "PROVLEDGER_", "Exit codes"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("prov --help does not mention %q", want)
		}
	}
	for cmd, wants := range map[string][]string{
		"keygen":                      {"--out", "--alg", "--name", "ecdsa-p256", "PROVLEDGER_OUT"},
		"append":                      {"--key", "--type", "--namespace", "--receipts", "openlineage", "--server"},
		"get":                         {"--trust"},
		"checkpoint":                  {"--size"},
		"prove":                       {"--size", "--out", "tlog-proof"},
		"verify":                      {"--receipt", "Exit codes"},
		"audit":                       {"--state", "--trust", "progress"},
		"cluster join":                {"  --node-id string", "  --raft-addr string", "  --api-addr string", "  --force", "id of the node to add"},
		"cluster transfer-leadership": {"prov cluster transfer-leadership [NODE-ID]"},
	} {
		r := prov(t, "", append(strings.Fields(cmd), "--help")...)
		if r.code != 0 {
			t.Errorf("%s --help: exit %d", cmd, r.code)
		}
		for _, w := range wants {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("prov %s --help does not mention %q", cmd, w)
			}
		}
	}
	if r := prov(t, ""); r.code != exitUsage {
		t.Errorf("bare prov: exit %d, want %d", r.code, exitUsage)
	}
	if r := prov(t, "", "frobnicate"); r.code != exitUsage {
		t.Errorf("unknown command: exit %d, want %d", r.code, exitUsage)
	}
}

func TestEndToEnd(t *testing.T) {
	ts := startServer(t)
	dir := t.TempDir()
	keyDir := filepath.Join(dir, "keys")
	receipts := filepath.Join(dir, "receipts")
	state := filepath.Join(dir, "audit.state")

	// keygen
	r := mustProv(t, "keygen", "--out", keyDir)
	if !strings.Contains(r.stdout, "key id:") {
		t.Fatalf("keygen output: %s", r.stdout)
	}
	st, err := os.Stat(filepath.Join(keyDir, "signer.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("signer.key: %v, mode %v", err, st.Mode())
	}
	if r := prov(t, "", "keygen", "--out", keyDir); r.code != exitFailed || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("keygen over an existing key: exit %d: %s", r.code, r.stderr)
	}
	pub := filepath.Join(keyDir, "signer.pub")

	// append (file and stdin)
	event := writeFile(t, filepath.Join(dir, "event.json"), lineageEvent)
	r = mustProv(t, ts.args("append", "--key", filepath.Join(keyDir, "signer.key"), "--type", "openlineage",
		"--namespace", "etl", "--receipts", receipts, event)...)
	if !strings.Contains(r.stdout, "index:     0") || !strings.Contains(r.stdout, "duplicate: no") {
		t.Fatalf("append output: %s", r.stdout)
	}
	receipt0 := filepath.Join(receipts, "test.provledger_cli", "0.tlog-proof")
	if _, err := os.Stat(receipt0); err != nil {
		t.Fatalf("receipt not saved: %v", err)
	}
	r = prov(t, `{"x":1}`, ts.args("--json", "append", "--key", filepath.Join(keyDir, "signer.key"), "--type", "cost", "--receipts", receipts, "-")...)
	if r.code != 0 {
		t.Fatalf("append from stdin: %d", r.code)
	}
	var ar appendResult
	if err := json.Unmarshal([]byte(r.stdout), &ar); err != nil || ar.Index != 1 || !ar.SignatureVerified || ar.Duplicate {
		t.Fatalf("append --json: %v %+v", err, ar)
	}
	// The same envelope again (Ed25519 signatures are deterministic): a duplicate.
	r = mustProv(t, ts.args("append", "--key", filepath.Join(keyDir, "signer.key"), "--type", "openlineage",
		"--namespace", "etl", "--receipts", receipts, event)...)
	if !strings.Contains(r.stdout, "index:     0") || !strings.Contains(r.stdout, "duplicate: yes") {
		t.Fatalf("duplicate append output: %s", r.stdout)
	}

	// get
	r = mustProv(t, ts.args("get", "--trust", pub, "0")...)
	for _, want := range []string{"namespace:       etl", "application/vnd.openlineage.run-event+json", `"eventType": "COMPLETE"`, "1 verified"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("get output lacks %q", want)
		}
	}
	r = mustProv(t, ts.args("get", "--json", "1")...)
	var gr getResult
	if err := json.Unmarshal([]byte(r.stdout), &gr); err != nil || gr.Record.PayloadType != "application/vnd.provledger.cost+json" || !jsonEqual(gr.Payload, `{"x":1}`) || !gr.CheckpointSignatureVerified {
		t.Fatalf("get --json: %v %+v", err, gr)
	}
	if r := prov(t, "", ts.args("get", "7")...); r.code != exitFailed {
		t.Fatalf("get beyond the log: exit %d", r.code)
	}
	// get with a trust file that lacks the signer fails.
	otherDir := filepath.Join(dir, "other")
	mustProv(t, "keygen", "--out", otherDir)
	if r := prov(t, "", ts.args("get", "--trust", filepath.Join(otherDir, "signer.pub"), "0")...); r.code != exitFailed || !strings.Contains(r.stderr, "not in the trust file") {
		t.Fatalf("get with the wrong trust file: exit %d: %s", r.code, r.stderr)
	}

	// checkpoint
	r = mustProv(t, ts.args("checkpoint")...)
	if !strings.HasPrefix(r.stdout, testOrigin+"\n2\n") || !strings.Contains(r.stderr, "verified") {
		t.Fatalf("checkpoint output: %q %q", r.stdout, r.stderr)
	}
	r = mustProv(t, ts.args("checkpoint", "--size", "1")...)
	if !strings.HasPrefix(r.stdout, testOrigin+"\n1\n") {
		t.Fatalf("checkpoint --size 1: %q", r.stdout)
	}

	// prove
	proofFile := filepath.Join(dir, "entry0.tlog-proof")
	mustProv(t, ts.args("prove", "0", "--out", proofFile)...) // flags after the argument work too
	b, err := os.ReadFile(proofFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tlogproof.Parse(b)
	if err != nil || p.Index != 0 || len(p.Extra) == 0 {
		t.Fatalf("prove wrote %q: %v", b, err)
	}
	r = mustProv(t, ts.args("prove", "--size", "1", "0")...)
	if !strings.HasPrefix(r.stdout, tlogproof.Header+"\n") || !strings.Contains(r.stdout, "\n"+testOrigin+"\n1\n") {
		t.Fatalf("prove --size 1 to stdout: %q", r.stdout)
	}

	// verify
	r = mustProv(t, ts.args("verify", "0")...)
	if !strings.HasPrefix(r.stdout, "verified: entry 0") {
		t.Fatalf("verify output: %s", r.stdout)
	}
	mustProv(t, ts.args("verify", "--trust", pub, "1")...)
	// --log-key after the command, as in the docs.
	mustProv(t, "--server", ts.addr, "verify", "--log-key", ts.logPub, "1")
	// Offline: no server needed.
	for _, f := range []string{receipt0, proofFile} {
		r = mustProv(t, "--server", "127.0.0.1:1", "--log-key", ts.logPub, "verify", "--receipt", f)
		if !strings.HasPrefix(r.stdout, "verified: receipt") {
			t.Fatalf("verify --receipt output: %s", r.stdout)
		}
	}
	if r := prov(t, "", "--server", ts.addr, "verify", "0"); r.code != exitUsage || !strings.Contains(r.stderr, "--log-key") {
		t.Fatalf("verify without a log key: exit %d: %s", r.code, r.stderr)
	}
	// A different log key fails.
	wrongKey := filepath.Join(dir, "wrong-log.pub")
	wpub, _, _ := ed25519.GenerateKey(nil)
	wpem, _ := keys.MarshalPublicPEM(wpub)
	writeFile(t, wrongKey, string(wpem))
	if r := prov(t, "", "--server", ts.addr, "--log-key", wrongKey, "verify", "0"); r.code != exitFailed || !strings.Contains(r.stderr, "FAILED") {
		t.Fatalf("verify with the wrong log key: exit %d: %s", r.code, r.stderr)
	}
	if r := prov(t, "", "--log-key", wrongKey, "verify", "--receipt", receipt0); r.code != exitFailed {
		t.Fatalf("verify --receipt with the wrong log key: exit %d", r.code)
	}

	// audit: first run saves the state, the second checks consistency.
	r = mustProv(t, ts.args("audit", "--state", state, "--trust", pub)...)
	if !strings.HasPrefix(r.stdout, "audit OK:") || !strings.Contains(r.stdout, "2 entries") || !strings.Contains(r.stdout, "first audit") || !strings.Contains(r.stdout, "entries/s") {
		t.Fatalf("audit output: %s", r.stdout)
	}
	saved, err := os.ReadFile(state)
	if err != nil || !bytes.HasPrefix(saved, []byte(testOrigin+"\n2\n")) {
		t.Fatalf("state file: %q %v", saved, err)
	}
	for i := range 5 {
		r := prov(t, `{"n":`+string(rune('0'+i))+`}`, ts.args("append", "--key", filepath.Join(keyDir, "signer.key"), "--type", "in-toto", "--receipts", receipts, "-")...)
		if r.code != 0 {
			t.Fatal("append failed")
		}
	}
	r = mustProv(t, ts.args("audit", "--state", state)...)
	if !strings.Contains(r.stdout, "7 entries") || !strings.Contains(r.stdout, "consistent with the previously audited checkpoint of size 2") {
		t.Fatalf("second audit: %s", r.stdout)
	}
	// With a trust file lacking the signer, signatures are unverifiable, not failures.
	r = mustProv(t, ts.args("audit", "--full", "--state", state, "--trust", filepath.Join(otherDir, "signer.pub"))...)
	if !strings.Contains(r.stdout, "0 signature(s) verified, 7 unverifiable") {
		t.Fatalf("audit with a foreign trust file: %s", r.stdout)
	}
	r = mustProv(t, ts.args("--json", "audit", "--state", state)...)
	var aj map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &aj); err != nil || aj["ok"] != true || aj["tree_size"].(float64) != 7 {
		t.Fatalf("audit --json: %v %s", err, r.stdout)
	}
	if r := prov(t, "", "--server", ts.addr, "audit", "--state", state); r.code != exitUsage {
		t.Fatalf("audit without a log key: exit %d", r.code)
	}
}

func TestTamperedReceipt(t *testing.T) {
	ts := startServer(t)
	dir := t.TempDir()
	mustProv(t, "keygen", "--out", dir)
	for _, ns := range []string{"a", "b", "c"} {
		event := writeFile(t, filepath.Join(dir, "event.json"), strings.Replace(lineageEvent, `"etl"`, `"`+ns+`"`, 1))
		mustProv(t, ts.args("append", "--key", filepath.Join(dir, "signer.key"), "--type", "openlineage", "--namespace", ns, "--receipts", dir, event)...)
	}
	b, err := os.ReadFile(filepath.Join(dir, "test.provledger_cli", "1.tlog-proof"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tlogproof.Parse(b); err != nil {
		t.Fatal(err)
	}
	check := func(name string, p *tlogproof.Proof) {
		t.Helper()
		f := writeFile(t, filepath.Join(dir, name+".tlog-proof"), string(p.Marshal()))
		r := prov(t, "", "--log-key", ts.logPub, "verify", "--receipt", f)
		if r.code != exitFailed || !strings.Contains(r.stderr, "FAILED") {
			t.Errorf("%s: verify exit %d (want 1): %s", name, r.code, r.stderr)
		}
	}
	clone := func() *tlogproof.Proof {
		p, _ := tlogproof.Parse(b)
		return p
	}
	p := clone()
	p.Extra[len(p.Extra)-1] ^= 1 // a signer key id byte
	check("record", p)
	p = clone()
	p.Index = 0
	check("index", p)
	p = clone()
	p.Hashes[0][0] ^= 1
	check("hash", p)
	p = clone()
	lines := strings.SplitN(string(p.Checkpoint), "\n", 3)
	if lines[1] != "2" {
		t.Fatalf("receipt 1's checkpoint has size %s, want 2", lines[1])
	}
	lines[1] = "3"
	p.Checkpoint = []byte(strings.Join(lines, "\n"))
	check("checkpoint", p)
	// A garbled file fails too (exit 1, not a usage error).
	f := writeFile(t, filepath.Join(dir, "garbled.tlog-proof"), "c2sp.org/tlog-proof@v1\nindex 01\n\n")
	if r := prov(t, "", "--log-key", ts.logPub, "verify", "--receipt", f); r.code != exitFailed {
		t.Errorf("garbled receipt: exit %d", r.code)
	}
	mustProv(t, "--log-key", ts.logPub, "verify", "--receipt", filepath.Join(dir, "test.provledger_cli", "1.tlog-proof"))
}

// TestAuditStateInconsistent: a state file holding a checkpoint the log
// cannot be consistent with (same key, other history) fails the audit and
// is left as it was.
func TestAuditStateInconsistent(t *testing.T) {
	ts := startServer(t)
	dir := t.TempDir()
	mustProv(t, "keygen", "--out", dir)
	for i := range 3 {
		mustProv(t, ts.args("append", "--key", filepath.Join(dir, "signer.key"), "--type", "cost", "--receipts", dir,
			writeFile(t, filepath.Join(dir, "c.json"), `{"i":`+string(rune('0'+i))+`}`))...)
	}
	signer, err := checkpoint.NewSigner(testOrigin, ts.logPriv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cp   checkpoint.Checkpoint
		want string
	}{
		{"forked at size 2", checkpoint.Checkpoint{Origin: testOrigin, Size: 2, Hash: sha256.Sum256([]byte("fork"))}, "rewrote history"},
		{"same size, other root", checkpoint.Checkpoint{Origin: testOrigin, Size: 3, Hash: sha256.Sum256([]byte("fork"))}, "different signed roots"},
		{"larger than the log", checkpoint.Checkpoint{Origin: testOrigin, Size: 9, Hash: sha256.Sum256([]byte("fork"))}, "lost entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signed, err := checkpoint.Sign(signer, tc.cp)
			if err != nil {
				t.Fatal(err)
			}
			state := writeFile(t, filepath.Join(dir, "state"), string(signed))
			r := prov(t, "", ts.args("audit", "--state", state)...)
			if r.code != exitFailed || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("audit: exit %d, stderr lacks %q", r.code, tc.want)
			}
			if after, _ := os.ReadFile(state); !bytes.Equal(after, signed) {
				t.Fatal("a failed audit changed the state file")
			}
		})
	}
	// A state file signed by another key is refused.
	_, other, _ := ed25519.GenerateKey(nil)
	os2, _ := checkpoint.NewSigner(testOrigin, other)
	signed, _ := checkpoint.Sign(os2, checkpoint.Checkpoint{Origin: testOrigin, Size: 1, Hash: sha256.Sum256(nil)})
	state := writeFile(t, filepath.Join(dir, "state"), string(signed))
	if r := prov(t, "", ts.args("audit", "--state", state)...); r.code != exitFailed {
		t.Fatalf("state signed by another key: exit %d", r.code)
	}
	// A fresh state, then a good one, passes.
	os.Remove(state)
	mustProv(t, ts.args("audit", "--state", state)...)
	mustProv(t, ts.args("audit", "--state", state)...)
}

// TestOpenSSLKeys appends with ECDSA P-256 and RSA keys in the encodings
// openssl writes: SEC1 "EC PRIVATE KEY" (after an "EC PARAMETERS" block)
// and PKCS#1 "RSA PRIVATE KEY".
func TestOpenSSLKeys(t *testing.T) {
	ts := startServer(t)
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" +
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))
	ecPub, _ := keys.MarshalPublicPEM(ec.Public())
	rsaPub, _ := keys.MarshalPublicPEM(rk.Public())
	trust := writeFile(t, filepath.Join(dir, "trust.pem"), "# team keys\n"+string(ecPub)+string(rsaPub))

	for i, k := range []struct{ name, pem string }{{"ec", ecPEM}, {"rsa", rsaPEM}} {
		keyFile := writeFile(t, filepath.Join(dir, k.name+".key"), k.pem)
		r := mustProv(t, ts.args("--json", "append", "--key", keyFile, "--type", "application/vnd.in-toto+json", "--receipts", dir,
			writeFile(t, filepath.Join(dir, k.name+".json"), `{"_type":"https://in-toto.io/Statement/v1","k":"`+k.name+`"}`))...)
		var ar appendResult
		if err := json.Unmarshal([]byte(r.stdout), &ar); err != nil || ar.Index != uint64(i) {
			t.Fatalf("%s append: %v %+v", k.name, err, ar)
		}
		mustProv(t, ts.args("get", "--trust", trust, ar.Receipt[len(ar.Receipt)-len("0.tlog-proof"):len(ar.Receipt)-len(".tlog-proof")])...)
	}
	state := filepath.Join(dir, "state")
	r := mustProv(t, ts.args("audit", "--state", state, "--trust", trust)...)
	if !strings.Contains(r.stdout, "2 signature(s) verified, 0 unverifiable") {
		t.Fatalf("audit: %s", r.stdout)
	}
	// keygen makes the other algorithms, and their keys append.
	for _, alg := range []string{"ecdsa-p384", "rsa-2048"} {
		kd := filepath.Join(dir, alg)
		mustProv(t, "keygen", "--out", kd, "--alg", alg, "--name", "k")
		mustProv(t, ts.args("append", "--key", filepath.Join(kd, "k.key"), "--type", "policy", "--receipts", dir,
			writeFile(t, filepath.Join(dir, alg+".json"), `{"alg":"`+alg+`"}`))...)
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	ts := startServer(t)
	dir := t.TempDir()
	mustProv(t, "keygen", "--out", dir)
	key := filepath.Join(dir, "signer.key")
	// The server's message comes through, exit 1.
	r := prov(t, "", ts.args("append", "--key", key, "--type", "application/x-unknown", "--receipts", dir,
		writeFile(t, filepath.Join(dir, "x"), "hello"))...)
	if r.code != exitFailed || !strings.Contains(r.stderr, "application/x-unknown") {
		t.Fatalf("unknown payload type: exit %d: %s", r.code, r.stderr)
	}
	r = prov(t, "", ts.args("append", "--key", key, "--type", "cost", "--receipts", dir, writeFile(t, filepath.Join(dir, "bad.json"), "{not json"))...)
	if r.code != exitFailed || !strings.Contains(r.stderr, "not valid JSON") {
		t.Fatalf("bad JSON: exit %d: %s", r.code, r.stderr)
	}
	if r := prov(t, "", ts.args("append", "--key", key, "--type", "nonsense", "--receipts", dir, "x")...); r.code != exitUsage {
		t.Fatalf("bad --type shorthand: exit %d", r.code)
	}
	if r := prov(t, "", ts.args("get", "abc")...); r.code != exitUsage {
		t.Fatalf("bad index: exit %d", r.code)
	}
	// Unreachable server: exit 2.
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := lis.Addr().String()
	lis.Close()
	for _, args := range [][]string{
		{"--server", dead, "--log-key", ts.logPub, "--timeout", "3s", "verify", "0"},
		{"--server", dead, "--log-key", ts.logPub, "--timeout", "3s", "audit", "--state", filepath.Join(dir, "s")},
		{"--server", dead, "--timeout", "3s", "checkpoint"},
		{"--server", dead, "--timeout", "3s", "cluster", "join", "--node-id", "n4", "--raft-addr", "127.0.0.1:1", "--api-addr", "127.0.0.1:2"},
		{"cluster", "remove", "n2", "--server", dead, "--timeout", "3s"},
	} {
		if r := prov(t, "", args...); r.code != exitUnreachable || !strings.Contains(r.stderr, "could not reach") {
			t.Errorf("prov %v against a dead server: exit %d: %s", args, r.code, r.stderr)
		}
	}
	// A single node serves no Cluster service: prov cluster says so.
	if r := prov(t, "", ts.args("cluster", "status")...); r.code != exitFailed || !strings.Contains(r.stderr, "not a member of a Raft cluster") {
		t.Errorf("cluster status against a single node: exit %d: %s", r.code, r.stderr)
	}
	// No log key: append works but says so loudly.
	r = prov(t, "", "--server", ts.addr, "append", "--key", key, "--type", "cost", "--receipts", dir, writeFile(t, filepath.Join(dir, "c.json"), `{}`))
	if r.code != 0 || !strings.Contains(r.stderr, "NOT checked") {
		t.Fatalf("append without log key: exit %d: %s", r.code, r.stderr)
	}
}

func TestEnvVars(t *testing.T) {
	ts := startServer(t)
	dir := t.TempDir()
	t.Setenv("PROVLEDGER_SERVER", ts.addr)
	t.Setenv("PROVLEDGER_LOG_KEY", ts.logPub)
	t.Setenv("PROVLEDGER_OUT", dir)
	t.Setenv("PROVLEDGER_ALG", "ecdsa-p256")
	r := mustProv(t, "--json", "keygen")
	if !strings.Contains(r.stdout, `"algorithm": "ecdsa-p256"`) {
		t.Fatalf("keygen from env: %s", r.stdout)
	}
	t.Setenv("PROVLEDGER_KEY", filepath.Join(dir, "signer.key"))
	t.Setenv("PROVLEDGER_TYPE", "cost")
	t.Setenv("PROVLEDGER_RECEIPTS", dir)
	mustProv(t, "append", writeFile(t, filepath.Join(dir, "c.json"), `{"BilledCost":1}`))
	mustProv(t, "verify", "0")
	// A flag on the command line wins over the environment, before or
	// after the command.
	t.Setenv("PROVLEDGER_SERVER", "127.0.0.1:1")
	mustProv(t, "--server", ts.addr, "verify", "0")
	mustProv(t, "verify", "--server", ts.addr, "0")
	if r := prov(t, "", "--timeout", "2s", "verify", "0"); r.code != exitUnreachable {
		t.Fatalf("env server unreachable: exit %d", r.code)
	}
}

func TestReorderArgs(t *testing.T) {
	a := &app{stdout: io.Discard, stderr: io.Discard}
	root := a.rootCommand()
	for _, tc := range []struct{ in, want string }{
		{"prove 0 --out f", "prove --out f -- 0"},
		{"prove --out f 0", "prove --out f -- 0"},
		{"--server x verify 0 --log-key k", "--server x verify --log-key k -- 0"},
		{"--json get 3 --trust t --json", "--json get --trust t --json -- 3"},
		{"append --key k - --type cost", "append --key k --type cost -- -"},
		{"append --key k -- -x", "append --key k -- -x"},
		{"audit", "audit"},
		{"nosuch 1 --x", "nosuch 1 --x"},
		{"keygen --out=d --alg ed25519", "keygen --out=d --alg ed25519"},
		{"cluster join --node-id n4 --raft-addr r --api-addr a", "cluster join --node-id n4 --raft-addr r --api-addr a"},
		{"--server x cluster --json remove n2 --timeout 5s", "--server x cluster --json remove --timeout 5s -- n2"},
		{"cluster transfer-leadership n2 --server x", "cluster transfer-leadership --server x -- n2"},
		{"cluster join --help", "cluster join --help"},
		{"cluster status", "cluster status"},
		{"policy apply p.yaml --key k --allow-dirty", "policy --key k --allow-dirty -- apply p.yaml"},
		{"policy show --at 3", "policy --at 3 -- show"},
	} {
		got := strings.Join(reorderArgs(root, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("reorderArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestGRPCMessage(t *testing.T) {
	err := fmt.Errorf("get entry 5: %w", status.Error(codes.OutOfRange, "index 5 is not below the log size 2"))
	if got, want := grpcMessage(err), "get entry 5: index 5 is not below the log size 2 (OutOfRange)"; got != want {
		t.Fatalf("grpcMessage = %q, want %q", got, want)
	}
	if got := grpcMessage(io.EOF); got != "EOF" {
		t.Fatalf("grpcMessage(EOF) = %q", got)
	}
	if !unreachable(fmt.Errorf("x: %w", status.Error(codes.Unavailable, "down"))) || unreachable(err) {
		t.Fatal("unreachable misclassifies")
	}
}
