// Package redaction is the payload of a redaction entry
// (application/vnd.provledger.redaction+json): which entries' envelopes an
// admin asks the log to delete, and why. It is a plain JSON codec, shared
// by the ledger (which applies redactions), the CLI (which builds them)
// and the auditor (which checks that every missing envelope is covered by
// one); it imports nothing of ours. docs/ledger.md, "Redaction", describes
// what applying one does.
package redaction

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PayloadType is the DSSE payload type of a redaction entry.
const PayloadType = "application/vnd.provledger.redaction+json"

// Limits of a redaction payload.
const (
	// MaxTargets is the most entries one redaction may name.
	MaxTargets = 64
	// MaxReason is the longest reason, in bytes.
	MaxReason = 1024
	// MaxTicket is the longest ticket reference, in bytes.
	MaxTicket = 256
	// MaxPayload bounds the encoded payload; Decode refuses larger input
	// without parsing it.
	MaxPayload = 64 << 10
)

// ErrMalformed is wrapped by every Decode and Validate error.
var ErrMalformed = errors.New("malformed redaction payload")

// Target names one entry whose envelope is to be deleted. Both the index
// and the envelope digest are given, so a redaction cannot hit another
// entry than the one its signer looked at.
type Target struct {
	// Index is the entry's position in the log.
	Index uint64
	// EnvelopeDigest is the SHA-256 of the entry's canonical envelope,
	// as its record holds it.
	EnvelopeDigest [32]byte
}

// Payload is a decoded redaction payload.
type Payload struct {
	// Targets are the entries to redact (1..MaxTargets, no index twice).
	Targets []Target
	// Reason says why, for whoever later reads "redacted by entry N"
	// (1..MaxReason bytes of printable UTF-8). It must not repeat the
	// personal data being erased.
	Reason string
	// Ticket optionally references the erasure request (e.g. a ticket id).
	Ticket string
}

type targetJSON struct {
	Index          *uint64 `json:"index"`
	EnvelopeDigest string  `json:"envelopeDigest"`
}

type payloadJSON struct {
	Targets []targetJSON `json:"targets"`
	Reason  string       `json:"reason"`
	Ticket  string       `json:"ticket,omitempty"`
}

// digestPrefix starts every envelope digest in the JSON form.
const digestPrefix = "sha256:"

// Decode parses and validates a redaction payload. It accepts exactly one
// JSON object with the members targets, reason and (optional) ticket;
// unknown members, trailing data and out-of-range values are refused with
// an error wrapping ErrMalformed that names what to fix.
func Decode(b []byte) (Payload, error) {
	if len(b) > MaxPayload {
		return Payload{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMalformed, len(b), MaxPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var pj payloadJSON
	if err := dec.Decode(&pj); err != nil {
		return Payload{}, fmt.Errorf("%w: %v; send {\"targets\": [{\"index\": N, \"envelopeDigest\": \"sha256:<hex>\"}], \"reason\": \"...\"}", ErrMalformed, err)
	}
	if rest := bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return Payload{}, fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	p := Payload{Reason: pj.Reason, Ticket: pj.Ticket, Targets: make([]Target, 0, len(pj.Targets))}
	for i, t := range pj.Targets {
		if t.Index == nil {
			return Payload{}, fmt.Errorf("%w: targets[%d].index is missing", ErrMalformed, i)
		}
		d, err := ParseDigest(t.EnvelopeDigest)
		if err != nil {
			return Payload{}, fmt.Errorf("%w: targets[%d].envelopeDigest: %v", ErrMalformed, i, err)
		}
		p.Targets = append(p.Targets, Target{Index: *t.Index, EnvelopeDigest: d})
	}
	if err := p.Validate(); err != nil {
		return Payload{}, err
	}
	return p, nil
}

// Validate checks p against the limits; the error wraps ErrMalformed.
func (p *Payload) Validate() error {
	switch {
	case len(p.Targets) == 0:
		return fmt.Errorf("%w: targets is empty; name at least one entry", ErrMalformed)
	case len(p.Targets) > MaxTargets:
		return fmt.Errorf("%w: %d targets, the limit is %d; split the redaction", ErrMalformed, len(p.Targets), MaxTargets)
	}
	seen := make(map[uint64]struct{}, len(p.Targets))
	for i, t := range p.Targets {
		if _, dup := seen[t.Index]; dup {
			return fmt.Errorf("%w: targets[%d] names entry %d again", ErrMalformed, i, t.Index)
		}
		seen[t.Index] = struct{}{}
	}
	if err := checkText("reason", p.Reason, 1, MaxReason); err != nil {
		return err
	}
	return checkText("ticket", p.Ticket, 0, MaxTicket)
}

func checkText(field, s string, minLen, maxLen int) error {
	if len(s) < minLen || len(s) > maxLen {
		if minLen > 0 && s == "" {
			return fmt.Errorf("%w: %s is required (say why the entry is redacted, without repeating the erased data)", ErrMalformed, field)
		}
		return fmt.Errorf("%w: %s is %d bytes; the limit is %d", ErrMalformed, field, len(s), maxLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrMalformed, field)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s has a control character %U at byte %d", ErrMalformed, field, r, i)
		}
	}
	return nil
}

// Encode returns the canonical JSON of p (targets in the given order).
// It validates p first.
func Encode(p Payload) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	pj := payloadJSON{Reason: p.Reason, Ticket: p.Ticket, Targets: make([]targetJSON, len(p.Targets))}
	for i, t := range p.Targets {
		idx := t.Index
		pj.Targets[i] = targetJSON{Index: &idx, EnvelopeDigest: FormatDigest(t.EnvelopeDigest)}
	}
	return json.Marshal(pj)
}

// FormatDigest renders an envelope digest as the payload writes it:
// "sha256:" and 64 lowercase hex digits.
func FormatDigest(d [32]byte) string { return digestPrefix + hex.EncodeToString(d[:]) }

// ParseDigest parses "sha256:<64 lowercase hex digits>".
func ParseDigest(s string) ([32]byte, error) {
	var d [32]byte
	h, ok := strings.CutPrefix(s, digestPrefix)
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return d, fmt.Errorf("%q is not \"sha256:\" and 64 lowercase hex digits", truncate(s))
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, fmt.Errorf("%q is not \"sha256:\" and 64 lowercase hex digits", truncate(s))
	}
	return d, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
