package policy

import (
	"bytes"
	"crypto"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/provledger/provledger/crypto/keys"
)

// Grant is a key granted by the policy in force.
type Grant struct {
	// ID is the key's id.
	ID keys.KeyID
	// Name is the label the policy gave it.
	Name string
	// PEM is the public key as the policy listed it.
	PEM string
	// Public is the parsed public key.
	Public crypto.PublicKey
	// Namespaces and PayloadTypes are the patterns the key may sign in;
	// empty means any.
	Namespaces, PayloadTypes []string
	// Admin keys may sign policy entries.
	Admin bool
	// GrantedAt is the index of the policy entry that granted it last.
	GrantedAt uint64
}

// JobKey names a job or a dataset.
type JobKey struct{ Namespace, Name string }

// State is the policy in force after some policy entries, folded in index
// order. A State is immutable: Apply returns a new one, so it may be
// shared between goroutines without locks. The nil *State and the zero
// State are the empty policy (no policy entry yet).
type State struct {
	count      int
	index      uint64
	grants     map[keys.KeyID]*Grant
	revoked    map[keys.KeyID]uint64
	identities map[string]*IdentityGrant // by name
	jobs       map[JobKey][]string
	budgets    map[string]Budget // series + " " + currency
	datasets   map[JobKey]Dataset
	thresholds Thresholds
	source     Source
}

// Apply returns the policy in force after the policy entry p at index.
// Entries must be applied in index order; p must have been validated
// (Parse, ParseJSON or Validate).
func (s *State) Apply(index uint64, p *Policy) *State {
	n := &State{count: s.Count() + 1, index: index}
	if s == nil {
		s = &State{}
	}
	n.revoked = maps.Clone(s.revoked)
	if n.revoked == nil {
		n.revoked = map[keys.KeyID]uint64{}
	}
	if p.Replace {
		n.grants = map[keys.KeyID]*Grant{}
		n.identities = map[string]*IdentityGrant{}
		n.jobs = map[JobKey][]string{}
		n.budgets = map[string]Budget{}
		n.datasets = map[JobKey]Dataset{}
	} else {
		n.grants = maps.Clone(s.grants)
		n.identities = maps.Clone(s.identities)
		n.jobs = maps.Clone(s.jobs)
		n.budgets = maps.Clone(s.budgets)
		n.datasets = maps.Clone(s.datasets)
		n.thresholds = s.thresholds
		n.source = s.source
		if n.identities == nil {
			n.identities = map[string]*IdentityGrant{}
		}
		if n.grants == nil {
			n.grants = map[keys.KeyID]*Grant{}
			n.jobs = map[JobKey][]string{}
			n.budgets = map[string]Budget{}
			n.datasets = map[JobKey]Dataset{}
		}
	}
	if p.Source != nil {
		n.source = *p.Source
	}
	for i := range p.Keys {
		k := &p.Keys[i]
		n.grants[k.id] = &Grant{
			ID: k.id, Name: k.Name, PEM: k.PublicKey, Public: k.pub,
			Namespaces: slices.Clone(k.Namespaces), PayloadTypes: slices.Clone(k.PayloadTypes),
			Admin: k.Admin, GrantedAt: index,
		}
		delete(n.revoked, k.id)
	}
	for i := range p.Identities {
		id := &p.Identities[i]
		if c := id.Certificate; c != "" {
			// One identity per certificate: the new binding wins.
			for name, g := range n.identities {
				if g.Certificate == c && name != id.Name {
					delete(n.identities, name)
				}
			}
		}
		n.identities[id.Name] = id.grant(index)
	}
	for _, r := range p.RevokedKeys {
		id, err := keys.ParseKeyID(r)
		if err != nil {
			continue // Validate refused it
		}
		n.revoked[id] = index
		delete(n.grants, id)
	}
	for _, j := range p.Jobs {
		jk := JobKey{j.Namespace, j.Name}
		vs := slices.Clone(n.jobs[jk])
		for _, v := range j.ApprovedVersions {
			if !slices.Contains(vs, v) {
				vs = append(vs, v)
			}
		}
		n.jobs[jk] = vs
	}
	for _, b := range p.Budgets {
		n.budgets[b.Series+" "+b.Currency] = b
	}
	for _, d := range p.Datasets {
		n.datasets[JobKey{d.Namespace, d.Name}] = d
	}
	if p.Scanner != nil {
		n.thresholds = n.thresholds.Merge(*p.Scanner)
	}
	return n
}

// InForce reports whether any policy entry has been applied. While none
// has, the node enforces only its trust file (or --dev), and Allows lets
// every key through.
func (s *State) InForce() bool { return s.Count() > 0 }

// Count is the number of policy entries folded into s.
func (s *State) Count() int {
	if s == nil {
		return 0
	}
	return s.count
}

// Index is the log index of the last policy entry folded into s (0 when
// none was).
func (s *State) Index() uint64 {
	if s == nil {
		return 0
	}
	return s.index
}

// Grant returns the grant of key id, if the policy in force grants it.
func (s *State) Grant(id keys.KeyID) (*Grant, bool) {
	if s == nil {
		return nil, false
	}
	g, ok := s.grants[id]
	return g, ok
}

