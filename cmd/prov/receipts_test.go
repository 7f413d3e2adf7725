package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppendKeepsAnotherLogsReceipt: two logs with one origin (a --dev
// node and a --dev cluster) each get an entry 0 appended with the same
// --receipts directory; the first receipt is not overwritten, the second
// is saved next to it, both verify, and appending the first entry again
// refreshes its own file.
func TestAppendKeepsAnotherLogsReceipt(t *testing.T) {
	a, b := startServer(t), startServer(t)
	dir := t.TempDir()
	mustProv(t, "keygen", "--out", dir)
	key := filepath.Join(dir, "signer.key")
	receipts := filepath.Join(dir, "receipts")
	appendCost := func(ts *testServer, body string) result {
		return mustProv(t, ts.args("append", "--key", key, "--type", "cost", "--receipts", receipts,
			writeFile(t, filepath.Join(dir, "c.json"), body))...)
	}
	plain := filepath.Join(receipts, "test.provledger_cli", "0.tlog-proof")
	first := appendCost(a, `{"BilledCost": 1, "BillingCurrency": "USD", "ChargePeriodStart": "2026-11-26T10:00:00Z", "ChargePeriodEnd": "2026-11-26T11:00:00Z"}`)
	if !strings.Contains(first.stdout, plain) || first.stderr != "" {
		t.Fatalf("first append: %s\nstderr: %s", first.stdout, first.stderr)
	}
	saved, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	second := appendCost(b, `{"BilledCost": 2, "BillingCurrency": "USD", "ChargePeriodStart": "2026-11-26T10:00:00Z", "ChargePeriodEnd": "2026-11-26T11:00:00Z"}`)
	if strings.Contains(second.stdout, plain+" ") || !strings.Contains(second.stderr, "holds the receipt of another entry 0") {
		t.Fatalf("second log's append: %s\nstderr: %s", second.stdout, second.stderr)
	}
	if now, _ := os.ReadFile(plain); string(now) != string(saved) {
		t.Fatal("the first log's receipt was overwritten")
	}
	alts, _ := filepath.Glob(filepath.Join(receipts, "test.provledger_cli", "0-*.tlog-proof"))
	if len(alts) != 1 || !strings.Contains(second.stdout, alts[0]) {
		t.Fatalf("second receipt: %v; output %s", alts, second.stdout)
	}
	for _, f := range []string{plain, alts[0]} {
		mustProv(t, "--log-key", a.logPub, "verify", "--receipt", f)
	}
	again := appendCost(a, `{"BilledCost": 1, "BillingCurrency": "USD", "ChargePeriodStart": "2026-11-26T10:00:00Z", "ChargePeriodEnd": "2026-11-26T11:00:00Z"}`)
	if !strings.Contains(again.stdout, plain) || again.stderr != "" {
		t.Fatalf("duplicate append to the first log: %s\nstderr: %s", again.stdout, again.stderr)
	}
}
