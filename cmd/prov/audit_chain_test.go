package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/keys"
)

// chainSetup is two real nodes (Pebble, gRPC and the HTTP tiles API on
// loopback): the old log (startServer) and the new one (a logFixture
// served over gRPC), chained as docs/audit.md describes.
type chainSetup struct {
	old        *testServer
	new        *logFixture
	newGRPC    string
	dir, opKey string
	succIndex  uint64
	handoff    []byte
}

type chainOpts struct {
	succVKey    string // successor statement's vkey (default: the new log's)
	noURL       bool   // successor statement without url
	predPayload func(c *chainSetup) string
	twoSucc     bool // a second successor statement in the old log
	backLink    bool // the new log names the old log as its successor
}

func (c *chainSetup) appendOld(t *testing.T, typ, payload string) uint64 {
	t.Helper()
	var ar struct{ Index uint64 }
	r := mustProv(t, c.old.args("--json", "append", "--key", c.opKey, "--type", typ, "--receipts", c.dir, writeFile(t, filepath.Join(c.dir, "p.json"), payload))...)
	if err := json.Unmarshal([]byte(r.stdout), &ar); err != nil {
		t.Fatal(err)
	}
	return ar.Index
}

func (c *chainSetup) appendNew(t *testing.T, typ, payload string) {
	t.Helper()
	mustProv(t, "--server", c.newGRPC, "--log-key", c.new.logPub, "append", "--key", c.opKey, "--type", typ, "--namespace", "log-handoff",
		"--receipts", c.dir, writeFile(t, filepath.Join(c.dir, "n.json"), payload))
}

func newChain(t *testing.T, o chainOpts) *chainSetup {
	c := &chainSetup{old: startServer(t), new: newLogFixture(t, t.TempDir()), dir: t.TempDir()}
	c.newGRPC = serveGRPC(t, c.new)
	opPEM, _ := keys.MarshalPrivatePEM(c.new.signer) // the operator key; the new log trusts it
	c.opKey = writeFile(t, filepath.Join(c.dir, "operator.key"), string(opPEM))
	c.appendOld(t, "cost", `{"BilledCost":1}`)
	newPub, _ := client.LoadLogKey(c.new.logPub)
	vkey, _ := checkpoint.VerifierKey(fixtureOrigin, newPub)
	if o.succVKey != "" {
		vkey = o.succVKey
	}
	succ := map[string]string{"origin": fixtureOrigin, "vkey": vkey, "url": c.new.url}
	if o.noURL {
		delete(succ, "url")
	}
	sb, _ := json.Marshal(map[string]any{"provledger_log_successor": succ})
	c.succIndex = c.appendOld(t, "policy", string(sb))
	handoff := filepath.Join(c.dir, "handoff.bundle")
	mustProv(t, c.old.args("prove", "--bundle", handoff, itoa(c.succIndex))...)
	c.handoff, _ = os.ReadFile(handoff)
	if o.twoSucc {
		sb2, _ := json.Marshal(map[string]any{"provledger_log_successor": map[string]string{"origin": "other.example/log", "vkey": vkey}})
		c.appendOld(t, "policy", string(sb2))
	}
	c.appendOld(t, "cost", `{"BilledCost":2}`) // the old log may go on (sharding)
	pred := c.predecessor(c.handoff)
	if o.predPayload != nil {
		pred = o.predPayload(c)
	}
	c.appendNew(t, "policy", pred)
	c.appendNew(t, "cost", `{"BilledCost":3}`)
	if o.backLink {
		oldPub, _ := client.LoadLogKey(c.old.logPub)
		oldVKey, _ := checkpoint.VerifierKey(testOrigin, oldPub)
		b, _ := json.Marshal(map[string]any{"provledger_log_successor": map[string]string{"origin": testOrigin, "vkey": oldVKey, "url": "http://127.0.0.1:1"}})
		c.appendNew(t, "policy", string(b))
	}
	return c
}

func (c *chainSetup) predecessor(bundle []byte) string {
	oldPub, _ := client.LoadLogKey(c.old.logPub)
	oldVKey, _ := checkpoint.VerifierKey(testOrigin, oldPub)
	b, _ := json.Marshal(map[string]any{"provledger_log_predecessor": map[string]string{
		"origin": testOrigin, "vkey": oldVKey, "handoff_bundle": base64.StdEncoding.EncodeToString(bundle)}})
	return string(b)
}

func (c *chainSetup) follow(t *testing.T, state string, extra ...string) result {
	return prov(t, "", c.old.args(append([]string{"audit", "--follow", "--state", state}, extra...)...)...)
}

