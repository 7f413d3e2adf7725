package scanner

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/crypto/policy"
)

// keyThresholds holds the scanner thresholds of the policy in force at the
// committed cursor (crypto/policy.Thresholds JSON).
var keyThresholds = []byte{keyPrefix, tblMeta, 't', 'h', 'r', 'e', 's', 'h'}

// foldThresholds folds the scanner thresholds of an honoured policy entry
// into those in force (a replacing policy starts from none), and makes
// the detectors use them from the next entry on.
func (s *Scanner) foldThresholds(p *Policy) {
	if p.Scanner == nil && !p.Replace {
		return
	}
	t := s.thresholds
	if p.Replace {
		t = policy.Thresholds{}
	}
	if p.Scanner != nil {
		t = t.Merge(*p.Scanner)
	}
	if t == s.thresholds {
		return
	}
	o, err := withThresholds(s.base, t)
	if err != nil {
		// A band's minPoints above its window (set against the Options'
		// value): the entry's thresholds are ignored, deterministically.
		s.opts.Logger.Warn("scanner: policy thresholds ignored", "err", err)
		return
	}
	s.thresholds, s.threshSet, s.opts = t, true, o
	// The deadlines and cached freshness limits depend on the options.
	s.rebuildDeadlines()
}

// loadThresholds reads the stored thresholds and applies them.
func (s *Scanner) loadThresholds(db *pebble.DB) error {
	s.thresholds, s.threshSet, s.opts = policy.Thresholds{}, false, s.base
	v, closer, err := db.Get(keyThresholds)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	var t policy.Thresholds
	if err := json.Unmarshal(v, &t); err != nil {
		return fmt.Errorf("thresholds: %w", err)
	}
	o, err := withThresholds(s.base, t)
	if err != nil {
		return err
	}
	s.thresholds, s.opts = t, o
	return nil
}

// withThresholds returns o with the members set in t replacing the
// detector options they name (docs/scanner.md, "Thresholds from policy").
func withThresholds(o Options, t policy.Thresholds) (Options, error) {
	if t.VolumeK != 0 {
		o.Volume.Band.K = t.VolumeK
	}
	if t.CostK != 0 {
		o.Cost.Band.K = t.CostK
	}
	if t.FreshnessFactor != 0 {
		o.Freshness.Factor = t.FreshnessFactor
	}
	if t.CostMinDaily != 0 {
		o.Cost.MinDaily = t.CostMinDaily
	}
	for _, m := range []struct{ to, from *int }{
		{&o.Volume.Band.Window, &t.VolumeWindow}, {&o.Volume.Band.MinPoints, &t.VolumeMinPoints},
		{&o.Cost.Band.Window, &t.CostWindow}, {&o.Cost.Band.MinPoints, &t.CostMinPoints},
	} {
		if *m.from != 0 {
			*m.to = *m.from
		}
	}
	for _, d := range []struct {
		name string
		v    string
		to   *time.Duration
	}{
		{"maxClockLag", t.MaxClockLag, &o.Time.MaxLag}, {"maxClockLead", t.MaxClockLead, &o.Time.MaxLead},
		{"runWindow", t.RunWindow, &o.Lineage.RunWindow}, {"freshnessGrace", t.FreshnessGrace, &o.Freshness.Grace},
	} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v <= 0 {
			return o, fmt.Errorf("threshold %s: %q is not a positive duration", d.name, d.v)
		}
		*d.to = v
	}
	// A band's MinPoints may not exceed its Window: a policy may set one
	// against the other's Options value.
	if err := o.Volume.Band.Validate(); err != nil {
		return o, fmt.Errorf("thresholds volumeWindow/volumeMinPoints: %w", err)
	}
	if err := o.Cost.Band.Validate(); err != nil {
		return o, fmt.Errorf("thresholds costWindow/costMinPoints: %w", err)
	}
	return o, nil
}
