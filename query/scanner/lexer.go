package scanner

import (
	"bytes"
	"errors"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/provledger/provledger/query/jsonscan"
)

// errLex: the lexer met something that is not valid JSON as jsontext
// reads it (the lean decoder then leaves the payload to the strict parser).
var errLex = errors.New("scanner: lean decoder: not valid JSON")

// maxLexDepth is jsontext's nesting limit.
const maxLexDepth = 10000

// lexNameSet is the number of names of one object beyond which the
// duplicate check uses a map instead of comparing with each name.
const lexNameSet = 32

// lexer reads JSON straight off a byte slice for the lean decoder: the
// part of jsontext.Decoder's interface the decoder uses (PeekKind,
// ReadToken, ReadValue, SkipValue, InputOffset) with jsontext's verdicts —
// the RFC 8259 grammar, strings of valid UTF-8 without control characters
// and with valid escapes (no lone surrogates), no member name given twice
// in an object at any depth (names compared unescaped), at most
// maxLexDepth levels, nothing after the value but white space — without
// copying the input or running a token state machine per byte. Every byte
// the lean decoder consumes is checked by the read that consumes it, and
// the decoder accepts a payload only once all of it is consumed, so it
// accepts what it accepted over jsontext (FuzzLeanLexer compares the two).
//
// Names and strings returned alias the input unless they had escapes:
// an escaped name is decoded into a new slice, an escaped string value
// into a scratch buffer valid until the next read.
type lexer struct {
	b       []byte
	i       int
	err     error
	done    bool // the top-level value was read
	stack   []lexFrame
	names   [][]byte // the names of the open objects, innermost last
	scratch []byte
}

// lexFrame is an open array or object.
type lexFrame struct {
	obj   bool                // an object (else an array)
	value bool                // object: a name was read, its value is next
	sep   bool                // a ',' was read: a member or item must follow
	n     int                 // members or items read
	names int                 // the object's first name in lexer.names
	set   map[string]struct{} // the object's names once it has lexNameSet
}

// reset starts reading b (which must not change while it is read).
func (x *lexer) reset(b []byte) {
	x.b, x.i, x.err, x.done = b, 0, nil, false
	x.stack = x.stack[:0]
	clear(x.names)
	x.names = x.names[:0]
}

func (x *lexer) fail() {
	if x.err == nil {
		x.err = errLex
	}
}

func (x *lexer) ws() {
	for x.i < len(x.b) {
		switch x.b[x.i] {
		case ' ', '\t', '\n', '\r':
			x.i++
		default:
			return
		}
	}
}

// more reads what follows a member or element of an object or array
// closed by end: a ',' (and the white space after it) reports true, end
// is consumed and reports false, anything else fails the lexer and
// reports false.
func (x *lexer) more(end byte) bool {
	x.ws()
	if x.i >= len(x.b) {
		x.fail()
		return false
	}
	switch x.b[x.i] {
	case ',':
		x.i++
		x.ws()
		return true
	case end:
		x.i++
	default:
		x.fail()
	}
	return false
}

// kindOf is jsontext's Kind of the token starting with c, or 0.
func kindOf(c byte) byte {
	switch c {
	case '{', '}', '[', ']', '"', 'n', 't', 'f':
		return c
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return '0'
	}
	return 0
}

// PeekKind is the kind of the next token ('{', '}', '[', ']', '"', 'n',
// 't', 'f', '0' for a number), having consumed the white space and the ','
// before it; 0 at the end of the input or where no token may follow.
func (x *lexer) PeekKind() byte {
	if x.err != nil {
		return 0
	}
	x.ws()
	if x.i >= len(x.b) {
		return 0
	}
	c := x.b[x.i]
	if len(x.stack) == 0 {
		if x.done {
			return 0
		}
		return kindOf(c)
	}
	f := &x.stack[len(x.stack)-1]
	if f.value {
		return kindOf(c)
	}
	if f.n > 0 && !f.sep {
		switch c {
		case ',':
			x.i++
			x.ws()
			f.sep = true
			if x.i >= len(x.b) {
				return 0
			}
			c = x.b[x.i]
		case '}', ']':
			return c
		default:
			return 0
		}
	}
	switch {
	case f.sep && (c == '}' || c == ']'):
		return 0
	case f.obj && c != '"' && c != '}':
		return 0
	}
	return kindOf(c)
}

// complete ends a value: the root, an item, or a member.
func (x *lexer) complete() {
	if len(x.stack) == 0 {
		x.done = true
		return
	}
	f := &x.stack[len(x.stack)-1]
	f.value, f.sep = false, false
	f.n++
}

