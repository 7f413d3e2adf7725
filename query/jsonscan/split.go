package jsonscan

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// Object splits the JSON object b (no surrounding whitespace) into its
// members in one pass that also validates it, giving what
// json.Unmarshal(b, &map[string]json.RawMessage{}) gives: each member's
// value bytes, without the whitespace around them. The values alias b.
//
// ok is false when b is not exactly one valid JSON object, when a member
// is given twice, or when a member name is not plain (it has an escape or
// bytes that are not valid UTF-8, which encoding/json would rewrite):
// callers then fall back to encoding/json, which says what is wrong or
// decodes the name. So Object never gives a different answer from
// encoding/json; it gives one in a third of the time (FuzzObject holds
// the two to the same result).
func Object(b []byte) (m map[string]json.RawMessage, ok bool) {
	p := checker{b: b}
	if len(b) == 0 || b[0] != '{' {
		return nil, false
	}
	p.i++
	p.ws()
	m = make(map[string]json.RawMessage, 8)
	if p.i < len(b) && b[p.i] == '}' {
		p.i++
		return m, p.i == len(b)
	}
	for {
		if p.i >= len(b) || b[p.i] != '"' {
			return nil, false
		}
		start := p.i + 1
		if !p.str() {
			return nil, false
		}
		name := b[start : p.i-1]
		if !plain(name) {
			return nil, false
		}
		p.ws()
		if p.i >= len(b) || b[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.ws()
		vstart := p.i
		if !p.value(1) {
			return nil, false
		}
		if _, dup := m[string(name)]; dup {
			return nil, false
		}
		m[string(name)] = json.RawMessage(b[vstart:p.i:p.i])
		p.ws()
		if p.i >= len(b) {
			return nil, false
		}
		switch b[p.i] {
		case ',':
			p.i++
			p.ws()
		case '}':
			p.i++
			return m, p.i == len(b)
		default:
			return nil, false
		}
	}
}

// Array splits the JSON array b (no surrounding whitespace) into its
// elements in one pass that also validates it, as
// json.Unmarshal(b, &[]json.RawMessage{}) does. The elements alias b. ok
// is false when b is not exactly one valid JSON array.
func Array(b []byte) (elems []json.RawMessage, ok bool) {
	p := checker{b: b}
	if len(b) == 0 || b[0] != '[' {
		return nil, false
	}
	p.i++
	p.ws()
	elems = []json.RawMessage{}
	if p.i < len(b) && b[p.i] == ']' {
		p.i++
		return elems, p.i == len(b)
	}
	for {
		start := p.i
		if !p.value(1) {
			return nil, false
		}
		elems = append(elems, json.RawMessage(b[start:p.i:p.i]))
		p.ws()
		if p.i >= len(b) {
			return nil, false
		}
		switch b[p.i] {
		case ',':
			p.i++
			p.ws()
		case ']':
			p.i++
			return elems, p.i == len(b)
		default:
			return nil, false
		}
	}
}

// plain reports whether the string body s decodes to itself: no escapes,
// and valid UTF-8 (encoding/json replaces invalid bytes with U+FFFD).
func plain(s []byte) bool {
	if bytes.IndexByte(s, '\\') >= 0 {
		return false
	}
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return utf8.Valid(s)
		}
	}
	return true
}

// String decodes the JSON string b (no surrounding whitespace) when it
// needs no decoding: quotes around bytes with no escape, no control
// character and valid UTF-8, giving what json.Unmarshal(b, &s) gives. ok
// is false otherwise; callers then fall back to encoding/json.
func String(b []byte) (s string, ok bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	high := false
	for _, c := range in {
		switch {
		case c == '"' || c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			high = true
		}
	}
	if high && !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}
