package ledger

import (
	"math/rand/v2"
	"testing"
)

func TestMemTableSize(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name string
		intN func(int) int
		want uint64
	}{
		{"lowest", func(int) int { return 0 }, 24 * mib},
		{"middle", func(n int) int { return n / 2 }, 32 * mib},
		{"highest", func(n int) int { return n - 1 }, 40 * mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := memTableSize(tt.intN); got != tt.want {
				t.Errorf("memTableSize = %d MiB, want %d MiB", got/mib, tt.want/mib)
			}
		})
	}
	// Drawn at random: always in range, whole MiB, and spread over it.
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[uint64]bool{}
	for range 1000 {
		s := memTableSize(r.IntN)
		if s < 24*mib || s > 40*mib || s%mib != 0 {
			t.Fatalf("memTableSize = %d, want a whole number of MiB in [24, 40] MiB", s)
		}
		seen[s] = true
	}
	if len(seen) != 17 {
		t.Errorf("1000 draws gave %d distinct sizes, want all 17 of 24..40 MiB", len(seen))
	}
}
