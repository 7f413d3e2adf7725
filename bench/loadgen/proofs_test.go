package loadgen

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTilePath(t *testing.T) {
	tests := []struct {
		level    int
		n, width uint64
		want     string
	}{
		{0, 0, 0, "tile/0/000"},
		{0, 7, 0, "tile/0/007"},
		{0, 1234, 0, "tile/0/x001/234"},
		{1, 1234067, 0, "tile/1/x001/x234/067"},
		{0, 0, 5, "tile/0/000.p/5"},
		{0, 3, 255, "tile/0/003.p/255"},
		{0, 3, 256, "tile/0/003"}, // a full tile has no width
	}
	for _, tc := range tests {
		if got := TilePath(tc.level, tc.n, tc.width); got != tc.want {
			t.Errorf("TilePath(%d, %d, %d) = %q, want %q", tc.level, tc.n, tc.width, got, tc.want)
		}
	}
}

func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, size := range []int{10_000, 70_000} {
		if err := os.WriteFile(filepath.Join(dir, "a", string(rune('x'+i))), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Blocks are allocated in file-system units: at least the bytes
	// written, less than one 64 KiB unit more per file.
	if got.Apparent != 80_000 || got.Allocated < 80_000 || got.Allocated > 80_000+2*65536 {
		t.Errorf("disk usage %+v, want 80,000 apparent and about as much allocated", got)
	}
	if _, err := diskUsage(filepath.Join(dir, "absent")); err == nil {
		t.Error("no error for a missing directory")
	}
}

// TestLimitsAdded runs the two limits this round added for a moment each:
// they must measure something and clean up after themselves.
func TestLimitsAdded(t *testing.T) {
	dir := t.TempDir()
	r, err := MeasurePebbleSync(dir, 100*time.Millisecond)
	if err != nil || r <= 0 {
		t.Fatalf("pebble: %v %v", r, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("pebble left %d entries in %s", len(left), dir)
	}
	for _, alg := range []string{"ed25519", AlgKeysEd25519, "ecdsa-p256"} {
		if r, err := MeasureVerify(alg, 1024, 50*time.Millisecond); err != nil || r <= 0 {
			t.Errorf("%s: %v %v", alg, r, err)
		}
	}
	if _, err := MeasureVerify("rsa", 1024, time.Millisecond); err == nil {
		t.Error("unknown algorithm accepted")
	}
}
