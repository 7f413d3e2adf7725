package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/client"
	"github.com/provledger/provledger/api/service"
)

// certAuthority issues the certificates of one test.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCertAuthority(t *testing.T) *certAuthority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "provd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &certAuthority{cert: c, key: key}
}

func (ca *certAuthority) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

func (ca *certAuthority) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue writes a certificate (for 127.0.0.1, with uri as URI SAN if set)
// and its key to dir/name.crt and dir/name.key.
func (ca *certAuthority) issue(t *testing.T, dir, name string, serial int64, uri string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if uri != "" {
		u, _ := url.Parse(uri)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	for p, b := range map[string][]byte{
		certPath: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPath:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}),
	} {
		if err := writeFileAtomic(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certPath, keyPath
}

// TestTLSAuthEndToEnd runs provd with TLS (optional client certificates)
// and a tokens file: a token for namespace A cannot append to B, a client
// certificate authenticates, audit reads are public, and a rotated server
// certificate is served without a restart.
func TestTLSAuthEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ca := newCertAuthority(t)
	srvCert, srvKey := ca.issue(t, dir, "server", 10, "")
	cliCert, cliKey := ca.issue(t, dir, "ci", 20, "spiffe://test/ci")
	caPath := filepath.Join(dir, "ca.pem")
	tokens := filepath.Join(dir, "tokens")
	s := newTestSigner(t)
	if err := os.WriteFile(caPath, ca.pem(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokens, []byte(strings.Join([]string{
		"# test principals",
		"team-a " + auth.HashToken("tok-a"),
		"ci mtls:uri:spiffe://test/ci roles=appender ns=ci keys=" + s.id.String(),
		"reader " + auth.HashToken("tok-r") + " roles=reader",
	}, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startRun(t, "--dev", "--data", filepath.Join(dir, "data"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "",
		"--tls-cert", srvCert, "--tls-key", srvKey, "--tls-client-ca", caPath, "--tls-client-cert-optional", "--auth-tokens", tokens, "--log-level", "warn")
	if !strings.Contains(n.stdout.String(), "https://"+n.httpAddr+"/checkpoint") {
		t.Errorf("banner does not show the HTTPS URL:\n%s", n.stdout.String())
	}
	v := n.verifier(t)

	dialTLS := func(withCert bool) *client.Client {
		cfg := &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"}
		if withCert {
			c, err := tls.LoadX509KeyPair(cliCert, cliKey)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		c, err := client.Dial(context.Background(), n.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	tlsClient, certClient := dialTLS(false), dialTLS(true)
	plain := n.dial(t)

	appendAs := func(c *client.Client, token, ns, name string, withKey bool) error {
		env, err := s.statement(name)
		if err != nil {
			t.Fatal(err)
		}
		req := s.appendRequest(env, withKey)
		req.Namespace = ns
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		_, err = c.Append(ctx, req)
		return err
	}
	for _, tc := range []struct {
		name         string
		c            *client.Client
		token, ns    string
		want         codes.Code
		wantAnyNonOK bool
	}{
		{name: "plaintext to a TLS node", c: plain, token: "tok-a", ns: "team-a", wantAnyNonOK: true},
		{name: "no credentials", c: tlsClient, ns: "team-a", want: codes.Unauthenticated},
		{name: "token A to A", c: tlsClient, token: "tok-a", ns: "team-a", want: codes.OK},
		{name: "token A to B", c: tlsClient, token: "tok-a", ns: "team-b", want: codes.PermissionDenied},
		{name: "reader appends", c: tlsClient, token: "tok-r", ns: "team-a", want: codes.PermissionDenied},
		{name: "client certificate to its namespace", c: certClient, ns: "ci", want: codes.OK},
		{name: "client certificate elsewhere", c: certClient, ns: "team-a", want: codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := appendAs(tc.c, tc.token, tc.ns, "e2e-"+tc.name, true)
			if tc.wantAnyNonOK {
				if err == nil {
					t.Fatal("succeeded")
				}
				return
			}
			if got := status.Code(err); got != tc.want {
				t.Errorf("%v; want %v", err, tc.want)
			}
		})
	}
	// Audit reads are public; entries need the reader role.
	ctx := context.Background()
	if _, err := tlsClient.GetCheckpoint(ctx, nil); err != nil {
		t.Errorf("anonymous GetCheckpoint: %v", err)
	}
	if _, err := appendOne(t, certClient, v, s, "receipt-check", false); status.Code(err) != codes.PermissionDenied {
		t.Errorf("append to provd-test by ci: %v; want PermissionDenied", err)
	}

	httpsGet := func(path string) (int, *x509.Certificate) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}, DisableKeepAlives: true}}
		resp, err := c.Get("https://" + n.httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.TLS.PeerCertificates[0]
	}
	code, cert := httpsGet("/checkpoint")
	if code != 200 || cert.SerialNumber.Int64() != 10 {
		t.Fatalf("GET /checkpoint: %d, serial %v", code, cert.SerialNumber)
	}
	if code, _ := httpsGet("/tile/entries/000.p/1"); code != 401 {
		t.Errorf("anonymous entry bundle: %d; want 401", code)
	}

	// Rotate the server certificate in place: new connections get it.
	ca.issue(t, dir, "server", 11, "")
	if _, cert := httpsGet("/checkpoint"); cert.SerialNumber.Int64() != 11 {
		t.Errorf("after rotation the node serves serial %v; want 11", cert.SerialNumber)
	}
}

// TestSlowlorisHTTP: a client that trickles its request headers is cut
// off (ReadHeaderTimeout) instead of holding the connection forever.
func TestSlowlorisHTTP(t *testing.T) {
	n := startRun(t, "--dev", "--data", t.TempDir(), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "", "--log-level", "warn")
	conn, err := net.Dial("tcp", n.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /checkpoint HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, conn) // returns when the server closes
		closed <- err
	}()
	// Keep trickling a header line at a time, far longer than the
	// server's header timeout; stop as soon as the server hangs up.
	giveUp := time.After(60 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-closed:
			return
		case <-giveUp:
			t.Fatal("the server still holds a connection whose headers never end after 60 s")
		case <-time.After(500 * time.Millisecond):
			if _, err := conn.Write([]byte("X-Slow-" + strings.Repeat("a", i%10) + ": 1\r\n")); err != nil {
				return // closed by the server
			}
		}
	}
}

func TestTokenCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"token", "new", "team-a", "roles=appender", "ns=team-a,team-a/*"}, &out, &errb); code != 0 {
		t.Fatalf("token new: %d %s", code, &errb)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "plt_") {
		t.Fatalf("token new printed:\n%s", &out)
	}
	tok, line := lines[1], lines[3]
	ps, err := auth.ParseFile([]byte(line))
	if err != nil {
		t.Fatalf("the printed line does not parse: %v", err)
	}
	a, err := auth.New(auth.Config{Principals: ps})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.Authenticate(auth.Credentials{HasBearer: true, Bearer: tok}); err != nil || !p.MayAppendTo("team-a/x") {
		t.Errorf("the printed token: %v %v", p, err)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"token", "hash", "secret"}, 0, auth.HashToken("secret") + "\n"},
		{[]string{"token", "new", "bad name!"}, 2, ""},
		{[]string{"token", "new", "x", "roles=root"}, 2, ""},
		{[]string{"token", "frob"}, 2, ""},
		{[]string{"token"}, 2, ""},
	} {
		out.Reset()
		if code := run(context.Background(), tc.args, &out, io.Discard); code != tc.code || (tc.out != "" && out.String() != tc.out) {
			t.Errorf("provd %q: %d %q; want %d %q", tc.args, code, out.String(), tc.code, tc.out)
		}
	}
}

