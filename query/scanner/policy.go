package scanner

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"time"

	"github.com/provledger/provledger/crypto/keys"
)

// TypePolicy is the DSSE payload type of a policy entry.
const TypePolicy = "application/vnd.provledger.policy+json"

// PolicyVersion is the policy schema version this package reads.
const PolicyVersion = 1

// ErrBadPolicy is wrapped by every policy decoding and validation error.
var ErrBadPolicy = errors.New("scanner: malformed policy")

// Policy is the minimal policy schema the scanner reads (docs/scanner.md):
// each policy entry amends the policy in force from its index on.
type Policy struct {
	// Version is PolicyVersion.
	Version int `json:"policyVersion"`
	// Keys are signing keys granted from this entry on; a key listed again
	// gets the new namespaces.
	Keys []PolicyKey `json:"keys,omitempty"`
	// RevokedKeys are key ids (hex) revoked from this entry on.
	RevokedKeys []string `json:"revokedKeys,omitempty"`
	// Jobs lists code versions approved per job (added to earlier
	// approvals).
	Jobs []PolicyJob `json:"jobs,omitempty"`
	// Budgets set (or replace) a monthly budget per cost series.
	Budgets []PolicyBudget `json:"budgets,omitempty"`
	// Datasets set (or replace) the freshness interval of a dataset.
	Datasets []PolicyDataset `json:"datasets,omitempty"`
}

// PolicyKey grants a key.
type PolicyKey struct {
	// PublicKey is the PEM public key.
	PublicKey string `json:"publicKey"`
	// Namespaces the key may append to: exact names or path.Match
	// patterns ("team-a/*"); empty means every namespace.
	Namespaces []string `json:"namespaces,omitempty"`

	id  keys.KeyID
	pub crypto.PublicKey
}

// ID is the key id of the granted key (after ParsePolicy).
func (k *PolicyKey) ID() keys.KeyID { return k.id }

// PolicyJob approves code versions of a job.
type PolicyJob struct {
	// Namespace and Name name the job as OpenLineage does.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// ApprovedVersions are code versions (git shas) the job may run.
	ApprovedVersions []string `json:"approvedVersions"`
}

// PolicyBudget is a monthly budget for one cost series.
type PolicyBudget struct {
	// Series names the cost series: service:NAME, tag:KEY=VALUE or
	// job:NS:NAME.
	Series string `json:"series"`
	// Currency is the ISO 4217 currency of Monthly.
	Currency string `json:"currency"`
	// Monthly is the budget per calendar month (UTC), a decimal string.
	Monthly string `json:"monthly"`

	amount float64
}

// Amount is Monthly as a number (after ParsePolicy).
func (b *PolicyBudget) Amount() float64 { return b.amount }

// PolicyDataset sets a dataset's expected update interval.
type PolicyDataset struct {
	// Namespace and Name name the dataset as OpenLineage does.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// MaxInterval is a Go duration ("26h"): the dataset is stale when not
	// updated for longer.
	MaxInterval string `json:"maxInterval"`

	interval time.Duration
}

// Interval is MaxInterval parsed (after ParsePolicy).
func (d *PolicyDataset) Interval() time.Duration { return d.interval }

// ParsePolicy decodes and validates a policy payload. Unknown members are
// errors, so a typo does not silently weaken a policy.
func ParsePolicy(b []byte) (*Policy, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var p Policy
	if err := d.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPolicy, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: trailing data after the policy", ErrBadPolicy)
	}
	if p.Version != PolicyVersion {
		return nil, fmt.Errorf("%w: policyVersion %d (this build reads %d)", ErrBadPolicy, p.Version, PolicyVersion)
	}
	for i := range p.Keys {
		k := &p.Keys[i]
		pub, err := keys.ParsePublicPEM([]byte(k.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("%w: keys[%d].publicKey: %v", ErrBadPolicy, i, err)
		}
		id, err := keys.IDOf(pub)
		if err != nil {
			return nil, fmt.Errorf("%w: keys[%d].publicKey: %v", ErrBadPolicy, i, err)
		}
		k.id, k.pub = id, pub
		for j, ns := range k.Namespaces {
			if _, err := path.Match(ns, ""); ns == "" || err != nil {
				return nil, fmt.Errorf("%w: keys[%d].namespaces[%d]: %q is not a namespace or pattern", ErrBadPolicy, i, j, ns)
			}
		}
	}
	for i, s := range p.RevokedKeys {
		if _, err := keys.ParseKeyID(s); err != nil {
			return nil, fmt.Errorf("%w: revokedKeys[%d]: %v", ErrBadPolicy, i, err)
		}
	}
	for i, j := range p.Jobs {
		if j.Namespace == "" || j.Name == "" {
			return nil, fmt.Errorf("%w: jobs[%d]: namespace and name are required", ErrBadPolicy, i)
		}
		for k, v := range j.ApprovedVersions {
			if v == "" {
				return nil, fmt.Errorf("%w: jobs[%d].approvedVersions[%d] is empty", ErrBadPolicy, i, k)
			}
		}
	}
	for i := range p.Budgets {
		bu := &p.Budgets[i]
		if bu.Series == "" || len(bu.Currency) != 3 {
			return nil, fmt.Errorf("%w: budgets[%d]: series and a 3-letter currency are required", ErrBadPolicy, i)
		}
		v, err := strconv.ParseFloat(bu.Monthly, 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("%w: budgets[%d].monthly: %q is not a positive decimal", ErrBadPolicy, i, bu.Monthly)
		}
		bu.amount = v
	}
	for i := range p.Datasets {
		ds := &p.Datasets[i]
		if ds.Namespace == "" || ds.Name == "" {
			return nil, fmt.Errorf("%w: datasets[%d]: namespace and name are required", ErrBadPolicy, i)
		}
		iv, err := time.ParseDuration(ds.MaxInterval)
		if err != nil || iv <= 0 {
			return nil, fmt.Errorf("%w: datasets[%d].maxInterval: %q is not a positive duration (e.g. \"26h\")", ErrBadPolicy, i, ds.MaxInterval)
		}
		ds.interval = iv
	}
	return &p, nil
}
