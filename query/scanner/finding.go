package scanner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TypeFinding is the DSSE payload type of a finding entry.
const TypeFinding = "application/vnd.provledger.finding+json"

// FindingVersion is the version of the finding JSON this package writes.
const FindingVersion = 1

// ErrBadFinding is wrapped by every finding decoding and validation error.
var ErrBadFinding = errors.New("scanner: malformed finding")

// Severity ranks findings; higher is worse.
type Severity int

// Severities, lowest first.
const (
	SeverityInfo Severity = iota + 1
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = []string{"", "info", "low", "medium", "high", "critical"}

// String is the severity's name ("info" … "critical").
func (s Severity) String() string {
	if s < SeverityInfo || s > SeverityCritical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads a severity name (case-insensitive).
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if i > 0 && strings.EqualFold(s, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("%w: severity %q is not one of info, low, medium, high, critical", ErrBadFinding, s)
}

// MarshalJSON writes the severity's name.
func (s Severity) MarshalJSON() ([]byte, error) {
	if s < SeverityInfo || s > SeverityCritical {
		return nil, fmt.Errorf("%w: severity %d out of range", ErrBadFinding, int(s))
	}
	return json.Marshal(s.String())
}

// UnmarshalJSON reads a severity name.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var n string
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("%w: severity: %v", ErrBadFinding, err)
	}
	v, err := ParseSeverity(n)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Band is the expected range a value was judged against.
type Band struct {
	Low    float64 `json:"low"`
	High   float64 `json:"high"`
	Median float64 `json:"median"`
	// Points is how many past values the band was computed from.
	Points int `json:"points"`
}

// Finding is one anomaly, as written (JSON) into the log.
type Finding struct {
	// Version is FindingVersion.
	Version int `json:"findingVersion"`
	// Detector is the detector that raised it (integrity, gitops, lineage,
	// volume, freshness, cost, time).
	Detector string `json:"detector"`
	// Kind is the detector's kind of finding, "<detector>.<what>".
	Kind     string   `json:"kind"`
	Severity Severity `json:"severity"`
	// Subject is what the finding is about, as "<kind>:<parts…>":
	// dataset:NS:NAME, job:NS:NAME, run:ID, key:KEYID, series:NAME,
	// entry:INDEX.
	Subject string `json:"subject"`
	// Observed is the observed value (what "observed" means is the kind's:
	// a row count, a daily cost, a lag in seconds…), when there is one.
	Observed *float64 `json:"observed,omitempty"`
	// Expected is the band the value fell outside of, or the limit it
	// crossed (High).
	Expected *Band `json:"expected,omitempty"`
	// Entries are the indexes of the log entries that triggered the
	// finding, ascending.
	Entries []uint64 `json:"entries"`
	// Time is the integration time of the entry that triggered the
	// finding (the scanner's clock is the log's).
	Time time.Time `json:"time"`
	// Message is a one-line human explanation.
	Message string `json:"message"`
	// Details holds kind-specific facts (schema diffs, versions, key ids).
	Details map[string]string `json:"details,omitempty"`
}

// Marshal returns the finding's JSON: the payload of its entry. Equal
// findings give equal bytes (members in struct order, details sorted).
func (f *Finding) Marshal() ([]byte, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("scanner: marshal finding: %w", err)
	}
	return b, nil
}

// Validate reports the first problem with f.
func (f *Finding) Validate() error {
	switch {
	case f.Version != FindingVersion:
		return fmt.Errorf("%w: findingVersion %d (this build reads %d)", ErrBadFinding, f.Version, FindingVersion)
	case f.Detector == "":
		return fmt.Errorf("%w: detector is empty", ErrBadFinding)
	case !strings.HasPrefix(f.Kind, f.Detector+"."):
		return fmt.Errorf("%w: kind %q does not start with %q", ErrBadFinding, f.Kind, f.Detector+".")
	case f.Severity < SeverityInfo || f.Severity > SeverityCritical:
		return fmt.Errorf("%w: severity %d out of range", ErrBadFinding, int(f.Severity))
	case f.Subject == "" || !strings.Contains(f.Subject, ":"):
		return fmt.Errorf("%w: subject %q is not <kind>:<name>", ErrBadFinding, f.Subject)
	case len(f.Entries) == 0:
		return fmt.Errorf("%w: no entries", ErrBadFinding)
	case f.Message == "" || strings.ContainsAny(f.Message, "\n\r"):
		return fmt.Errorf("%w: message must be one non-empty line", ErrBadFinding)
	case f.Time.IsZero():
		return fmt.Errorf("%w: time is missing", ErrBadFinding)
	}
	for i := 1; i < len(f.Entries); i++ {
		if f.Entries[i] <= f.Entries[i-1] {
			return fmt.Errorf("%w: entries not strictly ascending at position %d", ErrBadFinding, i)
		}
	}
	return nil
}

// ParseFinding decodes and validates a finding payload. Unknown members
// are errors (a finding is written by this package only).
func ParseFinding(b []byte) (*Finding, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var f Finding
	if err := d.Decode(&f); err != nil {
		if errors.Is(err, ErrBadFinding) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrBadFinding, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: trailing data after the finding", ErrBadFinding)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// StoredFinding is a finding with the index of the log entry that holds
// it.
type StoredFinding struct {
	Index   uint64   `json:"index"`
	Finding *Finding `json:"finding"`
}
