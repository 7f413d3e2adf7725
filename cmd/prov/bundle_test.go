package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startWitness runs prov witness serve in-process for the test server's
// log and returns its URL and verifier key.
func startWitness(t *testing.T, ts *testServer, name string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	mustProv(t, "keygen", "--out", dir, "--name", "w")
	key := filepath.Join(dir, "w.key")
	vkey := strings.TrimSpace(mustProv(t, "witness", "key", "--key", key, "--name", name).stdout)
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncBuf{}, &syncBuf{}
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, []string{"witness", "serve", "--key", key, "--name", name, "--log", testOrigin + "=" + ts.logPub,
			"--addr", "127.0.0.1:0", "--state", filepath.Join(dir, "state")}, nil, out, errb)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("witness serve: exit %d: %s", code, errb.String())
		}
	})
	re := regexp.MustCompile(`listening on (http://\S+)/add-checkpoint\nverifier key: (\S+)`)
	for range 100 {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			if m[2] != vkey {
				t.Fatalf("serve says key %s, witness key says %s", m[2], vkey)
			}
			return m[1], vkey
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("witness did not start: %s %s", out.String(), errb.String())
	return "", ""
}

func TestBundleWithWitnesses(t *testing.T) {
	ts := startServer(t)
	dir := t.TempDir()
	mustProv(t, "keygen", "--out", dir)
	for i := range 3 {
		mustProv(t, ts.args("append", "--key", filepath.Join(dir, "signer.key"), "--type", "cost", "--receipts", dir,
			writeFile(t, filepath.Join(dir, "c.json"), `{"i":`+string(rune('0'+i))+`}`))...)
	}
	w1, k1 := startWitness(t, ts, "witness.test/w1")
	w2, k2 := startWitness(t, ts, "witness.test/w2")
	bundle := filepath.Join(dir, "entry1.bundle")
	mustProv(t, ts.args("prove", "--bundle", bundle, "--witness", w1, "--witness-key", k1, "--witness", w2, "--witness-key", k2, "1")...)
	// The witnesses learned the log; a later bundle needs a consistency proof.
	mustProv(t, ts.args("append", "--key", filepath.Join(dir, "signer.key"), "--type", "cost", "--receipts", dir, writeFile(t, filepath.Join(dir, "c.json"), `{"i":9}`))...)
	bundle2 := filepath.Join(dir, "entry3.bundle")
	mustProv(t, ts.args("prove", "--bundle", bundle2, "--witness", w1, "--witness-key", k1, "3")...)

	pub := filepath.Join(dir, "signer.pub")
	otherDir := t.TempDir()
	mustProv(t, "keygen", "--out", otherDir, "--name", "o")
	otherKey := strings.TrimSpace(mustProv(t, "witness", "key", "--key", filepath.Join(otherDir, "o.key"), "--name", "witness.test/w3").stdout)

	// No --server anywhere: verify --bundle is offline (the server is not
	// even asked: a dead address would do).
	off := func(args ...string) result {
		return prov(t, "", append([]string{"--server", "127.0.0.1:1", "--log-key", ts.logPub}, args...)...)
	}
	r := off("verify", "--bundle", bundle, "--witness-key", k1, "--witness-key", k2, "--trust", pub)
	if r.code != 0 || !strings.Contains(r.stdout, "cosigned by 2 witness(es)") || !strings.Contains(r.stdout, "1 DSSE signature(s) verified") {
		t.Fatalf("verify --bundle: %d %s %s", r.code, r.stdout, r.stderr)
	}
	b, _ := os.ReadFile(bundle)
	tampered := filepath.Join(dir, "tampered.bundle")
	env, _ := os.ReadFile(bundle + envelopeSuffix)
	for _, tc := range []struct {
		name string
		args []string
		prep func()
		code int
	}{
		{"no witness keys", []string{"verify", "--bundle", bundle}, nil, 0},
		{"second bundle, one witness", []string{"verify", "--bundle", bundle2, "--witness-key", k1}, nil, 0},
		{"second bundle lacks w2", []string{"verify", "--bundle", bundle2, "--witness-key", k1, "--witness-key", k2}, nil, exitFailed},
		{"one of two is enough", []string{"verify", "--bundle", bundle2, "--witness-key", k1, "--witness-key", k2, "--min-witnesses", "1"}, nil, 0},
		{"unknown witness", []string{"verify", "--bundle", bundle, "--witness-key", otherKey}, nil, exitFailed},
		{"bad witness key", []string{"verify", "--bundle", bundle, "--witness-key", "nonsense"}, nil, exitUsage},
		{"cosignature altered", []string{"verify", "--bundle", tampered, "--witness-key", k1}, func() {
			i := bytes.LastIndex(b, []byte("— witness.test/w1 ")) + len("— witness.test/w1 ") + 20
			c := bytes.Clone(b)
			c[i] ^= 1
			os.WriteFile(tampered, c, 0o644)
		}, exitFailed},
		{"envelope swapped", []string{"verify", "--bundle", tampered}, func() {
			os.WriteFile(tampered, b, 0o644)
			os.WriteFile(tampered+envelopeSuffix, bytes.Replace(env, []byte("cost"), []byte("Cost"), 1), 0o644)
		}, exitFailed},
		{"proof hash altered", []string{"verify", "--bundle", tampered}, func() {
			os.Remove(tampered + envelopeSuffix)
			os.WriteFile(tampered, bytes.Replace(b, []byte("index 1\n"), []byte("index 0\n"), 1), 0o644)
		}, exitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prep != nil {
				tc.prep()
			}
			if r := off(tc.args...); r.code != tc.code {
				t.Fatalf("exit %d, want %d: %s", r.code, tc.code, r.stderr)
			}
		})
	}
	// The bundle is a plain C2SP tlog-proof: verify --receipt reads it too.
	if r := off("verify", "--receipt", bundle); r.code != 0 {
		t.Fatalf("verify --receipt of a bundle: %s", r.stderr)
	}
}

