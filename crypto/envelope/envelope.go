package envelope

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// MaxSignatures is the largest number of signatures an envelope may carry.
const MaxSignatures = 16

// Sentinel errors; callers branch on them with errors.Is.
var (
	// ErrMalformed: the envelope is not well-formed DSSE (bad JSON, missing,
	// unknown or duplicate field, bad base64, too many signatures...).
	ErrMalformed = errors.New("envelope: malformed DSSE envelope")
	// ErrNoSignatures: the envelope carries no signature to verify.
	ErrNoSignatures = errors.New("envelope: no signatures")
	// ErrUnknownKey: a signature's keyid names no trusted key.
	ErrUnknownKey = errors.New("envelope: unknown signing key")
	// ErrBadSignature: a signature does not verify with the key its keyid names.
	ErrBadSignature = errors.New("envelope: bad signature")
)

// Envelope is a DSSE envelope; Payload and Sig are raw bytes (base64 only on the wire).
type Envelope struct {
	PayloadType string
	Payload     []byte
	Signatures  []Signature
}

// Signature is one DSSE signature: the keyid of the signing key (for
// provledger, keys.KeyID.String()) and the raw signature bytes.
type Signature struct {
	KeyID string
	Sig   []byte
}

// PAE is the DSSE v1 pre-authentication encoding (use go-securesystemslib's dsse.PAE):
// "DSSEv1" SP len(type) SP type SP len(payload) SP payload, lengths in
// ASCII decimal. It is what every signature in an envelope signs.
func PAE(payloadType string, payload []byte) []byte {
	return dsse.PAE(payloadType, payload)
}

// Equal reports whether e and o hold the same payload type, payload and
// signatures (nil and empty byte slices are equal), i.e. whether they
// Marshal to the same bytes.
func (e *Envelope) Equal(o *Envelope) bool {
	if e == nil || o == nil {
		return e == o
	}
	if e.PayloadType != o.PayloadType || !bytes.Equal(e.Payload, o.Payload) || len(e.Signatures) != len(o.Signatures) {
		return false
	}
	for i := range e.Signatures {
		if e.Signatures[i].KeyID != o.Signatures[i].KeyID || !bytes.Equal(e.Signatures[i].Sig, o.Signatures[i].Sig) {
			return false
		}
	}
	return true
}

// Marshal returns the canonical JSON: exactly {"payloadType":…,"payload":…,"signatures":[{"keyid":…,"sig":…}]} in that field order, standard padded base64, no whitespace, encoding/json string escaping. Deterministic: the same envelope always gives the same bytes; Parse(Marshal(e)) == e.
//
// (The round trip holds for every envelope Parse accepts, in the sense of
// Equal; Marshal itself does not validate, so an envelope with no
// signatures marshals to "signatures":[] which Parse rejects.)
func (e *Envelope) Marshal() []byte {
	n := 64 + len(e.PayloadType) + base64.StdEncoding.EncodedLen(len(e.Payload))
	for _, s := range e.Signatures {
		n += 24 + len(s.KeyID) + base64.StdEncoding.EncodedLen(len(s.Sig))
	}
	b := make([]byte, 0, n)
	b = append(b, `{"payloadType":`...)
	b = appendString(b, e.PayloadType)
	b = append(b, `,"payload":"`...)
	b = base64.StdEncoding.AppendEncode(b, e.Payload)
	b = append(b, `","signatures":[`...)
	for i, s := range e.Signatures {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"keyid":`...)
		b = appendString(b, s.KeyID)
		b = append(b, `,"sig":"`...)
		b = base64.StdEncoding.AppendEncode(b, s.Sig)
		b = append(b, `"}`...)
	}
	b = append(b, "]}"...)
	return b
}

// appendString appends s as a JSON string exactly as encoding/json.Marshal
// writes it (including its HTML-safe escaping of <, > and & and its
// replacement of invalid UTF-8 by U+FFFD).
func appendString(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, err := json.Marshal(s)
	if err != nil { // cannot happen for a string
		return strconv.AppendQuote(b, s)
	}
	return append(b, q...)
}

// Digest is SHA-256 of Marshal().
func (e *Envelope) Digest() [32]byte {
	return sha256.Sum256(e.Marshal())
}

// Parse reads DSSE JSON {"payloadType","payload","signatures":[{"keyid","sig"}]}: payload and sig in standard base64 (URL-safe accepted too), unknown fields rejected, payloadType non-empty, at least one signature, at most MaxSignatures (16). Errors wrap ErrMalformed and name the bad field.
//
// Also rejected: invalid UTF-8, duplicate or differently-cased member
// names, null values, a missing payload or keyid member, an empty sig, and
// anything after the closing brace. Unpadded base64 is accepted. An empty
// keyid is accepted (DSSE allows it) but never verifies.
func Parse(b []byte) (*Envelope, error) {
	if e, ok := parseCanonical(b); ok {
		return e, nil
	}
	e, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return e, nil
}

