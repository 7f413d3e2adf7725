package envelope

import (
	"bytes"
	"encoding/base64"
)

// The ledger stores every envelope in the canonical form Marshal writes,
// and followers, the scanner, the audit and the query indexes parse each
// stored envelope again: Parse first tries parseCanonical, which reads
// only that form, in a few memchr-speed passes, and hands anything else
// (and every invalid input) to the full parser, the reference.

// parseCanonical reads exactly the canonical envelope JSON
// {"payloadType":T,"payload":B,"signatures":[{"keyid":K,"sig":S},…]} with
// T and K printable ASCII without escapes, T non-empty, B and S padded
// standard base64 (canonical: zero trailing bits), S non-empty, 1 to
// MaxSignatures signatures, no whitespace, nothing after. What it
// accepts, the full parser accepts with the same result (the input is
// ASCII, so valid UTF-8; its strings have no escapes; its base64 decodes
// the same under Parse's lenient decoder): FuzzCanonical. ok is false for
// anything else, including every invalid envelope, which is left to the
// full parser for its error.
func parseCanonical(b []byte) (e *Envelope, ok bool) {
	var typ, p64 []byte
	if b, ok = cut(b, `{"payloadType":"`); !ok {
		return nil, false
	}
	if typ, b, ok = plain(b); !ok || len(typ) == 0 {
		return nil, false
	}
	if b, ok = cut(b, `,"payload":"`); !ok {
		return nil, false
	}
	if p64, b, ok = quoted(b); !ok {
		return nil, false
	}
	payload, ok := std64(p64)
	if !ok {
		return nil, false
	}
	if b, ok = cut(b, `,"signatures":[`); !ok {
		return nil, false
	}
	e = &Envelope{PayloadType: string(typ), Payload: payload}
	for {
		if len(e.Signatures) == MaxSignatures {
			return nil, false
		}
		var kid, s64 []byte
		if b, ok = cut(b, `{"keyid":"`); !ok {
			return nil, false
		}
		if kid, b, ok = plain(b); !ok {
			return nil, false
		}
		if b, ok = cut(b, `,"sig":"`); !ok {
			return nil, false
		}
		if s64, b, ok = quoted(b); !ok {
			return nil, false
		}
		sig, ok := std64(s64)
		if !ok || len(sig) == 0 {
			return nil, false
		}
		e.Signatures = append(e.Signatures, Signature{KeyID: string(kid), Sig: sig})
		if b, ok = cut(b, `}`); !ok {
			return nil, false
		}
		if rest, more := cut(b, `,`); more {
			b = rest
			continue
		}
		if b, ok = cut(b, `]}`); !ok || len(b) != 0 {
			return nil, false
		}
		return e, true
	}
}

// cut removes prefix from b.
func cut(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

// quoted splits b at its first '"': the string's raw content and what
// follows the quote.
func quoted(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '"')
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// plain is quoted for a content that must be printable ASCII without a
// backslash.
func plain(b []byte) (s, rest []byte, ok bool) {
	s, rest, ok = quoted(b)
	if !ok {
		return nil, nil, false
	}
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return nil, nil, false
		}
	}
	return s, rest, true
}

// strict64 is padded standard base64 that refuses non-zero trailing bits.
var strict64 = base64.StdEncoding.Strict()

// std64 decodes padded standard base64 made of its alphabet only: any
// other byte is a decoding error, except line breaks, which the decoder
// skips and which therefore make the result shorter than s implies.
func std64(s []byte) ([]byte, bool) {
	if len(s)%4 != 0 {
		return nil, false
	}
	want := len(s) / 4 * 3
	for i := len(s) - 1; i >= len(s)-2 && i >= 0 && s[i] == '='; i-- {
		want--
	}
	out := make([]byte, strict64.DecodedLen(len(s)))
	n, err := strict64.Decode(out, s)
	if err != nil || n != want {
		return nil, false
	}
	return out[:n], true
}