// ReadToken reads the next token: it returns a member name (unescaped),
// nil for any other token.
func (x *lexer) ReadToken() ([]byte, error) {
	k := x.PeekKind()
	switch k {
	case '{', '[':
		if len(x.stack) >= maxLexDepth {
			x.fail()
			break
		}
		x.i++
		x.stack = append(x.stack, lexFrame{obj: k == '{', names: len(x.names)})
	case '}', ']':
		if len(x.stack) == 0 {
			x.fail()
			break
		}
		f := &x.stack[len(x.stack)-1]
		if f.obj != (k == '}') || f.value {
			x.fail()
			break
		}
		x.i++
		clear(x.names[f.names:])
		x.names = x.names[:f.names]
		x.stack = x.stack[:len(x.stack)-1]
		x.complete()
	case '"':
		if n := len(x.stack); n > 0 && x.stack[n-1].obj && !x.stack[n-1].value {
			return x.name(), x.err
		}
		s, _ := x.str()
		if x.err == nil {
			x.complete()
		}
		return s, x.err
	case 0:
		x.fail()
	default:
		if x.scalar(); x.err == nil {
			x.complete()
		}
	}
	return nil, x.err
}

// Member reads the next member name of the innermost object (what
// PeekKind and ReadToken give there), or its '}' (ok false).
func (x *lexer) Member() (name []byte, ok bool) {
	if x.err != nil {
		return nil, false
	}
	n := len(x.stack)
	if n == 0 || !x.stack[n-1].obj || x.stack[n-1].value {
		x.fail()
		return nil, false
	}
	f := &x.stack[n-1]
	x.ws()
	if x.i >= len(x.b) {
		x.fail()
		return nil, false
	}
	c := x.b[x.i]
	if f.n > 0 && !f.sep {
		if c == '}' {
			x.closeObject()
			return nil, false
		}
		if c != ',' {
			x.fail()
			return nil, false
		}
		x.i++
		x.ws()
		f.sep = true
		if x.i >= len(x.b) {
			x.fail()
			return nil, false
		}
		c = x.b[x.i]
	}
	switch {
	case c == '"':
		name = x.name()
		return name, x.err == nil
	case c == '}' && !f.sep:
		x.closeObject()
		return nil, false
	}
	x.fail()
	return nil, false
}

// closeObject reads the '}' of the innermost object.
func (x *lexer) closeObject() {
	f := &x.stack[len(x.stack)-1]
	x.i++
	clear(x.names[f.names:])
	x.names = x.names[:f.names]
	x.stack = x.stack[:len(x.stack)-1]
	x.complete()
}

// name reads a member name of the innermost object, its ':' and the
// white space after it.
func (x *lexer) name() []byte {
	start := x.i
	s, esc := x.str()
	if x.err != nil {
		return nil
	}
	if esc {
		s, _ = jsontext.AppendUnquote(nil, x.b[start:x.i]) // a new slice: names are kept
	}
	f := &x.stack[len(x.stack)-1]
	if !x.addName(f.names, &f.set, s) {
		return nil
	}
	x.ws()
	if x.i >= len(x.b) || x.b[x.i] != ':' {
		x.fail()
		return nil
	}
	x.i++
	f.value, f.sep = true, false
	return s
}

// addName adds name to the names of the object whose names start at
// mark, failing if it is there already.
func (x *lexer) addName(mark int, set *map[string]struct{}, name []byte) bool {
	if *set != nil {
		if _, dup := (*set)[string(name)]; dup {
			x.fail()
			return false
		}
		(*set)[string(name)] = struct{}{}
		return true
	}
	for _, n := range x.names[mark:] {
		if bytes.Equal(n, name) {
			x.fail()
			return false
		}
	}
	x.names = append(x.names, name)
	if len(x.names)-mark >= lexNameSet {
		*set = make(map[string]struct{}, 2*lexNameSet)
		for _, n := range x.names[mark:] {
			(*set)[string(n)] = struct{}{}
		}
	}
	return true
}

// strSafe: bytes a string holds as they are (no quote, backslash,
// control character or non-ASCII byte).
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

