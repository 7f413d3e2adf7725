package scanner_test

import (
	"strings"
	"testing"

	"github.com/provledger/provledger/query/scanner/synth"
)

// A stream too small for its injected anomalies is an error that says
// what to change, not a generator that probes for a free slot forever
// (50 jobs × 60 days with 12 anomalies of each kind used to hang).
func TestSynthTooSmallIsAnError(t *testing.T) {
	l := openLog(t)
	_, err := synth.Generate(l, synth.Config{Jobs: 50, Days: 60, Seed: 5})
	if err == nil || !strings.Contains(err.Error(), "more jobs or days") {
		t.Fatalf("Generate of a too-small stream: %v, want an error asking for more jobs or days", err)
	}
	if n := l.Latest().Size; n != 0 {
		t.Fatalf("a failed generation wrote %d entries", n)
	}
}
