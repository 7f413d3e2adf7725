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
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/crypto/keys"
)

// Sentinel errors; callers branch on them with errors.Is.
var (
	// ErrMalformed: the checkpoint body or signed note is not well-formed.
	ErrMalformed = errors.New("checkpoint: malformed checkpoint")
	// ErrBadSignature: the note carries no valid signature by the log key,
	// or a known key's signature does not verify.
	ErrBadSignature = errors.New("checkpoint: bad checkpoint signature")
	// ErrWrongOrigin: the checkpoint's origin is not the expected log's.
	ErrWrongOrigin = errors.New("checkpoint: wrong origin")
	// ErrInvalidKey: a key or key name cannot be used (wrong size, or the
	// origin is not a valid note key name: empty, or containing spaces or '+').
	ErrInvalidKey = errors.New("checkpoint: invalid log key")
)

// algEd25519 is the C2SP signed-note signature type of Ed25519.
const algEd25519 = 0x01

// Checkpoint is a tlog-checkpoint: the log's origin, tree size and RFC 6962 root hash.
type Checkpoint struct {
	Origin string
	Size   uint64
	Hash   [32]byte
}

// Body is the C2SP tlog-checkpoint text: origin\nsize\nbase64(hash)\n
// (standard padded base64, size in decimal without leading zeros). For any
// c with a valid origin, ParseBody(c.Body()) == c.
func (c Checkpoint) Body() []byte {
	b := make([]byte, 0, len(c.Origin)+80)
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, c.Hash[:])
	return append(b, '\n')
}

// ParseBody parses a checkpoint body strictly: no leading zeros in size (except "0"), 32-byte hash, origin non-empty; extension lines allowed and ignored.
//
// Also required: valid UTF-8 without control characters other than the
// line feeds, a final newline, the hash in canonical standard padded
// base64, and non-empty extension lines. Errors wrap ErrMalformed and name
// the line.
func ParseBody(b []byte) (Checkpoint, error) {
	c, err := parseBody(b)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return c, nil
}

func parseBody(b []byte) (Checkpoint, error) {
	if !utf8.Valid(b) {
		return Checkpoint{}, errors.New("body is not valid UTF-8")
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return Checkpoint{}, errors.New("body does not end with a newline")
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("body has %d lines, want at least 3 (origin, size, root hash)", len(lines))
	}
	for i, l := range lines {
		for _, r := range l {
			if r < 0x20 || r == 0x7f {
				return Checkpoint{}, fmt.Errorf("line %d contains control character %U", i+1, r)
			}
		}
		if i >= 3 && l == "" {
			return Checkpoint{}, fmt.Errorf("extension line %d is empty", i+1)
		}
	}
	var c Checkpoint
	c.Origin = lines[0]
	if c.Origin == "" {
		return Checkpoint{}, errors.New("line 1: origin is empty")
	}
	size := lines[1]
	if size == "" || len(size) > 1 && size[0] == '0' {
		return Checkpoint{}, fmt.Errorf("line 2: size %q is not a decimal number without leading zeros", trunc(size))
	}
	for i := 0; i < len(size); i++ {
		if size[i] < '0' || size[i] > '9' {
			return Checkpoint{}, fmt.Errorf("line 2: size %q is not a decimal number", trunc(size))
		}
	}
	n, err := strconv.ParseUint(size, 10, 64)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("line 2: size %q: out of range", trunc(size))
	}
	c.Size = n
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("line 3: root hash is not base64: %v", err)
	}
	if len(h) != len(c.Hash) {
		return Checkpoint{}, fmt.Errorf("line 3: root hash has %d bytes, want %d", len(h), len(c.Hash))
	}
	copy(c.Hash[:], h)
	if base64.StdEncoding.EncodeToString(h) != lines[2] {
		return Checkpoint{}, errors.New("line 3: root hash is not in canonical base64")
	}
	return c, nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// keyHash is the C2SP signed-note key id: the first 4 bytes (big-endian) of
// SHA-256(name || "\n" || 0x01 || pub).
func keyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algEd25519})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// checkName reports whether origin is usable as a note key name.
func checkName(origin string) error {
	if origin == "" || !utf8.ValidString(origin) || strings.ContainsFunc(origin, func(r rune) bool { return r == '+' || r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: origin %q is not a valid note key name (non-empty, no spaces, control characters or '+')", ErrInvalidKey, trunc(origin))
	}
	return nil
}

// VerifierKey returns the C2SP verifier key string name+hexkeyid+base64(0x01||pub), as `note.NewVerifier` accepts.
// Errors wrap ErrInvalidKey.
func VerifierKey(origin string, pub ed25519.PublicKey) (string, error) {
	if err := checkName(origin); err != nil {
		return "", err
	}
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: Ed25519 public key has %d bytes, want %d", ErrInvalidKey, len(pub), ed25519.PublicKeySize)
	}
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return vkey, nil
}

