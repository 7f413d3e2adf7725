package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/olingest"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/record"
)

// TestIngestFlags: bad ingest flags are refused with the flag named.
func TestIngestFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--ingest-max-batch", "0"}, "--ingest-max-batch 0"},
		{[]string{"--ingest-max-facet-size", "-1"}, "--ingest-max-facet-size -1"},
		{[]string{"--ingest-key", "k.pem"}, "--ingest-tokens is not"},
		{[]string{"--ingest-tokens", filepath.Join(dir, "missing")}, "--ingest-tokens"},
	} {
		var stderr bytes.Buffer
		args := append([]string{"--dev", "--data", filepath.Join(dir, "data"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, c.args...)
		if code := runOnce(t, args, io.Discard, &stderr); code == 0 || !strings.Contains(stderr.String(), c.msg) {
			t.Errorf("%q: exit %d, stderr %q, want it to say %q", c.args, code, stderr.String(), c.msg)
		}
	}
}

// TestIngestServed: with --ingest-tokens, provd serves the OpenLineage
// endpoint on its HTTP port, makes DATA/ingest.key on first start and
// keeps it across restarts, and the entries name the token and the ingest
// key.
func TestIngestServed(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("airflow "+auth.HashToken("tok-1")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	event := []byte(`{"eventType":"COMPLETE","eventTime":"2026-11-26T10:00:00Z","producer":"https://example.test","run":{"runId":"0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00"},"job":{"namespace":"etl","name":"daily"},"outputs":[{"namespace":"s3://lake","name":"out"}]}`)
	post := func(n *inProc, token string, body []byte) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+n.httpAddr+olingest.PathEvent, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	args := []string{"--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}
	n := startRun(t, append(args, "--ingest-tokens", tokens)...)
	if code, body := post(n, "tok-1", event); code != http.StatusOK {
		t.Fatalf("POST: %d %s", code, body)
	}
	if code, body := post(n, "wrong", event); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d %s", code, body)
	}
	if code, body := post(n, "tok-1", []byte(`{"eventTime":"2026-11-26T10:00:00Z","producer":"p","run":{"runId":"x"},"job":{"namespace":"a","name":"b"}}`)); code != http.StatusBadRequest || !strings.Contains(body, `"field":"run.runId"`) {
		t.Errorf("bad event: %d %s", code, body)
	}
	c := n.dial(t)
	e, err := c.GetEntry(context.Background(), &provledgerpb.GetEntryRequest{Index: 0})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := record.Unmarshal(e.GetRecord())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(data, "ingest.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := keys.ParsePublicPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := keys.IDOf(pk)
	if rec.Namespace != "airflow" || len(rec.Signers) != 1 || rec.Signers[0] != [32]byte(id) {
		t.Errorf("entry 0: namespace %q signers %x, want airflow and the ingest key %s", rec.Namespace, rec.Signers, id)
	}
	key1, _ := os.ReadFile(filepath.Join(data, "ingest.key"))
	if code := n.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// Restart: same key, and the same event is a duplicate.
	n = startRun(t, append(args, "--ingest-tokens", tokens)...)
	if code, body := post(n, "tok-1", event); code != http.StatusOK || !strings.Contains(body, `"duplicate":true`) {
		t.Errorf("after restart: %d %s", code, body)
	}
	if key2, _ := os.ReadFile(filepath.Join(data, "ingest.key")); !bytes.Equal(key1, key2) {
		t.Error("the ingest key changed across a restart")
	}
	n.stop(t)

	// Off without --ingest-tokens: the path is not served.
	n = startRun(t, args...)
	if code, _ := post(n, "tok-1", event); code == http.StatusOK {
		t.Error("ingest served without --ingest-tokens")
	}
}
