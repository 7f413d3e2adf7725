package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/api/scanservice"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
	"github.com/provledger/provledger/query/scanner"
	"github.com/provledger/provledger/query/scanner/synth"
)

// startScanServer serves the Scanner service over a small synthetic log.
func startScanServer(t *testing.T) string {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := sha256.Sum256([]byte("prov scan test"))
	priv := ed25519.NewKeyFromSeed(h[:])
	cs, err := checkpoint.NewSigner(testOrigin, priv)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger"), ledger.Options{Origin: testOrigin, Signer: cs, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	st, err := synth.Generate(l, synth.Config{Jobs: 30, Days: 60, PerKind: 2, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := ledger.NewLocalSequencer(l, ledger.SequencerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := keys.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scanner.New(l, seq, scanner.Options{Signer: sg, Trust: st.Trust, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := scanservice.New(scanservice.Config{Scanner: sc, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	provledgerpb.RegisterScannerServer(gs, svc)
	go gs.Serve(lis)
	t.Cleanup(func() {
		gs.Stop()
		seq.Close()
		l.Close()
	})
	return lis.Addr().String()
}

func TestScanCLI(t *testing.T) {
	addr := startScanServer(t)
	r := mustProv(t, "--server", addr, "findings")
	if !strings.Contains(r.stdout, "0 finding(s); the scanner has read the log up to entry 0") {
		t.Fatalf("findings before a scan:\n%s", r.stdout)
	}
	r = mustProv(t, "--server", addr, "scan")
	if !strings.Contains(r.stdout, "scanned entries 0 to ") || !strings.Contains(r.stdout, "INDEX") || !strings.Contains(r.stdout, "integrity.revokedKey") {
		t.Fatalf("prov scan:\n%s", r.stdout)
	}
	r = mustProv(t, "--server", addr, "scan", "--json")
	var again provledgerpb.ScanResponse
	if err := json.Unmarshal([]byte(r.stdout), &again); err != nil || len(again.GetFindings()) != 0 {
		t.Fatalf("second scan: %v, %d findings (want none: nothing is reported twice)\n%s", err, len(again.GetFindings()), r.stdout)
	}
	r = mustProv(t, "--server", addr, "findings", "--severity", "critical", "--json")
	var lr struct {
		Findings []struct {
			Severity string `json:"severity"`
			Payload  []byte `json:"payload"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &lr); err != nil || len(lr.Findings) == 0 {
		t.Fatalf("findings --json: %v\n%s", err, r.stdout)
	}
	for _, f := range lr.Findings {
		if f.Severity != "critical" {
			t.Fatalf("--severity critical listed a %s finding", f.Severity)
		}
		if _, err := scanner.ParseFinding(f.Payload); err != nil {
			t.Fatalf("payload of a listed finding: %v", err)
		}
	}
	r = mustProv(t, "--server", addr, "findings", "--since", "2000-01-01", "--kind", "cost.untagged")
	if !strings.Contains(r.stdout, "cost.untagged") || strings.Contains(r.stdout, "integrity.") {
		t.Fatalf("findings --kind cost.untagged:\n%s", r.stdout)
	}
	t.Logf("prov findings --since 2000-01-01 --kind cost.untagged:\n%s", r.stdout)
	r = mustProv(t, "--server", addr, "findings", "--severity", "high")
	t.Logf("prov findings --severity high:\n%s", r.stdout)
	r = mustProv(t, "--server", addr, "forecast", "--series", "tag:team=")
	t.Logf("prov forecast --series tag:team=:\n%s", r.stdout)
	r = mustProv(t, "--server", addr, "forecast", "--series", "tag:team=team-1", "--daily")
	if !strings.Contains(r.stdout, "tag:team=team-1") || !strings.Contains(r.stdout, "NEXT 30 DAYS") || !strings.Contains(r.stdout, "FORECAST") {
		t.Fatalf("prov forecast:\n%s", r.stdout)
	}
	for _, bad := range [][]string{
		{"findings", "--severity", "urgent"},
		{"findings", "--since", "last tuesday"},
		{"findings", "extra"},
	} {
		if r := prov(t, "", append([]string{"--server", addr}, bad...)...); r.code == 0 {
			t.Fatalf("prov %v succeeded", bad)
		}
	}
}
