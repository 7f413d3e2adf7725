package olingest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MaxTokenNameLen is the longest token name, in bytes. A token's name is
// the namespace of the entries it sends, so it obeys the namespace rules
// and more: 1..64 bytes of [A-Za-z0-9._/-].
const MaxTokenNameLen = 64

// MaxTokens caps the tokens of one file.
const MaxTokens = 10000

// Token is one configured bearer token: its name (recorded as the
// namespace of every entry it sends) and the SHA-256 of its secret.
type Token struct {
	Name string
	Hash [32]byte
}

// Tokens is a set of bearer tokens, stored hashed. It is immutable and
// safe for concurrent use.
type Tokens struct {
	list []Token
}

// ParseTokens reads a tokens file: one token a line, "<name> sha256:<hex>"
// (the hex of SHA-256 of the secret the client sends after "Bearer ";
// auth.HashToken spells it),
// separated by spaces or tabs. Blank lines and lines starting with '#' are
// ignored. Names are unique, 1..MaxTokenNameLen bytes of [A-Za-z0-9._/-];
// hashes are unique too (two names for one secret would make the recorded
// name ambiguous). Errors name the line.
func ParseTokens(b []byte) (*Tokens, error) {
	t := &Tokens{}
	names := map[string]int{}
	hashes := map[[32]byte]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		f := strings.Fields(s)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"<name> sha256:<64 hex digits>\", got %d fields", line, len(f))
		}
		name, hs := f[0], f[1]
		if err := checkTokenName(name); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		hx, ok := strings.CutPrefix(hs, "sha256:")
		if !ok {
			return nil, fmt.Errorf("line %d: token %q: the hash must start with \"sha256:\" (store the SHA-256 of the token, never the token itself)", line, name)
		}
		raw, err := hex.DecodeString(hx)
		if err != nil || len(raw) != 32 || hx != strings.ToLower(hx) {
			return nil, fmt.Errorf("line %d: token %q: the hash must be \"sha256:\" and 64 lowercase hex digits (printf %%s \"$TOKEN\" | sha256sum)", line, name)
		}
		var h [32]byte
		copy(h[:], raw)
		if prev, dup := names[name]; dup {
			return nil, fmt.Errorf("line %d: token name %q is already used on line %d; names must be unique", line, name, prev)
		}
		if prev, dup := hashes[h]; dup {
			return nil, fmt.Errorf("line %d: token %q has the same secret as the token on line %d; give every token its own secret", line, name, prev)
		}
		if len(t.list) >= MaxTokens {
			return nil, fmt.Errorf("line %d: more than %d tokens", line, MaxTokens)
		}
		names[name], hashes[h] = line, line
		t.list = append(t.list, Token{Name: name, Hash: h})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if len(t.list) == 0 {
		return nil, errors.New("no tokens: add lines \"<name> sha256:<hex of SHA-256 of the token>\"")
	}
	return t, nil
}

// LoadTokensFile reads a tokens file (see ParseTokens).
func LoadTokensFile(path string) (*Tokens, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	t, err := ParseTokens(b)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return t, nil
}

func checkTokenName(name string) error {
	if name == "" || len(name) > MaxTokenNameLen {
		return fmt.Errorf("token name %q must be 1..%d bytes", name, MaxTokenNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-') {
			return fmt.Errorf("token name %q: byte %d (%q) is not one of A-Z a-z 0-9 . _ / -", name, i, c)
		}
	}
	return nil
}

// Len returns the number of tokens.
func (t *Tokens) Len() int { return len(t.list) }

// Names returns the token names in file order.
func (t *Tokens) Names() []string {
	out := make([]string, len(t.list))
	for i, k := range t.list {
		out[i] = k.Name
	}
	return out
}

// Match returns the name of the token whose secret is secret. It hashes
// the secret once and compares the hash with every configured hash in
// constant time, so neither the timing nor the position of a match says
// anything about the secrets.
func (t *Tokens) Match(secret string) (string, bool) {
	h := sha256.Sum256([]byte(secret))
	found := -1
	for i := range t.list {
		if subtle.ConstantTimeCompare(h[:], t.list[i].Hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return t.list[found].Name, true
}
