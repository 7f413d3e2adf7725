package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"sigs.k8s.io/yaml"
)

// ErrBadPolicy is wrapped by every policy decoding and validation error.
var ErrBadPolicy = errors.New("policy: malformed policy")

// Parse decodes and validates a policy document in YAML or JSON (a
// document whose first non-blank byte is '{' is read as JSON). Unknown
// members are errors, so a typo does not silently weaken a policy.
func Parse(b []byte) (*Policy, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes; a policy may have at most %d", ErrBadPolicy, len(b), MaxSize)
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return ParseJSON(b)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%w: not YAML: %v", ErrBadPolicy, err)
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return nil, fmt.Errorf("%w: the document is empty; start it with policyVersion: %d", ErrBadPolicy, Version)
	}
	p, err := ParseJSON(j)
	if err != nil {
		return nil, fmt.Errorf("%w (YAML read as JSON; a string that looks like a number must be quoted)", err)
	}
	return p, nil
}

// ParseJSON decodes and validates a policy entry's JSON payload strictly:
// one JSON object, no unknown members, no trailing data.
func ParseJSON(b []byte) (*Policy, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes; a policy may have at most %d", ErrBadPolicy, len(b), MaxSize)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var p Policy
	if err := d.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPolicy, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: trailing data after the policy", ErrBadPolicy)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Marshal returns the canonical JSON payload of a policy entry: the
// members in the order of the Policy struct, empty ones left out, no
// insignificant white space. Parsing the result gives an equal policy,
// and marshalling a parsed payload gives the same bytes.
func (p *Policy) Marshal() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("policy: marshal: %w", err)
	}
	return b, nil
}
