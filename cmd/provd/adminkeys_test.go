package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provledger/provledger/crypto/keys"
)

func TestLoadAdminKeys(t *testing.T) {
	dir := t.TempDir()
	seed := sha256.Sum256([]byte("provd admin key"))
	pub := ed25519.NewKeyFromSeed(seed[:]).Public()
	pemb, err := keys.MarshalPublicPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	id, err := keys.IDOf(pub)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, path, err string
	}{
		{"no flag", "", ""},
		{"one key", write("admins.pem", string(pemb)), ""},
		{"missing file", filepath.Join(dir, "nope.pem"), "--admin-keys"},
		{"not PEM", write("bad.pem", "hello"), "PEM"},
		{"empty", write("empty.pem", ""), "no PEM public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := keys.NewKeyring()
			if err != nil {
				t.Fatal(err)
			}
			ak, err := loadAdminKeys(tc.path, kr)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.path == "" {
				if ak != nil {
					t.Fatal("admin keys without --admin-keys")
				}
				return
			}
			if !ak.IsAdmin(id, 0) || ak.IsAdmin([32]byte{1}, 0) {
				t.Fatal("the admin set does not hold exactly the file's key")
			}
			if _, ok := kr.Lookup(id); !ok {
				t.Fatal("the admin key is not trusted for signatures")
			}
		})
	}
}