func parse(b []byte) (*Envelope, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("not valid UTF-8")
	}
	sc := &scanner{b: b}
	var (
		e                              Envelope
		seenType, seenPayload, seenSig bool
	)
	err := sc.object("envelope", func(name string) error {
		var err error
		switch name {
		case "payloadType":
			if seenType {
				return errors.New(`duplicate "payloadType"`)
			}
			seenType = true
			if e.PayloadType, err = sc.stringValue("payloadType"); err != nil {
				return err
			}
			if e.PayloadType == "" {
				return errors.New(`"payloadType" is empty`)
			}
		case "payload":
			if seenPayload {
				return errors.New(`duplicate "payload"`)
			}
			seenPayload = true
			e.Payload, err = sc.base64Value("payload")
		case "signatures":
			if seenSig {
				return errors.New(`duplicate "signatures"`)
			}
			seenSig = true
			e.Signatures, err = sc.signatures()
		default:
			return fmt.Errorf("unknown field %q (want payloadType, payload, signatures)", truncate(name))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	sc.ws()
	if sc.i != len(sc.b) {
		return nil, fmt.Errorf("data after the envelope object at offset %d", sc.i)
	}
	switch {
	case !seenType:
		return nil, errors.New(`missing "payloadType"`)
	case !seenPayload:
		return nil, errors.New(`missing "payload"`)
	case !seenSig:
		return nil, errors.New(`missing "signatures"`)
	}
	return &e, nil
}

func (sc *scanner) signatures() ([]Signature, error) {
	const where = "signatures"
	sc.ws()
	if err := sc.expect('[', where); err != nil {
		return nil, err
	}
	var sigs []Signature
	sc.ws()
	if sc.peek() == ']' {
		return nil, errors.New(`"signatures" is empty`)
	}
	for {
		i := len(sigs)
		if i == MaxSignatures {
			return nil, fmt.Errorf(`"signatures" has more than %d entries`, MaxSignatures)
		}
		s, err := sc.signatureObject(i)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, s)
		sc.ws()
		switch sc.peek() {
		case ',':
			sc.i++
		case ']':
			sc.i++
			return sigs, nil
		default:
			return nil, fmt.Errorf("%s: want ',' or ']' at offset %d, got %s", where, sc.i, sc.describe())
		}
	}
}

func (sc *scanner) signatureObject(i int) (Signature, error) {
	where := "signatures[" + strconv.Itoa(i) + "]"
	var (
		s                Signature
		seenKey, seenSig bool
	)
	err := sc.object(where, func(name string) error {
		var err error
		switch name {
		case "keyid":
			if seenKey {
				return fmt.Errorf(`%s: duplicate "keyid"`, where)
			}
			seenKey = true
			s.KeyID, err = sc.stringValue(where + ".keyid")
		case "sig":
			if seenSig {
				return fmt.Errorf(`%s: duplicate "sig"`, where)
			}
			seenSig = true
			if s.Sig, err = sc.base64Value(where + ".sig"); err == nil && len(s.Sig) == 0 {
				err = fmt.Errorf("%s.sig is empty", where)
			}
		default:
			err = fmt.Errorf("%s: unknown field %q (want keyid, sig)", where, truncate(name))
		}
		return err
	})
	if err != nil {
		return Signature{}, err
	}
	if !seenKey {
		return Signature{}, fmt.Errorf(`%s: missing "keyid"`, where)
	}
	if !seenSig {
		return Signature{}, fmt.Errorf(`%s: missing "sig"`, where)
	}
	return s, nil
}

// scanner is a minimal strict JSON reader for the fixed DSSE schema: objects
// of string-valued members and one array of objects. It is several times
// faster than encoding/json's token API on this hot path; strings with
// escapes or control characters are handed to encoding/json to decode, so
// string semantics are exactly encoding/json's.
type scanner struct {
	b []byte
	i int
}

func (sc *scanner) ws() {
	for sc.i < len(sc.b) {
		switch sc.b[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

func (sc *scanner) peek() byte {
	if sc.i < len(sc.b) {
		return sc.b[sc.i]
	}
	return 0
}

func (sc *scanner) describe() string {
	if sc.i >= len(sc.b) {
		return "end of input"
	}
	switch c := sc.b[sc.i]; {
	case c == 'n':
		return "null"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '-' || '0' <= c && c <= '9':
		return "a number"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	default:
		return strconv.QuoteRune(rune(c))
	}
}

func (sc *scanner) expect(c byte, where string) error {
	if sc.peek() != c {
		return fmt.Errorf("%s: want %q at offset %d, got %s", where, c, sc.i, sc.describe())
	}
	sc.i++
	return nil
}

// object reads '{' (name ':' value (',' name ':' value)*)? '}', calling
// member for each name with the scanner positioned before the value.
func (sc *scanner) object(where string, member func(name string) error) error {
	sc.ws()
	if err := sc.expect('{', where); err != nil {
		return err
	}
	sc.ws()
	if sc.peek() == '}' {
		sc.i++
		return nil
	}
	for {
		sc.ws()
		if sc.peek() != '"' {
			return fmt.Errorf("%s: want a member name at offset %d, got %s", where, sc.i, sc.describe())
		}
		raw, err := sc.rawString(where)
		if err != nil {
			return err
		}
		name, err := unquote(raw)
		if err != nil {
			return fmt.Errorf("%s: member name: %v", where, err)
		}
		sc.ws()
		if err := sc.expect(':', where); err != nil {
			return err
		}
		if err := member(name); err != nil {
			return err
		}
		sc.ws()
		switch sc.peek() {
		case ',':
			sc.i++
		case '}':
			sc.i++
			return nil
		default:
			return fmt.Errorf("%s: want ',' or '}' at offset %d, got %s", where, sc.i, sc.describe())
		}
	}
}

// rawString returns the quoted JSON string at the cursor, quotes included.
// A backslash escapes the byte after it (unquote checks the escape). It
// finds quotes and backslashes with bytes.IndexByte, in one linear pass:
// a payload is kilobytes of base64 with neither.
func (sc *scanner) rawString(where string) ([]byte, error) {
	start := sc.i
	i := sc.i + 1 // after the opening quote
	for i < len(sc.b) {
		q := bytes.IndexByte(sc.b[i:], '"')
		if q < 0 {
			break
		}
		q += i
		j := i // escapes in [j, q)
		for {
			bs := bytes.IndexByte(sc.b[j:q], '\\')
			if bs < 0 {
				sc.i = q + 1
				return sc.b[start:sc.i], nil
			}
			if j += bs + 2; j > q {
				break // the quote at q is escaped: look for the next one
			}
		}
		i = j
	}
	return nil, fmt.Errorf("%s: unterminated string at offset %d", where, start)
}

// unquote decodes a quoted JSON string; the common case (no escapes, no
// control characters) is a plain copy.
func unquote(raw []byte) (string, error) {
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' || c < 0x20 {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", err
			}
			return s, nil
		}
	}
	return string(inner), nil
}

func (sc *scanner) stringValue(field string) (string, error) {
	sc.ws()
	if sc.peek() != '"' {
		return "", fmt.Errorf("%s: want a string, got %s", field, sc.describe())
	}
	raw, err := sc.rawString(field)
	if err != nil {
		return "", err
	}
	s, err := unquote(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %v", field, err)
	}
	return s, nil
}

func (sc *scanner) base64Value(field string) ([]byte, error) {
	sc.ws()
	if sc.peek() != '"' {
		return nil, fmt.Errorf("%s: want a base64 string, got %s", field, sc.describe())
	}
	raw, err := sc.rawString(field)
	if err != nil {
		return nil, err
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		// Escaped characters (such as "\/"): decode the JSON string first.
		s, err := unquote(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", field, err)
		}
		inner = []byte(s)
	}
	b, err := decodeBase64(inner)
	if err != nil {
		return nil, fmt.Errorf("%s: not base64: %v", field, err)
	}
	return b, nil
}

// decodeBase64 accepts standard or URL-safe base64, padded or not.
func decodeBase64(s []byte) ([]byte, error) {
	if bytes.IndexByte(s, '\n') >= 0 || bytes.IndexByte(s, '\r') >= 0 {
		// encoding/base64 would skip these silently.
		return nil, errors.New("line break inside base64")
	}
	url := bytes.IndexByte(s, '-') >= 0 || bytes.IndexByte(s, '_') >= 0
	var enc *base64.Encoding
	switch {
	case url && len(s)%4 == 0:
		enc = base64.URLEncoding
	case url:
		enc = base64.RawURLEncoding
	case len(s)%4 == 0:
		enc = base64.StdEncoding
	default:
		enc = base64.RawStdEncoding
	}
	out := make([]byte, enc.DecodedLen(len(s)))
	n, err := enc.Decode(out, s)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

// truncate shortens attacker-controlled strings before they go into error messages.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
