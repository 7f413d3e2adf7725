package certgen

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestIssueVerifies(t *testing.T) {
	ca, err := NewAuthority("test cluster CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, tc := range []struct {
		name      string
		req       Request
		host      string
		usage     x509.ExtKeyUsage
		wantValid bool
	}{
		{"node as server", Request{CommonName: "n1", Hosts: []string{"127.0.0.1", "localhost"}, Server: true, Client: true, ValidFor: time.Hour}, "127.0.0.1", x509.ExtKeyUsageServerAuth, true},
		{"node as client", Request{CommonName: "n1", Hosts: []string{"127.0.0.1"}, Server: true, Client: true, ValidFor: time.Hour}, "", x509.ExtKeyUsageClientAuth, true},
		{"node by DNS name", Request{CommonName: "n1", Hosts: []string{"localhost"}, Server: true, Client: true, ValidFor: time.Hour}, "localhost", x509.ExtKeyUsageServerAuth, true},
		{"wrong host", Request{CommonName: "n1", Hosts: []string{"127.0.0.1"}, Server: true, ValidFor: time.Hour}, "10.0.0.1", x509.ExtKeyUsageServerAuth, false},
		{"client cert cannot serve", Request{CommonName: "cli", Hosts: []string{"127.0.0.1"}, Client: true, ValidFor: time.Hour}, "127.0.0.1", x509.ExtKeyUsageServerAuth, false},
		{"server-only cert cannot be a client", Request{CommonName: "srv", Server: true, ValidFor: time.Hour}, "", x509.ExtKeyUsageClientAuth, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp, kp, err := ca.Issue(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.X509KeyPair(cp, kp)
			if err != nil {
				t.Fatalf("issued certificate and key do not pair: %v", err)
			}
			_, err = pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: tc.host, KeyUsages: []x509.ExtKeyUsage{tc.usage}})
			if (err == nil) != tc.wantValid {
				t.Errorf("Verify: %v; want valid=%v", err, tc.wantValid)
			}
		})
	}
	// A certificate never outlives its CA.
	cp, kp, err := ca.Issue(Request{CommonName: "long", Client: true, ValidFor: 1000 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pair, _ := tls.X509KeyPair(cp, kp)
	if pair.Leaf.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %v after the CA's %v", pair.Leaf.NotAfter, ca.Cert.NotAfter)
	}
	// Another CA's certificates do not verify.
	other, err := NewAuthority("other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cp, kp, _ = other.Issue(Request{CommonName: "x", Client: true, ValidFor: time.Hour})
	pair, _ = tls.X509KeyPair(cp, kp)
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a certificate of another CA verified")
	}
}

func TestIssueErrors(t *testing.T) {
	ca, err := NewAuthority("ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  Request
	}{
		{"no usage", Request{CommonName: "x", ValidFor: time.Hour}},
		{"no lifetime", Request{CommonName: "x", Client: true}},
		{"URI without scheme", Request{CommonName: "x", Client: true, ValidFor: time.Hour, URIs: []string{"just-a-name"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := ca.Issue(tc.req); err == nil {
				t.Error("Issue succeeded")
			}
		})
	}
}

func TestAuthorityFiles(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewAuthority("ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := ca.WriteAuthority(crt, key); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode: %v %v; want 0600", fi.Mode(), err)
	}
	back, err := LoadAuthority(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Cert.Equal(ca.Cert) {
		t.Error("loaded CA certificate differs")
	}
	other, _ := NewAuthority("other", time.Hour)
	ocrt, okey := filepath.Join(dir, "o.crt"), filepath.Join(dir, "o.key")
	if err := other.WriteAuthority(ocrt, okey); err != nil {
		t.Fatal(err)
	}
	leafCrt, leafKey := filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
	cp, kp, _ := ca.Issue(Request{CommonName: "leaf", Client: true, ValidFor: time.Hour})
	if err := WritePair(leafCrt, leafKey, cp, kp); err != nil {
		t.Fatal(err)
	}
	writeFile := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := writeFile("garbage", "not pem")
	for _, tc := range []struct {
		name     string
		crt, key string
		is       error
	}{
		{"mismatched key", crt, okey, nil},
		{"leaf is not a CA", leafCrt, leafKey, ErrNotCA},
		{"missing cert", filepath.Join(dir, "missing"), key, os.ErrNotExist},
		{"garbage cert", garbage, key, nil},
		{"garbage key", crt, garbage, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadAuthority(tc.crt, tc.key)
			if err == nil {
				t.Fatal("LoadAuthority succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v; want %v", err, tc.is)
			}
		})
	}
}
