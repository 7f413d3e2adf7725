package scanner

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/query/payload"
)

// ErrOptions is wrapped by every options validation error.
var ErrOptions = errors.New("scanner: bad options")

// Defaults of Options.
const (
	DefaultNamespace = "provledger.scanner"
	DefaultChunkSize = 4096
	// DefaultCommitEvery is the default Options.CommitEvery: 262,144
	// entries. A commit writes every series touched since the last one,
	// so its cost falls with fewer commits: on the 1M-entry benchmark log
	// 65,536 cost ≈ 47 µs of CPU an entry, 131,072 ≈ 44, 262,144 and
	// 524,288 ≈ 37–39 (docs/scanner.md); a crash rescans at most this
	// many entries plus one chunk (the commit is checked after each
	// chunk): seconds.
	DefaultCommitEvery = 1 << 18
)

// Options configure a Scanner. Zero fields select their defaults.
type Options struct {
	// Signer signs findings with the node's scanner key (Ed25519).
	// Required.
	Signer signature.Signer
	// Namespace of the finding entries. Default DefaultNamespace.
	Namespace string
	// Trust is the base trust (the node's trust file). Keys granted by
	// policy entries are added to it as the scan reaches them. Nil: no
	// base keys.
	Trust *keys.Keyring
	// PolicySigners, when set, are the only keys whose policy entries are
	// honoured; otherwise any key the trust in force knows (or any key at
	// all while no trust is configured) may sign policy.
	PolicySigners []keys.KeyID
	// Policy, when set, is the policy in force at each index: the node's
	// policy index (query/policyindex.Index.At), which folds the policy
	// entries with the rule the node enforces (crypto/policy.State.Accept).
	// The integrity detector then judges every signer with
	// crypto/policy.State.Allows (unknown, revoked, outside the namespaces
	// or payload types granted) and honours exactly the policy entries the
	// index honoured; Trust and PolicySigners are not used for that.
	Policy func(index uint64) *policy.State
	// ChunkSize is the number of entries prepared in parallel and
	// committed with one cursor update. Default DefaultChunkSize.
	ChunkSize int
	// CommitEvery is how many entries are processed between two commits
	// of the state and cursor (a commit also ends every pass). Each
	// chunk's findings are appended as soon as it is processed; a crash
	// rescans at most about CommitEvery entries, signing the same
	// findings, which the log deduplicates. Default DefaultCommitEvery.
	CommitEvery int
	// Workers prepare entries (read, parse, verify) in parallel. Default
	// GOMAXPROCS.
	Workers int
	// Limits are the payload parser limits (those of the lineage index).
	Limits payload.Limits

	// reference selects the slow reference path (point reads of each
	// envelope, the strict parsers for every payload); tests compare its
	// findings with the default path's.
	reference bool
	// Logger gets the scanner's logs. Default slog.Default().
	Logger *slog.Logger

	// Integrity … Time configure the detectors (docs/scanner.md lists
	// every default); Forecast the cost forecast.
	Integrity IntegrityOptions
	GitOps    GitOpsOptions
	Lineage   LineageOptions
	Volume    VolumeOptions
	Freshness FreshnessOptions
	Cost      CostOptions
	Time      TimeOptions
	Forecast  ForecastOptions
}

// IntegrityOptions configure the integrity detector.
type IntegrityOptions struct {
	// Disabled turns the detector off.
	Disabled bool
	// VerifySignatures re-verifies every envelope signature by a key the
	// scanner knows (trust file or policy grant) over the PAE, in parallel
	// (Workers). Default false: the append path verified every signature
	// against the node's keyring before the entry was logged, and the
	// entry record carries the verified signers' key ids, which is all the
	// key checks (unknown, revoked, namespace) need; the envelope's key ids
	// are still checked against the record's signers. Full cryptographic
	// re-verification of a log is the auditor's job (prov audit --full);
	// turn this on for a log written without the append path's checks.
	VerifySignatures bool
}

// GitOpsOptions configure the GitOps detector.
type GitOpsOptions struct {
	// Disabled turns the detector off.
	Disabled bool
	// AllowUnapprovedChanges turns off the "code changed without a policy
	// entry approving it" finding for jobs no policy lists. Default false.
	AllowUnapprovedChanges bool
}

