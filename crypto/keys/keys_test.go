package keys

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// opensslIDs reads testdata/ids.txt: key ids computed with
// `openssl pkey -pubin -outform DER | sha256sum`.
func opensslIDs(t *testing.T) map[string]string {
	t.Helper()
	ids := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, "ids.txt")))
	for sc.Scan() {
		id, name, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			t.Fatalf("bad ids.txt line %q", sc.Text())
		}
		ids[name] = id
	}
	return ids
}

func TestKeyIDStringParse(t *testing.T) {
	var id KeyID
	for i := range id {
		id[i] = byte(i * 7)
	}
	s := id.String()
	if len(s) != 64 || strings.ToLower(s) != s {
		t.Fatalf("String() = %q", s)
	}
	got, err := ParseKeyID(s)
	if err != nil || got != id {
		t.Fatalf("ParseKeyID(String()) = %v, %v", got, err)
	}
	for _, bad := range []string{
		"",
		s[:63],
		s + "0",
		strings.ToUpper(s),
		"sha256:" + s[7:],
		strings.Repeat("g", 64),
		" " + s[1:],
	} {
		if _, err := ParseKeyID(bad); !errors.Is(err, ErrBadKeyID) {
			t.Errorf("ParseKeyID(%q) error = %v, want ErrBadKeyID", bad, err)
		}
	}
}

func TestOpensslFixtures(t *testing.T) {
	ids := opensslIDs(t)
	tests := []struct {
		priv, pub string
		typ       string
	}{
		{"ec-p256-params.pem", "ec-p256.pub.pem", "*ecdsa.PrivateKey"},
		{"ec-p384-sec1.pem", "ec-p384-sec1.pub.pem", "*ecdsa.PrivateKey"},
		{"ed25519-pkcs8.pem", "ed25519-pkcs8.pub.pem", "ed25519.PrivateKey"},
		{"rsa2048-pkcs1.pem", "rsa2048-pkcs1.pub.pem", "*rsa.PrivateKey"},
	}
	for _, tt := range tests {
		t.Run(tt.priv, func(t *testing.T) {
			priv, err := ParsePrivatePEM(readFile(t, tt.priv))
			if err != nil {
				t.Fatal(err)
			}
			if got := typeName(priv); got != tt.typ {
				t.Errorf("type %s, want %s", got, tt.typ)
			}
			pub, err := ParsePublicPEM(readFile(t, tt.pub))
			if err != nil {
				t.Fatal(err)
			}
			idPriv, err := IDOf(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			idPub, err := IDOf(pub)
			if err != nil {
				t.Fatal(err)
			}
			if idPriv != idPub {
				t.Errorf("id of private key's public half %s != id of public key %s", idPriv, idPub)
			}
			if want := ids[tt.pub]; idPub.String() != want {
				t.Errorf("IDOf = %s, openssl says %s", idPub, want)
			}
			// Re-encode and re-parse: same key, same id.
			pemPriv, err := MarshalPrivatePEM(priv)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(pemPriv, []byte("-----BEGIN PRIVATE KEY-----\n")) {
				t.Errorf("MarshalPrivatePEM wrote %q", firstLine(pemPriv))
			}
			priv2, err := ParsePrivatePEM(pemPriv)
			if err != nil {
				t.Fatal(err)
			}
			if !priv2.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Error("round-tripped private key does not match the public key")
			}
			pemPub, err := MarshalPublicPEM(pub)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pemPub, readFile(t, tt.pub)) {
				t.Errorf("MarshalPublicPEM differs from openssl's output:\n%s", pemPub)
			}
			// Sign and verify through sigstore.
			signAndVerify(t, priv)
		})
	}
}

func typeName(k any) string {
	switch k.(type) {
	case ed25519.PrivateKey:
		return "ed25519.PrivateKey"
	case *ecdsa.PrivateKey:
		return "*ecdsa.PrivateKey"
	case *rsa.PrivateKey:
		return "*rsa.PrivateKey"
	}
	return "other"
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\n"))
	return string(l)
}

