// Package certgen makes the certificates of a TLS cluster with nothing
// but the Go standard library: certificate authorities, node certificates
// (server and client use, for Raft and for the API) and client
// certificates (mutual TLS to the API). It backs `provd certs` and the
// tests; production clusters usually take their certificates from their
// own PKI (cert-manager, Vault, step-ca) instead.
//
// Keys are ECDSA P-256; files are PEM ("CERTIFICATE", "PRIVATE KEY" in
// PKCS #8), written atomically (a rename), keys with mode 0600.
package certgen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// ErrNotCA is returned by LoadAuthority for a certificate that may not
// sign others.
var ErrNotCA = errors.New("certgen: not a CA certificate")

// backdate is how far NotBefore is set in the past, for clocks that are a
// little behind.
const backdate = 5 * time.Minute

// Authority is a certificate authority: its certificate and signing key.
type Authority struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewAuthority makes a self-signed CA named name, valid for validFor.
func NewAuthority(name string, validFor time.Duration) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certgen: CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validFor),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certgen: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certgen: CA certificate: %w", err)
	}
	return &Authority{Cert: cert, Key: key}, nil
}

// LoadAuthority reads a CA written by WriteAuthority.
func LoadAuthority(certFile, keyFile string) (*Authority, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certgen: CA certificate: %w", err)
	}
	blk, _ := pem.Decode(cb)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("certgen: %s holds no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certgen: %s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%w: %s", ErrNotCA, certFile)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("certgen: CA key: %w", err)
	}
	kblk, _ := pem.Decode(kb)
	if kblk == nil {
		return nil, fmt.Errorf("certgen: %s holds no PEM key", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certgen: %s: %w", keyFile, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certgen: %s: %T is not a signing key", keyFile, k)
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(signer.Public()) {
		return nil, fmt.Errorf("certgen: %s is not the key of %s", keyFile, certFile)
	}
	return &Authority{Cert: cert, Key: signer}, nil
}

// CertPEM returns the CA certificate in PEM.
func (a *Authority) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Cert.Raw})
}

// WriteAuthority writes the CA's certificate and key.
func (a *Authority) WriteAuthority(certFile, keyFile string) error {
	kp, err := keyPEM(a.Key)
	if err != nil {
		return err
	}
	return WritePair(certFile, keyFile, a.CertPEM(), kp)
}

// Request describes a certificate to issue.
type Request struct {
	// CommonName is the subject CN (e.g. the node id or client name).
	CommonName string
	// Hosts are the names the certificate is valid for: IP addresses
	// become IP SANs, anything else DNS SANs.
	Hosts []string
	// URIs are URI SANs (e.g. spiffe://provledger.local/node/n1), which
	// api/auth matches first (mtls:uri:…).
	URIs []string
	// Server and Client choose the extended key usages: a node needs
	// both (it accepts and dials), a client only Client.
	Server, Client bool
	// ValidFor is the lifetime.
	ValidFor time.Duration
}

// Issue signs a new key pair for req and returns the PEM certificate and
// PEM key.
func (a *Authority) Issue(req Request) ([]byte, []byte, error) {
	if !req.Server && !req.Client {
		return nil, nil, errors.New("certgen: a certificate needs server or client use")
	}
	if req.ValidFor <= 0 {
		return nil, nil, errors.New("certgen: ValidFor must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certgen: key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.CommonName},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(req.ValidFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if na := a.Cert.NotAfter; tmpl.NotAfter.After(na) {
		tmpl.NotAfter = na // a certificate cannot outlive its CA
	}
	if req.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if req.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	for _, h := range req.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	for _, s := range req.URIs {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" {
			return nil, nil, fmt.Errorf("certgen: URI SAN %q: want scheme:…, e.g. spiffe://domain/path", s)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("certgen: certificate for %q: %w", req.CommonName, err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp, nil
}

func keyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("certgen: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certgen: serial: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

// WritePair writes a certificate (mode 0644) and its key (0600), each
// atomically, key first: a reader that stats the pair (api/tlsreload)
// sees the old pair, a mismatch it ignores, or the new pair.
func WritePair(certFile, keyFile string, certPEM, keyPEM []byte) error {
	if err := writeAtomic(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return writeAtomic(certFile, certPEM, 0o644)
}

func writeAtomic(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("certgen: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("certgen: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("certgen: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("certgen: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("certgen: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("certgen: %w", err)
	}
	ok = true
	return nil
}
