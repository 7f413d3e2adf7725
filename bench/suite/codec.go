package suite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// ErrInvalid is wrapped by every error Decode returns for a document that
// is not a valid suite run.
var ErrInvalid = errors.New("invalid suite result")

// maxDocument bounds what Decode reads (a full run with every detail is a
// few MiB).
const maxDocument = 64 << 20

// Decode reads one suite run from r and validates it.
func Decode(r io.Reader) (*Run, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("read suite result: %w", err)
	}
	if len(b) > maxDocument {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, maxDocument)
	}
	var run Run
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&run); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON document", ErrInvalid)
	}
	if err := run.Validate(); err != nil {
		return nil, err
	}
	return &run, nil
}

// Load reads and validates the suite run in file path.
func Load(path string) (*Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open suite result: %w", err)
	}
	defer f.Close()
	run, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return run, nil
}

// Validate reports the first problem that makes r unusable: a wrong
// schema, a result without a name or scenario, two results of one name,
// a metric without a unit, a negative or non-finite value, an unknown
// direction.
func (r *Run) Validate() error {
	if r.Schema != Schema {
		return fmt.Errorf("%w: schema %d, want %d (re-run the suite with this provbench)", ErrInvalid, r.Schema, Schema)
	}
	seen := make(map[string]bool, len(r.Results))
	for i := range r.Results {
		res := &r.Results[i]
		switch {
		case res.Name == "":
			return fmt.Errorf("%w: result %d has no name", ErrInvalid, i)
		case res.Scenario == "":
			return fmt.Errorf("%w: result %q has no scenario", ErrInvalid, res.Name)
		case seen[res.Name]:
			return fmt.Errorf("%w: two results named %q", ErrInvalid, res.Name)
		}
		seen[res.Name] = true
		for k, m := range res.Metrics {
			if err := m.validate(); err != nil {
				return fmt.Errorf("%w: %s: metric %q: %v", ErrInvalid, res.Name, k, err)
			}
		}
	}
	return nil
}

func (m *Metric) validate() error {
	switch {
	case m.Unit == "":
		return errors.New("no unit")
	case math.IsNaN(m.Value) || math.IsInf(m.Value, 0):
		return errors.New("value is not finite")
	case m.Better != "" && m.Better != HigherIsBetter && m.Better != LowerIsBetter:
		return fmt.Errorf("better is %q, want %q, %q or empty", m.Better, HigherIsBetter, LowerIsBetter)
	}
	for _, s := range m.Samples {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return errors.New("a sample is not finite")
		}
	}
	return nil
}

// Save writes r as indented JSON to path, creating its directory.
func (r *Run) Save(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode suite result: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("suite result directory: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write suite result: %w", err)
	}
	return nil
}
