package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/api/server"
	"github.com/provledger/provledger/api/service"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/ledger/redaction"
	"github.com/provledger/provledger/query/policyindex"
)

// policyServer is a served ledger that enforces its policy, bootstrapped
// (as provd --policy does) with boot, signed by the log key.
type policyServer struct {
	addr, logPub string
}

func startPolicyServer(t *testing.T, boot string) *policyServer {
	t.Helper()
	dir := t.TempDir()
	seed := sha256.Sum256([]byte("prov policy test log key"))
	logPriv := ed25519.NewKeyFromSeed(seed[:])
	logID, _ := keys.IDOf(logPriv.Public())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, err := checkpoint.NewSigner(testOrigin, logPriv)
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := keys.NewKeyring()
	ix := policyindex.New(policyindex.Options{Bootstrap: []keys.KeyID{logID}, Keyring: kr, Logger: logger})
	// The policy's admin keys sign redactions, as provd wires it.
	l, err := ledger.Open(filepath.Join(dir, "ledger"), ledger.Options{Origin: testOrigin, Signer: signer, Logger: logger, Indexer: ix, AdminKeys: ix})
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
	p, err := policy.Parse([]byte(boot))
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := keys.NewSigner(logPriv)
	env, err := policy.Sign(p, ls)
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := seq.Submit(context.Background(), []ledger.Entry{{Namespace: defaultPolicyNamespace, PayloadType: policy.PayloadType, Envelope: env.Marshal(), Signers: [][32]byte{logID}}}); err != nil || rs[0].Err != nil {
		t.Fatalf("bootstrap: %v %v", err, rs)
	}
	lis, hlis := listenPair(t) // prov audit finds the tiles on the next port
	srv, err := server.New(server.Config{
		Service: service.Config{
			Log: l, Sequencer: service.NewPolicySequencer(seq, ix, logID), Logger: logger,
			Verifier: &envelope.Verifier{Keyring: kr},
		},
		GRPCListener: lis, HTTPListener: hlis, Logger: logger,
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
	pubPEM, _ := keys.MarshalPublicPEM(logPriv.Public())
	ps := &policyServer{addr: lis.Addr().String(), logPub: filepath.Join(dir, "log.pub")}
	if err := os.WriteFile(ps.logPub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return ps
}

// testKeyFiles writes a key pair; it returns the private key path and the
// public PEM indented for a YAML literal.
func testKeyFiles(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	s := sha256.Sum256([]byte("prov policy test " + name))
	priv := ed25519.NewKeyFromSeed(s[:])
	b, err := keys.MarshalPrivatePEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, filepath.Join(dir, name+".key"), string(b))
	pub, _ := keys.MarshalPublicPEM(priv.Public())
	return path, "      " + strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ")
}

// TestPolicyApplyAndShow: an appender cannot apply a policy, an admin
// can (the entry records the git commit of the file), and prov policy show
// prints the policy in force now and at an earlier index.
func TestPolicyApplyAndShow(t *testing.T) {
	dir := t.TempDir()
	adminKey, adminPub := testKeyFiles(t, dir, "admin")
	teamKey, teamPub := testKeyFiles(t, dir, "team")
	boot := "policyVersion: 1\nreplace: true\nkeys:\n  - name: admin\n    admin: true\n    publicKey: |\n" + adminPub + "\n  - name: team\n    namespaces: [team]\n    publicKey: |\n" + teamPub + "\n"
	ps := startPolicyServer(t, boot)
	args := func(a ...string) []string { return append([]string{"--server", ps.addr, "--log-key", ps.logPub}, a...) }

	repo := filepath.Join(dir, "repo")
	if err := os.MkdirAll(filepath.Join(repo, "ledger"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, filepath.Join(repo, "ledger", "policy.yaml"), boot+"jobs:\n  - {namespace: team, name: etl, approvedVersions: [abc1234]}\n")
	git := func(a ...string) string {
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.test"}, a...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", a, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "policy")
	head := git("rev-parse", "HEAD")

	if r := prov(t, "", args("policy", "apply", file, "--key", teamKey)...); r.code != 1 || !strings.Contains(r.stderr, "admin key") {
		t.Fatalf("apply by an appender: exit %d, %s", r.code, r.stderr)
	}
	r := mustProv(t, args("policy", "apply", file, "--key", adminKey)...)
	if !strings.Contains(r.stdout, "policy entry 1 appended") || !strings.Contains(r.stdout, head) {
		t.Fatalf("apply: %s", r.stdout)
	}
	// A file that differs from its commit is refused.
	writeFile(t, file, boot)
	if r := prov(t, "", args("policy", "apply", file, "--key", adminKey)...); r.code == 0 || !strings.Contains(r.stderr, "commit it first") {
		t.Fatalf("dirty apply: exit %d, %s", r.code, r.stderr)
	}

	now := mustProv(t, args("policy", "show", "--entries")...).stdout
	for _, want := range []string{"after policy entry 1", "gitCommit: " + head, "path: ledger/policy.yaml", "approvedVersions:", "# entry 0: honoured", "# entry 1: honoured"} {
		if !strings.Contains(now, want) {
			t.Errorf("policy show lacks %q:\n%s", want, now)
		}
	}
	before := mustProv(t, args("policy", "show", "--at", "1")...).stdout
	if !strings.Contains(before, "after policy entry 0") || strings.Contains(before, "approvedVersions") {
		t.Errorf("policy show --at 1:\n%s", before)
	}
	// What show prints is a policy file: it parses.
	if _, err := policy.Parse([]byte(now)); err != nil {
		t.Errorf("policy show output does not parse: %v", err)
	}
}

// TestPolicyRedaction: under a policy, prov redact works with an admin
// key the policy grants the redaction payload type (no --admin-keys on the
// node), the entry reads back as redacted by the redaction entry, and prov
// audit --policy-from-log, given only the log key, passes after it; an
// admin key not granted that type is refused, naming what is missing.
func TestPolicyRedaction(t *testing.T) {
	dir := t.TempDir()
	adminKey, adminPub := testKeyFiles(t, dir, "admin")
	weakKey, weakPub := testKeyFiles(t, dir, "weak-admin")
	teamKey, teamPub := testKeyFiles(t, dir, "team")
	boot := "policyVersion: 1\nreplace: true\nkeys:\n" +
		"  - name: admin\n    admin: true\n    payloadTypes: [" + policy.PayloadType + ", " + redaction.PayloadType + "]\n    publicKey: |\n" + adminPub + "\n" +
		"  - name: weak-admin\n    admin: true\n    payloadTypes: [" + policy.PayloadType + "]\n    publicKey: |\n" + weakPub + "\n" +
		"  - name: team\n    namespaces: [team]\n    publicKey: |\n" + teamPub + "\n"
	ps := startPolicyServer(t, boot)
	args := func(a ...string) []string { return append([]string{"--server", ps.addr, "--log-key", ps.logPub}, a...) }
	for i, body := range []string{lineageEvent, secretEvent, strings.Replace(lineageEvent, "1a00", "1a01", 1)} {
		mustProv(t, args("append", "--key", teamKey, "--type", "openlineage", "--namespace", "team", "--receipts", filepath.Join(dir, "receipts"), writeFile(t, filepath.Join(dir, fmt.Sprintf("e%d.json", i)), body))...)
	}
	r := prov(t, "", args("redact", "--key", weakKey, "--index", "2", "--reason", "GDPR erasure request")...)
	if r.code != exitFailed || !strings.Contains(r.stderr, "may not sign "+redaction.PayloadType) || !strings.Contains(r.stderr, "granted payload types "+policy.PayloadType+" only") {
		t.Fatalf("redaction by an admin key not granted it: exit %d, %s", r.code, r.stderr)
	}
	r = mustProv(t, args("redact", "--key", adminKey, "--index", "2", "--reason", "GDPR erasure request")...)
	if !strings.Contains(r.stdout, "redacted: entry 2 by entry 4") {
		t.Fatalf("prov redact: %s", r.stdout)
	}
	if r := mustProv(t, args("get", "2")...); !strings.Contains(r.stdout, "REDACTED by entry 4 (reason: GDPR erasure request)") || strings.Contains(r.stdout, "jane_doe") {
		t.Fatalf("prov get of the redacted entry:\n%s", r.stdout)
	}
	r = mustProv(t, args("audit", "--full", "--policy-from-log", "--state", filepath.Join(dir, "audit.state"))...)
	for _, want := range []string{"audit OK", "1 redacted", "allowed by the policy in force at its index (1 policy entries, 1 honoured)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("audit after the redaction lacks %q:\n%s", want, r.stdout)
		}
	}
}