func signAndVerify(t *testing.T, priv crypto.Signer) {
	t.Helper()
	s, err := NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("DSSEv1 4 test 5 hello")
	sig, err := s.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := NewVerifiers(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if !anyVerifies(vs, sig, msg) {
		t.Fatal("signature from NewSigner does not verify with NewVerifiers")
	}
	if anyVerifies(vs, sig, append(msg, '!')) {
		t.Fatal("signature verifies over a different message")
	}
}

func anyVerifies(vs []signature.Verifier, sig, msg []byte) bool {
	for _, v := range vs {
		if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)) == nil {
			return true
		}
	}
	return false
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		alg     string
		wantErr error
		check   func(crypto.Signer) bool
	}{
		{"", nil, func(k crypto.Signer) bool { _, ok := k.(ed25519.PrivateKey); return ok }},
		{"ed25519", nil, func(k crypto.Signer) bool { _, ok := k.(ed25519.PrivateKey); return ok }},
		{"ecdsa-p256", nil, func(k crypto.Signer) bool { return k.(*ecdsa.PrivateKey).Curve == elliptic.P256() }},
		{"ecdsa-p384", nil, func(k crypto.Signer) bool { return k.(*ecdsa.PrivateKey).Curve == elliptic.P384() }},
		{"rsa-2048", nil, func(k crypto.Signer) bool { return k.(*rsa.PrivateKey).N.BitLen() == 2048 }},
		{"rsa-3072", nil, func(k crypto.Signer) bool { return k.(*rsa.PrivateKey).N.BitLen() == 3072 }},
		{"ecdsa-p521", ErrUnsupportedKey, nil},
		{"rsa-1024", ErrUnsupportedKey, nil},
		{"Ed25519", ErrUnsupportedKey, nil},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			k, err := Generate(tt.alg)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Generate(%q) error = %v, want %v", tt.alg, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(k) {
				t.Fatalf("Generate(%q) gave %T", tt.alg, k)
			}
			signAndVerify(t, k)
			b, err := MarshalPrivatePEM(k)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := ParsePrivatePEM(b)
			if err != nil {
				t.Fatal(err)
			}
			id1, _ := IDOf(k.Public())
			id2, _ := IDOf(k2.Public())
			if id1 != id2 {
				t.Fatal("PEM round trip changed the key id")
			}
		})
	}
}

func TestIDOf(t *testing.T) {
	pub := ed25519.PublicKey(bytes.Repeat([]byte{1}, 32))
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	id, err := IDOf(pub)
	if err != nil {
		t.Fatal(err)
	}
	if id != KeyID(sha256.Sum256(der)) {
		t.Fatal("IDOf is not SHA-256 of the PKIX DER")
	}
	for _, bad := range []crypto.PublicKey{nil, ed25519.PublicKey{1, 2, 3}, "a string", &ecdsa.PublicKey{}} {
		if _, err := IDOf(bad); !errors.Is(err, ErrUnsupportedKey) {
			t.Errorf("IDOf(%T) error = %v, want ErrUnsupportedKey", bad, err)
		}
	}
}

func TestParsePrivatePEMErrors(t *testing.T) {
	ed := readFile(t, "ed25519-pkcs8.pem")
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrNoPEM},
		{"text", []byte("not a key"), ErrNoPEM},
		{"only ec params", []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"), ErrNoPEM},
		{"public key", readFile(t, "ed25519-pkcs8.pub.pem"), ErrBadPEM},
		{"two keys", append(append([]byte{}, ed...), ed...), ErrBadPEM},
		{"truncated", ed[:len(ed)-10], ErrBadPEM},
		{"bad der", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 1, 2, 3}}), ErrBadPEM},
		{"p521", readFile(t, "ec-p521-sec1.pem"), ErrUnsupportedKey},
		{"rsa1024", readFile(t, "rsa1024-pkcs8.pem"), ErrUnsupportedKey},
		{"x25519", readFile(t, "x25519-pkcs8.pem"), ErrUnsupportedKey},
		{"pkcs8 encrypted", readFile(t, "ed25519-encrypted.pem"), ErrUnsupportedKey},
		{"legacy encrypted", readFile(t, "rsa2048-legacy-encrypted.pem"), ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePrivatePEM(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParsePrivatePEM error = %v (key %T), want %v", err, k, tt.want)
			}
		})
	}
}