// str reads the string at x.i: its content, unescaped (esc: it had
// escapes, and the content is in x.scratch).
func (x *lexer) str() (s []byte, esc bool) {
	b := x.b
	start := x.i
	i := start + 1
	high := false
	for {
		for i < len(b) && strSafe[b[i]] {
			i++
		}
		if i >= len(b) {
			x.fail()
			return nil, false
		}
		switch c := b[i]; {
		case c == '"':
			x.i = i + 1
			raw := b[start+1 : i]
			if esc {
				var err error
				if x.scratch, err = jsontext.AppendUnquote(x.scratch[:0], b[start:i+1]); err != nil {
					x.fail()
					return nil, false
				}
				return x.scratch, true
			}
			if high && !utf8.Valid(raw) {
				x.fail()
				return nil, false
			}
			return raw, false
		case c == '\\':
			// The escape is checked by AppendUnquote; skip the escaped
			// byte so that \" does not end the string.
			esc = true
			i += 2
		case c < 0x20:
			x.fail()
			return nil, false
		default:
			high = true
			i++
		}
	}
}

// scalar reads a number or a literal at x.i.
func (x *lexer) scalar() {
	b := x.b
	switch b[x.i] {
	case 't':
		x.literal("true")
	case 'f':
		x.literal("false")
	case 'n':
		x.literal("null")
	default:
		x.number()
	}
}

func (x *lexer) literal(lit string) {
	if !bytes.HasPrefix(x.b[x.i:], []byte(lit)) {
		x.fail()
		return
	}
	x.i += len(lit)
}

// number reads the JSON number at x.i.
func (x *lexer) number() {
	end, ok := jsonscan.NumberEnd(x.b, x.i)
	if !ok {
		x.fail()
		return
	}
	x.i = end
}

// ReadValue reads the next value whole and returns its bytes.
func (x *lexer) ReadValue() ([]byte, error) {
	switch k := x.PeekKind(); k {
	case 0, '}', ']':
		x.fail()
		return nil, x.err
	}
	start := x.i
	x.value(len(x.stack))
	if x.err != nil {
		return nil, x.err
	}
	x.complete()
	return x.b[start:x.i], nil
}

// ReadString reads the next value, a string, and returns its content
// unescaped.
func (x *lexer) ReadString() ([]byte, error) {
	if x.PeekKind() != '"' {
		x.fail()
		return nil, x.err
	}
	s, _ := x.str()
	if x.err != nil {
		return nil, x.err
	}
	x.complete()
	return s, nil
}

// SkipValue reads the next value.
func (x *lexer) SkipValue() error {
	_, err := x.ReadValue()
	return err
}

// InputOffset is the offset of the byte after the last token or value
// read.
func (x *lexer) InputOffset() int64 { return int64(x.i) }

// eof reports whether the top-level value was read with nothing after it
// but white space.
func (x *lexer) eof() bool {
	if x.err != nil || !x.done {
		return false
	}
	x.ws()
	return x.i == len(x.b)
}

// open consumes the bracket at x.i that end closes, and the white space
// after it. It reports whether members or elements follow: false when the
// container closes right away (consumed) or is one too deep (x fails).
func (x *lexer) open(end byte, depth int) bool {
	if depth >= maxLexDepth {
		x.fail()
		return false
	}
	x.i++
	x.ws()
	if x.i < len(x.b) && x.b[x.i] == end {
		x.i++
		return false
	}
	return true
}

// value reads a whole value at x.i inside depth open containers.
func (x *lexer) value(depth int) {
	b := x.b
	switch b[x.i] {
	case '{':
		if !x.open('}', depth) {
			return
		}
		mark := len(x.names)
		var set map[string]struct{}
		defer func() {
			clear(x.names[mark:])
			x.names = x.names[:mark]
		}()
		for {
			if x.i >= len(b) || b[x.i] != '"' {
				x.fail()
				return
			}
			start := x.i
			s, esc := x.str()
			if x.err != nil {
				return
			}
			if esc {
				s, _ = jsontext.AppendUnquote(nil, b[start:x.i])
			}
			if !x.addName(mark, &set, s) {
				return
			}
			x.ws()
			if x.i >= len(b) || b[x.i] != ':' {
				x.fail()
				return
			}
			x.i++
			x.ws()
			if x.i >= len(b) {
				x.fail()
				return
			}
			if x.value(depth + 1); x.err != nil || !x.more('}') {
				return
			}
		}
	case '[':
		if !x.open(']', depth) {
			return
		}
		for {
			if x.i >= len(b) {
				x.fail()
				return
			}
			if x.value(depth + 1); x.err != nil || !x.more(']') {
				return
			}
		}
	case '"':
		x.str()
	case 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		x.scalar()
	default:
		x.fail()
	}
}
