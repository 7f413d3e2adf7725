// Package cosignature implements C2SP tlog-cosignature v1 with Ed25519
// (https://c2sp.org/tlog-cosignature): the timestamped signatures that
// witnesses add to a log's checkpoint (signed-note signature type 0x04).
//
// A witness named W with Ed25519 key pub has the signed-note key id
// SHA-256(W || "\n" || 0x04 || pub)[:4] and signs the message
//
//	cosignature/v1
//	time <unix seconds>
//	<checkpoint body>
//
// Its signature line is "— W base64(keyID || timestamp || signature)", the
// timestamp 8 bytes big-endian. Signer and Verifier implement
// golang.org/x/mod/sumdb/note's Signer and Verifier, so note.Sign and
// note.Open (and crypto/checkpoint.Open's others) work with them.
package cosignature

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/provledger/provledger/crypto/keys"
)

// SigType is the signed-note signature type of Ed25519 cosignature v1.
const SigType = 0x04

// SigSize is the size of a cosignature: 8-byte timestamp and 64-byte
// Ed25519 signature (the signature line adds the 4-byte key id).
const SigSize = 8 + ed25519.SignatureSize

// Sentinel errors.
var (
	// ErrMalformed: a signature line, key or message is not well-formed.
	ErrMalformed = errors.New("cosignature: malformed")
	// ErrInvalidKey: a key or witness name cannot be used.
	ErrInvalidKey = errors.New("cosignature: invalid key")
)

// KeyID is the signed-note key id of the witness key (name, pub).
func KeyID(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', SigType})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// Message returns the message a witness signs for a checkpoint body at
// time t (seconds since the Unix epoch).
func Message(t uint64, body []byte) []byte {
	m := make([]byte, 0, 32+len(body))
	m = append(m, "cosignature/v1\ntime "...)
	m = strconv.AppendUint(m, t, 10)
	m = append(m, '\n')
	return append(m, body...)
}

// CheckName reports whether name is usable as a witness (note key) name:
// non-empty UTF-8 without spaces, control characters or '+'.
func CheckName(name string) error {
	if name == "" || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r == '+' || r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: name %q must be non-empty, without spaces, control characters or '+'", ErrInvalidKey, name)
	}
	return nil
}

// VerifierKey returns the witness's verifier key string
// name+hex(keyID)+base64(0x04||pub), as note verifier keys are written.
func VerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: Ed25519 public key has %d bytes", ErrInvalidKey, len(pub))
	}
	return fmt.Sprintf("%s+%08x+%s", name, KeyID(name, pub), base64.StdEncoding.EncodeToString(append([]byte{SigType}, pub...))), nil
}

// Signer produces cosignatures. It implements note.Signer.
type Signer struct {
	name string
	id   uint32
	priv ed25519.PrivateKey
	now  func() time.Time
}

// NewSigner returns the cosigner named name with key priv. now is the
// clock for the timestamps (nil: time.Now).
func NewSigner(name string, priv ed25519.PrivateKey, now func() time.Time) (*Signer, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: Ed25519 private key has %d bytes", ErrInvalidKey, len(priv))
	}
	if now == nil {
		now = time.Now
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &Signer{name: name, id: KeyID(name, pub), priv: priv, now: now}, nil
}

// Name implements note.Signer.
func (s *Signer) Name() string { return s.name }

// KeyHash implements note.Signer.
func (s *Signer) KeyHash() uint32 { return s.id }

// Public returns the witness's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// VerifierKey returns the verifier key string of s.
func (s *Signer) VerifierKey() string {
	k, _ := VerifierKey(s.name, s.Public())
	return k
}

// Sign implements note.Signer: msg is the checkpoint body.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	t := s.now().Unix()
	if t < 0 {
		return nil, fmt.Errorf("%w: clock before 1970", ErrMalformed)
	}
	return s.SignAt(uint64(t), msg), nil
}

// SignAt returns the cosignature (timestamp || signature) of the
// checkpoint body at time t.
func (s *Signer) SignAt(t uint64, body []byte) []byte {
	sig := binary.BigEndian.AppendUint64(make([]byte, 0, SigSize), t)
	return append(sig, ed25519.Sign(s.priv, Message(t, body))...)
}

