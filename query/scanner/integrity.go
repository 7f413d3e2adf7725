package scanner

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/provledger/provledger/crypto/keys"
	"github.com/provledger/provledger/crypto/policy"
)

// trustConfigured is true once there is any trust to judge keys by: base
// keys, or keys granted by policy. Without it the key checks are off.
func (s *Scanner) trustConfigured() bool {
	if s.opts.Trust.Len() > 0 {
		return true
	}
	granted := false
	s.keys.each(func(_ string, ks *keyState) { granted = granted || ks.Granted })
	return granted
}

// integrity runs the integrity detector over one entry and reports whether
// the entry may act as policy (its signers are trusted and in force).
func (s *Scanner) integrity(it *item, now time.Time) bool {
	idx := it.index
	ent := []uint64{idx}
	if it.envErr != nil {
		s.emit(&Finding{Detector: "integrity", Kind: "integrity.envelope", Severity: SeverityCritical,
			Subject: fmt.Sprintf("entry:%d", idx), Entries: ent, Time: now,
			Message: fmt.Sprintf("entry %d: the stored envelope is not the DSSE envelope its record names: %v", idx, it.envErr)})
		return false
	}
	if s.opts.Policy != nil {
		return s.integrityByPolicy(it, now)
	}
	trusted := true
	configured := s.trustConfigured()
	for _, sg := range it.rec.Signers {
		id := keys.KeyID(sg)
		ks := s.keys.peek(hexID(sg))
		_, inTrust := s.opts.Trust.Lookup(id)
		switch {
		case ks != nil && ks.Revoked && ks.RevokedAt < idx:
			trusted = false
			s.emit(&Finding{Detector: "integrity", Kind: "integrity.revokedKey", Severity: SeverityCritical,
				Subject: "key:" + id.String(), Entries: []uint64{ks.RevokedAt, idx}, Time: now,
				Message: fmt.Sprintf("entry %d in namespace %q is signed by key %s, revoked by policy entry %d", idx, it.rec.Namespace, short(id), ks.RevokedAt),
				Details: map[string]string{"namespace": it.rec.Namespace}})
		case !inTrust && (ks == nil || !ks.Granted):
			if configured {
				trusted = false
				s.emit(&Finding{Detector: "integrity", Kind: "integrity.unknownKey", Severity: SeverityHigh,
					Subject: "key:" + id.String(), Entries: ent, Time: now,
					Message: fmt.Sprintf("entry %d in namespace %q is signed by key %s, which neither the trust file nor any policy entry grants", idx, it.rec.Namespace, short(id)),
					Details: map[string]string{"namespace": it.rec.Namespace}})
			}
		case ks != nil && ks.Granted && len(ks.Namespaces) > 0 && !nsAllowed(ks.Namespaces, it.rec.Namespace):
			trusted = false
			s.emit(&Finding{Detector: "integrity", Kind: "integrity.namespace", Severity: SeverityHigh,
				Subject: "key:" + id.String(), Entries: []uint64{ks.GrantedAt, idx}, Time: now,
				Message: fmt.Sprintf("entry %d is in namespace %q, but key %s is granted only %s (policy entry %d)", idx, it.rec.Namespace, short(id), strings.Join(ks.Namespaces, ", "), ks.GrantedAt),
				Details: map[string]string{"namespace": it.rec.Namespace}})
		}
	}
	if !s.envelopeFindings(it, now) {
		trusted = false
	}
	if it.policy == nil {
		return trusted
	}
	if len(s.opts.PolicySigners) > 0 {
		for _, sg := range it.rec.Signers {
			if slices.Contains(s.opts.PolicySigners, keys.KeyID(sg)) {
				return trusted
			}
		}
		s.emit(&Finding{Detector: "integrity", Kind: "integrity.policySigner", Severity: SeverityHigh,
			Subject: fmt.Sprintf("entry:%d", idx), Entries: ent, Time: now,
			Message: fmt.Sprintf("policy entry %d is not signed by a policy signer; ignored", idx)})
		return false
	}
	return trusted
}