// TestAuditFollow: prov audit --follow audits the old log, finds its
// successor statement, takes the new log's key from it, checks the new
// log's entry 0 against the handoff, and audits the new log.
func TestAuditFollow(t *testing.T) {
	c := newChain(t, chainOpts{})
	state := filepath.Join(t.TempDir(), "audit.state")
	r := c.follow(t, state)
	if r.code != 0 || !strings.Contains(r.stdout, "chain OK: 2 log(s)") || !strings.Contains(r.stdout, "names its successor "+fixtureOrigin) {
		t.Fatalf("audit --follow: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(chainStatePath(state, fixtureOrigin)); err != nil {
		t.Fatalf("no state for the successor log: %v", err)
	}
	// Incremental: nothing new in the old log (the link comes from
	// STATE.link), two more entries in the new one.
	c.appendNew(t, "cost", `{"BilledCost":4}`)
	c.appendNew(t, "cost", `{"BilledCost":5}`)
	r = prov(t, "", c.old.args("--json", "audit", "--follow", "--state", state)...)
	if r.code != 0 {
		t.Fatalf("incremental audit --follow: exit %d %s", r.code, r.stderr)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var reps []map[string]any
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		reps = append(reps, m)
	}
	if len(reps) != 3 {
		t.Fatalf("want 2 audit reports and the chain, got %d objects:\n%s", len(reps), r.stdout)
	}
	if st := reps[1]["stats"].(map[string]any); reps[1]["origin"] != fixtureOrigin || st["entries"] != float64(2) || reps[1]["mode"] != "incremental" {
		t.Fatalf("new log's incremental audit: %v", reps[1])
	}
	chain := reps[2]["chain"].([]any)
	if reps[2]["ok"] != true || len(chain) != 2 || chain[0].(map[string]any)["successor_index"] != float64(c.succIndex) ||
		chain[0].(map[string]any)["entries_after_successor_statement"] != float64(1) {
		t.Fatalf("chain summary: %v", reps[2])
	}
	// Without --follow the old log audits alone, as before.
	mustProv(t, c.old.args("audit", "--state", filepath.Join(t.TempDir(), "s"))...)
}

// TestAuditFollowBroken: every way the chain can break is caught, with
// exit 1 and the problem named.
func TestAuditFollowBroken(t *testing.T) {
	seed := sha256.Sum256([]byte("some other key"))
	otherVKey, _ := checkpoint.VerifierKey(fixtureOrigin, ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey))
	for _, tc := range []struct {
		name string
		o    chainOpts
		want string
	}{
		{"new log's entry 0 is not a predecessor statement", chainOpts{predPayload: func(*chainSetup) string { return `{"provledger_note":"hello"}` }},
			"is not a predecessor statement"},
		{"handoff bundle proves another entry", chainOpts{predPayload: func(c *chainSetup) string {
			other := filepath.Join(c.dir, "other.bundle")
			mustProv(t, c.old.args("prove", "--bundle", other, "0")...)
			b, _ := os.ReadFile(other)
			return c.predecessor(b)
		}}, "not its successor statement"},
		{"handoff bundle tampered", chainOpts{predPayload: func(c *chainSetup) string {
			return c.predecessor(bytes.Replace(c.handoff, []byte("index "), []byte("index 1"), 1))
		}}, "does not verify"},
		{"predecessor names another log", chainOpts{predPayload: func(c *chainSetup) string {
			return strings.Replace(c.predecessor(c.handoff), testOrigin, "elsewhere.example/log", 1)
		}}, "names the predecessor elsewhere.example/log"},
		{"two successor statements", chainOpts{twoSucc: true}, "names two successors"},
		{"successor key is not the new log's", chainOpts{succVKey: otherVKey}, "bad-checkpoint"},
		{"successor vkey malformed", chainOpts{succVKey: fixtureOrigin + "+00000000+AAAA"}, "verifier key"},
		{"the new log names the old one as its successor", chainOpts{backLink: true}, "a cycle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, tc.o)
			r := c.follow(t, filepath.Join(t.TempDir(), "state"))
			if r.code != exitFailed || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q in:\n%s", r.code, exitFailed, tc.want, r.stderr)
			}
		})
	}
	t.Run("no url for the successor", func(t *testing.T) {
		c := newChain(t, chainOpts{noURL: true})
		state := filepath.Join(t.TempDir(), "state")
		if r := c.follow(t, state); r.code != exitUsage || !strings.Contains(r.stderr, "--follow-url "+fixtureOrigin+"=URL") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if r := c.follow(t, state, "--follow-url", fixtureOrigin+"="+c.new.url); r.code != 0 {
			t.Fatalf("with --follow-url: exit %d: %s", r.code, r.stderr)
		}
	})
}
