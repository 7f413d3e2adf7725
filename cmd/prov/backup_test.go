package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/adminservice"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
)

// serveAdmin serves admin on loopback and returns its address.
func serveAdmin(t *testing.T, admin provledgerpb.AdminServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	provledgerpb.RegisterAdminServer(g, admin)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// brokenAdmin sends the info and some data, then fails: a stream cut
// before its trailer.
type brokenAdmin struct {
	provledgerpb.UnimplementedAdminServer
}

func (brokenAdmin) Backup(_ *provledgerpb.BackupRequest, s provledgerpb.Admin_BackupServer) error {
	s.Send(&provledgerpb.BackupChunk{Part: &provledgerpb.BackupChunk_Info{Info: &provledgerpb.BackupInfo{Size: 1}}})
	s.Send(&provledgerpb.BackupChunk{Part: &provledgerpb.BackupChunk_Data{Data: []byte("provledger backup v1\n")}})
	return status.Error(codes.Unavailable, "node stopping")
}

func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	signer, err := checkpoint.NewSigner(testOrigin, priv)
	if err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	lo := ledger.Options{Origin: testOrigin, Signer: signer, Logger: lg}
	l, err := ledger.Open(filepath.Join(dir, "ledger"), lo)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var es []ledger.Entry
	for i := range 50 {
		es = append(es, ledger.Entry{Namespace: "ns", PayloadType: "application/vnd.in-toto+json", Envelope: fmt.Appendf(nil, `{"i":%d}`, i), Signers: [][32]byte{sha256.Sum256(nil)}})
	}
	if _, err := l.Apply(ledger.Batch{Entries: es}, ledger.ApplyOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	vkey, err := checkpoint.VerifierKey(testOrigin, priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := adminservice.New(adminservice.Config{Log: l, LogKey: vkey, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveAdmin(t, svc)
	pubPEM, _ := keys.MarshalPublicPEM(priv.Public())
	pub := writeFile(t, filepath.Join(dir, "log.pub"), string(pubPEM))

	out := filepath.Join(t.TempDir(), "ledger.backup")
	r := mustProv(t, "--server", addr, "--log-key", pub, "backup", "--out", out)
	for _, want := range []string{"backup written to " + out, "entries:     50", vkey} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("prov backup output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stderr, "WARNING") {
		t.Errorf("the checkpoint was verified, yet prov warns:\n%s", r.stderr)
	}
	// The file restores, and serves the checkpoint printed.
	restored := filepath.Join(t.TempDir(), "restored")
	res, err := ledger.RestoreBackup(restored, out, ledger.RestoreBackupOptions{Log: lo, LogKey: vkey})
	if err != nil {
		t.Fatalf("the backup prov wrote does not restore: %v", err)
	}
	if res.Checkpoint.Size != 50 || string(res.Checkpoint.Note) != string(l.Latest().Note) {
		t.Fatalf("restored checkpoint %q", res.Checkpoint.Note)
	}

	// A stream cut before its trailer leaves neither --out nor a temporary file.
	cutDir := t.TempDir()
	cut := filepath.Join(cutDir, "cut.backup")
	r = prov(t, "", "--server", serveAdmin(t, brokenAdmin{}), "backup", "--out", cut)
	if r.code == 0 || !strings.Contains(r.stderr, "nothing written to "+cut) {
		t.Fatalf("prov backup of a cut stream: exit %d, stderr %q", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir(cutDir); len(ents) != 0 {
		t.Fatalf("a cut backup left %v", ents)
	}
	// No --out is a usage error.
	if r := prov(t, "", "--server", addr, "backup"); r.code == 0 || !strings.Contains(r.stderr, "--out FILE") {
		t.Fatalf("prov backup without --out: exit %d, %q", r.code, r.stderr)
	}
	// Without a log key the backup is written, with a warning.
	r = mustProv(t, "--server", addr, "backup", "--out", filepath.Join(t.TempDir(), "b"))
	if !strings.Contains(r.stderr, "NOT checked") {
		t.Errorf("no warning without --log-key:\n%s", r.stderr)
	}
}
