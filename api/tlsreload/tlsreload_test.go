package tlsreload

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf issues a certificate for 127.0.0.1 and "localhost" with the given
// serial and common name; it returns the PEM certificate and key.
func (ca *testCA) leaf(t *testing.T, serial int64, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// writeAtomic replaces path the way a rotation tool does (rename).
func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// servedSerial connects to addr trusting ca and returns the serial of the
// certificate the server presented.
func servedSerial(t *testing.T, addr string, ca *testCA) int64 {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if tc, ok := c.(*tls.Conn); ok {
					_ = tc.Handshake()
				}
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return l.Addr().String()
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1 := ca.leaf(t, 101, "node-1")
	writeAtomic(t, certPath, c1)
	writeAtomic(t, keyPath, k1)
	r, err := New(Config{CertFile: certPath, KeyFile: keyPath, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, r.ServerConfig())

	c2, k2 := ca.leaf(t, 202, "node-1")
	c3, k3 := ca.leaf(t, 303, "node-1")
	steps := []struct {
		name       string
		cert, key  []byte
		wantSerial int64
	}{
		{"initial", nil, nil, 101},
		{"rotated", c2, k2, 202},
		{"half-written rotation keeps the previous pair", c3, nil, 202},
		{"rotation completed", nil, k3, 303},
		{"garbage keeps the previous pair", []byte("not a certificate"), nil, 303},
	}
	for _, s := range steps {
		if s.cert != nil {
			writeAtomic(t, certPath, s.cert)
		}
		if s.key != nil {
			writeAtomic(t, keyPath, s.key)
		}
		if got := servedSerial(t, addr, ca); got != s.wantSerial {
			t.Fatalf("%s: served serial %d; want %d", s.name, got, s.wantSerial)
		}
	}
	if r.Reloads() != 2 {
		t.Errorf("Reloads() = %d; want 2", r.Reloads())
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	c, k := ca.leaf(t, 1, "x")
	certPath, keyPath, caPath := filepath.Join(dir, "c"), filepath.Join(dir, "k"), filepath.Join(dir, "ca")
	writeAtomic(t, certPath, c)
	writeAtomic(t, keyPath, k)
	writeAtomic(t, caPath, []byte("no pem here"))
	for _, tc := range []struct {
		name string
		cfg  Config
		is   error
	}{
		{"no files", Config{}, ErrNoCertificate},
		{"missing key", Config{CertFile: certPath, KeyFile: filepath.Join(dir, "missing")}, os.ErrNotExist},
		{"key as cert", Config{CertFile: keyPath, KeyFile: keyPath}, nil},
		{"empty CA bundle", Config{CertFile: certPath, KeyFile: keyPath, ClientCAFile: caPath}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quiet()
			_, err := New(tc.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v; want %v", err, tc.is)
			}
		})
	}
}

// TestNodeToNode checks the Listener/Dialer pair Raft's transport plugs in:
// both ends verified against the CA bundle, a stranger refused.
func TestNodeToNode(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	other := newCA(t)
	files := func(name string, ca *testCA, serial int64) Config {
		c, k := ca.leaf(t, serial, name)
		cfg := Config{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key"), ClientCAFile: filepath.Join(dir, "ca.pem"), Logger: quiet()}
		writeAtomic(t, cfg.CertFile, c)
		writeAtomic(t, cfg.KeyFile, k)
		return cfg
	}
	writeAtomic(t, filepath.Join(dir, "ca.pem"), ca.pem)
	srvR, err := New(files("node-1", ca, 1))
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis, err := srvR.Listener(inner)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4)
				if _, err := io.ReadFull(c, buf); err == nil {
					c.Write(buf)
				}
			}()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	echo := func(cfg Config) error {
		r, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		dial, err := r.Dialer("")
		if err != nil {
			t.Fatal(err)
		}
		c, err := dial(ctx, lis.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		_, err = io.ReadFull(c, buf)
		return err
	}
	if err := echo(files("node-2", ca, 2)); err != nil {
		t.Fatalf("node-2 (same CA): %v", err)
	}
	if err := echo(files("stranger", other, 3)); err == nil {
		t.Fatal("a node with a certificate from another CA was accepted")
	}

	// As gRPC uses ClientConfig(""): it sets ServerName from the target,
	// and the name is checked.
	node4, err := New(files("node-4", ca, 5))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node4.GRPCCredentials(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"localhost", true}, {"other.example", false}} {
		cfg := node4.ClientConfig("")
		cfg.ServerName = tc.name
		c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", lis.Addr().String())
		if err == nil {
			c.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("server name %s: %v; want ok=%v", tc.name, err, tc.ok)
		}
	}

	noCA := files("node-3", ca, 4)
	noCA.ClientCAFile = ""
	r, err := New(noCA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Dialer(""); !errors.Is(err, ErrNoClientCA) {
		t.Errorf("Dialer without a CA bundle: %v; want ErrNoClientCA", err)
	}
	if _, err := r.GRPCCredentials(); !errors.Is(err, ErrNoClientCA) {
		t.Errorf("GRPCCredentials without a CA bundle: %v; want ErrNoClientCA", err)
	}
	if _, err := r.Listener(inner); !errors.Is(err, ErrNoClientCA) {
		t.Errorf("Listener without a CA bundle: %v; want ErrNoClientCA", err)
	}
}

// files writes a leaf of ca to dir/name.{crt,key} and returns a Config
// naming them, with caFile as the CA bundle.
func leafConfig(t *testing.T, dir, name string, ca *testCA, serial int64, caFile string) Config {
	t.Helper()
	c, k := ca.leaf(t, serial, name)
	cfg := Config{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key"), ClientCAFile: caFile, Logger: quiet()}
	writeAtomic(t, cfg.CertFile, c)
	writeAtomic(t, cfg.KeyFile, k)
	return cfg
}

// TestAcceptClientsOf: the API's server config accepts its own clients'
// CA and, joined in, the cluster CA of the peer Reloader; VerifyPeer then
// tells the node's certificate from a client's.
func TestAcceptClientsOf(t *testing.T) {
	dir := t.TempDir()
	clientCA, clusterCA, stranger := newCA(t), newCA(t), newCA(t)
	clientCAFile, clusterCAFile := filepath.Join(dir, "client-ca.pem"), filepath.Join(dir, "cluster-ca.pem")
	writeAtomic(t, clientCAFile, clientCA.pem)
	writeAtomic(t, clusterCAFile, clusterCA.pem)
	peer, err := New(leafConfig(t, dir, "node-1", clusterCA, 1, clusterCAFile))
	if err != nil {
		t.Fatal(err)
	}
	keyPair := func(cfg Config) []tls.Certificate {
		c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{c}
	}
	clientCert := keyPair(leafConfig(t, dir, "client", clientCA, 2, ""))
	nodeCert := keyPair(leafConfig(t, dir, "node-2", clusterCA, 3, ""))
	strangerCert := keyPair(leafConfig(t, dir, "stranger", stranger, 4, ""))

	for _, tc := range []struct {
		name     string
		ownCA    string // the API's --tls-client-ca
		optional bool
		cert     []tls.Certificate
		wantOK   bool
		wantPeer bool // VerifyPeer accepts the presented chain
	}{
		{"API client CA: client", clientCAFile, false, clientCert, true, false},
		{"API client CA: node", clientCAFile, false, nodeCert, true, true},
		{"API client CA: stranger", clientCAFile, false, strangerCert, false, false},
		{"API client CA: no certificate", clientCAFile, false, nil, false, false},
		{"optional client CA: no certificate", clientCAFile, true, nil, true, false},
		{"no API client CA: no certificate", "", false, nil, true, false},
		{"no API client CA: node", "", false, nodeCert, true, true},
		{"no API client CA: stranger", "", false, strangerCert, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := leafConfig(t, dir, "api", clientCA, 10, tc.ownCA)
			cfg.ClientCertOptional = tc.optional
			api, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			api.AcceptClientsOf(peer)
			sc := api.ServerConfig()
			got := make(chan []*x509.Certificate, 1)
			l, err := tls.Listen("tcp", "127.0.0.1:0", sc)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err != nil {
					got <- nil
					return
				}
				defer c.Close()
				tc := c.(*tls.Conn)
				if tc.Handshake() != nil {
					got <- nil
					return
				}
				got <- tc.ConnectionState().PeerCertificates
				c.Write([]byte("k")) // tells the client it was accepted
				io.Copy(io.Discard, c)
			}()
			pool := x509.NewCertPool()
			pool.AddCert(clientCA.cert)
			c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: tc.cert})
			if err == nil {
				// TLS 1.3: the server's verdict on the client arrives
				// with the first read (its byte, or an alert).
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err = io.ReadFull(c, make([]byte, 1))
				c.Close()
			}
			if (err == nil) != tc.wantOK {
				t.Fatalf("handshake: %v; want ok=%v", err, tc.wantOK)
			}
			chain := <-got
			if !tc.wantOK {
				return
			}
			perr := peer.VerifyPeer(chain)
			if (perr == nil) != tc.wantPeer {
				t.Errorf("VerifyPeer: %v; want peer=%v", perr, tc.wantPeer)
			}
			if perr != nil && !errors.Is(perr, ErrNotPeer) {
				t.Errorf("VerifyPeer: %v does not wrap ErrNotPeer", perr)
			}
		})
	}
}

func TestVerifyCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t), newCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	writeAtomic(t, caFile, ca.pem)
	r, err := New(leafConfig(t, dir, "node", ca, 1, caFile))
	if err != nil {
		t.Fatal(err)
	}
	own := r.Certificate()
	o, err := New(leafConfig(t, dir, "other", other, 2, ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		cert  *tls.Certificate
		host  string
		usage x509.ExtKeyUsage
		ok    bool
	}{
		{"own as server for its IP", own, "127.0.0.1", x509.ExtKeyUsageServerAuth, true},
		{"own as client", own, "", x509.ExtKeyUsageClientAuth, true},
		{"own for a name it lacks", own, "10.1.2.3", x509.ExtKeyUsageServerAuth, false},
		{"another CA's", o.Certificate(), "", x509.ExtKeyUsageClientAuth, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.VerifyCertificate(tc.cert, tc.host, tc.usage)
			if (err == nil) != tc.ok {
				t.Errorf("%v; want ok=%v", err, tc.ok)
			}
		})
	}
	if err := o.VerifyCertificate(own, "", x509.ExtKeyUsageClientAuth); !errors.Is(err, ErrNoClientCA) {
		t.Errorf("without a CA bundle: %v; want ErrNoClientCA", err)
	}
	if err := o.VerifyPeer(nil); !errors.Is(err, ErrNoClientCA) {
		t.Errorf("VerifyPeer without a CA bundle: %v; want ErrNoClientCA", err)
	}
	if err := r.VerifyPeer(nil); !errors.Is(err, ErrNotPeer) {
		t.Errorf("VerifyPeer(nil): %v; want ErrNotPeer", err)
	}
}

// TestListenerHandshakeTimeout: a peer that connects and sends nothing is
// cut off after the handshake timeout instead of holding the connection.
func TestListenerHandshakeTimeout(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	writeAtomic(t, caFile, ca.pem)
	cfg := leafConfig(t, dir, "node", ca, 1, caFile)
	cfg.HandshakeTimeout = 50 * time.Millisecond
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis, _ := r.Listener(inner)
	defer lis.Close()
	res := make(chan error, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			res <- err
			return
		}
		defer c.Close()
		_, err = c.Read(make([]byte, 1))
		res <- err
	}()
	idle, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := <-res; err == nil {
		t.Fatal("a connection that never handshook was read from")
	}
	// The server closed it: the idle client reads EOF (or a reset).
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Error("the idle connection was not closed")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the idle connection was not closed by the server")
	}
}