// Revoked reports whether key id is revoked, and by which policy entry.
func (s *State) Revoked(id keys.KeyID) (uint64, bool) {
	if s == nil {
		return 0, false
	}
	at, ok := s.revoked[id]
	return at, ok
}

// Grants returns the granted keys, ordered by key id.
func (s *State) Grants() []*Grant {
	if s == nil {
		return nil
	}
	out := slices.Collect(maps.Values(s.grants))
	slices.SortFunc(out, func(a, b *Grant) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return out
}

// HasIdentities reports whether the policy in force names any identity
// (then its grants are authoritative for the callers it names).
func (s *State) HasIdentities() bool { return s != nil && len(s.identities) > 0 }

// Identity returns the grant of the identity with this name (a tokens
// file principal's name), if the policy in force names it.
func (s *State) Identity(name string) (*IdentityGrant, bool) {
	if s == nil {
		return nil, false
	}
	g, ok := s.identities[name]
	return g, ok
}

// IdentityByCertificate returns the grant of the identity bound to one of
// the client certificate identities certIDs ("uri:…", "dns:…", "email:…",
// "cn:…"), the first that matches.
func (s *State) IdentityByCertificate(certIDs []string) (*IdentityGrant, bool) {
	if !s.HasIdentities() {
		return nil, false
	}
	for _, c := range certIDs {
		for _, g := range s.identities {
			if g.Certificate == c {
				return g, true
			}
		}
	}
	return nil, false
}

// Identities returns the identities the policy in force names, ordered by
// name.
func (s *State) Identities() []*IdentityGrant {
	if s == nil {
		return nil
	}
	out := slices.Collect(maps.Values(s.identities))
	slices.SortFunc(out, func(a, b *IdentityGrant) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ApprovedVersions returns the code versions approved for a job, and
// whether the policy lists the job at all.
func (s *State) ApprovedVersions(namespace, name string) ([]string, bool) {
	if s == nil {
		return nil, false
	}
	vs, ok := s.jobs[JobKey{namespace, name}]
	return vs, ok
}

// Budget returns the monthly budget of a cost series in a currency.
func (s *State) Budget(series, currency string) (float64, bool) {
	if s == nil {
		return 0, false
	}
	b, ok := s.budgets[series+" "+currency]
	return b.amount, ok
}

// FreshnessInterval returns the configured update interval of a dataset.
func (s *State) FreshnessInterval(namespace, name string) (time.Duration, bool) {
	if s == nil {
		return 0, false
	}
	d, ok := s.datasets[JobKey{namespace, name}]
	return d.interval, ok
}

// Thresholds returns the scanner thresholds in force (zero members unset).
func (s *State) Thresholds() Thresholds {
	if s == nil {
		return Thresholds{}
	}
	return s.thresholds
}

// Source returns where the policy in force came from (the last entry that
// said so).
func (s *State) Source() Source {
	if s == nil {
		return Source{}
	}
	return s.source
}

// Policy renders the policy in force as one document that replaces
// everything (replace: true), in a stable order: applying it to an empty
// State gives a State that allows and refuses exactly what s does. Revoked
// keys are listed, so the revocations survive.
func (s *State) Policy() *Policy {
	p := &Policy{Version: Version, Replace: true}
	if s == nil {
		return p
	}
	if src := s.source; src != (Source{}) {
		p.Source = &src
	}
	for _, g := range s.Grants() {
		p.Keys = append(p.Keys, Key{Name: g.Name, PublicKey: g.PEM, Namespaces: slices.Clone(g.Namespaces),
			PayloadTypes: slices.Clone(g.PayloadTypes), Admin: g.Admin, id: g.ID, pub: g.Public})
	}
	rev := slices.Collect(maps.Keys(s.revoked))
	slices.SortFunc(rev, func(a, b keys.KeyID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range rev {
		p.RevokedKeys = append(p.RevokedKeys, id.String())
	}
	for _, g := range s.Identities() {
		p.Identities = append(p.Identities, g.identity())
	}
	jobs := slices.Collect(maps.Keys(s.jobs))
	slices.SortFunc(jobs, cmpJobKey)
	for _, jk := range jobs {
		p.Jobs = append(p.Jobs, Job{Namespace: jk.Namespace, Name: jk.Name, ApprovedVersions: slices.Clone(s.jobs[jk])})
	}
	for _, k := range slices.Sorted(maps.Keys(s.budgets)) {
		p.Budgets = append(p.Budgets, s.budgets[k])
	}
	ds := slices.Collect(maps.Keys(s.datasets))
	slices.SortFunc(ds, cmpJobKey)
	for _, dk := range ds {
		p.Datasets = append(p.Datasets, s.datasets[dk])
	}
	if t := s.thresholds; t != (Thresholds{}) {
		p.Scanner = &t
	}
	return p
}

func cmpJobKey(a, b JobKey) int {
	if a.Namespace != b.Namespace {
		if a.Namespace < b.Namespace {
			return -1
		}
		return 1
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}

// match reports whether v matches one of patterns (exact or path.Match);
// no patterns match everything.
func match(patterns []string, v string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if p == v {
			return true
		}
		if ok, _ := path.Match(p, v); ok {
			return true
		}
	}
	return false
}
