package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/provledger/provledger/crypto/keys"
)

// Validate checks p and fills in the parsed forms (key ids, amounts,
// intervals). Every error wraps ErrBadPolicy and names the member to fix.
func (p *Policy) Validate() error {
	if p.IsChainStatement() {
		return p.validateChain()
	}
	if p.Version != Version {
		return fmt.Errorf("%w: policyVersion %d (this build reads %d); set policyVersion: %d", ErrBadPolicy, p.Version, Version, Version)
	}
	if s := p.Source; s != nil {
		if err := checkText("source.repo", s.Repo, 1024); err != nil {
			return err
		}
		if err := checkText("source.path", s.Path, 1024); err != nil {
			return err
		}
		if c := s.GitCommit; c != "" && !isCommit(c) {
			return fmt.Errorf("%w: source.gitCommit %q is not a git commit (7 to 64 lowercase hex digits)", ErrBadPolicy, trunc(c))
		}
	}
	granted := make(map[keys.KeyID]int, len(p.Keys))
	for i := range p.Keys {
		k := &p.Keys[i]
		pub, err := keys.ParsePublicPEM([]byte(k.PublicKey))
		if err != nil {
			return fmt.Errorf("%w: keys[%d].publicKey: %v; paste the PEM \"PUBLIC KEY\" block (prov keys prints it)", ErrBadPolicy, i, err)
		}
		id, err := keys.IDOf(pub)
		if err != nil {
			return fmt.Errorf("%w: keys[%d].publicKey: %v", ErrBadPolicy, i, err)
		}
		if j, dup := granted[id]; dup {
			return fmt.Errorf("%w: keys[%d] and keys[%d] are the same key %s; list it once", ErrBadPolicy, j, i, id)
		}
		granted[id] = i
		k.id, k.pub = id, pub
		if err := checkText(fmt.Sprintf("keys[%d].name", i), k.Name, 255); err != nil {
			return err
		}
		if err := checkPatterns(fmt.Sprintf("keys[%d]", i), k.Namespaces, k.PayloadTypes); err != nil {
			return err
		}
	}
	for i, s := range p.RevokedKeys {
		id, err := keys.ParseKeyID(s)
		if err != nil {
			return fmt.Errorf("%w: revokedKeys[%d]: %v", ErrBadPolicy, i, err)
		}
		if j, ok := granted[id]; ok {
			return fmt.Errorf("%w: revokedKeys[%d] revokes the key that keys[%d] grants; do one or the other", ErrBadPolicy, i, j)
		}
	}
	for i, j := range p.Jobs {
		if j.Namespace == "" || j.Name == "" {
			return fmt.Errorf("%w: jobs[%d]: namespace and name are required", ErrBadPolicy, i)
		}
		for k, v := range j.ApprovedVersions {
			if v == "" {
				return fmt.Errorf("%w: jobs[%d].approvedVersions[%d] is empty", ErrBadPolicy, i, k)
			}
		}
	}
	for i := range p.Budgets {
		bu := &p.Budgets[i]
		if bu.Series == "" || len(bu.Currency) != 3 {
			return fmt.Errorf("%w: budgets[%d]: series and a 3-letter currency are required", ErrBadPolicy, i)
		}
		v, err := strconv.ParseFloat(bu.Monthly, 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Errorf("%w: budgets[%d].monthly: %q is not a positive decimal (e.g. \"12000.00\")", ErrBadPolicy, i, trunc(bu.Monthly))
		}
		bu.amount = v
	}
	for i := range p.Datasets {
		ds := &p.Datasets[i]
		if ds.Namespace == "" || ds.Name == "" {
			return fmt.Errorf("%w: datasets[%d]: namespace and name are required", ErrBadPolicy, i)
		}
		iv, err := time.ParseDuration(ds.MaxInterval)
		if err != nil || iv <= 0 {
			return fmt.Errorf("%w: datasets[%d].maxInterval: %q is not a positive duration (e.g. \"26h\")", ErrBadPolicy, i, trunc(ds.MaxInterval))
		}
		ds.interval = iv
	}
	if err := p.validateIdentities(); err != nil {
		return err
	}
	if t := p.Scanner; t != nil {
		return t.validate()
	}
	return nil
}

