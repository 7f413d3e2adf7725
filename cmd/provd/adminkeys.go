package main

import (
	"fmt"
	"os"

	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/ledger"
)

// loadAdminKeys reads --admin-keys: the PEM public keys that may sign
// redaction entries. They are added to the trust keyring (an admin's
// signature must verify like any other) and returned as the ledger's
// AdminKeys. No file: nil (the ledger refuses every redaction). Policy
// kept in the log can replace this source later (ledger.AdminKeys).
func loadAdminKeys(path string, trust *keys.Keyring) (ledger.AdminKeys, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--admin-keys: %w", err)
	}
	pubs, err := keys.ParsePublicPEMs(b)
	if err != nil {
		return nil, fmt.Errorf("--admin-keys %s: %w (want one PKIX \"PUBLIC KEY\" PEM block per admin)", path, err)
	}
	if len(pubs) == 0 {
		return nil, fmt.Errorf("--admin-keys %s: no PEM public key in the file", path)
	}
	ids := make([][32]byte, 0, len(pubs))
	for i, pub := range pubs {
		id, err := trust.Add(pub)
		if err != nil {
			return nil, fmt.Errorf("--admin-keys %s: key %d: %w", path, i+1, err)
		}
		ids = append(ids, id)
	}
	return ledger.NewAdminKeySet(ids...), nil
}
