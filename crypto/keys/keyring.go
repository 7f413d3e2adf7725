package keys

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/sigstore/sigstore/pkg/signature"
)

// Keyring is a concurrency-safe set of trusted public keys, indexed by KeyID, each with its cached verifiers.
//
// Every key in a Keyring is within the algorithm policy. Keys can be added
// but never removed, so a lookup that succeeded once keeps succeeding. The
// zero Keyring is empty and ready to use; a nil *Keyring behaves as an empty
// one for Lookup, Verifiers, Len and IDs.
type Keyring struct {
	mu   sync.RWMutex
	keys map[KeyID]entry
}

type entry struct {
	pub crypto.PublicKey
	vs  []signature.Verifier
	ed  *Ed25519Verifier // Ed25519 keys: the expanded key, built once
}

// NewKeyring returns a Keyring holding pubs. Any key outside the algorithm
// policy makes it fail (naming the key's position, from 0); duplicates are fine.
func NewKeyring(pubs ...crypto.PublicKey) (*Keyring, error) {
	k := &Keyring{}
	for i, pub := range pubs {
		if _, err := k.Add(pub); err != nil {
			return nil, fmt.Errorf("keyring key %d: %w", i, err)
		}
	}
	return k, nil
}

// LoadKeyringFile reads a file of concatenated PEM public keys (see
// ParsePublicPEMs) into a new Keyring. A missing or unreadable file is an
// error (wrapping the os error, so errors.Is(err, fs.ErrNotExist) works); a
// file with no keys gives an empty Keyring.
func LoadKeyringFile(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: read trust file: %w", err)
	}
	pubs, err := ParsePublicPEMs(b)
	if err != nil {
		return nil, fmt.Errorf("keys: trust file %s: %w", path, err)
	}
	k, err := NewKeyring(pubs...)
	if err != nil {
		return nil, fmt.Errorf("keys: trust file %s: %w", path, err)
	}
	return k, nil
}

// Add trusts pub and returns its KeyID. Adding a key already present is a
// no-op that returns the same id. Keys outside the algorithm policy give an
// error wrapping ErrUnsupportedKey and leave the Keyring unchanged.
func (k *Keyring) Add(pub crypto.PublicKey) (KeyID, error) {
	vs, err := NewVerifiers(pub)
	if err != nil {
		return KeyID{}, err
	}
	id, err := IDOf(pub)
	if err != nil {
		return KeyID{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil {
		k.keys = make(map[KeyID]entry)
	}
	if _, ok := k.keys[id]; !ok {
		e := entry{pub: pub, vs: vs}
		if ed, ok := pub.(ed25519.PublicKey); ok {
			e.ed = NewEd25519Verifier(ed)
		}
		k.keys[id] = e
	}
	return id, nil
}

// Ed25519Verifier returns the expanded verifier of the trusted Ed25519 key
// with the given id (built once, when the key was added; its verdicts are
// VerifyEd25519's), or false if the id is unknown or not an Ed25519 key.
func (k *Keyring) Ed25519Verifier(id KeyID) (*Ed25519Verifier, bool) {
	if k == nil {
		return nil, false
	}
	k.mu.RLock()
	e, ok := k.keys[id]
	k.mu.RUnlock()
	return e.ed, ok && e.ed != nil
}

// Lookup returns the trusted key with the given id.
func (k *Keyring) Lookup(id KeyID) (crypto.PublicKey, bool) {
	if k == nil {
		return nil, false
	}
	k.mu.RLock()
	e, ok := k.keys[id]
	k.mu.RUnlock()
	return e.pub, ok
}

// Verifiers returns the cached verifiers of the trusted key with the given
// id (as NewVerifiers would build them). The slice is the caller's; the
// verifiers are shared and safe for concurrent use.
func (k *Keyring) Verifiers(id KeyID) ([]signature.Verifier, bool) {
	if k == nil {
		return nil, false
	}
	k.mu.RLock()
	e, ok := k.keys[id]
	k.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return slices.Clone(e.vs), true
}

// Len returns the number of distinct trusted keys.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys)
}

// IDs returns the ids of all trusted keys in ascending byte order.
func (k *Keyring) IDs() []KeyID {
	if k == nil {
		return nil
	}
	k.mu.RLock()
	ids := make([]KeyID, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	k.mu.RUnlock()
	slices.SortFunc(ids, func(a, b KeyID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}
