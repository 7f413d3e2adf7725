package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/provledger/provledger/query/jsonscan"
)

// ErrInvalid is wrapped by every error about a payload's content. Errors
// are *FieldError values that name the bad field with its JSON path.
var ErrInvalid = errors.New("invalid payload")

// ErrNotLineage marks a well-formed payload that carries nothing the graph
// indexes (for example an in-toto Statement whose predicate is not SLSA
// provenance).
var ErrNotLineage = errors.New("payload carries no lineage")

// FieldError is a problem with one field of a payload.
type FieldError struct {
	// Field is the JSON path of the bad field, as the spec spells it
	// (e.g. "run.runId", "outputs[1].facets.schema").
	Field string
	// Msg says what is wrong and, where useful, what to send instead.
	Msg string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(path, format string, args ...any) error {
	return &FieldError{Field: path, Msg: fmt.Sprintf(format, args...)}
}

// obj is a decoded JSON object with its path, for exact-name member access.
type obj struct {
	path string
	m    map[string]json.RawMessage
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// parseObject decodes raw as a JSON object. Member names are matched
// exactly (encoding/json alone would match them case-insensitively), and a
// member given twice is an error.
func parseObject(path string, raw json.RawMessage) (obj, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return obj{}, fieldErr(path, "must be a JSON object, got %s", describe(raw))
	}
	if m, ok := jsonscan.Object(raw); ok {
		return obj{path: path, m: m}, nil
	}
	// Not a plain valid object: encoding/json decodes escaped names and
	// says what is wrong.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return obj{}, fieldErr(path, "is not a valid JSON object: %v", err)
	}
	if countMembers(raw) != len(m) {
		// A member was given twice: find it for the message.
		if err := checkDuplicates(path, raw); err != nil {
			return obj{}, err
		}
	}
	return obj{path: path, m: m}, nil
}

// countMembers counts the members of a valid JSON object (as
// json.Unmarshal accepted it) in one pass over its bytes: a string right
// after the object's '{' or one of its ',' is a member name.
func countMembers(raw []byte) int {
	depth, n := 0, 0
	inString, expectName := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			if depth == 1 && expectName {
				n++
				expectName = false
			}
		case '{', '[':
			depth++
			if depth == 1 {
				expectName = true
			}
		case '}', ']':
			depth--
		case ',':
			if depth == 1 {
				expectName = true
			}
		}
	}
	return n
}

// checkDuplicates rejects an object that names a member twice (the JSON
// RFC leaves the meaning open; parsers disagree on which one wins).
func checkDuplicates(path string, raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return fieldErr(path, "is not valid JSON: %v", err)
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fieldErr(path, "is not valid JSON: %v", err)
		}
		k, _ := t.(string)
		if seen[k] {
			return fieldErr(join(path, k), "is given twice")
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fieldErr(join(path, k), "is not valid JSON: %v", err)
		}
	}
	return nil
}

// rootErr turns an error about the whole document into one that says what
// the payload should have been; errors about a member keep their path.
func rootErr(what string, err error) error {
	if fe, ok := err.(*FieldError); ok && fe.Field != "" {
		return err
	}
	return &FieldError{Msg: "the payload is not " + what + ": " + err.Error()}
}

func describe(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func (o obj) has(name string) bool {
	raw, ok := o.m[name]
	return ok && !isNull(raw)
}

func (o obj) raw(name string) (json.RawMessage, bool) {
	raw, ok := o.m[name]
	if !ok || isNull(raw) {
		return nil, false
	}
	return raw, true
}

// str returns member name as a string ("" if absent or null). required
// makes an absent, null or empty member an error.
func (o obj) str(name string, required bool, maxLen int) (string, error) {
	p := join(o.path, name)
	raw, ok := o.raw(name)
	if !ok {
		if required {
			return "", fieldErr(p, "is required")
		}
		return "", nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", fieldErr(p, "must be a string, got %s", describe(raw))
	}
	s, ok := jsonscan.String(raw)
	if !ok {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fieldErr(p, "is not a valid JSON string: %v", err)
		}
	}
	if !utf8.ValidString(s) {
		return "", fieldErr(p, "is not valid UTF-8")
	}
	if required && s == "" {
		return "", fieldErr(p, "must not be empty")
	}
	if maxLen > 0 && len(s) > maxLen {
		return "", fieldErr(p, "is %d bytes; the limit is %d", len(s), maxLen)
	}
	return s, nil
}

