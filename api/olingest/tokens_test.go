package olingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/olingest"
	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/query/payload"
)

// TestTokens: a tokens file in api/auth's format gives the principals that
// may send events — a bearer token that may append to the namespace of
// its name — and leaves the others out; a file with none is an error.
func TestTokens(t *testing.T) {
	cases := []struct {
		name  string
		file  string
		want  []string
		error error
	}{
		{"olingest lines", "# ingest\nairflow-prod " + auth.HashToken("a") + "\nspark/etl\t" + auth.HashToken("b") + "\n", []string{"airflow-prod", "spark/etl"}, nil},
		{"an auth file", "reader " + auth.HashToken("r") + " roles=reader\n" +
			"dbt " + auth.HashToken("d") + " roles=appender\n" +
			"admin " + auth.HashToken("x") + " roles=admin\n" +
			"teams " + auth.HashToken("t") + " roles=appender ns=team-a/*\n" +
			"flink " + auth.HashToken("f") + " roles=appender ns=flink,other types=application/vnd.openlineage.run-event+json\n" +
			"cert mtls:dns:pipeline.example.com\n", []string{"dbt", "admin", "flink"}, nil},
		{"no ingest token", "reader " + auth.HashToken("r") + " roles=reader\n", nil, olingest.ErrNoIngestTokens},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := auth.ParseFile([]byte(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			toks, err := olingest.NewTokens(ps)
			if !errors.Is(err, tc.error) {
				t.Fatalf("error %v, want %v", err, tc.error)
			}
			if err != nil {
				return
			}
			if got := toks.Names(); !slices.Equal(got, tc.want) || toks.Len() != len(tc.want) {
				t.Errorf("names %q, want %q", got, tc.want)
			}
		})
	}
	// A file auth refuses is refused, naming the line.
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("a "+auth.HashToken("a")+"\nb sha256:XYZ\n"), 0o600)
	if _, err := olingest.LoadTokensFile(bad); !errors.Is(err, auth.ErrSyntax) {
		t.Errorf("bad file: %v", err)
	}
	if _, err := olingest.LoadTokensFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file loaded")
	}
}

// TestTokenTypes: a token whose types= leaves an event type out is
// refused that type (403) and may send the others.
func TestTokenTypes(t *testing.T) {
	e := start(t, payload.Limits{})
	ps, err := auth.ParseFile([]byte("airflow-prod " + auth.HashToken(airflowToken) + " roles=appender types=" + payload.TypeOpenLineage + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	toks, err := olingest.NewTokens(ps)
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, e, toks)
	if code, body := serve(h, olingest.PathEvent, airflowToken, event(nil)); code != http.StatusOK {
		t.Errorf("run event: %d %s", code, body)
	}
	code, body := serve(h, olingest.PathEvent, airflowToken, readFile(t, "../../query/payload/testdata/static/job-event.json"))
	var eb struct{ Error string }
	json.Unmarshal(body, &eb)
	if code != http.StatusForbidden || eb.Error == "" {
		t.Errorf("job event: %d %s", code, body)
	}
}

// TestTokensReload: Reload and Watch pick up an edited tokens file (a
// token added, one revoked); a file that does not parse leaves the tokens
// in force; SIGHUP reloads too.
func TestTokensReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	write := func(s string) {
		t.Helper()
		// Write a new file and move it into place, as editors and config
		// management do.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("a " + auth.HashToken("tok-a") + "\n")
	toks, err := olingest.LoadTokensFile(path)
	if err != nil {
		t.Fatal(err)
	}
	has := func(secret string) bool { _, ok := toks.Match(secret); return ok }
	if !has("tok-a") || has("tok-b") {
		t.Fatal("initial tokens")
	}

	write("b " + auth.HashToken("tok-b") + "\n")
	if err := toks.Reload(); err != nil {
		t.Fatal(err)
	}
	if has("tok-a") || !has("tok-b") {
		t.Error("Reload: a revoked, b added expected")
	}
	write("b sha256:not-hex\n")
	if err := toks.Reload(); err == nil || !has("tok-b") {
		t.Errorf("a bad file: %v; b must stay", err)
	}

	// Watch: the file changes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		toks.Watch(ctx, olingest.WatchOptions{Interval: 5 * time.Millisecond, Hangup: true, Logger: quiet()})
	}()
	write("c " + auth.HashToken("tok-c") + "\n# a longer file\n")
	waitFor(t, "the watcher to load c", func() bool { return has("tok-c") && !has("tok-b") })

	// SIGHUP. The test's own handler keeps the signal from ending the
	// process before the watcher listens.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cancel()
	<-done
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done = make(chan struct{})
	go func() {
		defer close(done)
		toks.Watch(ctx, olingest.WatchOptions{Interval: -1, Hangup: true, Logger: quiet()})
	}()
	write("d " + auth.HashToken("tok-d") + "\n")
	waitFor(t, "SIGHUP to load d", func() bool {
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		time.Sleep(10 * time.Millisecond)
		return has("tok-d")
	})
	cancel()
	<-done
}

// waitFor polls cond until it holds (failing after a minute: the machine
// may be slow, so no tighter bound is asserted).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newHandler is a second handler on e's ledger (through gRPC), signing
// with the ingest key e trusts, accepting toks.
func newHandler(t *testing.T, e *env, toks *olingest.Tokens) *olingest.Handler {
	t.Helper()
	s, err := keys.NewSigner(ingestKey)
	if err != nil {
		t.Fatal(err)
	}
	h, err := olingest.New(olingest.Config{Appender: appenderFunc(func(ctx context.Context, r *provledgerpb.AppendBatchRequest) (*provledgerpb.AppendBatchResponse, error) {
		return e.ledger.AppendBatch(ctx, r)
	}), Signer: s, Tokens: toks, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// serve sends one request to h without a listener.
func serve(h http.Handler, path, token string, body []byte) (int, []byte) {
	rec := &recorder{header: http.Header{}}
	req, _ := http.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	h.ServeHTTP(rec, req)
	return rec.code, rec.body.Bytes()
}

// TestHandlerRefreshesTokens: the handler notices an edited tokens file
// by itself (Tokens.Refresh before each request): a revoked token is
// refused and a new one accepted, with no reload call.
func TestHandlerRefreshesTokens(t *testing.T) {
	e := start(t, payload.Limits{})
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("airflow-prod "+auth.HashToken(airflowToken)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	toks, err := olingest.LoadTokensFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, e, toks)
	if code, body := serve(h, olingest.PathEvent, airflowToken, event(nil)); code != http.StatusOK {
		t.Fatalf("before: %d %s", code, body)
	}
	if code, _ := serve(h, olingest.PathEvent, sparkToken, event(nil)); code != http.StatusUnauthorized {
		t.Fatalf("spark before: %d", code)
	}
	if err := os.WriteFile(path, []byte("spark/etl "+auth.HashToken(sparkToken)+"\n# airflow revoked\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the handler to load the edited file", func() bool {
		code, _ := serve(h, olingest.PathEvent, sparkToken, event(nil))
		return code == http.StatusOK
	})
	if code, _ := serve(h, olingest.PathEvent, airflowToken, event(nil)); code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", code)
	}
	// A broken edit keeps the tokens in force.
	if err := os.WriteFile(path, []byte("spark/etl sha256:broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if code, body := serve(h, olingest.PathEvent, sparkToken, event(nil)); code != http.StatusOK {
			t.Fatalf("after a broken edit: %d %s", code, body)
		}
	}
}
