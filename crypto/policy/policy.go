package policy

import (
	"crypto"
	"time"

	"github.com/provledger/provledger/crypto/keys"
)

// PayloadType is the DSSE payload type of a policy entry.
const PayloadType = "application/vnd.provledger.policy+json"

// Version is the policy schema version this package reads and writes.
const Version = 1

// MaxSize caps a policy document (YAML or JSON) in bytes.
const MaxSize = 512 << 10

// Policy is one policy entry: an amendment to the policy in force, or with
// Replace the whole of it. Field order is the order of the canonical JSON.
type Policy struct {
	// Version is the schema version; it must be Version.
	Version int `json:"policyVersion"`
	// Replace makes this entry the whole policy: keys, jobs, budgets,
	// datasets and thresholds not listed here are dropped. Revocations
	// stay. Without it the entry amends the policy in force.
	Replace bool `json:"replace,omitempty"`
	// Source records where the policy file lives (GitOps).
	Source *Source `json:"source,omitempty"`
	// Keys are signing keys granted from this entry on; a key listed again
	// gets the new grant (and a revocation is lifted).
	Keys []Key `json:"keys,omitempty"`
	// RevokedKeys are key ids (64 lowercase hex digits) revoked from this
	// entry on.
	RevokedKeys []string `json:"revokedKeys,omitempty"`
	// Identities grant roles to the node's callers (tokens file
	// principals by name, or client certificates); listed again, an
	// identity gets the new grant.
	Identities []Identity `json:"identities,omitempty"`
	// Jobs lists code versions approved per job (added to earlier
	// approvals when amending).
	Jobs []Job `json:"jobs,omitempty"`
	// Budgets set (or replace) a monthly budget per cost series.
	Budgets []Budget `json:"budgets,omitempty"`
	// Datasets set (or replace) the freshness interval of a dataset.
	Datasets []Dataset `json:"datasets,omitempty"`
	// Scanner sets anomaly scanner thresholds; unset members keep their
	// value in force.
	Scanner *Thresholds `json:"scanner,omitempty"`
	// LogSuccessor, in an old log, names the log that continues it (key
	// rotation, sharding; docs/audit.md, "chain of logs"). It changes no
	// rule of the policy in force. A chain statement carries no other
	// member and may leave policyVersion out.
	LogSuccessor *LogLink `json:"provledger_log_successor,omitempty"`
	// LogPredecessor, as a new log's first entry, names the log it
	// continues and carries the handoff bundle that proves the successor
	// statement in it. It changes no rule either.
	LogPredecessor *LogLink `json:"provledger_log_predecessor,omitempty"`
}

// LogLink is one link of a chain of logs, as prov audit --follow reads it.
type LogLink struct {
	// Origin is the other log's origin line.
	Origin string `json:"origin"`
	// VKey is the other log's C2SP note verifier key.
	VKey string `json:"vkey"`
	// URL is where the successor log serves its tiles (successor only).
	URL string `json:"url,omitempty"`
	// HandoffBundle is the base64 C2SP tlog-proof of the successor
	// statement in the old log (predecessor only).
	HandoffBundle string `json:"handoff_bundle,omitempty"`
}

// IsChainStatement reports whether p is a chain-of-logs statement (a
// successor or predecessor link and nothing else).
func (p *Policy) IsChainStatement() bool {
	return p.LogSuccessor != nil || p.LogPredecessor != nil
}

// Source says where a policy came from.
type Source struct {
	// Repo is the repository (a remote URL or a name).
	Repo string `json:"repo,omitempty"`
	// Path is the file's path in the repository.
	Path string `json:"path,omitempty"`
	// GitCommit is the commit (hex sha) the file was applied from.
	GitCommit string `json:"gitCommit,omitempty"`
}

// Key grants a signing key.
type Key struct {
	// Name is a label for people (e.g. "team-a-ci"); it is not checked.
	Name string `json:"name,omitempty"`
	// PublicKey is the PEM (PKIX "PUBLIC KEY") public key.
	PublicKey string `json:"publicKey"`
	// Namespaces the key may append to: exact names or path.Match
	// patterns ("team-a/*"); empty means every namespace.
	Namespaces []string `json:"namespaces,omitempty"`
	// PayloadTypes the key may sign: exact types or path.Match patterns
	// ("application/vnd.openlineage.*"); empty means every type the node
	// accepts.
	PayloadTypes []string `json:"payloadTypes,omitempty"`
	// Admin keys may sign policy entries.
	Admin bool `json:"admin,omitempty"`

	id  keys.KeyID
	pub crypto.PublicKey
}