func TestParsePrivatePEMWithText(t *testing.T) {
	// openssl genpkey -text style: text around the block is ignored.
	in := append([]byte("comment line\n"), readFile(t, "ed25519-pkcs8.pem")...)
	in = append(in, "trailing text\n"...)
	if _, err := ParsePrivatePEM(in); err != nil {
		t.Fatal(err)
	}
}

func TestParsePublicPEMs(t *testing.T) {
	ed := readFile(t, "ed25519-pkcs8.pub.pem")
	ec := readFile(t, "ec-p256.pub.pem")
	rs := readFile(t, "rsa2048-pkcs1.pub.pem")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name string
		in   []byte
		n    int
		want error
		one  error // ParsePublicPEM's error
	}{
		{"empty", nil, 0, nil, ErrNoPEM},
		{"comment only", []byte("# nothing trusted yet\n"), 0, nil, ErrNoPEM},
		{"one", ed, 1, nil, nil},
		{"three with comments", cat([]byte("# alice\n"), ed, []byte("# bob\n"), ec, rs), 3, nil, ErrBadPEM},
		{"duplicate", cat(ed, ed), 2, nil, ErrBadPEM},
		{"private key block", cat(ed, readFile(t, "ed25519-pkcs8.pem")), 0, ErrBadPEM, ErrBadPEM},
		{"truncated second", cat(ed, ec[:len(ec)-20]), 0, ErrBadPEM, ErrBadPEM},
		{"bad der", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), 0, ErrBadPEM, ErrBadPEM},
		{"rsa1024", mustPubPEM(t, "rsa1024-pkcs8.pem"), 0, ErrUnsupportedKey, ErrUnsupportedKey},
		{"p521", mustPubPEM(t, "ec-p521-sec1.pem"), 0, ErrUnsupportedKey, ErrUnsupportedKey},
		{"x25519", mustPubPEM(t, "x25519-pkcs8.pem"), 0, ErrUnsupportedKey, ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pubs, err := ParsePublicPEMs(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParsePublicPEMs error = %v, want %v", err, tt.want)
			}
			if err == nil && len(pubs) != tt.n {
				t.Fatalf("got %d keys, want %d", len(pubs), tt.n)
			}
			_, err = ParsePublicPEM(tt.in)
			if !errors.Is(err, tt.one) {
				t.Fatalf("ParsePublicPEM error = %v, want %v", err, tt.one)
			}
		})
	}
}

// mustPubPEM derives a PUBLIC KEY block from a private key fixture without
// going through the package (which would refuse it).
func mustPubPEM(t *testing.T, name string) []byte {
	t.Helper()
	var der []byte
	for rest := readFile(t, name); ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		var k any
		var err error
		switch blk.Type {
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		der, err = x509.MarshalPKIXPublicKey(k.(interface{ Public() crypto.PublicKey }).Public())
		if err != nil {
			t.Fatal(err)
		}
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestMarshalRejectsUnsupported(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MarshalPrivatePEM(small); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("MarshalPrivatePEM(rsa-1024) error = %v", err)
	}
	if _, err := MarshalPublicPEM(&small.PublicKey); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("MarshalPublicPEM(rsa-1024) error = %v", err)
	}
	if _, err := NewSigner(small); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("NewSigner(rsa-1024) error = %v", err)
	}
	if _, err := NewVerifiers(&small.PublicKey); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("NewVerifiers(rsa-1024) error = %v", err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigner(p521); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("NewSigner(p521) error = %v", err)
	}
	if _, err := NewSigner(nil); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("NewSigner(nil) error = %v", err)
	}
	if _, err := NewSigner(ed25519.PrivateKey{1, 2}); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("NewSigner(short ed25519) error = %v", err)
	}
}