// Line returns the note signature line (with its final newline) of
// cosignature sig by s.
func (s *Signer) Line(sig []byte) string {
	return FormatLine(s.name, s.id, sig)
}

// FormatLine formats a note signature line "— name base64(id||sig)\n".
func FormatLine(name string, id uint32, sig []byte) string {
	b := binary.BigEndian.AppendUint32(nil, id)
	return "— " + name + " " + base64.StdEncoding.EncodeToString(append(b, sig...)) + "\n"
}

// Verifier checks cosignatures of one witness. It implements note.Verifier.
type Verifier struct {
	name string
	id   uint32
	pub  ed25519.PublicKey
}

// NewVerifier returns the verifier of witness key (name, pub).
func NewVerifier(name string, pub ed25519.PublicKey) (*Verifier, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: Ed25519 public key has %d bytes", ErrInvalidKey, len(pub))
	}
	return &Verifier{name: name, id: KeyID(name, pub), pub: bytes.Clone(pub)}, nil
}

// ParseVerifierKey parses a witness verifier key name+hex+base64(0x04||pub).
// The key id must match the key. Errors wrap ErrInvalidKey.
func ParseVerifierKey(vkey string) (*Verifier, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hx, k64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: verifier key %q: want name+keyid+base64key", ErrInvalidKey, trunc(vkey))
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	id, err := strconv.ParseUint(hx, 16, 32)
	if len(hx) != 8 || err != nil {
		return nil, fmt.Errorf("%w: verifier key %q: key id %q is not 8 hex digits", ErrInvalidKey, trunc(vkey), hx)
	}
	k, err := base64.StdEncoding.Strict().DecodeString(k64)
	if err != nil || len(k) != 1+ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: verifier key %q: key is not base64 of 33 bytes", ErrInvalidKey, trunc(vkey))
	}
	if k[0] != SigType {
		return nil, fmt.Errorf("%w: verifier key %q: signature type 0x%02x, want 0x%02x (Ed25519 cosignature v1)", ErrInvalidKey, trunc(vkey), k[0], SigType)
	}
	v, err := NewVerifier(name, ed25519.PublicKey(k[1:]))
	if err != nil {
		return nil, err
	}
	if uint32(id) != v.id {
		return nil, fmt.Errorf("%w: verifier key %q: key id %08x does not match the key (%08x)", ErrInvalidKey, trunc(vkey), id, v.id)
	}
	return v, nil
}

// Name implements note.Verifier.
func (v *Verifier) Name() string { return v.name }

// KeyHash implements note.Verifier.
func (v *Verifier) KeyHash() uint32 { return v.id }

// Key returns the witness's verifier key string.
func (v *Verifier) Key() string {
	k, _ := VerifierKey(v.name, v.pub)
	return k
}

// Verify implements note.Verifier: msg is the checkpoint body, sig the
// cosignature (timestamp || signature).
func (v *Verifier) Verify(msg, sig []byte) bool {
	if len(sig) != SigSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	return keys.VerifyEd25519(v.pub, Message(t, msg), sig[8:])
}

// Timestamp returns the time embedded in a cosignature.
func Timestamp(sig []byte) (time.Time, error) {
	if len(sig) != SigSize {
		return time.Time{}, fmt.Errorf("%w: cosignature has %d bytes, want %d", ErrMalformed, len(sig), SigSize)
	}
	t := binary.BigEndian.Uint64(sig)
	if t > 1<<62 {
		return time.Time{}, fmt.Errorf("%w: timestamp %d out of range", ErrMalformed, t)
	}
	return time.Unix(int64(t), 0).UTC(), nil
}

// Line is one parsed note signature line.
type Line struct {
	// Name is the key name.
	Name string
	// KeyID is the signed-note key id (first 4 bytes of the decoded base64).
	KeyID uint32
	// Sig is the signature after the key id.
	Sig []byte
}