func TestRequestIDInLogs(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		c := &config{logFormat: format, logLevel: "info"}
		lg := c.logger(&buf)
		lg.InfoContext(service.WithRequestID(context.Background(), "req-42"), "hello")
		lg.With("k", "v").InfoContext(service.WithRequestID(context.Background(), "req-43"), "again", "request_id", "req-43")
		lg.Info("no context")
		out := buf.String()
		if !strings.Contains(out, "req-42") || strings.Count(out, "req-43") != 1 || strings.Count(out, "request_id") != 2 {
			t.Errorf("%s logs:\n%s", format, out)
		}
	}
}

func TestHTTPRequestID(t *testing.T) {
	n := startRun(t, "--dev", "--data", t.TempDir(), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "", "--log-level", "warn")
	for _, tc := range []struct{ sent, want string }{{"", ""}, {"client-7", "client-7"}, {"bad id", ""}} {
		req, _ := http.NewRequest("GET", "http://"+n.httpAddr+"/checkpoint", nil)
		if tc.sent != "" {
			req.Header.Set("X-Request-Id", tc.sent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("X-Request-Id")
		if got == "" || (tc.want != "" && got != tc.want) || (tc.want == "" && got == tc.sent) {
			t.Errorf("sent %q: X-Request-Id %q; want %q (or a new one)", tc.sent, got, tc.want)
		}
	}
}

// TestTokensReloadOnHangup: SIGHUP re-reads --auth-tokens: a new token
// works, a removed one stops working, and a broken file changes nothing.
func TestTokensReloadOnHangup(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	write := func(lines ...string) {
		t.Helper()
		if err := writeFileAtomic(tokens, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("team-a " + auth.HashToken("tok-a"))
	n := startRun(t, "--dev", "--data", filepath.Join(dir, "data"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "",
		"--auth-tokens", tokens, "--log-level", "warn")
	c := n.dial(t)
	s := newTestSigner(t)
	i := 0
	appendAs := func(tok, ns string) codes.Code {
		i++
		env, err := s.statement(fmt.Sprintf("reload-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		req := s.appendRequest(env, true)
		req.Namespace = ns
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = c.Append(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok), req)
		return status.Code(err)
	}
	// hangup sends SIGHUP and waits until the node answers as expected.
	hangup := func(tok, ns string, want codes.Code) {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for appendAs(tok, ns) != want {
			if time.Now().After(deadline) {
				t.Fatalf("after SIGHUP, %s appending to %s is not %v; log:\n%s", tok, ns, want, &n.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if got := appendAs("tok-b", "team-b"); got != codes.Unauthenticated {
		t.Fatalf("tok-b before reload: %v", got)
	}
	write("team-a "+auth.HashToken("tok-a"), "team-b "+auth.HashToken("tok-b"))
	hangup("tok-b", "team-b", codes.OK)
	write("team-b " + auth.HashToken("tok-b")) // revoke tok-a
	hangup("tok-a", "team-a", codes.Unauthenticated)
	write("team-b sha256:not-a-hash")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(n.stderr.String(), "tokens file not reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("a broken tokens file was not reported; log:\n%s", &n.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := appendAs("tok-b", "team-b"); got != codes.OK {
		t.Errorf("tok-b after a broken reload: %v; the previous principals should stay", got)
	}
}