// integrityByPolicy is integrity with Options.Policy: the signers are
// judged by the policy in force at the entry's index, and a policy entry
// acts as policy exactly when the policy index honoured it.
func (s *Scanner) integrityByPolicy(it *item, now time.Time) bool {
	idx := it.index
	ent := []uint64{idx}
	st := s.opts.Policy(idx)
	trusted := true
	if it.rec.PayloadType != TypePolicy {
		for _, sg := range it.rec.Signers {
			err := st.Allows(keys.KeyID(sg), it.rec.Namespace, it.rec.PayloadType)
			var de *policy.DeniedError
			if err == nil || !errors.As(err, &de) {
				continue
			}
			trusted = false
			id := keys.KeyID(sg)
			f := &Finding{Detector: "integrity", Subject: "key:" + id.String(), Time: now,
				Message: fmt.Sprintf("entry %d: %v", idx, err),
				Details: map[string]string{"namespace": it.rec.Namespace, "payloadType": it.rec.PayloadType, "policyEntry": strconv.FormatUint(de.PolicyIndex, 10)}}
			switch {
			case errors.Is(err, policy.ErrRevokedKey):
				f.Kind, f.Severity, f.Entries = "integrity.revokedKey", SeverityCritical, []uint64{de.At, idx}
			case errors.Is(err, policy.ErrUnknownKey):
				f.Kind, f.Severity, f.Entries = "integrity.unknownKey", SeverityHigh, ent
			case errors.Is(err, policy.ErrPayloadType):
				f.Kind, f.Severity, f.Entries = "integrity.payloadType", SeverityHigh, []uint64{de.At, idx}
			default:
				f.Kind, f.Severity, f.Entries = "integrity.namespace", SeverityHigh, []uint64{de.At, idx}
			}
			s.emit(f)
		}
	}
	if !s.envelopeFindings(it, now) {
		trusted = false
	}
	if it.rec.PayloadType != TypePolicy || it.parseErr != nil {
		return trusted
	}
	if next := s.opts.Policy(idx + 1); next.Count() > st.Count() && next.Index() == idx {
		return true
	}
	s.emit(&Finding{Detector: "integrity", Kind: "integrity.policySigner", Severity: SeverityHigh,
		Subject: fmt.Sprintf("entry:%d", idx), Entries: ent, Time: now,
		Message: fmt.Sprintf("policy entry %d is not signed by an admin key of the policy in force (or, for the first one, by the log key); ignored", idx)})
	return false
}

func nsAllowed(patterns []string, ns string) bool {
	for _, p := range patterns {
		if p == ns {
			return true
		}
		if ok, _ := path.Match(p, ns); ok {
			return true
		}
	}
	return false
}

func short(id keys.KeyID) string { return id.String()[:16] }

// applyPolicy amends the policy in force with a policy entry.
func (s *Scanner) applyPolicy(index uint64, p *Policy) {
	for i := range p.Keys {
		k := &p.Keys[i]
		h := k.ID().String()
		ks := s.keys.touch(h)
		ks.PEM = k.PublicKey
		ks.Namespaces = slices.Clone(k.Namespaces)
		ks.Granted, ks.GrantedAt = true, index
		ks.Revoked, ks.RevokedAt = false, 0
		if err := s.addVerifier(h, k.PublicKey); err != nil {
			s.opts.Logger.Warn("scanner: policy key", "entry", index, "err", err)
		}
	}
	for _, r := range p.RevokedKeys {
		ks := s.keys.touch(strings.ToLower(r))
		ks.Revoked, ks.RevokedAt = true, index
	}
	for _, j := range p.Jobs {
		a := s.approvals.touch(jobKey(j.Namespace, j.Name))
		for _, v := range j.ApprovedVersions {
			if !slices.Contains(a.Versions, v) {
				a.Versions = append(a.Versions, v)
			}
		}
	}
	for i := range p.Budgets {
		b := &p.Budgets[i]
		bu := s.budgets.touch(costSeriesKey(b.Series, b.Currency))
		bu.Amount, bu.Entry = b.Amount(), index
	}
	for i := range p.Datasets {
		d := &p.Datasets[i]
		ds := s.datasets.touch(jobKey(d.Namespace, d.Name))
		ds.Configured = d.Interval().Milliseconds()
		s.queueDatasetLimit(jobKey(d.Namespace, d.Name), ds)
	}
	s.foldThresholds(p)
}

// jobKey keys jobs and datasets by namespace and name.
func jobKey(ns, name string) string { return ns + "\x00" + name }

// subjectOf renders a jobKey as "<kind>:NS:NAME".
func subjectOf(kind, key string) string {
	return kind + ":" + strings.Replace(key, "\x00", ":", 1)
}

// envelopeFindings emits the findings both integrity modes share, in this
// order: signatures that do not verify, a payload that does not parse as
// its type. It reports whether the signatures held.
func (s *Scanner) envelopeFindings(it *item, now time.Time) bool {
	idx := it.index
	if it.sigErr != nil {
		s.emit(&Finding{Detector: "integrity", Kind: "integrity.signature", Severity: SeverityCritical,
			Subject: fmt.Sprintf("entry:%d", idx), Entries: []uint64{idx}, Time: now,
			Message: fmt.Sprintf("entry %d: %v", idx, it.sigErr)})
	}
	if it.parseErr != nil {
		s.emit(&Finding{Detector: "integrity", Kind: "integrity.payload", Severity: SeverityMedium,
			Subject: fmt.Sprintf("entry:%d", idx), Entries: []uint64{idx}, Time: now,
			Message: fmt.Sprintf("entry %d: payload does not parse as %s: %v", idx, it.rec.PayloadType, it.parseErr),
			Details: map[string]string{"payloadType": it.rec.PayloadType}})
	}
	return it.sigErr == nil
}
