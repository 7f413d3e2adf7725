// Package tlogproof encodes and parses C2SP tlog-proof@v1 files
// (https://c2sp.org/tlog-proof): a self-contained, offline-verifiable proof
// that an entry is in a transparency log.
//
//	c2sp.org/tlog-proof@v1
//	extra <base64>                 (optional)
//	index <N>
//	<base64 SHA-256 hash>          (zero or more: the RFC 6962 inclusion proof)
//
//	<signed checkpoint note, verbatim>
//
// provledger's append receipts are tlog-proof files whose extra data is the
// entry record (crypto/record); the leaf hash is then
// crypto/proof.LeafHash(extra). The extra data is not authenticated by the
// file itself: Verify authenticates it by hashing it into the leaf that the
// inclusion proof leads from.
//
// Parse is strict so that every proof has exactly one encoding: Parse(b)
// succeeds only if Marshal of the result gives b back.
package tlogproof

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Header is the first line of every tlog-proof@v1 file.
const Header = "c2sp.org/tlog-proof@v1"

// Limits that Parse enforces.
const (
	// HashSize is the size of one proof hash (SHA-256).
	HashSize = 32
	// MaxHashes is the longest inclusion proof of a tree of fewer than
	// 2^64 entries.
	MaxHashes = 63
	// MaxCheckpointSize bounds the checkpoint note (a checkpoint with many
	// cosignatures is still a few KiB).
	MaxCheckpointSize = 1 << 16
	// MaxExtraSize bounds the decoded extra data.
	MaxExtraSize = 1 << 16
)

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("malformed tlog-proof")

var b64 = base64.StdEncoding.Strict()

// Proof is a parsed tlog-proof@v1 file.
type Proof struct {
	// Extra is the optional application data (nil or empty: none). For
	// provledger receipts it is the entry record.
	Extra []byte
	// Index is the entry's zero-based index in the log.
	Index uint64
	// Hashes is the RFC 6962 inclusion proof, from the leaf's sibling up to
	// the root's child; each hash is 32 bytes.
	Hashes [][]byte
	// Checkpoint is the signed checkpoint note (C2SP signed-note) the proof
	// leads to, verbatim.
	Checkpoint []byte
}

// Marshal encodes p. The extra line is written only when Extra is not
// empty. Marshal does not validate p: a Proof that Parse returned always
// marshals back to the bytes it was parsed from.
func (p *Proof) Marshal() []byte {
	var b bytes.Buffer
	b.Grow(len(Header) + 32 + b64.EncodedLen(len(p.Extra)) + 46*len(p.Hashes) + len(p.Checkpoint))
	b.WriteString(Header)
	b.WriteByte('\n')
	if len(p.Extra) > 0 {
		b.WriteString("extra ")
		b.WriteString(b64.EncodeToString(p.Extra))
		b.WriteByte('\n')
	}
	b.WriteString("index ")
	b.WriteString(strconv.FormatUint(p.Index, 10))
	b.WriteByte('\n')
	for _, h := range p.Hashes {
		b.WriteString(b64.EncodeToString(h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// Parse decodes a tlog-proof@v1 file. It rejects anything Marshal would not
// write: a missing or different header, an empty or non-canonical base64
// extra, an index with a sign or leading zeros, hashes that are not exactly
// 32 bytes of canonical base64, more than MaxHashes hashes, a missing blank
// line, and a checkpoint that is empty, does not end in a newline or
// contains a NUL or carriage return. The checkpoint's signatures are not
// checked here (see Verify).
func Parse(b []byte) (*Proof, error) {
	rest := b
	line := func() (string, bool) {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return "", false
		}
		l := string(rest[:i])
		rest = rest[i+1:]
		return l, true
	}
	l, ok := line()
	if !ok || l != Header {
		return nil, fmt.Errorf("%w: first line must be %q", ErrMalformed, Header)
	}
	p := &Proof{}
	l, ok = line()
	if !ok {
		return nil, fmt.Errorf("%w: truncated after header", ErrMalformed)
	}
	if e, found := strings.CutPrefix(l, "extra "); found {
		if e == "" {
			return nil, fmt.Errorf("%w: empty extra line (omit it when there is no extra data)", ErrMalformed)
		}
		if b64.DecodedLen(len(e)) > MaxExtraSize+2 {
			return nil, fmt.Errorf("%w: extra data larger than %d bytes", ErrMalformed, MaxExtraSize)
		}
		x, err := b64.DecodeString(e)
		if err != nil {
			return nil, fmt.Errorf("%w: extra is not canonical base64: %v", ErrMalformed, err)
		}
		if len(x) > MaxExtraSize {
			return nil, fmt.Errorf("%w: extra data larger than %d bytes", ErrMalformed, MaxExtraSize)
		}
		p.Extra = x
		if l, ok = line(); !ok {
			return nil, fmt.Errorf("%w: truncated after extra", ErrMalformed)
		}
	}
	idx, found := strings.CutPrefix(l, "index ")
	if !found {
		return nil, fmt.Errorf("%w: expected \"index <N>\", got %q", ErrMalformed, truncate(l))
	}
	n, err := parseIndex(idx)
	if err != nil {
		return nil, err
	}
	p.Index = n
	for {
		l, ok = line()
		if !ok {
			return nil, fmt.Errorf("%w: missing blank line before the checkpoint", ErrMalformed)
		}
		if l == "" {
			break
		}
		if len(p.Hashes) == MaxHashes {
			return nil, fmt.Errorf("%w: more than %d proof hashes", ErrMalformed, MaxHashes)
		}
		if len(l) != b64.EncodedLen(HashSize) {
			return nil, fmt.Errorf("%w: proof hash %d is not 32 bytes of base64: %q", ErrMalformed, len(p.Hashes), truncate(l))
		}
		h, err := b64.DecodeString(l)
		if err != nil || len(h) != HashSize {
			return nil, fmt.Errorf("%w: proof hash %d is not 32 bytes of canonical base64: %q", ErrMalformed, len(p.Hashes), truncate(l))
		}
		p.Hashes = append(p.Hashes, h)
	}
	switch {
	case len(rest) == 0:
		return nil, fmt.Errorf("%w: missing checkpoint", ErrMalformed)
	case len(rest) > MaxCheckpointSize:
		return nil, fmt.Errorf("%w: checkpoint larger than %d bytes", ErrMalformed, MaxCheckpointSize)
	case rest[len(rest)-1] != '\n':
		return nil, fmt.Errorf("%w: checkpoint does not end with a newline", ErrMalformed)
	case bytes.IndexByte(rest, 0) >= 0 || bytes.IndexByte(rest, '\r') >= 0:
		return nil, fmt.Errorf("%w: checkpoint contains a NUL or carriage return", ErrMalformed)
	case rest[0] == '\n':
		return nil, fmt.Errorf("%w: more than one blank line before the checkpoint", ErrMalformed)
	}
	p.Checkpoint = bytes.Clone(rest)
	return p, nil
}

func parseIndex(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: index %q must be a decimal with no leading zeros", ErrMalformed, truncate(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: index %q must be a decimal with no leading zeros", ErrMalformed, truncate(s))
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: index %q out of range", ErrMalformed, truncate(s))
	}
	return n, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
