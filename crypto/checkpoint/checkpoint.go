// Package checkpoint reads and writes C2SP tlog-checkpoint bodies signed as
// C2SP signed notes with the log's Ed25519 key (golang.org/x/mod/sumdb/note).
//
// A checkpoint body is three lines — origin, tree size in decimal, base64
// root hash — optionally followed by extension lines; the note's key name is
// the origin. See https://c2sp.org/tlog-checkpoint and
// https://c2sp.org/signed-note.
package checkpoint

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Errors callers act on; every error of this package wraps one of them.
var (
	ErrMalformed    = errors.New("malformed checkpoint")
	ErrBadSignature = errors.New("checkpoint signature does not verify")
	ErrWrongOrigin  = errors.New("checkpoint origin mismatch")
)

// Checkpoint is a signed tree head: the log's origin, the tree size and the
// RFC 6962 root hash.
type Checkpoint struct {
	Origin string
	Size   uint64
	Hash   [32]byte
}

// Body returns the C2SP tlog-checkpoint text: origin\nsize\nbase64(hash)\n.
func (c Checkpoint) Body() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Hash[:]))
}

// ParseBody parses a checkpoint body strictly: a non-empty origin, a size in
// decimal with no sign and no leading zeros, a base64 32-byte hash, each on
// its own line; extension lines after them are allowed and ignored. The body
// must end with a newline.
func ParseBody(b []byte) (Checkpoint, error) {
	s := string(b)
	if !strings.HasSuffix(s, "\n") {
		return Checkpoint{}, fmt.Errorf("%w: body does not end with a newline", ErrMalformed)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("%w: need origin, size and hash lines, got %d lines", ErrMalformed, len(lines))
	}
	var c Checkpoint
	c.Origin = lines[0]
	if c.Origin == "" {
		return Checkpoint{}, fmt.Errorf("%w: empty origin line", ErrMalformed)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("%w: size %q is not a decimal number without leading zeros", ErrMalformed, lines[1])
	}
	c.Size = size
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != 32 {
		return Checkpoint{}, fmt.Errorf("%w: root hash %q is not base64 of 32 bytes", ErrMalformed, lines[2])
	}
	copy(c.Hash[:], h)
	for i, ext := range lines[3:] {
		if ext == "" {
			return Checkpoint{}, fmt.Errorf("%w: empty extension line %d", ErrMalformed, i+1)
		}
	}
	return c, nil
}

const algEd25519 = 0x01

// keyHash is the signed-note key id: the first 4 bytes of
// SHA-256(name || "\n" || 0x01 || pub), big-endian.
func keyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algEd25519})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// NewSigner returns a note signer named origin for the log's Ed25519 key.
func NewSigner(origin string, priv ed25519.PrivateKey) (note.Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("checkpoint signer: Ed25519 private key has %d bytes", len(priv))
	}
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", origin, keyHash(origin, priv.Public().(ed25519.PublicKey)),
		base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, priv.Seed()...)))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint signer for %q: %w", origin, err)
	}
	return s, nil
}

// VerifierKey returns the C2SP verifier key string of the log,
// <origin>+<hex key id>+<base64(0x01 || pub)>, as note.NewVerifier reads it.
func VerifierKey(origin string, pub ed25519.PublicKey) (string, error) {
	k, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return "", fmt.Errorf("verifier key for %q: %w", origin, err)
	}
	return k, nil
}

// NewVerifier returns a note verifier named origin for the log's public key.
func NewVerifier(origin string, pub ed25519.PublicKey) (note.Verifier, error) {
	k, err := VerifierKey(origin, pub)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(k)
	if err != nil {
		return nil, fmt.Errorf("verifier for %q: %w", origin, err)
	}
	return v, nil
}

// Sign returns the signed note text of c (the body, a blank line, and the
// signature line).
func Sign(s note.Signer, c Checkpoint) ([]byte, error) {
	b, err := note.Sign(&note.Note{Text: string(c.Body())}, s)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return b, nil
}

// Open verifies signed with v (other verifiers, e.g. witnesses, may be given;
// signatures by unknown keys are ignored), checks the origin line equals
// v.Name(), and returns the checkpoint.
func Open(signed []byte, v note.Verifier, others ...note.Verifier) (Checkpoint, error) {
	n, err := note.Open(signed, note.VerifierList(append([]note.Verifier{v}, others...)...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return Checkpoint{}, fmt.Errorf("%w: no valid signature by %s: %v", ErrBadSignature, v.Name(), err)
		}
		var invalid *note.InvalidSignatureError
		if errors.As(err, &invalid) {
			return Checkpoint{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	signedByV := false
	for _, s := range n.Sigs {
		if s.Name == v.Name() && s.Hash == v.KeyHash() {
			signedByV = true
		}
	}
	if !signedByV {
		return Checkpoint{}, fmt.Errorf("%w: not signed by the log key %s", ErrBadSignature, v.Name())
	}
	c, err := ParseBody([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint origin %q, log key is for %q", ErrWrongOrigin, c.Origin, v.Name())
	}
	return c, nil
}