func (t *Thresholds) validate() error {
	for _, f := range []struct {
		name string
		v    float64
		min  float64
	}{{"volumeK", t.VolumeK, 0}, {"costK", t.CostK, 0}, {"freshnessFactor", t.FreshnessFactor, 1}, {"costMinDaily", t.CostMinDaily, 0}} {
		if f.v == 0 {
			continue
		}
		if f.v < f.min || f.v <= 0 || math.IsInf(f.v, 0) || math.IsNaN(f.v) {
			return fmt.Errorf("%w: scanner.%s: %v must be positive and at least %v", ErrBadPolicy, f.name, f.v, f.min)
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"volumeWindow", t.VolumeWindow}, {"volumeMinPoints", t.VolumeMinPoints}, {"costWindow", t.CostWindow}, {"costMinPoints", t.CostMinPoints}} {
		if f.v < 0 || f.v > 1000 {
			return fmt.Errorf("%w: scanner.%s: %d must be 1..1000", ErrBadPolicy, f.name, f.v)
		}
	}
	if t.VolumeWindow != 0 && t.VolumeMinPoints > t.VolumeWindow || t.CostWindow != 0 && t.CostMinPoints > t.CostWindow {
		return fmt.Errorf("%w: scanner: a band's minPoints (volume %d, cost %d) must not exceed its window (volume %d, cost %d)", ErrBadPolicy, t.VolumeMinPoints, t.CostMinPoints, t.VolumeWindow, t.CostWindow)
	}
	for _, f := range []struct{ name, v string }{{"maxClockLag", t.MaxClockLag}, {"maxClockLead", t.MaxClockLead}, {"runWindow", t.RunWindow}, {"freshnessGrace", t.FreshnessGrace}} {
		if f.v == "" {
			continue
		}
		if d, err := time.ParseDuration(f.v); err != nil || d <= 0 {
			return fmt.Errorf("%w: scanner.%s: %q is not a positive duration (e.g. \"24h\")", ErrBadPolicy, f.name, trunc(f.v))
		}
	}
	return nil
}

func checkText(field, s string, max int) error {
	if len(s) > max || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s must be at most %d bytes of UTF-8", ErrBadPolicy, field, max)
	}
	return nil
}

func isCommit(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// trunc shortens input before it goes into an error message.
func trunc(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:80] + "..."
}

// validateChain checks a chain-of-logs statement: one link, nothing else.
func (p *Policy) validateChain() error {
	if p.Version != 0 && p.Version != Version {
		return fmt.Errorf("%w: policyVersion %d (this build reads %d)", ErrBadPolicy, p.Version, Version)
	}
	if p.LogSuccessor != nil && p.LogPredecessor != nil {
		return fmt.Errorf("%w: provledger_log_successor and provledger_log_predecessor go in separate entries (the successor in the old log, the predecessor first in the new one)", ErrBadPolicy)
	}
	if p.Replace || p.Source != nil || len(p.Keys) > 0 || len(p.RevokedKeys) > 0 || len(p.Identities) > 0 || len(p.Jobs) > 0 || len(p.Budgets) > 0 || len(p.Datasets) > 0 || p.Scanner != nil {
		return fmt.Errorf("%w: a chain-of-logs statement carries its link and nothing else; put policy rules in their own entry", ErrBadPolicy)
	}
	name, l := "provledger_log_successor", p.LogSuccessor
	if l == nil {
		name, l = "provledger_log_predecessor", p.LogPredecessor
	}
	if err := checkText(name+".origin", l.Origin, 255); err != nil {
		return err
	}
	if l.Origin == "" {
		return fmt.Errorf("%w: %s.origin is required: the other log's origin line", ErrBadPolicy, name)
	}
	if l.VKey == "" {
		return fmt.Errorf("%w: %s.vkey is required: the other log's note verifier key (name+hash+base64)", ErrBadPolicy, name)
	}
	if err := checkText(name+".vkey", l.VKey, 1024); err != nil {
		return err
	}
	if err := checkText(name+".url", l.URL, 2048); err != nil {
		return err
	}
	if p.LogPredecessor != nil && l.HandoffBundle == "" {
		return fmt.Errorf("%w: provledger_log_predecessor.handoff_bundle is required: the base64 tlog-proof of the successor statement (prov prove --bundle)", ErrBadPolicy)
	}
	if len(l.HandoffBundle) > MaxSize {
		return fmt.Errorf("%w: %s.handoff_bundle is %d bytes; the limit is %d", ErrBadPolicy, name, len(l.HandoffBundle), MaxSize)
	}
	return nil
}
