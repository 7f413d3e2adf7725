package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/witness"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/cosignature"
)

// TestWitnessPolicy: provd --witness serves on /checkpoint only the
// checkpoint its witness cosigned.
func TestWitnessPolicy(t *testing.T) {
	data := t.TempDir()
	// The log key must exist before the witness can be configured with it.
	n0 := startRun(t, "--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	n0.stop(t)
	pubPEM, err := os.ReadFile(data + "/log.pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := client.ParseLogKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	lv, _ := checkpoint.NewVerifier("provledger.local/dev", pub)
	seed := sha256.Sum256([]byte("provd witness test"))
	ws, _ := cosignature.NewSigner("witness.test/w1", ed25519.NewKeyFromSeed(seed[:]), nil)
	wsrv, err := witness.New(witness.Config{Signer: ws, Store: &witness.MemStore{}, Logs: []witness.Log{{Origin: lv.Name(), Verifier: lv}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(wsrv)
	defer hs.Close()

	n := startRun(t, "--dev", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn",
		"--witness", hs.URL+"="+ws.VerifierKey(), "--witness-interval", "50ms")
	wv, _ := cosignature.ParseVerifierKey(ws.VerifierKey())
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := http.Get("http://" + n.httpAddr + "/checkpoint")
		if err == nil && r.StatusCode == 200 {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			got, err := cosignature.Verify(b, []*cosignature.Verifier{wv})
			if err != nil || len(got) != 1 || !strings.HasPrefix(string(b), "provledger.local/dev\n") {
				t.Fatalf("/checkpoint: %q %v %v", b, got, err)
			}
			if _, err := checkpoint.Open(b, lv); err != nil {
				t.Fatalf("the cosigned checkpoint is not signed by the log: %v", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cosigned checkpoint published: %v %v", err, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