// String formats l as a signature line with its final newline.
func (l Line) String() string { return FormatLine(l.Name, l.KeyID, l.Sig) }

// ParseLines parses a block of note signature lines ("— name base64\n"
// each), as a tlog-witness add-checkpoint response carries. It is strict:
// every line must end in a newline, start with "— " (U+2014 and a space),
// name a valid key name, and carry canonical base64 of at least 5 bytes.
// At most 100 lines are accepted.
func ParseLines(b []byte) ([]Line, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: no signature lines", ErrMalformed)
	}
	if b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("%w: signature lines must end with a newline", ErrMalformed)
	}
	var out []Line
	for i, l := range strings.Split(string(b[:len(b)-1]), "\n") {
		if i == 100 {
			return nil, fmt.Errorf("%w: more than 100 signature lines", ErrMalformed)
		}
		ln, err := ParseLine(l)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, ln)
	}
	return out, nil
}

// ParseLine parses one signature line without its newline.
func ParseLine(l string) (Line, error) {
	rest, ok := strings.CutPrefix(l, "— ")
	if !ok {
		return Line{}, fmt.Errorf("%w: signature line %q does not start with \"— \"", ErrMalformed, trunc(l))
	}
	name, b64, ok := strings.Cut(rest, " ")
	if !ok {
		return Line{}, fmt.Errorf("%w: signature line %q: want \"— <name> <base64>\"", ErrMalformed, trunc(l))
	}
	if err := CheckName(name); err != nil {
		return Line{}, fmt.Errorf("%w: signature line %q: %v", ErrMalformed, trunc(l), err)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || base64.StdEncoding.EncodeToString(raw) != b64 {
		return Line{}, fmt.Errorf("%w: signature line %q: signature is not canonical base64", ErrMalformed, trunc(l))
	}
	if len(raw) < 5 {
		return Line{}, fmt.Errorf("%w: signature line %q: %d bytes, want a 4-byte key id and a signature", ErrMalformed, trunc(l), len(raw))
	}
	return Line{Name: name, KeyID: binary.BigEndian.Uint32(raw), Sig: raw[4:]}, nil
}

// Cosigned is a checkpoint's verified cosignature.
type Cosigned struct {
	// Witness is the witness's name.
	Witness string
	// Time is the cosignature's timestamp.
	Time time.Time
}

// Verify checks the cosignatures of the signed checkpoint note by the
// given witnesses and returns those that verified, in the order of
// witnesses. Signatures by other keys (the log's, unknown witnesses') are
// ignored; a signature line that claims to be by one of the witnesses
// (same name and key id) but does not verify is an error, as note.Open
// treats it.
func Verify(signedNote []byte, witnesses []*Verifier) ([]Cosigned, error) {
	split := bytes.LastIndex(signedNote, []byte("\n\n"))
	if split < 0 {
		return nil, fmt.Errorf("%w: not a signed note", ErrMalformed)
	}
	body, sigs := signedNote[:split+1], signedNote[split+2:]
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: no signature lines", ErrMalformed)
	}
	lines, err := ParseLines(sigs)
	if err != nil {
		return nil, err
	}
	var out []Cosigned
	for _, w := range witnesses {
		found := false
		for _, l := range lines {
			if l.Name != w.name || l.KeyID != w.id {
				continue
			}
			if !w.Verify(body, l.Sig) {
				return nil, fmt.Errorf("cosignature by witness %s does not verify", w.name)
			}
			if !found {
				t, _ := Timestamp(l.Sig)
				out = append(out, Cosigned{Witness: w.name, Time: t})
				found = true
			}
		}
	}
	return out, nil
}

// AddLines appends signature lines to a signed note, skipping lines the
// note already carries.
func AddLines(signedNote []byte, lines []Line) []byte {
	out := bytes.Clone(signedNote)
	for _, l := range lines {
		s := l.String()
		if bytes.Contains(signedNote, []byte(s)) {
			continue
		}
		out = append(out, s...)
	}
	return out
}

// Interface checks.
var (
	_ note.Signer   = (*Signer)(nil)
	_ note.Verifier = (*Verifier)(nil)
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
