package scanner

import (
	"testing"
	"time"

	"github.com/provledger/provledger/crypto/policy"
)

// TestWithThresholds: each policy threshold overrides the option it
// names, unset members keep the Options, and a band whose minPoints would
// exceed its window is refused.
func TestWithThresholds(t *testing.T) {
	base := Options{}.withDefaults()
	tests := []struct {
		name string
		t    policy.Thresholds
		get  func(Options) any
		want any
	}{
		{"volumeK", policy.Thresholds{VolumeK: 3}, func(o Options) any { return o.Volume.Band.K }, 3.0},
		{"costK", policy.Thresholds{CostK: 4}, func(o Options) any { return o.Cost.Band.K }, 4.0},
		{"freshnessFactor", policy.Thresholds{FreshnessFactor: 3}, func(o Options) any { return o.Freshness.Factor }, 3.0},
		{"costMinDaily", policy.Thresholds{CostMinDaily: 50}, func(o Options) any { return o.Cost.MinDaily }, 50.0},
		{"maxClockLag", policy.Thresholds{MaxClockLag: "48h"}, func(o Options) any { return o.Time.MaxLag }, 48 * time.Hour},
		{"maxClockLead", policy.Thresholds{MaxClockLead: "1m"}, func(o Options) any { return o.Time.MaxLead }, time.Minute},
		{"volumeWindow", policy.Thresholds{VolumeWindow: 12}, func(o Options) any { return o.Volume.Band.Window }, 12},
		{"volumeMinPoints", policy.Thresholds{VolumeMinPoints: 6}, func(o Options) any { return o.Volume.Band.MinPoints }, 6},
		{"costWindow", policy.Thresholds{CostWindow: 4}, func(o Options) any { return o.Cost.Band.Window }, 4},
		{"costMinPoints", policy.Thresholds{CostMinPoints: 2}, func(o Options) any { return o.Cost.Band.MinPoints }, 2},
		{"runWindow", policy.Thresholds{RunWindow: "2h"}, func(o Options) any { return o.Lineage.RunWindow }, 2 * time.Hour},
		{"freshnessGrace", policy.Thresholds{FreshnessGrace: "1h"}, func(o Options) any { return o.Freshness.Grace }, time.Hour},
		{"unset keeps the options", policy.Thresholds{}, func(o Options) any { return o.Volume.Band }, base.Volume.Band},
		{"min points above the options' window", policy.Thresholds{VolumeMinPoints: 9}, nil, nil},
		{"window below the options' min points", policy.Thresholds{CostWindow: 3}, nil, nil},
		{"bad duration", policy.Thresholds{RunWindow: "soon"}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := withThresholds(base, tc.t)
			if tc.get == nil {
				if err == nil {
					t.Fatalf("accepted %+v", tc.t)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.get(o); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