func (o obj) object(name string, required bool) (obj, bool, error) {
	p := join(o.path, name)
	raw, ok := o.raw(name)
	if !ok {
		if required {
			return obj{}, false, fieldErr(p, "is required")
		}
		return obj{}, false, nil
	}
	x, err := parseObject(p, raw)
	return x, err == nil, err
}

func (o obj) array(name string, maxLen int) ([]json.RawMessage, error) {
	p := join(o.path, name)
	raw, ok := o.raw(name)
	if !ok {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, fieldErr(p, "must be an array, got %s", describe(raw))
	}
	a, ok := jsonscan.Array(raw)
	if !ok {
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fieldErr(p, "is not a valid JSON array: %v", err)
		}
	}
	if maxLen > 0 && len(a) > maxLen {
		return nil, fieldErr(p, "has %d items; the limit is %d", len(a), maxLen)
	}
	return a, nil
}

// int64Opt returns an optional non-negative integer member.
func (o obj) count(name string) (*int64, error) {
	p := join(o.path, name)
	raw, ok := o.raw(name)
	if !ok {
		return nil, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fieldErr(p, "must be a number, got %s", describe(raw))
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		// 1.0e3 is still an integer count; accept exact integral floats.
		f, ferr := strconv.ParseFloat(string(n), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
			return nil, fieldErr(p, "must be an integer, got %s", n)
		}
		v = int64(f)
	}
	if v < 0 {
		return nil, fieldErr(p, "must not be negative, got %d", v)
	}
	return &v, nil
}

func (o obj) number(name string) (*float64, error) {
	p := join(o.path, name)
	raw, ok := o.raw(name)
	if !ok {
		return nil, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fieldErr(p, "must be a number, got %s", describe(raw))
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, fieldErr(p, "number %s is out of range", n)
	}
	return &f, nil
}

func (o obj) boolean(name string) (bool, error) {
	raw, ok := o.raw(name)
	if !ok {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, fieldErr(join(o.path, name), "must be true or false, got %s", describe(raw))
	}
	return b, nil
}

// timestamp parses an RFC 3339 date-time (the spec's "format": "date-time").
func (o obj) timestamp(name string, required bool) (time.Time, error) {
	s, err := o.str(name, required, 64)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fieldErr(join(o.path, name), "%q is not an RFC 3339 date-time (e.g. 2026-11-26T10:15:00.000Z)", truncate(s))
	}
	return t.UTC(), nil
}

// keys returns the object's member names, sorted (maps have no order, and
// indexing must be deterministic).
func (o obj) keys() []string {
	ks := make([]string, 0, len(o.m))
	for k := range o.m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func truncate(s string) string {
	if len(s) > 80 {
		s = s[:80]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		return s + "…"
	}
	return s
}

// canonicalUUID parses a UUID in its 8-4-4-4-12 hex form (any case, as
// OpenLineage's "format": "uuid") and returns it in lower case.
func canonicalUUID(path, s string) (string, error) {
	if len(s) != 36 {
		return "", fieldErr(path, "%q is not a UUID (want 8-4-4-4-12 hex digits, e.g. 0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00)", truncate(s))
	}
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", fieldErr(path, "%q is not a UUID (want 8-4-4-4-12 hex digits, e.g. 0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00)", truncate(s))
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return "", fieldErr(path, "%q is not a UUID (want 8-4-4-4-12 hex digits, e.g. 0193a6f2-7c1e-7d3a-9b2e-5f4c3d2e1a00)", truncate(s))
			}
		}
	}
	return string(b), nil
}