// NewSigner returns a golang.org/x/mod/sumdb/note Signer whose key name is origin, for an Ed25519 private key.
// Its KeyHash is the C2SP key id of (origin, priv.Public()). Errors wrap ErrInvalidKey.
func NewSigner(origin string, priv ed25519.PrivateKey) (note.Signer, error) {
	if err := checkName(origin); err != nil {
		return nil, err
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: Ed25519 private key has %d bytes, want %d", ErrInvalidKey, len(priv), ed25519.PrivateKeySize)
	}
	pub := priv.Public().(ed25519.PublicKey)
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", origin, keyHash(origin, pub),
		base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, priv.Seed()...)))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return s, nil
}

// NewVerifier returns a note Verifier for the log key (origin, pub), the
// counterpart of NewSigner. Errors wrap ErrInvalidKey.
func NewVerifier(origin string, pub ed25519.PublicKey) (note.Verifier, error) {
	vkey, err := VerifierKey(origin, pub)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return fastVerifier{Verifier: v, pub: append(ed25519.PublicKey(nil), pub...)}, nil
}

// fastVerifier is note's Ed25519 verifier with the signature check done by
// keys.VerifyEd25519: the same verdict, in about half the time (every
// receipt a client checks carries a checkpoint).
type fastVerifier struct {
	note.Verifier
	pub ed25519.PublicKey
}

// Verify reports whether sig is the log key's signature of msg.
func (v fastVerifier) Verify(msg, sig []byte) bool {
	return keys.VerifyEd25519(v.pub, msg, sig)
}

// Sign returns the signed note text for c.
//
// c.Origin must equal s.Name() (the log signs only its own checkpoints;
// ErrWrongOrigin otherwise) and be a valid origin (ErrMalformed otherwise).
// The result is c.Body(), a blank line and one signature line.
func Sign(s note.Signer, c Checkpoint) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("checkpoint: sign: nil signer")
	}
	if c.Origin != s.Name() {
		return nil, fmt.Errorf("%w: checkpoint origin %q, signer key name %q", ErrWrongOrigin, trunc(c.Origin), trunc(s.Name()))
	}
	body := c.Body()
	if _, err := ParseBody(body); err != nil {
		return nil, fmt.Errorf("checkpoint: sign: %w", err)
	}
	signed, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: sign size %d: %w", c.Size, err)
	}
	return signed, nil
}

// Open verifies a signed checkpoint with v (other verifiers, e.g. witnesses, may be passed in others and unknown signatures are ignored) and that its origin equals v.Name(); returns the checkpoint.
//
// Errors: ErrMalformed (not a signed note, or the body does not parse),
// ErrBadSignature (no valid signature by v, or a signature by v or by one
// of others that does not verify), ErrWrongOrigin (the body's origin is
// not v.Name()). Verifiers in others that repeat a name and key id already
// given are ignored. The body
// is only parsed after v's signature has verified.
func Open(signed []byte, v note.Verifier, others ...note.Verifier) (Checkpoint, error) {
	if v == nil {
		return Checkpoint{}, fmt.Errorf("checkpoint: open: nil verifier")
	}
	// note.VerifierList refuses two verifiers with one name and key id, so
	// drop repeats (the first, v, wins).
	type nameHash struct {
		name string
		hash uint32
	}
	seen := map[nameHash]bool{{v.Name(), v.KeyHash()}: true}
	vs := []note.Verifier{v}
	for _, o := range others {
		if o == nil || seen[nameHash{o.Name(), o.KeyHash()}] {
			continue
		}
		seen[nameHash{o.Name(), o.KeyHash()}] = true
		vs = append(vs, o)
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return Checkpoint{}, fmt.Errorf("%w: no signature by log key %s+%08x", ErrBadSignature, v.Name(), v.KeyHash())
		case errors.As(err, &invalid):
			return Checkpoint{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
		default:
			return Checkpoint{}, fmt.Errorf("%w: signed note: %v", ErrMalformed, err)
		}
	}
	signedByLog := false
	for _, s := range n.Sigs {
		if s.Name == v.Name() && s.Hash == v.KeyHash() {
			signedByLog = true
			break
		}
	}
	if !signedByLog {
		return Checkpoint{}, fmt.Errorf("%w: no signature by log key %s+%08x (only by others)", ErrBadSignature, v.Name(), v.KeyHash())
	}
	c, err := ParseBody([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint origin %q, want %q", ErrWrongOrigin, trunc(c.Origin), trunc(v.Name()))
	}
	return c, nil
}
