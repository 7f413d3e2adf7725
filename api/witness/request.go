package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// MaxProofLines is the most consistency-proof lines a request may carry.
const MaxProofLines = 63

// MaxRequestSize bounds an add-checkpoint request body.
const MaxRequestSize = 1 << 16

// ErrMalformedRequest is wrapped by every ParseRequest error.
var ErrMalformedRequest = errors.New("witness: malformed add-checkpoint request")

// Request is a tlog-witness add-checkpoint request.
type Request struct {
	// OldSize is the size of the checkpoint the client believes the
	// witness last cosigned (0: none).
	OldSize uint64
	// Proof is the RFC 6962 consistency proof from OldSize to the
	// checkpoint's size (empty when OldSize is 0 or equals the size).
	Proof [][]byte
	// Checkpoint is the signed checkpoint note.
	Checkpoint []byte
}

// Marshal encodes r as a request body.
func (r *Request) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("old ")
	b.WriteString(strconv.FormatUint(r.OldSize, 10))
	b.WriteByte('\n')
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseRequest decodes an add-checkpoint body strictly: "old N" with no
// leading zeros, at most 63 lines of canonical base64 32-byte hashes, an
// empty line, and a non-empty checkpoint note ending in a newline.
func ParseRequest(b []byte) (*Request, error) {
	if len(b) > MaxRequestSize {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrMalformedRequest, MaxRequestSize)
	}
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
	if !ok {
		return nil, fmt.Errorf("%w: no \"old <size>\" line", ErrMalformedRequest)
	}
	s, found := bytes.CutPrefix([]byte(l), []byte("old "))
	if !found {
		return nil, fmt.Errorf("%w: first line must be \"old <size>\"", ErrMalformedRequest)
	}
	n, err := parseSize(string(s))
	if err != nil {
		return nil, err
	}
	r := &Request{OldSize: n}
	for {
		l, ok = line()
		if !ok {
			return nil, fmt.Errorf("%w: no empty line before the checkpoint", ErrMalformedRequest)
		}
		if l == "" {
			break
		}
		if len(r.Proof) == MaxProofLines {
			return nil, fmt.Errorf("%w: more than %d proof lines", ErrMalformedRequest, MaxProofLines)
		}
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != 32 || base64.StdEncoding.EncodeToString(h) != l {
			return nil, fmt.Errorf("%w: proof line %d is not a base64 32-byte hash", ErrMalformedRequest, len(r.Proof)+1)
		}
		r.Proof = append(r.Proof, h)
	}
	if len(rest) == 0 || rest[len(rest)-1] != '\n' {
		return nil, fmt.Errorf("%w: missing checkpoint, or it does not end with a newline", ErrMalformedRequest)
	}
	r.Checkpoint = bytes.Clone(rest)
	return r, nil
}

func parseSize(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: size %q must be decimal without leading zeros", ErrMalformedRequest, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: size %q must be decimal without leading zeros", ErrMalformedRequest, s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: size %q out of range", ErrMalformedRequest, s)
	}
	return n, nil
}