// ID is the key id of the granted key (after parsing).
func (k *Key) ID() keys.KeyID { return k.id }

// Public is the parsed public key (after parsing).
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Job approves code versions of a job.
type Job struct {
	// Namespace and Name name the job as OpenLineage does.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// ApprovedVersions are code versions (git shas) the job may run.
	ApprovedVersions []string `json:"approvedVersions"`
}

// Budget is a monthly budget for one cost series.
type Budget struct {
	// Series names the cost series: service:NAME, tag:KEY=VALUE or
	// job:NS:NAME.
	Series string `json:"series"`
	// Currency is the ISO 4217 currency of Monthly.
	Currency string `json:"currency"`
	// Monthly is the budget per calendar month (UTC), a decimal string.
	Monthly string `json:"monthly"`

	amount float64
}

// Amount is Monthly as a number (after parsing).
func (b *Budget) Amount() float64 { return b.amount }

// Dataset sets a dataset's expected update interval.
type Dataset struct {
	// Namespace and Name name the dataset as OpenLineage does.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// MaxInterval is a Go duration ("26h"): the dataset is stale when not
	// updated for longer.
	MaxInterval string `json:"maxInterval"`

	interval time.Duration
}

// Interval is MaxInterval parsed (after parsing).
func (d *Dataset) Interval() time.Duration { return d.interval }

// Thresholds are anomaly scanner thresholds (docs/scanner.md lists the
// detectors); zero members are unset.
type Thresholds struct {
	// VolumeK is the volume band's half-width in robust standard
	// deviations.
	VolumeK float64 `json:"volumeK,omitempty"`
	// CostK is the daily cost band's half-width in robust standard
	// deviations.
	CostK float64 `json:"costK,omitempty"`
	// FreshnessFactor times the learned interval is how long a dataset
	// may go without an update (≥ 1).
	FreshnessFactor float64 `json:"freshnessFactor,omitempty"`
	// CostMinDaily ignores daily cost totals below it.
	CostMinDaily float64 `json:"costMinDaily,omitempty"`
	// MaxClockLag and MaxClockLead are Go durations: how far an eventTime
	// may be behind or ahead of its integration time.
	MaxClockLag  string `json:"maxClockLag,omitempty"`
	MaxClockLead string `json:"maxClockLead,omitempty"`
	// VolumeWindow and CostWindow are the number of past points of a
	// weekday (or of the series) a band's centre is taken from (1..1000);
	// VolumeMinPoints and CostMinPoints the points a band needs before it
	// judges (1..1000, at most the window in force).
	VolumeWindow    int `json:"volumeWindow,omitempty"`
	VolumeMinPoints int `json:"volumeMinPoints,omitempty"`
	CostWindow      int `json:"costWindow,omitempty"`
	CostMinPoints   int `json:"costMinPoints,omitempty"`
	// RunWindow is a Go duration: how long a started run may take to
	// complete, fail or abort.
	RunWindow string `json:"runWindow,omitempty"`
	// FreshnessGrace is a Go duration added to a dataset's learned
	// freshness limit.
	FreshnessGrace string `json:"freshnessGrace,omitempty"`
}

// Merge returns t with the members that are set in o replaced by o's:
// the thresholds in force after a policy entry setting o.
func (t Thresholds) Merge(o Thresholds) Thresholds {
	if o.VolumeK != 0 {
		t.VolumeK = o.VolumeK
	}
	if o.CostK != 0 {
		t.CostK = o.CostK
	}
	if o.FreshnessFactor != 0 {
		t.FreshnessFactor = o.FreshnessFactor
	}
	if o.CostMinDaily != 0 {
		t.CostMinDaily = o.CostMinDaily
	}
	if o.MaxClockLag != "" {
		t.MaxClockLag = o.MaxClockLag
	}
	if o.MaxClockLead != "" {
		t.MaxClockLead = o.MaxClockLead
	}
	for _, m := range []struct{ to, from *int }{{&t.VolumeWindow, &o.VolumeWindow}, {&t.VolumeMinPoints, &o.VolumeMinPoints}, {&t.CostWindow, &o.CostWindow}, {&t.CostMinPoints, &o.CostMinPoints}} {
		if *m.from != 0 {
			*m.to = *m.from
		}
	}
	if o.RunWindow != "" {
		t.RunWindow = o.RunWindow
	}
	if o.FreshnessGrace != "" {
		t.FreshnessGrace = o.FreshnessGrace
	}
	return t
}