// LineageOptions configure the lineage drift detector.
type LineageOptions struct {
	// Disabled turns the detector off.
	Disabled bool
	// MinRuns is the number of completed runs of a job before a new input
	// is reported. Default 3.
	MinRuns int
	// RunWindow is how long a started run may take to complete, fail or
	// abort. Default 24h.
	RunWindow time.Duration
	// AllowNoInputs turns off the "dataset written with no inputs"
	// finding. Default false.
	AllowNoInputs bool
}

// BandOptions configure a robust band: median ± K·1.4826·MAD over the last
// Window points (of the same weekday when Weekly), judged only with at
// least MinPoints points; the half-width is at least MinRelWidth·|median|.
type BandOptions struct {
	// K is the band's half-width in robust standard deviations. Default 6.
	K float64
	// Window is the number of past points kept per series. Default 8.
	Window int
	// MinPoints before judging. Default 4 (as Soda).
	MinPoints int
	// MinRelWidth floors the half-width relative to the median. Default 0.1.
	MinRelWidth float64
	// NotWeekly compares every point with the last Window points instead
	// of those of the same weekday (UTC, by integration time or charge
	// day). Default false: weekly seasonality.
	NotWeekly bool
}

func (b BandOptions) withDefaults() BandOptions {
	if b.K == 0 {
		b.K = 6
	}
	if b.Window == 0 {
		b.Window = 8
	}
	if b.MinPoints == 0 {
		b.MinPoints = 4
	}
	if b.MinRelWidth == 0 {
		b.MinRelWidth = 0.1
	}
	return b
}

// Validate reports the first problem with b.
func (b BandOptions) Validate() error {
	d := b.withDefaults()
	switch {
	case d.K < 0 || d.MinRelWidth < 0:
		return fmt.Errorf("%w: band K %v and MinRelWidth %v must not be negative", ErrOptions, b.K, b.MinRelWidth)
	case d.Window < 0 || d.Window > 1000:
		return fmt.Errorf("%w: band Window %d must be 1..1000", ErrOptions, b.Window)
	case d.MinPoints < 1 || d.MinPoints > d.Window:
		return fmt.Errorf("%w: band MinPoints %d must be 1..Window (%d)", ErrOptions, b.MinPoints, d.Window)
	}
	return nil
}

// VolumeOptions configure the volume and quality detector (row counts,
// bytes, null counts of dataset outputs).
type VolumeOptions struct {
	// Disabled turns the detector off.
	Disabled bool
	// Band is the robust band of each series.
	Band BandOptions
}

// FreshnessOptions configure the freshness detector.
type FreshnessOptions struct {
	// Disabled turns the detector off.
	Disabled bool
	// Factor times the learned interval (median of the last gaps) is how
	// long a dataset may go without an update. Default 2.
	Factor float64
	// Grace is added to the learned limit. Default 6h.
	Grace time.Duration
	// MinGaps is the number of gaps learned before judging. Default 4.
	MinGaps int
	// Intervals are configured intervals per "NS:NAME" (policy entries
	// may set more).
	Intervals map[string]time.Duration
}

// CostOptions configure the cost detector.
type CostOptions struct {
	// Disabled turns the detector off.
	Disabled bool
	// Band is the robust band of daily cost per series.
	Band BandOptions
	// MinDaily ignores daily totals (and bands) below this amount.
	// Default 1.
	MinDaily float64
	// RequiredTags are the tag keys every cost row must carry; empty: at
	// least one tag.
	RequiredTags []string
	// History is the number of daily totals kept per series for the
	// forecast. Default 120.
	History int
}

// TimeOptions configure the time detector.
type TimeOptions struct {
	// Disabled turns the detector off.
	Disabled bool
	// MaxLag is how far an eventTime may be behind its integration time.
	// Default 24h.
	MaxLag time.Duration
	// MaxLead is how far an eventTime may be ahead of its integration
	// time. Default 5m.
	MaxLead time.Duration
	// Tolerance is how far an event may go back in time within a run.
	// Default 0.
	Tolerance time.Duration
}

