package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
)

// TestLogHandoff runs the key rotation / sharding procedure of
// docs/audit.md with the existing commands: the old log records its
// successor (origin and verifier key) in a policy entry, the handoff is
// proven by an offline bundle, the new log starts with a policy entry
// holding that bundle, and an auditor walks the chain from the old log's
// key alone.
func TestLogHandoff(t *testing.T) {
	oldLog := startServer(t) // test.provledger/cli
	b := newLogFixture(t, t.TempDir())
	bGRPC := serveGRPC(t, b)
	dir := t.TempDir()
	// The operator signs both policy entries with one key (the new log trusts it).
	opPEM, _ := keys.MarshalPrivatePEM(b.signer)
	opKey := writeFile(t, filepath.Join(dir, "operator.key"), string(opPEM))
	mustProv(t, oldLog.args("append", "--key", opKey, "--type", "cost", "--receipts", dir, writeFile(t, filepath.Join(dir, "c.json"), `{"x":1}`))...)

	// 1. The old log names its successor.
	newPub, _ := client.LoadLogKey(b.logPub)
	newVKey, _ := checkpoint.VerifierKey(fixtureOrigin, newPub)
	succ, _ := json.Marshal(map[string]any{"provledger_log_successor": map[string]string{"origin": fixtureOrigin, "vkey": newVKey}})
	var ar struct{ Index uint64 }
	r := mustProv(t, oldLog.args("--json", "append", "--key", opKey, "--type", "policy", "--receipts", dir, writeFile(t, filepath.Join(dir, "succ.json"), string(succ)))...)
	json.Unmarshal([]byte(r.stdout), &ar)
	handoff := filepath.Join(dir, "handoff.bundle")
	mustProv(t, oldLog.args("prove", "--bundle", handoff, itoa(ar.Index))...)

	// 2. The new log starts with the handoff.
	hb, _ := os.ReadFile(handoff)
	oldPub, _ := client.LoadLogKey(oldLog.logPub)
	oldVKey, _ := checkpoint.VerifierKey(testOrigin, oldPub)
	pred, _ := json.Marshal(map[string]any{"provledger_log_predecessor": map[string]string{
		"origin": testOrigin, "vkey": oldVKey, "handoff_bundle": base64.StdEncoding.EncodeToString(hb)}})
	mustProv(t, "--server", bGRPC, "--log-key", b.logPub, "append", "--key", opKey, "--type", "policy", "--namespace", "log-handoff",
		"--receipts", dir, writeFile(t, filepath.Join(dir, "pred.json"), string(pred)))

	// 3. The auditor, holding only the old log's key: audit the old log,
	// check the handoff bundle offline, read the successor's key from it.
	mustProv(t, oldLog.args("audit", "--full", "--state", filepath.Join(dir, "a.state"))...)
	mustProv(t, "--log-key", oldLog.logPub, "verify", "--bundle", handoff)
	env, _ := os.ReadFile(handoff + envelopeSuffix)
	var e struct{ Payload []byte }
	json.Unmarshal(env, &e)
	var s struct {
		Succ struct{ Origin, VKey string } `json:"provledger_log_successor"`
	}
	if err := json.Unmarshal(e.Payload, &s); err != nil || s.Succ.VKey != newVKey {
		t.Fatalf("handoff payload: %v %s", err, e.Payload)
	}
	// The successor's key comes from the verified handoff, not from the new log.
	_, rest, _ := cutTwice(s.Succ.VKey)
	raw, _ := base64.StdEncoding.DecodeString(rest)
	pubPEM, _ := keys.MarshalPublicPEM(ed25519.PublicKey(raw[1:]))
	derived := writeFile(t, filepath.Join(dir, "successor.pub"), string(pubPEM))
	// Entry 0 of the new log holds the same handoff bundle.
	r = mustProv(t, "--server", bGRPC, "--log-key", derived, "--json", "get", "0")
	var g getResult
	json.Unmarshal([]byte(r.stdout), &g)
	var p struct {
		Pred struct {
			Origin, VKey  string
			HandoffBundle string `json:"handoff_bundle"`
		} `json:"provledger_log_predecessor"`
	}
	if err := json.Unmarshal(g.Payload, &p); err != nil || p.Pred.HandoffBundle != base64.StdEncoding.EncodeToString(hb) || p.Pred.VKey != oldVKey {
		t.Fatalf("new log's entry 0 does not carry the handoff: %v %s", err, g.Payload)
	}
	// And the new log audits with the derived key.
	mustProv(t, "--log-key", derived, "audit", "--full", "--url", b.url, "--state", filepath.Join(dir, "b.state"))
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// cutTwice splits a verifier key name+id+key.
func cutTwice(vkey string) (string, string, bool) {
	for i, n := 0, 0; i < len(vkey); i++ {
		if vkey[i] == '+' {
			n++
			if n == 2 {
				return vkey[:i], vkey[i+1:], true
			}
		}
	}
	return "", "", false
}