func TestRSAVerifiersAcceptPSS(t *testing.T) {
	priv, err := ParsePrivatePEM(readFile(t, "rsa2048-pkcs1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("message")
	h := sha256.Sum256(msg)
	sig, err := rsa.SignPSS(rand.Reader, priv.(*rsa.PrivateKey), crypto.SHA256, h[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := NewVerifiers(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 {
		t.Fatalf("%d RSA verifiers, want 2", len(vs))
	}
	if !anyVerifies(vs, sig, msg) {
		t.Fatal("PSS signature rejected")
	}
}

func TestKeyring(t *testing.T) {
	edPub, err := ParsePublicPEM(readFile(t, "ed25519-pkcs8.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	rsPub, err := ParsePublicPEM(readFile(t, "rsa2048-pkcs1.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKeyring(edPub, edPub)
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 1 {
		t.Fatalf("Len = %d after adding one key twice", k.Len())
	}
	rsID, err := k.Add(rsPub)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := IDOf(rsPub)
	if rsID != want {
		t.Fatal("Add returned the wrong id")
	}
	if got, ok := k.Lookup(rsID); !ok || !got.(*rsa.PublicKey).Equal(rsPub) {
		t.Fatal("Lookup failed")
	}
	if vs, ok := k.Verifiers(rsID); !ok || len(vs) != 2 {
		t.Fatalf("Verifiers = %d, %v", len(vs), ok)
	}
	if _, ok := k.Lookup(KeyID{}); ok {
		t.Fatal("Lookup of unknown id succeeded")
	}
	if _, ok := k.Verifiers(KeyID{}); ok {
		t.Fatal("Verifiers of unknown id succeeded")
	}
	if ids := k.IDs(); len(ids) != 2 {
		t.Fatalf("IDs = %v", ids)
	}
	if _, err := k.Add(ed25519.PublicKey{1}); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("Add(bad) error = %v", err)
	}
	if k.Len() != 2 {
		t.Fatal("failed Add changed the keyring")
	}
	if _, err := NewKeyring(edPub, "junk"); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("NewKeyring(junk) error = %v", err)
	}
	var nilRing *Keyring
	if nilRing.Len() != 0 {
		t.Fatal("nil keyring not empty")
	}
	if _, ok := nilRing.Lookup(rsID); ok {
		t.Fatal("nil keyring lookup succeeded")
	}
	var zero Keyring
	if _, err := zero.Add(edPub); err != nil || zero.Len() != 1 {
		t.Fatal("zero Keyring unusable")
	}
}

func TestKeyringConcurrent(t *testing.T) {
	k, _ := NewKeyring()
	var wg sync.WaitGroup
	ids := make([]KeyID, 8)
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			priv, err := Generate("ed25519")
			if err != nil {
				t.Error(err)
				return
			}
			id, err := k.Add(priv.Public())
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				k.Lookup(KeyID{byte(i)})
				k.Verifiers(KeyID{byte(i)})
				k.Len()
			}
		}()
	}
	wg.Wait()
	if k.Len() != 8 {
		t.Fatalf("Len = %d, want 8", k.Len())
	}
	for _, id := range ids {
		if _, ok := k.Verifiers(id); !ok {
			t.Fatalf("key %s missing", id)
		}
	}
}

func TestLoadKeyringFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKeyringFile(filepath.Join(dir, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file error = %v", err)
	}
	path := filepath.Join(dir, "trust.pem")
	body := bytes.Join([][]byte{
		[]byte("# trusted pipeline keys\n"),
		readFile(t, "ed25519-pkcs8.pub.pem"),
		readFile(t, "ec-p384-sec1.pub.pem"),
		readFile(t, "rsa2048-pkcs1.pub.pem"),
	}, nil)
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeyringFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 3 {
		t.Fatalf("Len = %d, want 3", k.Len())
	}
	for name, hexID := range opensslIDs(t) {
		id, err := ParseKeyID(hexID)
		if err != nil {
			t.Fatal(err)
		}
		_, ok := k.Lookup(id)
		if want := name != "ec-p256.pub.pem"; ok != want {
			t.Errorf("Lookup(%s) = %v, want %v", name, ok, want)
		}
	}
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := LoadKeyringFile(empty); err != nil || k.Len() != 0 {
		t.Fatalf("empty trust file: %v, %v", k, err)
	}
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, mustPubPEM(t, "rsa1024-pkcs8.pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyringFile(bad); !errors.Is(err, ErrUnsupportedKey) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad trust file error = %v", err)
	}
}
