package main

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/provledger/provledger/api/provledgerpb"
	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
)

// testPayloadType is accepted by a node with the default payload types.
const testPayloadType = "application/vnd.in-toto+json"

// binDir holds the provd binary built once per test run (see provdBinary).
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	// The tests set PROVLEDGER_* themselves; ambient ones would change what
	// every node in this package does.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PROVLEDGER_") {
			os.Unsetenv(k)
		}
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// provdBinary builds ./cmd/provd once per test run and returns its path.
func provdBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "provd-test-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "provd")
		goTool := "go"
		if root := os.Getenv("GOROOT"); root != "" {
			if p := filepath.Join(root, "bin", "go"); fileExists(p) {
				goTool = p
			}
		}
		cmd := exec.Command(goTool, "build", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/provd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitServing polls the gRPC health service at addr until it answers
// SERVING, failing the test after timeout or as soon as exited is closed.
func waitServing(t testing.TB, addr string, timeout time.Duration, exited <-chan struct{}, logs fmt.Stringer) {
	t.Helper()
	// Retry the connection quickly: the node may not listen yet.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.5, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("provd exited before serving; its log:\n%s", logs)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if err == nil {
			err = fmt.Errorf("health status %v", resp.GetStatus())
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("provd at %s not SERVING after %v (last: %v); its log:\n%s", addr, timeout, last, logs)
}

// testSigner is an Ed25519 key that signs DSSE envelopes.
type testSigner struct {
	priv   crypto.Signer
	signer signature.Signer
	pubPEM []byte
	id     keys.KeyID
}

func newTestSigner(t testing.TB) *testSigner {
	t.Helper()
	k, err := keys.Generate("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	s, err := keys.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.MarshalPublicPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	id, err := keys.IDOf(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &testSigner{priv: k, signer: s, pubPEM: pub, id: id}
}

// statement returns a signed in-toto Statement envelope whose subject is
// name (so distinct names give distinct envelopes).
func (s *testSigner) statement(name string) (*envelope.Envelope, error) {
	payload := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":%q,"digest":{"sha256":"%064x"}}],"predicateType":"https://provledger.dev/test/v1","predicate":{}}`, name, len(name))
	return envelope.Sign(testPayloadType, []byte(payload), s.signer)
}

// appendRequest builds an Append of env as DSSE JSON, sending the signer's
// public key when withKey (so a --dev node trusts it on first use).
func (s *testSigner) appendRequest(env *envelope.Envelope, withKey bool) *provledgerpb.AppendRequest {
	req := &provledgerpb.AppendRequest{
		Namespace: "provd-test",
		Body:      &provledgerpb.AppendRequest_DsseJson{DsseJson: env.Marshal()},
	}
	if withKey {
		req.PublicKeys = [][]byte{s.pubPEM}
	}
	return req
}
