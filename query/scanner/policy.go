package scanner

import (
	"github.com/provledger/provledger/crypto/policy"
)

// The policy schema is crypto/policy's: these names keep the scanner's API
// (docs/scanner.md) and read the same payloads the node enforces.

// TypePolicy is the DSSE payload type of a policy entry.
const TypePolicy = policy.PayloadType

// PolicyVersion is the policy schema version this package reads.
const PolicyVersion = policy.Version

// ErrBadPolicy is wrapped by every policy decoding and validation error.
var ErrBadPolicy = policy.ErrBadPolicy

// Policy is one policy entry (crypto/policy.Policy).
type Policy = policy.Policy

// PolicyKey grants a key (crypto/policy.Key).
type PolicyKey = policy.Key

// PolicyJob approves code versions of a job (crypto/policy.Job).
type PolicyJob = policy.Job

// PolicyBudget is a monthly budget for one cost series
// (crypto/policy.Budget).
type PolicyBudget = policy.Budget

// PolicyDataset sets a dataset's expected update interval
// (crypto/policy.Dataset).
type PolicyDataset = policy.Dataset

// ParsePolicy decodes and validates a policy payload (JSON, as stored in
// the log). Unknown members are errors, so a typo does not silently
// weaken a policy.
func ParsePolicy(b []byte) (*Policy, error) { return policy.ParseJSON(b) }