// TestEvidenceRejectsForgeries: an evidence file only proves what it
// claims; edited ones fail.
func TestEvidenceRejectsForgeries(t *testing.T) {
	a := newLogFixture(t, t.TempDir())
	a.appendIndexes(t, seq(0, 300), noSalt)
	sw, url := newSwitch(t, a)
	dir := t.TempDir()
	state, evidence := filepath.Join(dir, "state"), filepath.Join(dir, "ev.json")
	if code, _ := monitorOnce(t, a, url, state, evidence); code != 0 {
		t.Fatal("monitor")
	}
	b := newLogFixture(t, t.TempDir())
	b.appendIndexes(t, seq(0, 500), func(i uint64) string { return map[bool]string{true: "x"}[i == 7] })
	sw.set(b.srv.Config.Handler)
	if code, _ := monitorOnce(t, a, url, state, evidence); code != exitFailed {
		t.Fatal("monitor did not alert")
	}
	raw, _ := os.ReadFile(evidence)
	var ev Evidence
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if r := prov(t, "", "--log-key", a.logPub, "verify", "--evidence-file", evidence); r.code != 0 || !strings.Contains(r.stdout, "PROVEN inconsistency") {
		t.Fatalf("genuine evidence: %d %s", r.code, r.stderr)
	}
	forged := filepath.Join(dir, "forged.json")
	for _, tc := range []struct {
		name string
		edit func(e *Evidence)
	}{
		{"same checkpoint twice", func(e *Evidence) { e.NewCheckpoint = e.OldCheckpoint }},
		{"ranges removed", func(e *Evidence) { e.OldRange = nil }},
		{"range hash changed", func(e *Evidence) { e.OldRange[0] = bytes.Repeat([]byte{1}, 32) }},
		{"checkpoint not signed by the log", func(e *Evidence) {
			e.NewCheckpoint = strings.Replace(e.NewCheckpoint, "\n500\n", "\n501\n", 1)
		}},
		{"right range, wrong claim: ranges of an honest tree", func(e *Evidence) {
			e.NewRange = e.NewRange[:len(e.NewRange)-1]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ev
			e.OldRange = append([][]byte(nil), ev.OldRange...)
			tc.edit(&e)
			j, _ := json.Marshal(e)
			os.WriteFile(forged, j, 0o644)
			if r := prov(t, "", "--log-key", a.logPub, "verify", "--evidence-file", forged); r.code != exitFailed {
				t.Fatalf("forged evidence: exit %d", r.code)
			}
		})
	}
}
