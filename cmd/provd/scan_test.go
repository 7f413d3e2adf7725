package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
)

func TestScanFlagValues(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		ok   bool
		want scanConfig
	}{
		{args: []string{"--dev"}, ok: true, want: scanConfig{interval: 2 * time.Second}},
		{args: []string{"--dev", "--scan", "--scan-interval", "250ms"}, ok: true, want: scanConfig{enabled: true, interval: 250 * time.Millisecond}},
		{args: []string{"--dev"}, env: map[string]string{"PROVLEDGER_SCAN": "true", "PROVLEDGER_SCANNER_KEY": "/k.pem"}, ok: true, want: scanConfig{enabled: true, interval: 2 * time.Second, keyPath: "/k.pem"}},
		{args: []string{"--dev", "--scan-interval", "1ms"}},
		{args: []string{"--dev", "--scan-interval", "2h"}},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var errb strings.Builder
			c, err := parseFlags(tc.args, &errb)
			if (err == nil) != tc.ok {
				t.Fatalf("parseFlags(%q) = %v, want ok=%v", tc.args, err, tc.ok)
			}
			if err == nil && c.scan != tc.want {
				t.Fatalf("scan config %+v, want %+v", c.scan, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), "--scan-interval") {
				t.Fatalf("error %q does not name --scan-interval", err)
			}
		})
	}
}

// TestScanRunsOnTheNode: with --scan, an OpenLineage event whose eventTime
// is three days before its integration time becomes a time.skew finding,
// appended to the log and listed once.
func TestScanRunsOnTheNode(t *testing.T) {
	data := t.TempDir()
	n := startRun(t, "--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn", "--scan", "--scan-interval", "50ms")
	c := n.dial(t)
	s := newTestSigner(t)
	ev := fmt.Sprintf(`{"eventType":"COMPLETE","eventTime":%q,"producer":"https://example.test","run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a02"},"job":{"namespace":"ns","name":"late"}}`,
		time.Now().Add(-72*time.Hour).UTC().Format(time.RFC3339))
	env, err := envelope.Sign("application/vnd.openlineage.run-event+json", []byte(ev), s.signer)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.Append(ctx, s.appendRequest(env, true))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(n.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sc := provledgerpb.NewScannerClient(conn)
	var fs []*provledgerpb.Finding
	for ctx.Err() == nil {
		lr, err := sc.ListFindings(ctx, &provledgerpb.ListFindingsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if fs = lr.GetFindings(); len(fs) > 0 && lr.GetCursor() > fs[0].GetIndex() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(fs) != 1 || fs[0].GetKind() != "time.skew" || len(fs[0].GetEntries()) != 1 || fs[0].GetEntries()[0] != resp.GetIndex() {
		t.Fatalf("findings %v, want one time.skew citing entry %d", fs, resp.GetIndex())
	}
	if _, err := os.Stat(filepath.Join(data, "scanner.pub")); err != nil {
		t.Fatalf("scanner.pub: %v", err)
	}
}
