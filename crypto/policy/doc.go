// Package policy is provledger's trust and GitOps policy: the schema of a
// policy entry (DSSE payload type application/vnd.provledger.policy+json),
// its YAML and JSON input, its canonical JSON payload, validation with
// messages that say what to fix, and State, the policy in force folded
// from the policy entries of a log in index order.
//
// A policy entry grants signing keys (which namespaces and payload types
// each may sign, whether it is an admin key that may sign policy), revokes
// keys, approves code versions per job, sets budgets, dataset freshness
// intervals and scanner thresholds, and records where it came from (the git
// repository, file and commit). An entry amends the policy in force, or
// replaces it whole with "replace": true (what `prov policy apply` of a
// GitOps file does); revocations always survive a replacement, so a
// revoked key must be granted again explicitly.
//
// The policy of an entry at index n is the fold of the policy entries
// at indexes below n: a policy entry is judged by the policy before it
// and is in force from the next index on. docs/security.md describes the
// format and how the node and the auditors use it.
//
// The package imports only crypto/* packages of this module.
package policy