// ForecastOptions configure the cost forecast.
type ForecastOptions struct {
	// Horizon in days. Default 30.
	Horizon int
	// Z is the prediction interval's width in standard deviations.
	// Default 1.96 (95 %).
	Z float64
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.CommitEvery == 0 {
		o.CommitEvery = DefaultCommitEvery
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Lineage.MinRuns == 0 {
		o.Lineage.MinRuns = 3
	}
	if o.Lineage.RunWindow == 0 {
		o.Lineage.RunWindow = 24 * time.Hour
	}
	o.Volume.Band = o.Volume.Band.withDefaults()
	o.Cost.Band = o.Cost.Band.withDefaults()
	if o.Freshness.Factor == 0 {
		o.Freshness.Factor = 2
	}
	if o.Freshness.Grace == 0 {
		o.Freshness.Grace = 6 * time.Hour
	}
	if o.Freshness.MinGaps == 0 {
		o.Freshness.MinGaps = 4
	}
	if o.Cost.MinDaily == 0 {
		o.Cost.MinDaily = 1
	}
	if o.Cost.History == 0 {
		o.Cost.History = 120
	}
	if o.Time.MaxLag == 0 {
		o.Time.MaxLag = 24 * time.Hour
	}
	if o.Time.MaxLead == 0 {
		o.Time.MaxLead = 5 * time.Minute
	}
	if o.Forecast.Horizon == 0 {
		o.Forecast.Horizon = 30
	}
	if o.Forecast.Z == 0 {
		o.Forecast.Z = 1.96
	}
	return o
}

// Validate reports the first problem with o, naming the field.
func (o *Options) Validate() error {
	d := o.withDefaults()
	switch {
	case o.Signer == nil:
		return fmt.Errorf("%w: Signer (the scanner key) is required", ErrOptions)
	case d.ChunkSize < 1 || d.ChunkSize > 1<<20:
		return fmt.Errorf("%w: ChunkSize %d must be 1..1048576", ErrOptions, o.ChunkSize)
	case d.CommitEvery < 1 || d.CommitEvery > 1<<30:
		return fmt.Errorf("%w: CommitEvery %d must be 1..1073741824", ErrOptions, o.CommitEvery)
	case d.Workers < 1 || d.Workers > 256:
		return fmt.Errorf("%w: Workers %d must be 1..256", ErrOptions, o.Workers)
	case len(d.Namespace) > 255:
		return fmt.Errorf("%w: Namespace longer than 255 bytes", ErrOptions)
	case d.Lineage.MinRuns < 0 || d.Lineage.RunWindow < 0:
		return fmt.Errorf("%w: Lineage.MinRuns and RunWindow must not be negative", ErrOptions)
	case d.Freshness.Factor < 1 || d.Freshness.Grace < 0 || d.Freshness.MinGaps < 1:
		return fmt.Errorf("%w: Freshness.Factor must be ≥ 1, Grace ≥ 0, MinGaps ≥ 1", ErrOptions)
	case d.Cost.MinDaily < 0 || d.Cost.History < 14 || d.Cost.History > 3660:
		return fmt.Errorf("%w: Cost.MinDaily must be ≥ 0 and History 14..3660 days", ErrOptions)
	case d.Time.MaxLag < 0 || d.Time.MaxLead < 0 || d.Time.Tolerance < 0:
		return fmt.Errorf("%w: Time durations must not be negative", ErrOptions)
	case d.Forecast.Horizon < 1 || d.Forecast.Horizon > 366 || d.Forecast.Z <= 0:
		return fmt.Errorf("%w: Forecast.Horizon must be 1..366 and Z positive", ErrOptions)
	}
	for k, v := range d.Freshness.Intervals {
		if v <= 0 {
			return fmt.Errorf("%w: Freshness.Intervals[%q] must be positive", ErrOptions, k)
		}
	}
	if err := d.Volume.Band.Validate(); err != nil {
		return fmt.Errorf("Volume.Band: %w", err)
	}
	if err := d.Cost.Band.Validate(); err != nil {
		return fmt.Errorf("Cost.Band: %w", err)
	}
	return nil
}
